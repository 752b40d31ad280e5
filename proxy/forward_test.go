package proxy

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/limiter"
)

const authPath = "/_keygate/auth"

// forwardStack is a proxy serving forward auth only (no upstream), with
// public paths, a key query parameter and the portal.
func forwardStack(t *testing.T, limited int, limits [4]limiter.Limit) *stack {
	t.Helper()
	portal := func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("portal") }
	return newStack(t, stackConfig{
		cache:    CacheOptions{Limits: limits},
		upstream: func(string) []string { return nil },
		noEcho:   true,
		proxy: Options{
			ForwardAuth:      ForwardAuthOptions{Path: authPath, LimitedStatus: limited},
			PublicPaths:      []string{"/health", "/docs/**"},
			KeyQueryParam:    "api_key",
			StripCredentials: true,
			PortalPath:       "/_keygate/portal",
			Portal:           portal,
		},
	})
}

// expectAllowed checks a forward-auth 200: empty body, no identity headers
// but those in want (name suffix → value).
func expectAllowed(t *testing.T, r *response, want map[string]string) {
	t.Helper()
	if r.status != http.StatusOK || len(r.body) != 0 {
		t.Fatalf("status %d body %q, want 200 and no body", r.status, r.body)
	}
	for _, s := range identityHeaderSuffixes {
		// Present even when empty, so that proxies overwrite forged copies.
		if got := r.header.Values("X-Keygate-" + s); len(got) != 1 || got[0] != want[s] {
			t.Errorf("X-Keygate-%s = %q, want exactly %q", s, got, want[s])
		}
	}
	if r.header.Get("X-Keygate-Error") != "" {
		t.Errorf("allowed answer has X-Keygate-Error %q", r.header.Get("X-Keygate-Error"))
	}
}

// expectRefused checks a forward-auth refusal: the proxy's status, body and
// headers, and the body again in X-Keygate-Error.
func expectRefused(t *testing.T, r *response, status int, code string) apiError {
	t.Helper()
	e := expectError(t, r, status, code)
	if got := r.header.Get("X-Keygate-Error"); got != string(r.body) {
		t.Errorf("X-Keygate-Error = %q, want the body %q", got, r.body)
	}
	for _, s := range identityHeaderSuffixes {
		if v := r.header.Get("X-Keygate-" + s); v != "" {
			t.Errorf("refusal carries X-Keygate-%s: %q", s, v)
		}
	}
	return e
}

func TestForwardAuthDecisions(t *testing.T) {
	s := forwardStack(t, 0, [4]limiter.Limit{})
	s.user("alice", nil)
	s.org("acme", "Acme Inc", nil)
	s.member("acme", "alice", "Owner")
	alice, aliceTok := s.key(keys.CreateKeyInput{UserID: "alice", Metadata: []byte(`{"plan":"pro"}`)})
	org, orgTok := s.key(keys.CreateKeyInput{OrgID: "acme", UserID: "alice"})
	generic, genericTok := s.key(keys.CreateKeyInput{})
	exp := s.clock.Now().Add(time.Hour).Unix()
	_, expiredTok := s.key(keys.CreateKeyInput{ExpiresAt: &exp})
	aliceWant := map[string]string{"Key-Id": alice.ID, "Key-Type": "personal", "User-Id": "alice",
		"User-Email": "alice@example.com", "Metadata": `{"plan":"pro"}`}

	// Every method: the sub-request mirrors the original's with some proxies.
	for _, m := range []string{"GET", "POST", "DELETE", "HEAD", "PATCH"} {
		r := s.raw(t, request(m, authPath, []string{bearerHeader(aliceTok), "X-Forwarded-Uri: /v1/things"}, ""))
		expectAllowed(t, r, aliceWant)
	}
	r := s.get(t, authPath, "X-Api-Key: "+orgTok, "X-Original-URI: /v1/x", "X-Original-Method: PUT")
	expectAllowed(t, r, map[string]string{"Key-Id": org.ID, "Key-Type": "org", "User-Id": "alice",
		"User-Email": "alice@example.com", "Org-Id": "acme", "Org-Name": "Acme Inc", "Metadata": "{}"})

	// Identity headers the client sent on the sub-request are never echoed.
	r = s.get(t, authPath, bearerHeader(genericTok), "X-Forwarded-Uri: /v1/x",
		"X-Keygate-User-Id: admin", "X-Keygate-Org-Id: root")
	expectAllowed(t, r, map[string]string{"Key-Id": generic.ID, "Key-Type": "generic", "Metadata": "{}"})

	// The key in the original URI's query, not the sub-request's.
	expectAllowed(t, s.get(t, authPath, "X-Forwarded-Uri: /v1/x?a=1&api_key="+aliceTok), aliceWant)
	expectRefused(t, s.get(t, authPath+"?api_key="+aliceTok, "X-Forwarded-Uri: /v1/x"), 401, "missing_api_key")

	// Refusals: the proxy's statuses, bodies and headers.
	r = s.get(t, authPath, "X-Forwarded-Uri: /v1/x")
	expectRefused(t, r, 401, "missing_api_key")
	if got := r.header.Get("WWW-Authenticate"); got != `Bearer realm="keygate"` {
		t.Errorf("WWW-Authenticate = %q", got)
	}
	r = s.get(t, authPath, bearerHeader("kgp_nope"), "X-Forwarded-Uri: /v1/x")
	expectRefused(t, r, 401, "invalid_api_key")
	if got := r.header.Get("WWW-Authenticate"); !strings.Contains(got, `error="invalid_token"`) {
		t.Errorf("WWW-Authenticate = %q", got)
	}
	s.clock.Advance(2 * time.Hour)
	expectRefused(t, s.get(t, authPath, bearerHeader(expiredTok), "X-Forwarded-Uri: /v1/x"), 401, "expired_api_key")
}

func TestForwardAuthPublicPaths(t *testing.T) {
	s := forwardStack(t, 0, [4]limiter.Limit{})
	_, tok := s.key(keys.CreateKeyInput{})
	tests := []struct {
		name    string
		uri     string // the sub-request's URI
		headers []string
		public  bool
	}{
		{"forwarded", authPath, []string{"X-Forwarded-Uri: /health"}, true},
		{"forwarded with query", authPath, []string{"X-Forwarded-Uri: /docs/a/b?x=1"}, true},
		{"original", authPath, []string{"X-Original-URI: /docs"}, true},
		{"both agree", authPath, []string{"X-Forwarded-Uri: /health", "X-Original-URI: /health"}, true},
		{"envoy path prefix", authPath + "/docs/x?y=1", nil, true},
		{"private", authPath, []string{"X-Forwarded-Uri: /v1/x"}, false},
		{"no original URI", authPath, nil, false},
		{"sub-request's own query is not the original", authPath + "?/health", nil, false},
		{"dot segments", authPath, []string{"X-Forwarded-Uri: /docs/../v1/x"}, false},
		{"encoded slash", authPath, []string{"X-Forwarded-Uri: /docs%2F..%2Fv1"}, false},
		// A client may send the header its proxy does not set: when the two
		// disagree, neither is trusted to make the request public.
		{"forwarded spoofed", authPath, []string{"X-Forwarded-Uri: /health", "X-Original-URI: /v1/x"}, false},
		{"original spoofed", authPath, []string{"X-Forwarded-Uri: /v1/x", "X-Original-URI: /health"}, false},
		{"envoy suffix overridden", authPath + "/health", []string{"X-Forwarded-Uri: /v1/x"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := s.get(t, tt.uri, tt.headers...)
			if tt.public {
				expectAllowed(t, r, nil)
			} else {
				expectRefused(t, r, 401, "missing_api_key")
				// With a key it passes, as any private path does.
				r = s.get(t, tt.uri, append(tt.headers, bearerHeader(tok))...)
				if r.status != 200 {
					t.Errorf("with a key: status %d (%s)", r.status, r.body)
				}
			}
		})
	}
}

func TestForwardAuthRateLimitAndUsage(t *testing.T) {
	for _, limited := range []int{0, 403} {
		want := 429
		if limited != 0 {
			want = limited
		}
		t.Run(http.StatusText(want), func(t *testing.T) {
			s := forwardStack(t, limited, [4]limiter.Limit{keys.TypePersonal: {Limit: 2, Window: time.Minute}})
			s.user("alice", nil)
			k, tok := s.key(keys.CreateKeyInput{UserID: "alice"})
			for i, remaining := range []string{"1", "0"} {
				r := s.get(t, authPath, bearerHeader(tok), "X-Forwarded-Uri: /v1/x")
				if r.status != 200 {
					t.Fatalf("request %d: status %d", i, r.status)
				}
				if r.header.Get("RateLimit-Limit") != "2" || r.header.Get("RateLimit-Remaining") != remaining ||
					r.header.Get("RateLimit-Reset") == "" {
					t.Errorf("request %d: RateLimit headers %v", i, r.header)
				}
			}
			r := s.get(t, authPath, bearerHeader(tok), "X-Forwarded-Uri: /v1/x")
			e := expectRefused(t, r, want, "rate_limited")
			if e.WaitSeconds == nil || *e.WaitSeconds != 30 || r.header.Get("Retry-After") != "30" {
				t.Errorf("wait_seconds %v, Retry-After %q; want 30", e.WaitSeconds, r.header.Get("Retry-After"))
			}
			if r.header.Get("RateLimit-Remaining") != "0" {
				t.Errorf("RateLimit-Remaining = %q", r.header.Get("RateLimit-Remaining"))
			}
			// A public path uses nothing.
			expectAllowed(t, s.get(t, authPath, bearerHeader(tok), "X-Forwarded-Uri: /health"), nil)

			if err := s.rec.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
			now := s.clock.Now().Unix()
			points, _, err := s.store.Usage(context.Background(), keys.UsageQuery{KeyID: k.ID, From: now - 3600, To: now + 60, Interval: "hour"})
			if err != nil {
				t.Fatal(err)
			}
			var allowed, rateLimited int64
			for _, p := range points {
				allowed += p.Allowed
				rateLimited += p.RateLimited
			}
			if allowed != 2 || rateLimited != 1 {
				t.Errorf("usage: %d allowed, %d rate limited; want 2 and 1", allowed, rateLimited)
			}
		})
	}
}

func TestForwardAuthOnlyServesItsPathAndThePortal(t *testing.T) {
	s := forwardStack(t, 0, [4]limiter.Limit{})
	for _, uri := range []string{"/", "/v1/x", "/health", authPath + "x", "/_keygate"} {
		expectError(t, s.get(t, uri), 404, "not_found")
	}
	if r := s.get(t, "/_keygate/portal/keys"); r.status != 200 || string(r.body) != "portal" {
		t.Errorf("portal: %d %q", r.status, r.body)
	}
	if r := s.get(t, authPath+"/v1/x"); r.status != 401 {
		t.Errorf("below the path: status %d, want 401", r.status)
	}
}

// With upstreams, the proxy port proxies everything but the auth path.
func TestForwardAuthBesideTheProxy(t *testing.T) {
	s := newStack(t, stackConfig{proxy: Options{ForwardAuth: ForwardAuthOptions{Path: authPath}}})
	k, tok := s.key(keys.CreateKeyInput{})
	expectOK(t, s.get(t, "/v1/x", bearerHeader(tok)))
	expectAllowed(t, s.get(t, authPath, bearerHeader(tok), "X-Forwarded-Uri: /v1/x"), map[string]string{
		"Key-Id": k.ID, "Key-Type": "generic", "Metadata": "{}"})
	if n := s.upstreamCount(); n != 1 {
		t.Errorf("upstream saw %d requests, want 1", n)
	}
	if got := metricValue(t, s, `keygate_forward_auth_requests_total{result="allowed"}`); got != 1 {
		t.Errorf("forward auth allowed = %v, want 1", got)
	}
	if got := metricValue(t, s, `keygate_requests_total{result="allowed"}`); got != 1 {
		t.Errorf("proxied allowed = %v, want 1", got)
	}
	s.get(t, authPath, "X-Forwarded-Uri: /v1/x")
	if got := metricValue(t, s, `keygate_forward_auth_requests_total{result="missing_key"}`); got != 1 {
		t.Errorf("forward auth missing_key = %v, want 1", got)
	}
	if got := metricValue(t, s, `keygate_requests_total{result="missing_key"}`); got != 0 {
		t.Errorf("proxied missing_key = %v, want 0", got)
	}
}

func TestForwardAuthOptions(t *testing.T) {
	s := newStack(t, stackConfig{})
	for name, o := range map[string]Options{
		"no upstream, no forward auth": {},
		"relative path":                {ForwardAuth: ForwardAuthOptions{Path: "auth"}},
		"trailing slash":               {ForwardAuth: ForwardAuthOptions{Path: "/auth/"}},
		"query":                        {ForwardAuth: ForwardAuthOptions{Path: "/auth?x"}},
		"2xx limited status":           {ForwardAuth: ForwardAuthOptions{Path: "/auth", LimitedStatus: 200}},
	} {
		if _, err := New(s.gate, o); err == nil {
			t.Errorf("%s: New accepted %+v", name, o)
		}
	}
	if _, err := New(s.gate, Options{ForwardAuth: ForwardAuthOptions{Path: "/auth"}}); err != nil {
		t.Errorf("forward auth without upstreams: %v", err)
	}
}

// Debug logs name the original request and the key id, never the key,
// even when it came in the original URI's query.
func TestForwardAuthLogs(t *testing.T) {
	var buf bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(lockedWriter{&mu, &buf}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s := newStack(t, stackConfig{proxy: Options{ForwardAuth: ForwardAuthOptions{Path: authPath}, KeyQueryParam: "api_key", Logger: logger}})
	k, tok := s.key(keys.CreateKeyInput{})
	expectAllowed(t, s.get(t, authPath, "X-Forwarded-Uri: /v1/x?api_key="+tok, "X-Forwarded-Method: DELETE",
		"X-Forwarded-Host: api.example.com", "X-Forwarded-Proto: https"), map[string]string{
		"Key-Id": k.ID, "Key-Type": "generic", "Metadata": "{}"})
	mu.Lock()
	out := buf.String()
	mu.Unlock()
	for _, want := range []string{"method=DELETE", "host=api.example.com", "proto=https", "path=/v1/x", "result=allowed", "key_id=" + k.ID} {
		if !strings.Contains(out, want) {
			t.Errorf("log %q lacks %q", out, want)
		}
	}
	if strings.Contains(out, tok) {
		t.Errorf("log holds the token: %q", out)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// FuzzForwardAuthPublic feeds untrusted descriptions of the original request
// to a forward-auth handler without a key: the answer is 200 only for a
// public path, named consistently, and 401 otherwise; nothing panics.
func FuzzForwardAuthPublic(f *testing.F) {
	for _, c := range [][3]string{
		{"", "/health", ""}, {"", "", "/docs/a"}, {"/docs/x?y", "", ""}, {"", "/health", "/v1"},
		{"", "/docs/../v1", ""}, {"?/health", "", ""}, {"", "/docs%2F..", "/docs%2F.."}, {"/", "", ""},
	} {
		f.Add(c[0], c[1], c[2])
	}
	p, err := New(&Gate{}, Options{
		ForwardAuth: ForwardAuthOptions{Path: authPath},
		PublicPaths: []string{"/health", "/docs/**"},
	})
	if err != nil {
		f.Fatal(err)
	}
	public := func(uri string) bool {
		clean, ok := cleanPath(pathOf([]byte(uri)), nil)
		s := string(clean)
		return ok && (s == "/health" || s == "/docs" || strings.HasPrefix(s, "/docs/"))
	}
	f.Fuzz(func(t *testing.T, suffix, fwd, orig string) {
		var ctx fasthttp.RequestCtx
		ctx.Request.Header.SetRequestURI(authPath + suffix)
		if strings.ContainsAny(fwd+orig, "\r\n\x00") {
			return
		}
		ctx.Request.Header.Set("X-Forwarded-Uri", fwd)
		ctx.Request.Header.Set("X-Original-URI", orig)
		if !underPath(pathOf(ctx.Request.Header.RequestURI()), p.fwd.path) {
			return // not a forward-auth request
		}
		fwd = string(ctx.Request.Header.Peek("X-Forwarded-Uri"))
		orig = string(ctx.Request.Header.Peek("X-Original-URI"))
		p.Handler(&ctx)
		switch status := ctx.Response.StatusCode(); status {
		case 200:
			var ok bool
			switch {
			case fwd != "":
				ok = (orig == "" || orig == fwd) && public(fwd)
			case orig != "":
				ok = public(orig)
			default:
				own := string(ctx.Request.Header.RequestURI())
				ok = public(own[len(authPath):])
			}
			if !ok {
				t.Fatalf("200 for suffix %q, X-Forwarded-Uri %q, X-Original-URI %q", suffix, fwd, orig)
			}
		case 401:
		default:
			t.Fatalf("status %d", status)
		}
	})
}
