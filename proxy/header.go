package proxy

import (
	"bytes"

	"github.com/valyala/fasthttp"
)

// identityHeaderSuffixes name the identity headers after the prefix, in the
// order of the hdr* slots.
var identityHeaderSuffixes = [numIdentityHeaders]string{
	hdrKeyID:     "Key-Id",
	hdrKeyType:   "Key-Type",
	hdrUserID:    "User-Id",
	hdrUserEmail: "User-Email",
	hdrOrgID:     "Org-Id",
	hdrOrgName:   "Org-Name",
	hdrMetadata:  "Metadata",
}

// hopByHop are the headers that describe one connection, not the message
// (RFC 9110 §7.6.1), dropped in both directions. Expect is dropped from
// requests as well: keygate answered any 100-continue itself and sends the
// body upstream at once.
var hopByHop = [...]string{
	"Connection",
	"Proxy-Connection",
	"Keep-Alive",
	"Proxy-Authenticate",
	"Proxy-Authorization",
	"Te",
	"Trailer",
	"Transfer-Encoding",
	"Upgrade",
}

// framing are headers a Connection header may not remove: they frame or
// route the message itself, and fasthttp keeps them outside the header list.
var framing = [...]string{"Host", "Content-Length", "Transfer-Encoding", "Content-Type", "User-Agent"}

// canonicalHeader returns name as fasthttp normalizes it: the first letter
// and each letter after a dash upper case, the rest lower case.
func canonicalHeader(name string) []byte {
	b := []byte(name)
	upper := true
	for i, c := range b {
		switch {
		case upper && 'a' <= c && c <= 'z':
			c -= 'a' - 'A'
		case !upper && 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		b[i] = c
		upper = c == '-'
	}
	return b
}

// lower folds an ASCII letter to lower case and '_' and '.' to '-', so that
// header names that some frameworks and CGI-style servers treat alike
// (X_Keygate_User_Id, X.Keygate.User.Id) compare equal.
func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	if c == '_' || c == '.' {
		return '-'
	}
	return c
}

// hasPrefixFold reports whether name starts with prefix, ignoring ASCII case
// and treating '_' and '.' as '-'.
func hasPrefixFold(name, prefix []byte) bool {
	if len(name) < len(prefix) {
		return false
	}
	for i, c := range prefix {
		if lower(name[i]) != lower(c) {
			return false
		}
	}
	return true
}

// equalFold reports whether a and b are the same header name (see lower).
func equalFold(a []byte, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if lower(a[i]) != lower(b[i]) {
			return false
		}
	}
	return true
}

func isHopByHop(name []byte) bool {
	for _, h := range hopByHop {
		if equalFold(name, h) {
			return true
		}
	}
	return false
}

func isFraming(name []byte) bool {
	for _, h := range framing {
		if equalFold(name, h) {
			return true
		}
	}
	return false
}

// nextToken splits the next comma-separated token off a header value such as
// Connection's, trimming spaces and tabs. It returns rest == nil at the end.
func nextToken(v []byte) (tok, rest []byte) {
	i := bytes.IndexByte(v, ',')
	if i < 0 {
		tok, rest = v, nil
	} else {
		tok, rest = v[:i], v[i+1:]
	}
	return bytes.Trim(tok, " \t"), rest
}

// header is one received request header, pointing into the request's raw
// header bytes (which deleting headers does not touch).
type header struct{ key, value []byte }

// rewriter sorts a request's headers for appendHead. Its scratch slices are
// reused from request to request; it is not safe for concurrent use (each
// request takes one from a pool).
type rewriter struct {
	del  [][]byte // header names a Connection header named
	kept []header // headers that may pass, in the order received
	xff  [][]byte // X-Forwarded-For values received, in order
}

// collect sorts h's headers: kept gets those that may pass upstream, in the
// order received; del the names the Connection headers list (which do not
// pass either, wherever they come); xff the X-Forwarded-For values received,
// for the caller to extend. What never passes: each header whose name starts
// with prefix, Host and Content-Length (the caller writes its own), each
// hop-by-hop header, Expect, the forwarding headers keygate owns (see
// isForwarding) and the extra names given (all compared as lower folds them).
func (rw *rewriter) collect(h *fasthttp.RequestHeader, prefix []byte, extra [][]byte) {
	rw.del = rw.del[:0]
	rw.kept = rw.kept[:0]
	rw.xff = rw.xff[:0]
	visit := func(k, v []byte) {
		switch {
		case hasPrefixFold(k, prefix):
		case equalFold(k, "Connection"):
			for tok, rest := nextToken(v); ; tok, rest = nextToken(rest) {
				if len(tok) > 0 && !isFraming(tok) {
					rw.del = append(rw.del, tok)
				}
				if rest == nil {
					break
				}
			}
		case equalFold(k, "X-Forwarded-For"):
			rw.xff = append(rw.xff, v)
		case equalFold(k, "Host") || equalFold(k, "Content-Length"):
		case isHopByHop(k) || equalFold(k, "Expect") || isForwarding(k):
		case isExtra(k, extra):
		default:
			rw.kept = append(rw.kept, header{k, v})
		}
	}
	if len(h.RawHeaders()) > 0 {
		for k, v := range h.AllInOrder() {
			visit(k, v)
		}
		return
	}
	// A request built in code rather than read from the wire has no raw
	// headers; All then lists what was set.
	for k, v := range h.All() {
		visit(k, v)
	}
}

// named reports whether a Connection header named k.
func (rw *rewriter) named(k []byte) bool {
	for _, d := range rw.del {
		if equalFoldBytes(k, d) {
			return true
		}
	}
	return false
}

func isExtra(k []byte, extra [][]byte) bool {
	for _, x := range extra {
		if equalFoldBytes(k, x) {
			return true
		}
	}
	return false
}

// stripResponse deletes the hop-by-hop headers of an upstream response and
// those its Connection headers name.
func (rw *rewriter) stripResponse(h *fasthttp.ResponseHeader) {
	rw.del = rw.del[:0]
	for k, v := range h.All() {
		if !isHopByHop(k) {
			continue
		}
		rw.del = append(rw.del, k)
		if !equalFold(k, "Connection") {
			continue
		}
		for tok, rest := nextToken(v); ; tok, rest = nextToken(rest) {
			if len(tok) > 0 && !isFraming(tok) {
				rw.del = append(rw.del, tok)
			}
			if rest == nil {
				break
			}
		}
	}
	for _, name := range rw.del {
		h.DelBytes(name)
	}
}
