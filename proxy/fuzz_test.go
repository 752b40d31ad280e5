package proxy

import (
	"bufio"
	"bytes"
	"net"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// extractCases seed FuzzExtractKey: an Authorization value, an X-API-Key
// value and a request URI, with the source the key must come from.
var extractCases = []struct {
	authz, apiKey, uri string
	want               credSource
	token              string
}{
	{"Bearer kgp_abc", "", "/", credBearer, "kgp_abc"},
	{"bearer \t kgp_abc", "other", "/", credBearer, "kgp_abc"},
	{"BEARER kgp_abc", "", "/", credBearer, "kgp_abc"},
	{"kgp_raw", "other", "/", credAuthorization, "kgp_raw"},
	{"Basic dXNlcjpwYXNz", "hdr", "/?api_key=q", credHeader, "hdr"},
	{"Bearer", "hdr", "/", credHeader, "hdr"},
	{"", "", "/p?a=1&api_key=q%2Bv&b=2", credQuery, "q+v"},
	{"", "", "/p?api_key=a+b", credQuery, "a b"},
	{"", "", "/p?api_key=&api_key=x", credNone, ""},
	{"", "", "/p?xapi_key=1&api_key", credNone, ""},
	{"", "", "/p#api_key=x", credNone, ""},
	{"", "", "/p?a#api_key=x", credNone, ""},
	{"Digest a=b", "", "/", credNone, ""},
}

func TestExtractKey(t *testing.T) {
	x := extractor{headers: [][]byte{canonicalHeader("x-api-key")}, param: []byte("api_key")}
	for _, tt := range extractCases {
		var h fasthttp.RequestHeader
		if tt.authz != "" {
			h.Set("Authorization", tt.authz)
		}
		if tt.apiKey != "" {
			h.Set("X-Api-Key", tt.apiKey)
		}
		c := x.extract(&h, []byte(tt.uri), nil)
		if c.src != tt.want || string(c.token) != tt.token {
			t.Errorf("%q %q %q: got source %d token %q, want %d %q", tt.authz, tt.apiKey, tt.uri, c.src, c.token, tt.want, tt.token)
		}
	}
}

func TestAppendWithoutParam(t *testing.T) {
	for in, want := range map[string]string{
		"/p":                           "/p",
		"/p?":                          "/p?",
		"/p?k=1":                       "/p",
		"/p?k":                         "/p",
		"/p?a=1&k=2&b=%20&k=3":         "/p?a=1&b=%20",
		"/p?k=1&a=1":                   "/p?a=1",
		"/p?a=1&&k=2&":                 "/p?a=1&&",
		"/p?a=%6B&kk=1&k=2#frag?k=1":   "/p?a=%6B&kk=1#frag?k=1",
		"/a%2Fb//c/%2e%2e/d?x=1&k=%20": "/a%2Fb//c/%2e%2e/d?x=1",
	} {
		if got := string(appendWithoutParam(nil, []byte(in), []byte("k"))); got != want {
			t.Errorf("%q: got %q, want %q", in, got, want)
		}
	}
}

// FuzzExtractKey checks key extraction and query parameter removal on
// arbitrary input: the key is never empty, comes from the first place SPEC
// §3 names, and removing the parameter removes exactly it.
func FuzzExtractKey(f *testing.F) {
	for _, tt := range extractCases {
		f.Add(tt.authz, tt.apiKey, tt.uri)
	}
	x := extractor{headers: [][]byte{canonicalHeader("X-API-Key")}, param: []byte("api_key")}
	f.Fuzz(func(t *testing.T, authz, apiKey, uri string) {
		var h fasthttp.RequestHeader
		h.Set("Authorization", authz)
		h.Set("X-API-Key", apiKey)
		authzSent := string(h.Peek("Authorization"))
		keySent := string(h.Peek("X-API-Key"))
		c := x.extract(&h, []byte(uri), make([]byte, 0, 64))
		if c.src != credNone && len(c.token) == 0 {
			t.Fatalf("empty token from source %d", c.src)
		}
		authzToken, authzIsKey := authorizationKey(authzSent)
		switch c.src {
		case credBearer, credAuthorization:
			if !authzIsKey || string(c.token) != authzToken {
				t.Fatalf("token %q from Authorization %q, want %q (%v)", c.token, authzSent, authzToken, authzIsKey)
			}
		case credHeader:
			if authzIsKey {
				t.Fatalf("Authorization %q holds a key but the header won", authzSent)
			}
			if string(c.token) != keySent {
				t.Fatalf("token %q, X-API-Key %q", c.token, keySent)
			}
		case credQuery:
			if authzIsKey || keySent != "" {
				t.Fatalf("query won over Authorization %q / X-API-Key %q", authzSent, keySent)
			}
		case credNone:
			if authzIsKey || keySent != "" {
				t.Fatalf("X-API-Key %q missed", keySent)
			}
		}

		out := appendWithoutParam(nil, []byte(uri), x.param)
		if _, ok := queryParam(out, x.param); ok {
			t.Fatalf("%q still has the parameter after removal: %q", uri, out)
		}
		if _, ok := queryParam([]byte(uri), x.param); !ok && string(out) != uri {
			t.Fatalf("%q changed to %q without holding the parameter", uri, out)
		}
		// Every other parameter stays, in order, byte for byte.
		var want []string
		q, _ := queryOf([]byte(uri))
		for _, pair := range strings.Split(string(q), "&") {
			if k, _, _ := strings.Cut(pair, "="); k != "api_key" {
				want = append(want, pair)
			}
		}
		q2, _ := queryOf(out)
		if q != nil && len(want) > 0 && strings.Join(want, "&") != string(q2) {
			t.Fatalf("%q: query became %q, want %q", uri, q2, strings.Join(want, "&"))
		}
	})
}

// authorizationKey is SPEC §3's rule for the Authorization header, written
// plainly: "Bearer <key>" (any case), else a value without spaces is the key.
func authorizationKey(v string) (string, bool) {
	if v == "" || strings.EqualFold(v, "bearer") {
		return "", false
	}
	if len(v) > 6 && strings.EqualFold(v[:6], "bearer") && (v[6] == ' ' || v[6] == '\t') {
		tok := strings.TrimLeft(v[7:], " \t")
		return tok, tok != ""
	}
	if strings.ContainsAny(v, " \t") {
		return "", false
	}
	return v, true
}

// rewriteCases seed FuzzRewriteHeaders with header blocks.
var rewriteCases = []string{
	"X-Keygate-User-Id: mallory\r\n",
	"x-keygate-user-id: a\r\nX-KEYGATE-USER-ID: b\r\nX_Keygate_Org_Id: c\r\n",
	"Connection: X-Keygate-User-Id, X-Custom\r\nX-Custom: 1\r\n",
	"Connection: close, X-A\r\nX-A: 1\r\nX-B: 2\r\n",
	"Connection: Content-Length, Host\r\nContent-Length: 0\r\n",
	"Keep-Alive: 1\r\nTe: trailers\r\nUpgrade: x\r\nProxy-Authorization: y\r\n",
	"Accept: a\r\nX-API-Key: k\r\nAccept: b\r\nX-Forwarded-For: 1.2.3.4\r\n",
	"X-Forwarded-For: a\r\nX-Forwarded-For: b\r\nX-Forwarded-Host: h\r\n",
	"Cookie: a=1\r\nX-Keygate-Metadata: {}\r\n",
	"X-API-Key: k\r\nAccept: a\r\nAccept: b\r\nAccept: c\r\n", // deleting the first header reverses the rest in fasthttp
}

// FuzzRewriteHeaders checks the request rewrite on arbitrary header blocks:
// on the wire, the only identity headers are those keygate set, once each
// with its value; no hop-by-hop header and none that Connection named
// survives; every other header keeps its values in order.
func FuzzRewriteHeaders(f *testing.F) {
	for _, c := range rewriteCases {
		f.Add(c)
	}
	p, err := New(&Gate{}, Options{Upstreams: []string{"http://127.0.0.1:1"}, KeyHeaders: []string{"X-API-Key"}, StripCredentials: true})
	if err != nil {
		f.Fatal(err)
	}
	e := &entry{}
	for i := range e.hdr {
		e.hdr[i] = "v" + identityHeaderSuffixes[i]
	}
	f.Fuzz(func(t *testing.T, block string) {
		var req fasthttp.Request
		raw := "GET /x HTTP/1.1\r\nHost: h\r\n" + block + "\r\n"
		if err := req.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
			return
		}
		// What the client sent, and what Connection named, from a second
		// parse: AllInOrder joins folded lines in place, so a request's raw
		// headers can be walked once only (appendHead does).
		var sentReq fasthttp.Request
		if err := sentReq.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
			t.Fatal(err)
		}
		var sent [][2]string
		named := map[string]bool{}
		for k, v := range sentReq.Header.AllInOrder() {
			sent = append(sent, [2]string{string(k), string(v)})
			if strings.EqualFold(string(k), "Connection") {
				for _, tok := range strings.Split(string(v), ",") {
					if tok = strings.TrimSpace(tok); tok != "" && !isFraming([]byte(tok)) {
						named[strings.ToLower(tok)] = true
					}
				}
			}
		}
		var ctx fasthttp.RequestCtx
		ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1)}, nil)
		var rw rewriter
		head := p.appendHead(nil, &ctx, &rw, p.ups[0], e)

		// Read back what would go on the wire.
		var out fasthttp.RequestHeader
		if err := out.Read(bufio.NewReader(bytes.NewReader(head))); err != nil {
			t.Fatalf("upstream request head does not parse: %v\n%s", err, head)
		}
		got := map[string][]string{}
		for k, v := range out.AllInOrder() {
			name := strings.ToLower(string(k))
			got[name] = append(got[name], string(v))
			if hasPrefixFold(k, p.prefix) {
				continue
			}
			if isHopByHop(k) || strings.EqualFold(string(k), "Expect") || strings.EqualFold(string(k), "X-API-Key") {
				t.Errorf("%s survived", k)
			}
			if named[name] {
				t.Errorf("%s survived although Connection named it", k)
			}
		}
		for name, vs := range got {
			if !hasPrefixFold([]byte(name), p.prefix) {
				continue
			}
			ok := false
			for i, full := range p.idNames {
				if strings.EqualFold(name, string(full)) && len(vs) == 1 && vs[0] == string(e.hdr[i]) {
					ok = true
				}
			}
			if !ok {
				t.Errorf("identity header %s = %q was not set by keygate", name, vs)
			}
		}
		for i, full := range p.idNames {
			if vs := got[strings.ToLower(string(full))]; len(vs) != 1 || vs[0] != string(e.hdr[i]) {
				t.Errorf("%s = %q, want [%q]", full, vs, e.hdr[i])
			}
		}
		// Other headers keep their values, in order.
		want := map[string][]string{}
		for _, kv := range sent {
			k := []byte(kv[0])
			name := strings.ToLower(kv[0])
			if hasPrefixFold(k, p.prefix) || isHopByHop(k) || named[name] || isFraming(k) ||
				strings.EqualFold(name, "Expect") || equalFold(k, "X-API-Key") ||
				isForwarding(k) || name == "cookie" ||
				name == "authorization" && authorizationIsKey([]byte(strings.Trim(kv[1], " \t"))) {
				continue
			}
			// Surrounding whitespace is not part of a field value (RFC 9110
			// §5.5); fasthttp drops what an obs-fold leaves at the end.
			want[name] = append(want[name], strings.Trim(kv[1], " \t"))
		}
		for name, vs := range want {
			var trimmed []string
			for _, v := range got[name] {
				trimmed = append(trimmed, strings.Trim(v, " \t"))
			}
			if strings.Join(trimmed, "\x00") != strings.Join(vs, "\x00") {
				t.Errorf("%s = %q, want %q", name, got[name], vs)
			}
		}
	})
}
