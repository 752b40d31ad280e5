package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/limiter"
)

func expectError(t *testing.T, r *response, status int, code string) apiError {
	t.Helper()
	if r.status != status {
		t.Fatalf("status = %d, want %d (body %q)", r.status, status, r.body)
	}
	e := r.apiError(t)
	if e.Error != code {
		t.Fatalf("error = %q, want %q", e.Error, code)
	}
	return e
}

func expectOK(t *testing.T, r *response) *echoed {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("status = %d, want 200 (body %q)", r.status, r.body)
	}
	return r.echoed(t)
}

func bearerHeader(tok string) string { return "Authorization: Bearer " + tok }

// freePort returns an address nothing listens on.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestErrorTable covers every row of SPEC §3's error table, and checks that
// the upstream never sees a rejected request.
func TestErrorTable(t *testing.T) {
	minute := &keys.RateLimit{Limit: 1, Window: time.Minute}
	tests := []struct {
		name   string
		cfg    stackConfig
		setup  func(t *testing.T, s *stack) string // returns the raw request
		status int
		code   string
		// reaches reports whether the upstream is contacted.
		reaches bool
	}{
		{
			name:   "missing key",
			setup:  func(t *testing.T, s *stack) string { return request("GET", "/x", nil, "") },
			status: 401, code: "missing_api_key",
		},
		{
			name: "empty bearer",
			setup: func(t *testing.T, s *stack) string {
				return request("GET", "/x", []string{"Authorization: Bearer "}, "")
			},
			status: 401, code: "missing_api_key",
		},
		{
			name: "malformed key",
			setup: func(t *testing.T, s *stack) string {
				return request("GET", "/x", []string{bearerHeader("kgp_tooshort")}, "")
			},
			status: 401, code: "invalid_api_key",
		},
		{
			name: "bad checksum",
			setup: func(t *testing.T, s *stack) string {
				s.user("alice", nil)
				_, tok := s.key(keys.CreateKeyInput{UserID: "alice"})
				bad := tok[:len(tok)-1] + "A"
				if bad == tok {
					bad = tok[:len(tok)-1] + "B"
				}
				return request("GET", "/x", []string{bearerHeader(bad)}, "")
			},
			status: 401, code: "invalid_api_key",
		},
		{
			name: "unknown key",
			setup: func(t *testing.T, s *stack) string {
				tok, _ := s.tokens.New(keys.TypeGeneric)
				return request("GET", "/x", []string{bearerHeader(tok)}, "")
			},
			status: 401, code: "invalid_api_key",
		},
		{
			name: "foreign token without imported keys",
			setup: func(t *testing.T, s *stack) string {
				return request("GET", "/x", []string{"X-API-Key: sk_live_something"}, "")
			},
			status: 401, code: "invalid_api_key",
		},
		{
			name: "archived key",
			setup: func(t *testing.T, s *stack) string {
				k, tok := s.key(keys.CreateKeyInput{})
				if _, err := s.svc.ArchiveKey(context.Background(), k.ID); err != nil {
					t.Fatal(err)
				}
				return request("GET", "/x", []string{bearerHeader(tok)}, "")
			},
			status: 401, code: "invalid_api_key",
		},
		{
			name: "owner blocked",
			setup: func(t *testing.T, s *stack) string {
				s.user("alice", nil)
				_, tok := s.key(keys.CreateKeyInput{UserID: "alice"})
				if _, err := s.svc.SetUserEnabled(context.Background(), "alice", false); err != nil {
					t.Fatal(err)
				}
				return request("GET", "/x", []string{bearerHeader(tok)}, "")
			},
			status: 401, code: "invalid_api_key",
		},
		{
			name: "expired key",
			setup: func(t *testing.T, s *stack) string {
				at := s.clock.Now().Add(time.Minute).Unix()
				_, tok := s.key(keys.CreateKeyInput{ExpiresAt: &at})
				s.clock.Advance(2 * time.Minute)
				return request("GET", "/x", []string{bearerHeader(tok)}, "")
			},
			status: 401, code: "expired_api_key",
		},
		{
			name: "rate limited",
			setup: func(t *testing.T, s *stack) string {
				s.user("alice", minute)
				_, tok := s.key(keys.CreateKeyInput{UserID: "alice"})
				expectOK(t, s.get(t, "/x", bearerHeader(tok)))
				return request("GET", "/x", []string{bearerHeader(tok)}, "")
			},
			status: 429, code: "rate_limited",
		},
		{
			name: "upstream down",
			cfg:  stackConfig{noEcho: true, upstream: func(string) []string { return []string{"http://" + freePort(t)} }},
			setup: func(t *testing.T, s *stack) string {
				_, tok := s.key(keys.CreateKeyInput{})
				return request("GET", "/x", []string{bearerHeader(tok)}, "")
			},
			status: 502, code: "upstream_unavailable", reaches: true,
		},
		{
			name: "upstream slow",
			cfg:  stackConfig{proxy: Options{UpstreamTimeout: 50 * time.Millisecond}},
			setup: func(t *testing.T, s *stack) string {
				_, tok := s.key(keys.CreateKeyInput{})
				return request("GET", "/x", []string{bearerHeader(tok), "X-Echo-Sleep: 300ms"}, "")
			},
			status: 504, code: "upstream_timeout", reaches: true,
		},
		{
			name: "body too large (Content-Length)",
			cfg:  stackConfig{proxy: Options{MaxBodyBytes: 1000}},
			setup: func(t *testing.T, s *stack) string {
				_, tok := s.key(keys.CreateKeyInput{})
				return request("POST", "/x", []string{bearerHeader(tok)}, strings.Repeat("a", 1001))
			},
			status: 413, code: "request_too_large",
		},
		{
			name: "body too large (chunked)",
			cfg:  stackConfig{proxy: Options{MaxBodyBytes: 1000}},
			setup: func(t *testing.T, s *stack) string {
				_, tok := s.key(keys.CreateKeyInput{})
				body := chunked(strings.Repeat("a", 600), strings.Repeat("b", 600))
				return request("POST", "/x", []string{bearerHeader(tok), "Transfer-Encoding: chunked"}, "") + body
			},
			status: 413, code: "request_too_large", reaches: true,
		},
		{
			name: "store unavailable",
			setup: func(t *testing.T, s *stack) string {
				_, tok := s.key(keys.CreateKeyInput{})
				s.store.Close()
				return request("GET", "/x", []string{bearerHeader(tok)}, "")
			},
			status: 503, code: "store_unavailable",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStack(t, tt.cfg)
			req := tt.setup(t, s)
			before := s.upstreamCount()
			r := s.raw(t, req)
			e := expectError(t, r, tt.status, tt.code)
			if got := s.upstreamCount() - before; !tt.reaches && got != 0 {
				t.Errorf("upstream saw %d requests, want none", got)
			}
			switch tt.status {
			case 401:
				want := `Bearer realm="keygate"`
				if tt.code != "missing_api_key" {
					want += `, error="invalid_token"`
				}
				if got := r.header.Get("WWW-Authenticate"); got != want {
					t.Errorf("WWW-Authenticate = %q, want %q", got, want)
				}
			case 429:
				if e.WaitSeconds == nil || *e.WaitSeconds < 1 {
					t.Fatalf("wait_seconds = %v, want an int >= 1", e.WaitSeconds)
				}
				if got := r.header.Get("Retry-After"); got != strconv.Itoa(*e.WaitSeconds) {
					t.Errorf("Retry-After = %q, want %d", got, *e.WaitSeconds)
				}
				if r.header.Get("RateLimit-Limit") != "1" || r.header.Get("RateLimit-Remaining") != "0" {
					t.Errorf("RateLimit headers on 429: %v", r.header)
				}
			}
		})
	}
}

// chunked encodes parts as a chunked body.
func chunked(parts ...string) string {
	var b strings.Builder
	for _, p := range parts {
		fmt.Fprintf(&b, "%x\r\n%s\r\n", len(p), p)
	}
	b.WriteString("0\r\n\r\n")
	return b.String()
}

func TestIdentityHeaders(t *testing.T) {
	s := newStack(t, stackConfig{})
	s.user("alice", nil)
	s.user("bob", nil)
	s.org("acme", "Acme Ünited", nil)
	s.member("acme", "bob", "Admin")
	_, personal := s.key(keys.CreateKeyInput{UserID: "alice", Metadata: []byte(`{"plan": "pro", "name": "Zoë 🚀", "n": 1}`)})
	orgKey, org := s.key(keys.CreateKeyInput{OrgID: "acme", UserID: "bob"})
	orgOnlyKey, orgOnly := s.key(keys.CreateKeyInput{OrgID: "acme"})
	genericKey, generic := s.key(keys.CreateKeyInput{Type: keys.TypeGeneric})
	personalKey := mustKeyByToken(t, s, personal)

	tests := []struct {
		name  string
		token string
		want  map[string]string // "" = absent
	}{
		{"personal", personal, map[string]string{
			"Key-Id": personalKey, "Key-Type": "personal", "User-Id": "alice", "User-Email": "alice@example.com",
			"Org-Id": "", "Org-Name": "", "Metadata": `{"plan":"pro","name":"Zo\u00eb \ud83d\ude80","n":1}`,
		}},
		{"org with creator", org, map[string]string{
			"Key-Id": orgKey.ID, "Key-Type": "org", "User-Id": "bob", "User-Email": "bob@example.com",
			"Org-Id": "acme", "Org-Name": "Acme Ünited", "Metadata": "{}",
		}},
		{"org without creator", orgOnly, map[string]string{
			"Key-Id": orgOnlyKey.ID, "Key-Type": "org", "User-Id": "", "User-Email": "",
			"Org-Id": "acme", "Org-Name": "Acme Ünited", "Metadata": "{}",
		}},
		{"generic", generic, map[string]string{
			"Key-Id": genericKey.ID, "Key-Type": "generic", "User-Id": "", "User-Email": "",
			"Org-Id": "", "Org-Name": "", "Metadata": "{}",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := expectOK(t, s.get(t, "/who", bearerHeader(tt.token)))
			for suffix, want := range tt.want {
				got := e.header("X-Keygate-" + suffix)
				switch {
				case want == "" && len(got) != 0:
					t.Errorf("X-Keygate-%s = %q, want absent", suffix, got)
				case want != "" && (len(got) != 1 || got[0] != want):
					t.Errorf("X-Keygate-%s = %q, want [%q]", suffix, got, want)
				}
			}
		})
	}
}

// mustKeyByToken finds a key's id through the gate.
func mustKeyByToken(t *testing.T, s *stack, tok string) string {
	t.Helper()
	id, _, err := s.gate.Check(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	return id.Key.ID
}

func TestSpoofedHeadersAreRemoved(t *testing.T) {
	s := newStack(t, stackConfig{proxy: Options{PublicPaths: []string{"/public"}}})
	s.user("alice", nil)
	_, tok := s.key(keys.CreateKeyInput{UserID: "alice"})
	spoof := []string{
		"X-Keygate-User-Id: mallory",
		"x-keygate-user-id: mallory2",
		"X-KEYGATE-ORG-ID: evil",
		"X_Keygate_Org_Name: evil",
		"x-keygate_metadata: {}",
		"X-Keygate-Admin: true",
		"Connection: X-Keygate-User-Id, X-Custom, Content-Length",
		"X-Custom: hop",
		"Keep-Alive: timeout=5",
		"Proxy-Authorization: Basic Zm9vOmJhcg==",
		"Proxy-Connection: keep-alive",
		"Upgrade: websocket",
		"Te: trailers",
		"X-Forwarded-Host: evil.example",
		"X-Forwarded-Proto: https",
	}
	isIdentity := func(name string) bool {
		return hasPrefixFold([]byte(name), []byte("X-Keygate-"))
	}
	for _, path := range []string{"/private", "/public"} {
		t.Run(path, func(t *testing.T) {
			e := expectOK(t, s.get(t, path, append([]string{bearerHeader(tok)}, spoof...)...))
			want := map[string]string{}
			if path == "/private" {
				want["X-Keygate-User-Id"] = "alice"
				want["X-Keygate-Key-Type"] = "personal"
			}
			seen := map[string]int{}
			for _, kv := range e.Headers {
				name := kv[0]
				if isIdentity(name) {
					seen[strings.ToLower(name)]++
					if w, ok := want[name]; ok && kv[1] != w {
						t.Errorf("%s = %q, want %q", name, kv[1], w)
					}
					if strings.Contains(kv[1], "mallory") || strings.Contains(kv[1], "evil") || kv[1] == "true" {
						t.Errorf("spoofed header survived: %s: %s", name, kv[1])
					}
				}
				for _, gone := range []string{"Connection", "X-Custom", "Keep-Alive", "Proxy-Authorization", "Proxy-Connection", "Upgrade", "Te"} {
					if strings.EqualFold(name, gone) {
						t.Errorf("hop-by-hop header %s: %s reached the upstream", name, kv[1])
					}
				}
			}
			for name, n := range seen {
				if n != 1 {
					t.Errorf("%s reached the upstream %d times", name, n)
				}
			}
			if path == "/public" && len(seen) != 0 {
				t.Errorf("identity headers on a public path: %v", seen)
			}
			if path == "/private" && len(seen) != 5 {
				t.Errorf("identity headers = %v, want key id, type, user id, email and metadata", seen)
			}
			if got := e.header("X-Forwarded-Host"); len(got) != 1 || got[0] != "api.example.com" {
				t.Errorf("X-Forwarded-Host = %q", got)
			}
			if got := e.header("X-Forwarded-Proto"); len(got) != 1 || got[0] != "http" {
				t.Errorf("X-Forwarded-Proto = %q", got)
			}
		})
	}
}

func TestForwardedForAndHeaderOrder(t *testing.T) {
	s := newStack(t, stackConfig{proxy: Options{StripCredentials: true}})
	_, tok := s.key(keys.CreateKeyInput{})
	e := expectOK(t, s.get(t, "/x",
		"X-Forwarded-For: 203.0.113.1",
		"Accept: a",
		"X-API-Key: "+tok, // removed, which makes fasthttp move headers around
		"X-Keygate-Key-Id: spoof",
		"Accept: b",
		"X-Forwarded-For: 198.51.100.2, 198.51.100.3",
		"Accept: c",
	))
	if got := e.header("X-Forwarded-For"); len(got) != 1 || got[0] != "203.0.113.1, 198.51.100.2, 198.51.100.3, 127.0.0.1" {
		t.Errorf("X-Forwarded-For = %q", got)
	}
	if got := e.header("Accept"); strings.Join(got, ",") != "a,b,c" {
		t.Errorf("Accept = %q, want a, b, c in order", got)
	}
	if got := e.header("X-API-Key"); len(got) != 0 {
		t.Errorf("X-API-Key = %q, want stripped", got)
	}
	if e.Host != "127.0.0.1:"+strings.Split(s.echo.addr, ":")[1] {
		t.Errorf("upstream Host = %q, want the upstream's", e.Host)
	}
}

func TestResponseHopByHopHeaders(t *testing.T) {
	s := newStack(t, stackConfig{})
	s.user("alice", &keys.RateLimit{Limit: 10, Window: time.Minute})
	_, tok := s.key(keys.CreateKeyInput{UserID: "alice"})
	r := s.get(t, "/x", bearerHeader(tok),
		"X-Echo-Response: Connection: X-Secret",
		"X-Echo-Response: X-Secret: 1",
		"X-Echo-Response: Keep-Alive: timeout=5",
		"X-Echo-Response: Upgrade: h2c",
		"X-Echo-Response: X-Kept: yes",
	)
	expectOK(t, r)
	for _, gone := range []string{"X-Secret", "Keep-Alive", "Upgrade"} {
		if v := r.header.Values(gone); len(v) != 0 {
			t.Errorf("response header %s = %q reached the client", gone, v)
		}
	}
	if r.header.Get("X-Kept") != "yes" {
		t.Errorf("X-Kept lost: %v", r.header)
	}
	for name, want := range map[string]string{"RateLimit-Limit": "10", "RateLimit-Remaining": "9", "RateLimit-Reset": "6"} {
		if got := r.header.Get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
}

func TestPathAndQueryFidelity(t *testing.T) {
	uris := []string{
		"/a%2Fb//c/%2e%2e/d?x=1&y=%20z",
		"/../../etc/passwd",
		"//double//slashes/",
		"/a/./b/../c",
		"/%7Euser/caf%C3%A9;matrix=1?q=a+b&q=%2B&&empty=&=x",
		"/search?q=%E2%9C%93&sort=-date,+name",
		"/",
	}
	tests := []struct {
		name   string
		base   string
		prefix string
	}{
		{"no base path", "", ""},
		{"base path", "/api/v1/", "/api/v1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStack(t, stackConfig{upstream: func(u string) []string { return []string{u + tt.base} }})
			_, tok := s.key(keys.CreateKeyInput{})
			for _, uri := range uris {
				e := expectOK(t, s.get(t, uri, bearerHeader(tok)))
				if e.RequestURI != tt.prefix+uri {
					t.Errorf("upstream got %q, want %q", e.RequestURI, tt.prefix+uri)
				}
			}
		})
	}
}

// TestUpstreamURIFragment: a fragment never reaches the upstream, which
// could otherwise read it as part of a path the public-path check did not
// see; nor does an empty query's lone "?".
func TestUpstreamURIFragment(t *testing.T) {
	s := newStack(t, stackConfig{proxy: Options{PublicPaths: []string{"/public/**"}}})
	_, tok := s.key(keys.CreateKeyInput{})
	for _, tc := range []struct{ uri, want string }{
		{"/a?q=1#frag", "/a?q=1"},
		{"/a#frag?q=1", "/a"},
		{"/a?", "/a"},
		{"/a?#f", "/a"},
		{"/public#/../admin", "/public"},
	} {
		e := expectOK(t, s.get(t, tc.uri, bearerHeader(tok)))
		if e.RequestURI != tc.want {
			t.Errorf("%s: upstream got %q, want %q", tc.uri, e.RequestURI, tc.want)
		}
	}
	// Without a key: the public path passes, and its fragment is gone.
	e := expectOK(t, s.get(t, "/public#/../admin"))
	if e.RequestURI != "/public" {
		t.Errorf("public path: upstream got %q, want /public", e.RequestURI)
	}
}

func TestCredentialStripping(t *testing.T) {
	tests := []struct {
		name    string
		uri     string
		headers []string
		wantURI string
		gone    []string // headers the upstream must not see
		kept    []string // headers it must see
	}{
		{name: "bearer", uri: "/x", headers: []string{"Authorization: Bearer TOKEN"}, wantURI: "/x", gone: []string{"Authorization"}},
		{name: "bearer any case", uri: "/x", headers: []string{"authorization: bEaReR   TOKEN"}, wantURI: "/x", gone: []string{"Authorization"}},
		{name: "raw authorization", uri: "/x", headers: []string{"Authorization: TOKEN"}, wantURI: "/x", gone: []string{"Authorization"}},
		{name: "key header", uri: "/x", headers: []string{"Authorization: Basic dXNlcjpwYXNz", "x-api-key: TOKEN"}, wantURI: "/x", gone: []string{"X-API-Key"}, kept: []string{"Authorization"}},
		{name: "second key header", uri: "/x", headers: []string{"X-Other-Key: TOKEN"}, wantURI: "/x", gone: []string{"X-Other-Key"}},
		{name: "query", uri: "/p?a=1&api_key=TOKEN&b=%20x&api_key=TOKEN", wantURI: "/p?a=1&b=%20x"},
		{name: "query only", uri: "/p?api_key=TOKEN", wantURI: "/p"},
		{name: "query first", uri: "/p?api_key=TOKEN&z=%2F", wantURI: "/p?z=%2F"},
	}
	for _, strip := range []bool{true, false} {
		t.Run(fmt.Sprintf("strip=%v", strip), func(t *testing.T) {
			s := newStack(t, stackConfig{proxy: Options{
				StripCredentials: strip,
				KeyHeaders:       []string{"X-API-Key", "X-Other-Key"},
				KeyQueryParam:    "api_key",
			}})
			_, tok := s.key(keys.CreateKeyInput{})
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					var hs []string
					for _, h := range tt.headers {
						hs = append(hs, strings.ReplaceAll(h, "TOKEN", tok))
					}
					uri := strings.ReplaceAll(tt.uri, "TOKEN", tok)
					e := expectOK(t, s.get(t, uri, hs...))
					wantURI := tt.wantURI
					if !strip {
						wantURI = uri
					}
					if e.RequestURI != wantURI {
						t.Errorf("upstream URI = %q, want %q", e.RequestURI, wantURI)
					}
					for _, h := range tt.gone {
						if got := e.header(h); strip && len(got) != 0 || !strip && len(got) != 1 {
							t.Errorf("%s = %q (strip %v)", h, got, strip)
						}
					}
					for _, h := range tt.kept {
						if got := e.header(h); len(got) != 1 {
							t.Errorf("%s = %q, want kept", h, got)
						}
					}
				})
			}
		})
	}
}

// TestQueryKeyEncoded checks that a percent-encoded key in the query works.
func TestQueryKeyEncoded(t *testing.T) {
	s := newStack(t, stackConfig{proxy: Options{KeyQueryParam: "key"}})
	_, tok := s.key(keys.CreateKeyInput{})
	enc := ""
	for i := 0; i < len(tok); i++ {
		enc += fmt.Sprintf("%%%02X", tok[i])
	}
	expectOK(t, s.get(t, "/x?key="+enc))
}

func TestStreamingBodies(t *testing.T) {
	s := newStack(t, stackConfig{proxy: Options{MaxBodyBytes: 10 << 20}})
	_, tok := s.key(keys.CreateKeyInput{})
	body := make([]byte, 5<<20)
	if _, err := rand.Read(body); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(body)
	for _, tt := range []struct {
		name    string
		body    io.Reader
		chunked bool
	}{
		{"content-length", bytes.NewReader(body), false},
		{"chunked", struct{ io.Reader }{bytes.NewReader(body)}, true}, // hides Len: net/http sends it chunked
	} {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest("PUT", "http://"+s.addr+"/upload", tt.body)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("X-API-Key", tok)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			r := &response{status: resp.StatusCode, header: resp.Header, body: b}
			e := expectOK(t, r)
			if e.BodyLen != int64(len(body)) || e.BodySHA256 != hex.EncodeToString(sum[:]) {
				t.Errorf("upstream got %d bytes (sha256 %s), want %d", e.BodyLen, e.BodySHA256, len(body))
			}
			if e.Chunked != tt.chunked {
				t.Errorf("upstream chunked = %v, want %v", e.Chunked, tt.chunked)
			}
		})
	}
	t.Run("response", func(t *testing.T) {
		r := s.get(t, "/download", bearerHeader(tok), "X-Echo-Body-Size: 5242880")
		if r.status != 200 || len(r.body) != 5<<20 {
			t.Fatalf("status %d, %d bytes", r.status, len(r.body))
		}
	})
}

func TestPublicPaths(t *testing.T) {
	s := newStack(t, stackConfig{proxy: Options{PublicPaths: []string{"/health", "/docs/**", "/static/*.css", "/v*/status/**"}}})
	tests := []struct {
		uri    string
		public bool
	}{
		{"/health", true},
		{"/health?verbose=1", true},
		{"/%68ealth", true},
		{"/docs", true},
		{"/docs/", true},
		{"/docs/a/b", true},
		{"/static/site.css", true},
		{"/v2/status/db", true},
		{"/v2/status", true},
		{"/healthz", false},
		{"/HEALTH", false},
		{"/health/", false},
		{"/docsx", false},
		{"/static/a/b.css", false},
		{"/docs/../admin", false},
		{"/docs/%2e%2e/admin", false},
		{"/docs/..%2fadmin", false},
		{"/docs%2f../admin", false},
		{"//health", false},
		{"/docs//x", false},
		{"/docs\\..\\admin", false},
		{"/v2/x/status", false},
	}
	for _, tt := range tests {
		r := s.get(t, tt.uri)
		if tt.public {
			if r.status != 200 {
				t.Errorf("%s: status %d, want 200 (public)", tt.uri, r.status)
			}
			continue
		}
		if r.status != 401 {
			t.Errorf("%s: status %d, want 401", tt.uri, r.status)
		}
	}
	if _, err := New(s.gate, Options{Upstreams: []string{s.echo.url}, PublicPaths: []string{"/a/[x"}}); err == nil {
		t.Error("bad glob accepted")
	}
}

func TestRateLimits(t *testing.T) {
	s := newStack(t, stackConfig{cache: CacheOptions{Limits: [4]limiter.Limit{
		keys.TypePersonal: {Limit: 2, Window: time.Minute},
	}}})
	s.user("alice", nil)                                            // type default: 2/min
	s.user("bob", &keys.RateLimit{Limit: 1, Window: time.Minute})   // own limit
	s.user("carol", &keys.RateLimit{Limit: 0, Window: time.Minute}) // own: unlimited
	alice1Key, alice1 := s.key(keys.CreateKeyInput{UserID: "alice"})
	_, alice2 := s.key(keys.CreateKeyInput{UserID: "alice"})
	_, bob := s.key(keys.CreateKeyInput{UserID: "bob"})
	_, carol := s.key(keys.CreateKeyInput{UserID: "carol"})
	_, generic := s.key(keys.CreateKeyInput{})

	check := func(tok string, status int, remaining string) *response {
		t.Helper()
		r := s.get(t, "/x", bearerHeader(tok))
		if r.status != status {
			t.Fatalf("status %d, want %d (%s)", r.status, status, r.body)
		}
		if got := r.header.Get("RateLimit-Remaining"); got != remaining {
			t.Errorf("RateLimit-Remaining = %q, want %q", got, remaining)
		}
		return r
	}
	r := check(alice1, 200, "1")
	if r.header.Get("RateLimit-Limit") != "2" || r.header.Get("RateLimit-Reset") != "30" {
		t.Errorf("RateLimit headers: %v", r.header)
	}
	check(alice2, 200, "0") // another key of the same owner counts against it
	r = check(alice1, 429, "0")
	if e := r.apiError(t); e.WaitSeconds == nil || *e.WaitSeconds != 30 {
		t.Errorf("wait_seconds = %v, want 30", e.WaitSeconds)
	}
	if r.header.Get("Retry-After") != "30" {
		t.Errorf("Retry-After = %q, want 30", r.header.Get("Retry-After"))
	}
	check(alice2, 429, "0")
	check(bob, 200, "0")
	check(bob, 429, "0")
	for i := 0; i < 5; i++ {
		check(carol, 200, "")
		check(generic, 200, "")
	}
	s.clock.Advance(30 * time.Second)
	check(alice1, 200, "0")

	// Usage: alice1 was allowed twice and limited once.
	if err := s.rec.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	now := s.clock.Now().Unix()
	points, _, err := s.store.Usage(context.Background(), keys.UsageQuery{KeyID: alice1Key.ID, From: now - 3600, To: now + 60, Interval: "hour"})
	if err != nil {
		t.Fatal(err)
	}
	var allowed, limited int64
	for _, p := range points {
		allowed += p.Allowed
		limited += p.RateLimited
	}
	if allowed != 2 || limited != 1 {
		t.Errorf("usage of alice1: %d allowed, %d rate limited; want 2 and 1", allowed, limited)
	}
}

func TestPortal(t *testing.T) {
	portal := func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("portal " + string(ctx.Path())) }
	s := newStack(t, stackConfig{proxy: Options{PortalPath: "/_keygate/portal", Portal: portal}})
	for uri, want := range map[string]int{
		"/_keygate/portal":          200,
		"/_keygate/portal/":         200,
		"/_keygate/portal/keys?x=1": 200,
		"/_keygate/portalx":         401,
		"/_keygate":                 401,
	} {
		r := s.get(t, uri)
		if r.status != want {
			t.Errorf("%s: status %d, want %d", uri, r.status, want)
		}
		if want == 200 && !strings.HasPrefix(string(r.body), "portal ") {
			t.Errorf("%s: body %q, want the portal's", uri, r.body)
		}
	}
	if s.upstreamCount() != 0 {
		t.Errorf("upstream contacted %d times", s.upstreamCount())
	}
}

func TestMetricsCountResults(t *testing.T) {
	s := newStack(t, stackConfig{proxy: Options{PublicPaths: []string{"/public"}}})
	_, tok := s.key(keys.CreateKeyInput{})
	expectOK(t, s.get(t, "/x", bearerHeader(tok)))
	expectOK(t, s.get(t, "/x", bearerHeader(tok)))
	s.get(t, "/x")
	s.get(t, "/x", bearerHeader("kgg_nope"))
	expectOK(t, s.get(t, "/public"))

	var b bytes.Buffer
	s.m.WritePrometheus(&b)
	got := map[string]string{}
	sc := bufio.NewScanner(&b)
	for sc.Scan() {
		if name, v, ok := strings.Cut(sc.Text(), " "); ok {
			got[name] = v
		}
	}
	for series, want := range map[string]string{
		`keygate_requests_total{result="allowed"}`:            "2",
		`keygate_requests_total{result="missing_key"}`:        "1",
		`keygate_requests_total{result="invalid_key"}`:        "1",
		`keygate_requests_total{result="public"}`:             "1",
		`keygate_cache_total{kind="positive",outcome="miss"}`: "1",
		`keygate_cache_total{kind="positive",outcome="hit"}`:  "1",
		`keygate_store_lookups_total`:                         "1",
		`keygate_upstream_duration_seconds_count`:             "3",
		`keygate_gateway_duration_seconds_count`:              "5",
	} {
		if got[series] != want {
			t.Errorf("%s = %q, want %s", series, got[series], want)
		}
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	s := newStack(t, stackConfig{})
	for name, o := range map[string]Options{
		"no upstream":     {},
		"bad scheme":      {Upstreams: []string{"ftp://x"}},
		"no host":         {Upstreams: []string{"http://"}},
		"query":           {Upstreams: []string{"http://x/?a=1"}},
		"bad key header":  {Upstreams: []string{"http://x"}, KeyHeaders: []string{"X Key"}},
		"prefixed header": {Upstreams: []string{"http://x"}, KeyHeaders: []string{"X-Keygate-Key"}},
		"bad prefix":      {Upstreams: []string{"http://x"}, HeaderPrefix: "X Bad"},
		"portal path":     {Upstreams: []string{"http://x"}, Portal: func(*fasthttp.RequestCtx) {}, PortalPath: "portal"},
		"public path":     {Upstreams: []string{"http://x"}, PublicPaths: []string{"health"}},
	} {
		if _, err := New(s.gate, o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestLoadBalancing(t *testing.T) {
	a, b := newEcho(t), newEcho(t)
	s := newStack(t, stackConfig{noEcho: true, upstream: func(string) []string { return []string{a.url, b.url} }})
	_, tok := s.key(keys.CreateKeyInput{})
	for i := 0; i < 10; i++ {
		if r := s.get(t, "/x", bearerHeader(tok)); r.status != 200 {
			t.Fatalf("status %d", r.status)
		}
	}
	if a.count.Load() != 5 || b.count.Load() != 5 {
		t.Errorf("requests: %d and %d, want 5 each", a.count.Load(), b.count.Load())
	}
}

// closingUpstream reads each request's headers, counts it and closes the
// connection without answering.
func closingUpstream(t *testing.T) (url string, count *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	count = new(atomic.Int64)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					line, err := br.ReadString('\n')
					if err != nil {
						return
					}
					if line == "\r\n" {
						count.Add(1)
						return
					}
				}
			}()
		}
	}()
	return "http://" + ln.Addr().String(), count
}

// TestNoRetryOfUnsafeRequests: a request the upstream may have acted on is
// sent once; only safe methods get one retry on a dropped connection.
func TestNoRetryOfUnsafeRequests(t *testing.T) {
	up, count := closingUpstream(t)
	s := newStack(t, stackConfig{noEcho: true, upstream: func(string) []string { return []string{up} }})
	_, tok := s.key(keys.CreateKeyInput{})
	for _, tt := range []struct {
		method, body string
		want         int64
	}{
		{"GET", "", 2},
		{"DELETE", "", 1},
		{"POST", "", 1},
		{"POST", "payload", 1},
		{"PATCH", "payload", 1},
	} {
		before := count.Load()
		r := s.raw(t, request(tt.method, "/x", []string{bearerHeader(tok)}, tt.body))
		expectError(t, r, 502, "upstream_unavailable")
		if got := count.Load() - before; got != tt.want {
			t.Errorf("%s: upstream saw %d requests, want %d", tt.method, got, tt.want)
		}
	}
}

func TestShutdownFinishesInFlight(t *testing.T) {
	s := newStack(t, stackConfig{})
	_, tok := s.key(keys.CreateKeyInput{})
	done := make(chan *response, 1)
	go func() { done <- s.get(t, "/slow", bearerHeader(tok), "X-Echo-Sleep: 300ms") }()
	for s.upstreamCount() == 0 {
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.proxy.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	expectOK(t, <-done)
	if _, err := net.Dial("tcp", s.addr); err == nil {
		t.Error("still accepting connections after Shutdown")
	}
}

func TestHeadAndExpectContinue(t *testing.T) {
	s := newStack(t, stackConfig{proxy: Options{MaxBodyBytes: 1 << 20}})
	_, tok := s.key(keys.CreateKeyInput{})

	c, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, request("HEAD", "/x", []string{bearerHeader(tok)}, ""))
	head, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: "HEAD"})
	if err != nil {
		t.Fatal(err)
	}
	if head.StatusCode != 200 || head.ContentLength <= 0 {
		t.Errorf("HEAD: status %d, Content-Length %d; want 200 and the GET's length", head.StatusCode, head.ContentLength)
	}

	body := strings.Repeat("z", 100_000)
	req, err := http.NewRequest("POST", "http://"+s.addr+"/upload", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-API-Key", tok)
	req.Header.Set("Expect", "100-continue")
	client := &http.Client{Transport: &http.Transport{ExpectContinueTimeout: 5 * time.Second}}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	e := expectOK(t, &response{status: resp.StatusCode, header: resp.Header, body: b})
	if e.BodyLen != int64(len(body)) {
		t.Errorf("upstream got %d bytes, want %d", e.BodyLen, len(body))
	}
	if got := e.header("Expect"); len(got) != 0 {
		t.Errorf("Expect reached the upstream: %q", got)
	}
}

func TestHTTPSUpstream(t *testing.T) {
	up := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s %s", r.Host, r.RequestURI, r.Header.Get("X-Keygate-Key-Type"))
	}))
	t.Cleanup(up.Close)
	roots := x509.NewCertPool()
	roots.AddCert(up.Certificate())
	s := newStack(t, stackConfig{noEcho: true, proxy: Options{UpstreamTLS: &tls.Config{RootCAs: roots}},
		upstream: func(string) []string { return []string{up.URL + "/base"} }})
	_, tok := s.key(keys.CreateKeyInput{})
	r := s.get(t, "/a%2Fb?x=%20", bearerHeader(tok))
	want := strings.TrimPrefix(up.URL, "https://") + " /base/a%2Fb?x=%20 generic"
	if r.status != 200 || string(r.body) != want {
		t.Errorf("status %d, body %q; want %q", r.status, r.body, want)
	}
}

func TestPublicPathStripsCredential(t *testing.T) {
	s := newStack(t, stackConfig{proxy: Options{PublicPaths: []string{"/docs/**"}, StripCredentials: true}})
	e := expectOK(t, s.get(t, "/docs/x", "X-API-Key: kgp_anything", "Authorization: Basic dXNlcjpwYXNz"))
	if got := e.header("X-API-Key"); len(got) != 0 {
		t.Errorf("X-API-Key = %q on a public path, want removed", got)
	}
	if got := e.header("Authorization"); len(got) != 1 {
		t.Errorf("Authorization = %q, want the Basic credentials kept", got)
	}
}

func TestAbsoluteFormRequest(t *testing.T) {
	s := newStack(t, stackConfig{proxy: Options{PublicPaths: []string{"/health"}}})
	_, tok := s.key(keys.CreateKeyInput{})
	e := expectOK(t, s.get(t, "http://other.example/a%2Fb//c?x=%20", bearerHeader(tok)))
	if e.RequestURI != "/a%2Fb//c?x=%20" {
		t.Errorf("upstream URI = %q", e.RequestURI)
	}
	expectOK(t, s.get(t, "http://other.example/health"))
}
