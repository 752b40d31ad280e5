package proxy

import (
	"bufio"
	"bytes"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/keys"
)

// Regression tests for the classes of issue 10 that concern the proxy port,
// each through a real proxy on 127.0.0.1 and an echo upstream.

// Issue 10.1: header names that differ from the identity prefix only by
// '.', '_', '-' or case reached the upstream.
func TestLookAlikeIdentityHeaders(t *testing.T) {
	s := newStack(t, stackConfig{proxy: Options{PublicPaths: []string{"/public"}}})
	s.user("alice", nil)
	_, tok := s.key(keys.CreateKeyInput{UserID: "alice"})
	spoof := []string{
		"X.Keygate.User.Id: mallory",
		"x.keygate-user_id: mallory",
		"X-Keygate.Org.Name: evil",
		"X_KEYGATE.KEY.TYPE: org",
		"X.keygate.Anything: x",
	}
	for _, path := range []string{"/private", "/public"} {
		e := expectOK(t, s.get(t, path, append([]string{bearerHeader(tok)}, spoof...)...))
		for _, kv := range e.Headers {
			if hasPrefixFold([]byte(kv[0]), []byte("X-Keygate-")) && strings.ContainsAny(kv[0], "._") {
				t.Errorf("%s: look-alike %s: %s reached the upstream", path, kv[0], kv[1])
			}
			if kv[1] == "mallory" || kv[1] == "evil" || kv[1] == "org" || kv[1] == "x" {
				t.Errorf("%s: %s: %s reached the upstream", path, kv[0], kv[1])
			}
		}
	}
}

// expectRequest writes a request with Expect: 100-continue and no body,
// and returns the status line keygate answers with before any body is sent.
func expectRequest(t *testing.T, s *stack, headers ...string) (int, *response) {
	t.Helper()
	c, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var b strings.Builder
	b.WriteString("POST /upload HTTP/1.1\r\nHost: api.example.com\r\nExpect: 100-continue\r\nContent-Length: 5\r\n")
	for _, h := range headers {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("\r\n")
	io.WriteString(c, b.String())
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c)
	line, err := br.ReadString('\n')
	if err != nil {
		t.Fatalf("no answer before the body: %v", err)
	}
	if strings.HasPrefix(line, "HTTP/1.1 100") {
		br.ReadString('\n') // blank line
		io.WriteString(c, "hello")
		return 100, readResponse(t, br)
	}
	resp := readResponse(t, bufio.NewReader(io.MultiReader(strings.NewReader(line), br)))
	return resp.status, resp
}

// Issue 10.2: a request with Expect: 100-continue got 100 Continue before
// its key, rate limit and size were checked.
func TestExpectContinueDecidesFirst(t *testing.T) {
	small := newStack(t, stackConfig{proxy: Options{MaxBodyBytes: 4}})
	_, tok := small.key(keys.CreateKeyInput{})
	s := newStack(t, stackConfig{proxy: Options{MaxBodyBytes: 100}})
	tests := []struct {
		name    string
		s       *stack
		headers []string
		want    int
		code    string
	}{
		{"missing key", s, nil, 401, "missing_api_key"},
		{"invalid key", s, []string{"Authorization: Bearer kg_nope"}, 401, "invalid_api_key"},
		{"too large", small, []string{bearerHeader(tok)}, 413, "request_too_large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, resp := expectRequest(t, tt.s, tt.headers...)
			if got != tt.want {
				t.Fatalf("first answer %d, want %d", got, tt.want)
			}
			if e := resp.apiError(t); e.Error != tt.code {
				t.Errorf("error %q, want %q", e.Error, tt.code)
			}
		})
	}
	if n := s.upstreamCount() + small.upstreamCount(); n != 0 {
		t.Errorf("upstream saw %d requests", n)
	}

	// Within the size: the key passes, 100 Continue, the body goes up, and
	// the request is counted once against the limit of 1 per hour.
	s2 := newStack(t, stackConfig{proxy: Options{MaxBodyBytes: 100}})
	s2.user("bob", &keys.RateLimit{Limit: 1, Window: time.Hour})
	_, tok2 := s2.key(keys.CreateKeyInput{UserID: "bob"})
	got, resp := expectRequest(t, s2, bearerHeader(tok2))
	if got != 100 {
		t.Fatalf("valid key: first answer %d, want 100", got)
	}
	if e := expectOK(t, resp); e.BodyLen != 5 {
		t.Errorf("upstream got %d bytes, want 5", e.BodyLen)
	}
	got, resp = expectRequest(t, s2, bearerHeader(tok2))
	if got != 429 {
		t.Fatalf("over the limit: first answer %d, want 429", got)
	}
	if resp.header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
}

// syncBuffer is a log destination shared by the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Issue 10.3: fasthttp's error log printed malformed header values, so a
// token with an injected CR landed in keygate's log.
func TestNoRequestMaterialInLogs(t *testing.T) {
	var logs syncBuffer
	s := newStack(t, stackConfig{proxy: Options{Logger: slog.New(slog.NewJSONHandler(&logs, nil))}})
	secret := "kg_SECRETTOKENVALUE0123456789"
	bad := []string{
		"GET / HTTP/1.1\r\nHost: h\r\nX-API-Key: " + secret + "\rX: y\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer " + secret + "\x00\r\n\r\n",
		"GET /" + secret + " HTTP/1.1\r\nHost: h\r\nContent-Length: x" + secret + "\r\n\r\n",
		"GET /?k=" + secret + "\x7f HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: " + secret + "\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: h\r\n" + secret + "\r\n\r\n",
		secret + "\r\n\r\n",
	}
	for _, req := range bad {
		c, err := net.Dial("tcp", s.addr)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, req)
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		io.ReadAll(c)
		c.Close()
	}
	// fasthttp logs after it answered; give its goroutine a moment.
	deadline := time.Now().Add(time.Second)
	for logs.String() == "" && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(logs.String(), "fasthttp") {
		t.Fatal("fasthttp logged nothing: the test no longer provokes its error log")
	}
	if strings.Contains(logs.String(), "SECRETTOKEN") {
		t.Errorf("request material in the log:\n%s", logs.String())
	}
}

// Issue 10.4: keygate's own cookies (the dashboard's and the portal's
// sessions) were forwarded upstream.
func TestOwnCookiesNotForwarded(t *testing.T) {
	s := newStack(t, stackConfig{proxy: Options{
		PublicPaths: []string{"/public"},
		DropCookies: []string{"keygate_admin", "keygate_portal"},
	}})
	_, tok := s.key(keys.CreateKeyInput{})
	tests := []struct {
		cookies []string
		want    []string
	}{
		{[]string{"Cookie: a=1;keygate_admin=SECRET; b=\"x y\""}, []string{"a=1; b=\"x y\""}},
		{[]string{"Cookie: keygate_portal=SECRET"}, nil},
		{[]string{"Cookie:  keygate_admin = SECRET ;theme=dark;  keygate_portal=S2"}, []string{"theme=dark"}},
		{[]string{"Cookie: a=1;;b=2 ;c"}, []string{"a=1;;b=2 ;c"}}, // untouched
		{[]string{"Cookie: keygate_admin_x=1; xkeygate_admin=2"}, []string{"keygate_admin_x=1; xkeygate_admin=2"}},
	}
	for _, path := range []string{"/private", "/public"} {
		for _, tt := range tests {
			e := expectOK(t, s.get(t, path, append([]string{bearerHeader(tok)}, tt.cookies...)...))
			got := e.header("Cookie")
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("%s %q: upstream got %q, want %q", path, tt.cookies, got, tt.want)
			}
		}
	}
}

// Issue 10.5: paths with ';' parameters or dot segments in any encoding
// matched a public glob and went upstream keyless.
func TestPublicPathParameters(t *testing.T) {
	s := newStack(t, stackConfig{proxy: Options{PublicPaths: []string{"/docs/**", "/health"}}})
	for _, p := range []string{
		"/docs/..;/admin", "/docs/..%3B/admin", "/docs/..%3b/admin", "/docs/.;/admin",
		"/docs/.%3B/admin", "/docs/..;x=1/admin", "/docs/a;/../admin", "/health;x", "/health%3B",
		"/docs/.../admin", "/docs/..%2Fadmin", "/docs/%2e%2e;/admin",
	} {
		if r := s.get(t, p); r.status != 401 {
			t.Errorf("%s: status %d, want 401 (not public)", p, r.status)
		}
	}
	for _, p := range []string{"/docs/a.b/c", "/docs/", "/health", "/docs/x..y"} {
		if r := s.get(t, p); r.status != 200 {
			t.Errorf("%s: status %d, want 200 (public)", p, r.status)
		}
	}
	if n := s.upstreamCount(); n != 4 {
		t.Errorf("upstream saw %d requests, want 4", n)
	}
}

// Issue 10.6: client-sent forwarding headers and routing overrides reached
// the upstream.
func TestForwardingAndRoutingHeaders(t *testing.T) {
	s := newStack(t, stackConfig{proxy: Options{DropHeaders: DefaultDropHeaders, PublicPaths: []string{"/public"}}})
	_, tok := s.key(keys.CreateKeyInput{})
	sent := []string{
		"Forwarded: for=1.2.3.4;proto=https",
		"X-Real-IP: 1.2.3.4",
		"X-Forwarded-Port: 443",
		"X-Forwarded-Prefix: /admin",
		"X-Forwarded-Server: evil",
		"X.Forwarded.Host: evil",
		"X-Original-URL: /admin",
		"X-Rewrite-URL: /admin",
		"x_original_url: /admin",
		"True-Client-IP: 1.2.3.4",
		"X-Custom: kept",
	}
	for _, path := range []string{"/private", "/public"} {
		e := expectOK(t, s.get(t, path, append([]string{bearerHeader(tok)}, sent...)...))
		for _, kv := range e.Headers {
			name := strings.ToLower(strings.NewReplacer("_", "-", ".", "-").Replace(kv[0]))
			switch name {
			case "x-forwarded-for":
				if kv[1] != "127.0.0.1" {
					t.Errorf("%s: X-Forwarded-For %q", path, kv[1])
				}
			case "x-forwarded-proto":
				if kv[1] != "http" {
					t.Errorf("%s: X-Forwarded-Proto %q", path, kv[1])
				}
			case "x-forwarded-host":
				if kv[1] != "api.example.com" {
					t.Errorf("%s: X-Forwarded-Host %q", path, kv[1])
				}
			case "forwarded", "x-real-ip", "x-forwarded-port", "x-forwarded-prefix", "x-forwarded-server",
				"x-original-url", "x-rewrite-url", "true-client-ip":
				t.Errorf("%s: %s: %s reached the upstream", path, kv[0], kv[1])
			}
		}
		if got := e.header("X-Custom"); len(got) != 1 {
			t.Errorf("%s: X-Custom = %q", path, got)
		}
	}
	if _, err := New(s.gate, Options{Upstreams: []string{s.echo.url}, DropHeaders: []string{"bad header"}}); err == nil {
		t.Error("an invalid drop header name was accepted")
	}
}

// Issue 10.7: with strip_credentials only the credential used was removed;
// tokens in the other key locations reached the upstream.
func TestSecondaryCredentialsStripped(t *testing.T) {
	s := newStack(t, stackConfig{proxy: Options{
		StripCredentials: true,
		KeyHeaders:       []string{"X-API-Key", "X-Other-Key"},
		KeyQueryParam:    "api_key",
		PublicPaths:      []string{"/public/**"},
	}})
	_, tok := s.key(keys.CreateKeyInput{})
	for _, path := range []string{"/p", "/public/p"} {
		tests := []struct {
			uri, wantURI string
			headers      []string
			gone, kept   []string
		}{
			{path + "?api_key=OTHER&a=1", path + "?a=1", []string{bearerHeader(tok), "X-Other-Key: OTHER", "X_API_Key: OTHER"}, []string{"X-Other-Key", "X_API_Key", "Authorization"}, nil},
			{path + "?api%5Fkey=OTHER&a=1", path + "?a=1", []string{"X-API-Key: " + tok, "X-Other-Key: OTHER"}, []string{"X-API-Key", "X-Other-Key"}, nil},
			{path + "?api_key=" + tok, path, []string{"Authorization: Basic dXNlcjpwYXNz", "X.Other.Key: OTHER"}, []string{"X.Other.Key"}, []string{"Authorization"}},
		}
		for _, tt := range tests {
			e := expectOK(t, s.get(t, tt.uri, tt.headers...))
			if e.RequestURI != tt.wantURI {
				t.Errorf("%s: upstream URI %q, want %q", tt.uri, e.RequestURI, tt.wantURI)
			}
			for _, h := range tt.gone {
				if v := e.header(h); len(v) > 0 {
					t.Errorf("%s: %s = %q reached the upstream", tt.uri, h, v)
				}
			}
			for _, h := range tt.kept {
				if v := e.header(h); len(v) != 1 {
					t.Errorf("%s: %s = %q, want it kept", tt.uri, h, v)
				}
			}
		}
	}
}

// An allowed Expect decision belongs to its request only: the next request
// on the same keep-alive connection is checked afresh.
func TestExpectDecisionDoesNotOutliveItsRequest(t *testing.T) {
	s := newStack(t, stackConfig{proxy: Options{MaxBodyBytes: 100}})
	_, tok := s.key(keys.CreateKeyInput{})
	c, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "POST /a HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 2\r\n"+bearerHeader(tok)+"\r\n\r\n")
	br := bufio.NewReader(c)
	if line, _ := br.ReadString('\n'); !strings.HasPrefix(line, "HTTP/1.1 100") {
		t.Fatalf("first answer %q", line)
	}
	br.ReadString('\n')
	io.WriteString(c, "hi")
	if r := readResponse(t, br); r.status != 200 {
		t.Fatalf("first request: %d", r.status)
	}
	io.WriteString(c, "GET /b HTTP/1.1\r\nHost: h\r\n\r\n")
	if r := readResponse(t, br); r.status != 401 {
		t.Fatalf("keyless request after an allowed Expect on one connection: %d, want 401", r.status)
	}
}
