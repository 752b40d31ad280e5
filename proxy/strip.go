package proxy

import (
	"bytes"
	"fmt"
)

// This file holds what the request rewrite removes beyond hop-by-hop and
// identity headers: the forwarding headers keygate owns, configured routing
// overrides, every credential location, and keygate's own cookies.

var (
	xForwardedPrefix = []byte("X-Forwarded-")
	cookieHeader     = []byte("Cookie")
)

// DefaultDropHeaders are the request headers removed by default besides
// those keygate always owns: URL and host overrides that some stacks (IIS
// URL Rewrite, Symfony, Laravel, some Nginx and Spring setups) obey, and
// client-address claims that only a trusted proxy may make.
var DefaultDropHeaders = []string{
	"X-Original-URL",
	"X-Rewrite-URL",
	"X-Original-URI",
	"X-Override-URL",
	"X-Original-Host",
	"X-Host",
	"X-HTTP-Host-Override",
	"X-Client-IP",
	"True-Client-IP",
	"X-Cluster-Client-IP",
}

// isForwarding reports whether k is a forwarding header that keygate owns
// and that a client may not send: Forwarded, X-Real-IP and every
// X-Forwarded-* (keygate sets X-Forwarded-For, -Proto and -Host itself).
func isForwarding(k []byte) bool {
	return hasPrefixFold(k, xForwardedPrefix) || equalFold(k, "Forwarded") || equalFold(k, "X-Real-Ip")
}

// equalFoldBytes is equalFold for two byte slices.
func equalFoldBytes(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if lower(a[i]) != lower(b[i]) {
			return false
		}
	}
	return true
}

// authorizationIsKey reports whether an Authorization value is one the
// extractor would take as a key (Bearer <token> or a bare token); other
// schemes (Basic, Digest) belong to the upstream.
func authorizationIsKey(v []byte) bool {
	if len(v) == 0 || bytes.EqualFold(v, bearer) {
		return false
	}
	if len(v) > len(bearer) && (v[len(bearer)] == ' ' || v[len(bearer)] == '\t') && bytes.EqualFold(v[:len(bearer)], bearer) {
		return true
	}
	return bytes.IndexByte(v, ' ') < 0 && bytes.IndexByte(v, '\t') < 0
}

// paramNameIs reports whether the raw query parameter name k, once
// percent-decoded ('+' as space), is name: an upstream decodes names, so
// "api%5Fkey" is the key parameter too.
func paramNameIs(k, name []byte) bool {
	j := 0
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case c == '+':
			c = ' '
		case c == '%' && i+2 < len(k) && isHex(k[i+1]) && isHex(k[i+2]):
			c = unhex(k[i+1])<<4 | unhex(k[i+2])
			i += 2
		}
		if j >= len(name) || name[j] != c {
			return false
		}
		j++
	}
	return j == len(name)
}

// hasParam reports whether uri's query holds a parameter named name (see
// paramNameIs).
func hasParam(uri, name []byte) bool {
	q, _ := queryOf(uri)
	for len(q) > 0 {
		var pair []byte
		if i := bytes.IndexByte(q, '&'); i >= 0 {
			pair, q = q[:i], q[i+1:]
		} else {
			pair, q = q, nil
		}
		k, _, _ := bytes.Cut(pair, []byte{'='})
		if paramNameIs(k, name) {
			return true
		}
	}
	return false
}

// cookieName returns the name of one ';'-separated Cookie segment, trimmed
// as Go's net/http (which the dashboard and portal use) trims it.
func cookieName(seg []byte) []byte {
	name, _, _ := bytes.Cut(seg, []byte{'='})
	return bytes.Trim(name, " \t")
}

func isNamed(name []byte, names [][]byte) bool {
	for _, n := range names {
		if bytes.Equal(name, n) {
			return true
		}
	}
	return false
}

// hasCookie reports whether a Cookie value holds a cookie named in names.
func hasCookie(v []byte, names [][]byte) bool {
	for len(v) > 0 {
		seg := v
		if i := bytes.IndexByte(v, ';'); i >= 0 {
			seg, v = v[:i], v[i+1:]
		} else {
			v = nil
		}
		if isNamed(cookieName(seg), names) {
			return true
		}
	}
	return false
}

// appendWithoutCookies appends the Cookie value v to dst without the
// cookies named in names. Every other segment keeps its bytes, separators
// included; only the whitespace that would lead the result is dropped.
func appendWithoutCookies(dst, v []byte, names [][]byte) []byte {
	first := true
	for last := false; !last; {
		seg := v
		if i := bytes.IndexByte(v, ';'); i >= 0 {
			seg, v = v[:i], v[i+1:]
		} else {
			last = true // a trailing ';' leaves one empty segment, kept
		}
		if isNamed(cookieName(seg), names) {
			continue
		}
		if first {
			seg = bytes.TrimLeft(seg, " \t")
		} else {
			dst = append(dst, ';')
		}
		first = false
		dst = append(dst, seg...)
	}
	return dst
}

// setDrops fills the header and cookie names every request loses.
func (p *Proxy) setDrops(opts Options) error {
	for _, h := range opts.DropHeaders {
		if !validHeaderName(h) {
			return fmt.Errorf("proxy.drop_headers: %q is not a valid header name", h)
		}
		p.drop = append(p.drop, []byte(h))
	}
	if opts.StripCredentials {
		p.drop = append(p.drop, p.ext.headers...)
	}
	p.dropAuth = append(append([][]byte{}, p.drop...), authorization)
	for _, c := range opts.DropCookies {
		p.cookies = append(p.cookies, []byte(c))
	}
	return nil
}
