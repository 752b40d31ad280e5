package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/limiter"
	"github.com/keygate/keygate/metrics"
	"github.com/keygate/keygate/quota"
	"github.com/keygate/keygate/sqlite"
	"github.com/keygate/keygate/usage"
)

// clock is a settable, race-safe clock for tests.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Unix(1_800_000_000, 0).UnixNano())
	return c
}

func (c *clock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// echoed is what the echo upstream saw.
type echoed struct {
	Method     string      `json:"method"`
	RequestURI string      `json:"request_uri"`
	Host       string      `json:"host"`
	Headers    [][2]string `json:"headers"` // as received, in order
	BodyLen    int64       `json:"body_len"`
	BodySHA256 string      `json:"body_sha256"`
	Chunked    bool        `json:"chunked"`
}

// header returns every value of the header named name (case-insensitive).
func (e *echoed) header(name string) []string {
	var vs []string
	for _, kv := range e.Headers {
		if strings.EqualFold(kv[0], name) {
			vs = append(vs, kv[1])
		}
	}
	return vs
}

// echo is an upstream on 127.0.0.1:0 that answers every request with a
// JSON description of it. Request headers steer it:
//
//	X-Echo-Sleep: 200ms         wait before answering
//	X-Echo-Response: Name: v    add a response header (repeatable)
//	X-Echo-Body-Size: n         answer with n bytes of body instead
type echo struct {
	url   string
	addr  string
	count atomic.Int64
	srv   *fasthttp.Server
}

func newEcho(t testing.TB) *echo {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := &echo{addr: ln.Addr().String()}
	e.url = "http://" + e.addr
	e.srv = &fasthttp.Server{
		Handler:                       e.handle,
		StreamRequestBody:             true,
		DisableHeaderNamesNormalizing: true,
		NoDefaultServerHeader:         true,
		MaxRequestBodySize:            64 << 20,
	}
	go e.srv.Serve(ln) //nolint:errcheck
	t.Cleanup(func() { e.srv.Shutdown() })
	return e
}

func (e *echo) handle(ctx *fasthttp.RequestCtx) {
	e.count.Add(1)
	r := echoed{
		Method:     string(ctx.Method()),
		RequestURI: string(ctx.Request.Header.RequestURI()),
		Host:       string(ctx.Request.Header.Host()),
		Chunked:    ctx.Request.Header.ContentLength() == -1,
	}
	var respHeaders []string
	var sleep time.Duration
	bodySize := -1
	for k, v := range ctx.Request.Header.AllInOrder() {
		r.Headers = append(r.Headers, [2]string{string(k), string(v)})
		switch strings.ToLower(string(k)) {
		case "x-echo-sleep":
			sleep, _ = time.ParseDuration(string(v))
		case "x-echo-response":
			respHeaders = append(respHeaders, string(v))
		case "x-echo-body-size":
			bodySize, _ = strconv.Atoi(string(v))
		}
	}
	h := sha256.New()
	var n int64
	if s := ctx.RequestBodyStream(); s != nil {
		n, _ = io.Copy(h, s)
	} else {
		h.Write(ctx.Request.Body())
		n = int64(len(ctx.Request.Body()))
	}
	r.BodyLen = n
	r.BodySHA256 = hex.EncodeToString(h.Sum(nil))
	if sleep > 0 {
		time.Sleep(sleep)
	}
	for _, rh := range respHeaders {
		k, v, _ := strings.Cut(rh, ":")
		ctx.Response.Header.Add(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	if bodySize >= 0 {
		ctx.SetBody(bytes.Repeat([]byte("x"), bodySize))
		return
	}
	ctx.SetContentType("application/json")
	b, _ := json.Marshal(r)
	ctx.SetBody(b)
}

// stack is a whole proxy: keys on SQLite, cache, limiter, usage, metrics,
// the proxy on 127.0.0.1:0 and an echo upstream.
type stack struct {
	t      testing.TB
	clock  *clock
	store  keys.Store
	svc    *keys.Service
	cache  *Cache
	lim    *limiter.Memory
	rec    *usage.Recorder
	m      *metrics.Metrics
	gate   *Gate
	proxy  *Proxy
	echo   *echo
	addr   string
	tokens *keys.Tokens
	quotas *quota.Engine // nil unless stackConfig.quotas
}

type stackConfig struct {
	cache    CacheOptions
	keys     keys.Options
	proxy    Options
	upstream func(echoURL string) []string // nil: the echo server
	noEcho   bool
	quotas   bool // count quotas in memory (set CacheOptions.Quotas for the defaults)
}

func newStack(t testing.TB, cfg stackConfig) *stack {
	t.Helper()
	ctx := context.Background()
	s := &stack{t: t, clock: newClock()}
	var err error
	s.store, err = sqlite.Open(ctx, filepath.Join(t.TempDir(), "keys.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.store.Close() })
	s.tokens, err = keys.NewTokens("kg")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.cache.Now == nil {
		cfg.cache.Now = s.clock.Now
	}
	s.cache, err = NewCache(cfg.cache)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.cache.Close)
	kopts := cfg.keys
	kopts.Now = s.clock.Now
	kopts.OnChange = s.cache.Invalidate
	s.svc, err = keys.NewService(ctx, s.store, s.tokens, kopts)
	if err != nil {
		t.Fatal(err)
	}
	// The gate, and what it hands its clock readings to, run on the cache's clock.
	now := cfg.cache.Now
	s.lim = limiter.NewMemory(limiter.MemoryOptions{Now: now})
	t.Cleanup(func() { s.lim.Close() })
	s.rec = usage.New(s.store, usage.Options{Now: now})
	s.m = metrics.New()
	gopts := GateOptions{Limiter: s.lim, Recorder: s.rec, Metrics: s.m, Now: now}
	if cfg.quotas {
		s.quotas = quota.New(s.store, quota.Options{Now: now})
		gopts.Quotas = s.quotas
	}
	s.gate = NewGate(s.svc, s.cache, gopts)

	if !cfg.noEcho {
		s.echo = newEcho(t)
	}
	popts := cfg.proxy
	switch {
	case cfg.upstream != nil:
		popts.Upstreams = cfg.upstream(s.echoURL())
	case len(popts.Upstreams) == 0:
		popts.Upstreams = []string{s.echoURL()}
	}
	if popts.KeyHeaders == nil {
		popts.KeyHeaders = []string{"X-API-Key"}
	}
	s.proxy, err = New(s.gate, popts)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = ln.Addr().String()
	done := make(chan error, 1)
	go func() { done <- s.proxy.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.proxy.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		<-done
	})
	return s
}

func (s *stack) echoURL() string {
	if s.echo == nil {
		return ""
	}
	return s.echo.url
}

func (s *stack) upstreamCount() int64 {
	if s.echo == nil {
		return 0
	}
	return s.echo.count.Load()
}

// user creates an enabled user.
func (s *stack) user(id string, rl *keys.RateLimit) {
	s.t.Helper()
	if _, err := s.svc.UpsertUser(context.Background(), keys.UserInput{ID: id, Email: id + "@example.com", RateLimit: rl}); err != nil {
		s.t.Fatal(err)
	}
}

// org creates an org.
func (s *stack) org(id, name string, rl *keys.RateLimit) {
	s.t.Helper()
	if _, err := s.svc.UpsertOrg(context.Background(), keys.OrgInput{ID: id, Name: name, RateLimit: rl}); err != nil {
		s.t.Fatal(err)
	}
}

func (s *stack) member(org, user, role string) {
	s.t.Helper()
	if _, err := s.svc.PutMember(context.Background(), org, user, role); err != nil {
		s.t.Fatal(err)
	}
}

// key creates a key and returns its record and token.
func (s *stack) key(in keys.CreateKeyInput) (*keys.Key, string) {
	s.t.Helper()
	k, tok, err := s.svc.CreateKey(context.Background(), in)
	if err != nil {
		s.t.Fatal(err)
	}
	return k, tok
}

// response is a parsed proxy answer.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r *response) echoed(t testing.TB) *echoed {
	t.Helper()
	var e echoed
	if err := json.Unmarshal(r.body, &e); err != nil {
		t.Fatalf("status %d, body %q: not an echo: %v", r.status, r.body, err)
	}
	return &e
}

// apiError is the JSON error body of SPEC §3.
type apiError struct {
	Error       string `json:"error"`
	Message     string `json:"message"`
	WaitSeconds *int   `json:"wait_seconds"`
}

func (r *response) apiError(t testing.TB) apiError {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("error Content-Type = %q, want application/json", ct)
	}
	var e apiError
	if err := json.Unmarshal(r.body, &e); err != nil {
		t.Fatalf("status %d: body %q is not a JSON error: %v", r.status, r.body, err)
	}
	if e.Message == "" {
		t.Errorf("error %q has no message", e.Error)
	}
	return e
}

// raw sends a request written by hand (so that tests control every byte
// of the request line and headers) and reads the answer.
func (s *stack) raw(t testing.TB, req string) *response {
	t.Helper()
	c, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	return readResponse(t, bufio.NewReader(c))
}

func readResponse(t testing.TB, br *bufio.Reader) *response {
	t.Helper()
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return &response{status: resp.StatusCode, header: resp.Header, body: body}
}

// get sends "GET uri" with the given header lines ("Name: value").
func (s *stack) get(t testing.TB, uri string, headers ...string) *response {
	t.Helper()
	return s.raw(t, request("GET", uri, headers, ""))
}

func request(method, uri string, headers []string, body string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: api.example.com\r\n", method, uri)
	for _, h := range headers {
		b.WriteString(h + "\r\n")
	}
	if body != "" {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(body))
	}
	b.WriteString("Connection: close\r\n\r\n")
	b.WriteString(body)
	return b.String()
}

// metricValue returns one series' value from the stack's metrics.
func metricValue(t testing.TB, s *stack, series string) float64 {
	t.Helper()
	var b bytes.Buffer
	s.m.WritePrometheus(&b)
	for _, line := range strings.Split(b.String(), "\n") {
		if name, v, ok := strings.Cut(line, " "); ok && name == series {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	t.Fatalf("no series %s", series)
	return 0
}
