package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/metrics"
)

func TestHealthPath(t *testing.T) {
	var failing atomic.Bool
	s := newStack(t, stackConfig{proxy: Options{
		HealthPath: "/_keygate/health",
		Health: func(context.Context) error {
			if failing.Load() {
				return errors.New("store down")
			}
			return nil
		},
	}})
	tests := []struct {
		method, uri string
		status      int
		body        string
	}{
		{"GET", "/_keygate/health", 200, `{"status":"ok"}`},
		{"GET", "/_keygate/health?probe=1", 200, `{"status":"ok"}`},
		{"POST", "/_keygate/health", 405, ``},
		// Only the exact path: the rest still needs a key.
		{"GET", "/_keygate/health/x", 401, ``},
		{"GET", "/_keygate/healthz", 401, ``},
	}
	for _, tt := range tests {
		r := s.raw(t, request(tt.method, tt.uri, nil, ""))
		if r.status != tt.status {
			t.Errorf("%s %s = %d %s, want %d", tt.method, tt.uri, r.status, r.body, tt.status)
		}
		if tt.body != "" && string(r.body) != tt.body {
			t.Errorf("%s %s body = %s, want %s", tt.method, tt.uri, r.body, tt.body)
		}
	}
	if n := s.upstreamCount(); n != 0 {
		t.Errorf("upstream saw %d requests, want 0", n)
	}
	failing.Store(true)
	if r := s.get(t, "/_keygate/health"); r.status != 503 || string(r.body) != `{"status":"unavailable"}` {
		t.Errorf("failing check: %d %s, want 503 unavailable", r.status, r.body)
	}
}

func TestHealthPathOff(t *testing.T) {
	s := newStack(t, stackConfig{})
	if r := s.get(t, "/_keygate/health"); r.status != 401 {
		t.Errorf("no health path: GET /_keygate/health = %d, want 401 (a proxied path)", r.status)
	}
	if _, err := New(s.gate, Options{Upstreams: []string{s.echoURL()}, HealthPath: "health"}); err == nil || !strings.Contains(err.Error(), "proxy.health_path") {
		t.Errorf("HealthPath without / = %v, want an error naming proxy.health_path", err)
	}
}

// lines decodes the JSON log lines of a syncBuffer (harden_test.go).
func (s *syncBuffer) lines(t *testing.T) []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for _, l := range bytes.Split(bytes.TrimSpace(s.b.Bytes()), []byte("\n")) {
		if len(l) == 0 {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(l, &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

func TestAccessLog(t *testing.T) {
	var buf syncBuffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	s := newStack(t, stackConfig{proxy: Options{AccessLog: NewAccessLog(log, 1), KeyQueryParam: "api_key"}})
	s.user("alice", &keys.RateLimit{Limit: 1, Window: 60e9})
	k, tok := s.key(keys.CreateKeyInput{UserID: "alice"})

	s.get(t, "/v1/things?api_key="+tok)                  // allowed
	s.get(t, "/v1/things", "Authorization: Bearer "+tok) // rate limited
	s.get(t, "/v1/other", "X-API-Key: kg_nope")          // invalid
	s.get(t, "/v1/none")                                 // missing

	lines := buf.lines(t)
	if len(lines) != 4 {
		t.Fatalf("%d access log lines, want 4: %v", len(lines), lines)
	}
	want := []struct {
		path   string
		status float64
		result string
		keyID  string
	}{
		{"/v1/things", 200, "allowed", k.ID},
		{"/v1/things", 429, "rate_limited", k.ID},
		{"/v1/other", 401, "invalid_key", ""},
		{"/v1/none", 401, "missing_key", ""},
	}
	for i, w := range want {
		l := lines[i]
		if l["msg"] != "request" || l["method"] != "GET" || l["path"] != w.path || l["status"] != w.status ||
			l["result"] != w.result || l["key_id"] != w.keyID || l["client"] != "127.0.0.1" {
			t.Errorf("line %d = %v, want path %s status %v result %s key_id %q", i, l, w.path, w.status, w.result, w.keyID)
		}
		if _, ok := l["duration"].(float64); !ok {
			t.Errorf("line %d has no duration: %v", i, l)
		}
		if _, ok := l["upstream"].(float64); !ok {
			t.Errorf("line %d has no upstream duration: %v", i, l)
		}
	}
	buf.mu.Lock()
	all := buf.b.String()
	buf.mu.Unlock()
	if strings.Contains(all, tok) || strings.Contains(all, "kg_nope") {
		t.Errorf("access log carries a key:\n%s", all)
	}
}

func TestAccessLogSample(t *testing.T) {
	var buf syncBuffer
	s := newStack(t, stackConfig{proxy: Options{AccessLog: NewAccessLog(slog.New(slog.NewJSONHandler(&buf, nil)), 3)}})
	for range 9 {
		s.get(t, "/x")
	}
	if n := len(buf.lines(t)); n != 3 {
		t.Errorf("one in 3 of 9 requests: %d lines, want 3", n)
	}
}

// BenchmarkAccessLog measures one access log record with a JSON handler
// writing to io.Discard, logging every request and one in 100. With the
// access log off the handler does not call it at all (BenchmarkHandler).
func BenchmarkAccessLog(b *testing.B) {
	var ctx fasthttp.RequestCtx
	ctx.Init(&fasthttp.Request{}, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 4000}, nil)
	ctx.Request.SetRequestURI("/v1/things/42?api_key=secret")
	ctx.Response.SetStatusCode(200)
	for _, every := range []int{1, 100} {
		a := NewAccessLog(slog.New(slog.NewJSONHandler(io.Discard, nil)), every)
		b.Run(fmt.Sprintf("one_in_%d", every), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				a.record(&ctx, "key_123", metrics.ResultAllowed, time.Millisecond, 800*time.Microsecond)
			}
		})
	}
}
