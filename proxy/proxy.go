package proxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/keygate/keygate/httperr"
	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/limiter"
	"github.com/keygate/keygate/metrics"
	"github.com/keygate/keygate/quota"
	"github.com/keygate/keygate/redact"
)

// Options configure a Proxy. Zero durations mean no limit unless a default
// is named.
type Options struct {
	// Upstreams are the base URLs requests go to, load balanced (at least
	// one, unless ForwardAuth.Path is set). A base URL's path is put in front
	// of every request's path.
	Upstreams []string
	// ForwardAuth configures forward auth (SPEC §10); its zero value turns
	// it off.
	ForwardAuth ForwardAuthOptions
	// DialTimeout bounds connecting to an upstream; 0 means 5s.
	DialTimeout time.Duration
	// UpstreamTimeout bounds the whole upstream exchange, from connecting to
	// the last byte of the response; after it the client gets 504 (or, once
	// the response has begun, a cut connection). 0 means 30s.
	UpstreamTimeout time.Duration
	// ReadTimeout, WriteTimeout and IdleTimeout bound the client side:
	// reading a request, writing a response, an idle keep-alive connection.
	ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	// MaxConnsPerUpstream caps connections to each upstream; 0 means 512.
	MaxConnsPerUpstream int
	// PublicPaths are path.Match globs of paths that pass without a key. A
	// pattern ending in "/**" matches the path before it and everything
	// below ("/docs/**" matches /docs, /docs/ and /docs/a/b). Patterns are
	// matched against the percent-decoded path; a path that an upstream
	// could resolve differently (dot segments, doubled, encoded or back
	// slashes) is never public. A key sent to a public path is not checked
	// and gives no identity, but is still removed when StripCredentials.
	PublicPaths []string
	// KeyHeaders are the headers a key may come in, after Authorization.
	KeyHeaders []string
	// KeyQueryParam is the query parameter a key may come in; "" means none.
	KeyQueryParam string
	// HeaderPrefix starts the identity headers' names; "" means "X-Keygate-".
	// Incoming headers with this prefix are always removed.
	HeaderPrefix string
	// StripCredentials removes every place a key may come in before
	// forwarding: each key header, the key query parameter and an
	// Authorization value that is a key (Bearer or bare), whichever was used.
	StripCredentials bool
	// DropHeaders are request headers removed before forwarding (compared
	// ignoring case, '_' and '.'), such as routing overrides; nil means none.
	// Forwarded, X-Real-IP and X-Forwarded-* are always replaced.
	DropHeaders []string
	// DropCookies are cookie names removed from the Cookie header before
	// forwarding (keygate's own session cookies); every other cookie passes
	// byte for byte.
	DropCookies []string
	// MaxBodyBytes bounds request bodies (413 beyond); 0 means no limit.
	MaxBodyBytes int64
	// PortalPath is where the self-service pages live; requests under it go
	// to Portal without any key check. Ignored when Portal is nil.
	PortalPath string
	Portal     fasthttp.RequestHandler
	// UpstreamTLS configures connections to https upstreams (a private CA,
	// client certificates); nil means the system's roots.
	UpstreamTLS *tls.Config
	// Dial connects to an upstream address (host:port) within timeout; nil
	// means TCP. Tests and benchmarks dial in memory.
	Dial func(addr string, timeout time.Duration) (net.Conn, error)
	// Logger receives upstream and store failures; nil discards them.
	Logger *slog.Logger
	// Now returns the time used for latency metrics; nil means time.Now.
	Now func() time.Time
	// HealthPath answers load balancers without a key (see ops.go); ""
	// means none. Health decides 200 or 503; nil means always 200.
	HealthPath string
	Health     func(ctx context.Context) error
	// AccessLog, when not nil, gets one line per proxied request.
	AccessLog *AccessLog
}

// Proxy is keygate's proxy port: it checks each request's key through a
// Gate and forwards what passes to an upstream, streaming the bodies that
// need it (see transport).
// Create it with New; it is safe for concurrent use.
type Proxy struct {
	gate *Gate
	m    *metrics.Metrics
	log  *slog.Logger
	now  func() time.Time
	// realClock: now is time.Now, so fasthttp's request time can be the start.
	realClock bool

	ups       []*upstream
	next      atomic.Uint64 // round robin
	upTimeout time.Duration

	ext        extractor
	public     pathMatcher
	portalPath []byte
	portal     fasthttp.RequestHandler
	strip      bool
	maxBody    int64
	drop       [][]byte // headers removed from every request
	dropAuth   [][]byte // drop plus Authorization, when it holds a key and strip is on
	cookies    [][]byte // cookie names removed

	prefix  []byte                     // identity header prefix, canonical
	idNames [numIdentityHeaders][]byte // full identity header names

	fwd forwardAuth // off when fwd.path is nil

	states sync.Pool // *reqState
	srv    *fasthttp.Server

	mu     sync.Mutex // guards closed and lns
	closed bool
	lns    []net.Listener

	errTooLarge []byte // 413 body, which names the limit

	ops ops // health endpoint and access log (ops.go)
}

// reqState is one request's scratch space, pooled.
type reqState struct {
	rw    rewriter
	buf   []byte
	head  []byte    // the upstream request head (appendHead)
	end   time.Time // when the upstream answered; zero without one
	keyID string    // for the access log; set only when it is on
}

var (
	hXForwardedFor   = []byte("X-Forwarded-For")
	hXForwardedProto = []byte("X-Forwarded-Proto")
	hXForwardedHost  = []byte("X-Forwarded-Host")
	hRateLimitLimit  = []byte("Ratelimit-Limit")
	hRateLimitRemain = []byte("Ratelimit-Remaining")
	hRateLimitReset  = []byte("Ratelimit-Reset")
	hRetryAfter      = []byte("Retry-After")
	hQuotaLimit      = []byte("X-Quota-Limit")
	hQuotaRemaining  = []byte("X-Quota-Remaining")
	hQuotaReset      = []byte("X-Quota-Reset")
	hWWWAuthenticate = []byte("Www-Authenticate")
	challengeMissing = []byte(`Bearer realm="keygate"`)
	challengeInvalid = []byte(`Bearer realm="keygate", error="invalid_token"`)
	schemeHTTP       = []byte("http")
	schemeHTTPS      = []byte("https")
)

// New returns a Proxy checking keys with g.
func New(g *Gate, opts Options) (*Proxy, error) {
	if len(opts.Upstreams) == 0 && opts.ForwardAuth.Path == "" {
		return nil, errors.New("proxy.upstreams: at least one upstream is required (or forward_auth.path)")
	}
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = 5 * time.Second
	}
	if opts.UpstreamTimeout <= 0 {
		opts.UpstreamTimeout = 30 * time.Second
	}
	if opts.MaxConnsPerUpstream <= 0 {
		opts.MaxConnsPerUpstream = 512
	}
	if opts.HeaderPrefix == "" {
		opts.HeaderPrefix = "X-Keygate-"
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	realClock := opts.Now == nil
	if opts.Now == nil {
		opts.Now = time.Now
	}
	p := &Proxy{
		realClock: realClock,
		gate:      g,
		m:         g.m,
		log:       opts.Logger,
		now:       opts.Now,
		upTimeout: opts.UpstreamTimeout,
		strip:     opts.StripCredentials,
		maxBody:   opts.MaxBodyBytes,
		prefix:    canonicalHeader(opts.HeaderPrefix),
	}
	p.states.New = func() any { return &reqState{buf: make([]byte, 0, 1024), head: make([]byte, 0, 2048)} }
	if !validHeaderName(opts.HeaderPrefix) {
		return nil, fmt.Errorf("proxy.header_prefix: %q is not a valid header name", opts.HeaderPrefix)
	}
	for i, s := range identityHeaderSuffixes {
		p.idNames[i] = canonicalHeader(opts.HeaderPrefix + s)
	}
	for i, u := range opts.Upstreams {
		up, err := newUpstream(u, opts)
		if err != nil {
			return nil, fmt.Errorf("proxy.upstreams[%d]: %w", i, err)
		}
		p.ups = append(p.ups, up)
	}
	for _, h := range opts.KeyHeaders {
		if !validHeaderName(h) {
			return nil, fmt.Errorf("proxy.key_headers: %q is not a valid header name", h)
		}
		if hasPrefixFold([]byte(h), p.prefix) {
			return nil, fmt.Errorf("proxy.key_headers: %q starts with the identity prefix %q", h, opts.HeaderPrefix)
		}
		p.ext.headers = append(p.ext.headers, canonicalHeader(h))
	}
	if opts.KeyQueryParam != "" {
		p.ext.param = []byte(opts.KeyQueryParam)
	}
	if err := p.setDrops(opts); err != nil {
		return nil, err
	}
	var err error
	if p.fwd, err = newForwardAuth(opts.ForwardAuth, p.prefix); err != nil {
		return nil, err
	}
	if p.public, err = newPathMatcher(opts.PublicPaths); err != nil {
		return nil, fmt.Errorf("proxy.public_paths: %w", err)
	}
	if opts.Portal != nil {
		if !strings.HasPrefix(opts.PortalPath, "/") {
			return nil, fmt.Errorf("portal.path: %q must start with /", opts.PortalPath)
		}
		p.portalPath = []byte(strings.TrimSuffix(opts.PortalPath, "/"))
		p.portal = opts.Portal
	}
	msg := "the request body is too large"
	if p.maxBody > 0 {
		msg = fmt.Sprintf("the request body is larger than %d bytes", p.maxBody)
	}
	p.errTooLarge = errorBody("request_too_large", msg)
	if err := p.initOps(opts); err != nil {
		return nil, err
	}

	maxReq := int(p.maxBody) // with streaming, only what is read ahead
	if maxReq <= 0 || maxReq > 64<<10 {
		maxReq = 64 << 10
	}
	p.srv = &fasthttp.Server{
		Handler:                      p.Handler,
		ReadTimeout:                  opts.ReadTimeout,
		WriteTimeout:                 opts.WriteTimeout,
		IdleTimeout:                  opts.IdleTimeout,
		MaxRequestBodySize:           maxReq,
		StreamRequestBody:            true,
		DisablePreParseMultipartForm: true,
		NoDefaultServerHeader:        true,
		NoDefaultContentType:         true,
		SecureErrorLogMessage:        true,
		CloseOnShutdown:              true,
		Logger:                       redact.FastHTTP{L: opts.Logger}, // no request material in the log
		ExpectHandler:                p.expect,
	}
	return p, nil
}

// Serve accepts connections on ln until Shutdown, then returns nil.
func (p *Proxy) Serve(ln net.Listener) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		ln.Close()
		return nil
	}
	p.lns = append(p.lns, ln)
	p.mu.Unlock()
	return p.srv.Serve(newCoarseListener(ln, p.srv.ReadTimeout, p.srv.WriteTimeout, p.srv.IdleTimeout))
}

// Shutdown stops accepting connections and waits, until ctx ends, for
// requests under way to finish. Serve calls after it return at once.
func (p *Proxy) Shutdown(ctx context.Context) error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	err := p.srv.ShutdownWithContext(ctx)
	// A Serve that had not yet handed its listener to fasthttp when the
	// shutdown began is missed by it; closing the listener ends it.
	p.mu.Lock()
	for _, ln := range p.lns {
		ln.Close()
	}
	p.mu.Unlock()
	for _, u := range p.ups {
		u.hc.CloseIdleConnections()
	}
	return err
}

// Handler serves one request on the proxy port. The request should be one
// read from the wire (as fasthttp.Server does): header removal works on the
// headers as received.
func (p *Proxy) Handler(ctx *fasthttp.RequestCtx) {
	if p.portal != nil && underPath(pathOf(ctx.Request.Header.RequestURI()), p.portalPath) {
		p.portal(ctx)
		return
	}
	if p.isHealth(ctx) { // ops.go
		p.serveHealth(ctx)
		return
	}
	if p.fwd.path != nil && underPath(pathOf(ctx.Request.Header.RequestURI()), p.fwd.path) {
		p.forwardAuth(ctx)
		return
	}
	if len(p.ups) == 0 { // forward auth only
		writeError(ctx, fasthttp.StatusNotFound, errNotFound)
		return
	}
	// Clock reads: fasthttp's own for the start (on the real clock), one
	// before and one after the upstream, or one at the end without it.
	start := ctx.Time()
	if !p.realClock {
		start = p.now()
	}
	st := p.states.Get().(*reqState)
	st.end = time.Time{}
	result, upstream := p.serve(ctx, st)
	end := st.end
	if p.ops.access != nil {
		if end.IsZero() {
			end = p.now()
		}
		p.ops.access.record(ctx, st.keyID, result, end.Sub(start), upstream)
		st.keyID = ""
	}
	p.states.Put(st)
	if p.m != nil {
		if end.IsZero() {
			end = p.now()
		}
		p.m.Request(result)
		p.m.ObserveGateway(end.Sub(start) - upstream)
		if upstream > 0 {
			p.m.ObserveUpstream(upstream)
		}
	}
}

func (p *Proxy) serve(ctx *fasthttp.RequestCtx, st *reqState) (metrics.Result, time.Duration) {
	req := &ctx.Request
	if p.maxBody > 0 && int64(req.Header.ContentLength()) > p.maxBody {
		writeError(ctx, fasthttp.StatusRequestEntityTooLarge, p.errTooLarge)
		return metrics.ResultTooLarge, 0
	}
	uri := req.Header.RequestURI()
	if len(uri) > 0 && uri[0] != '/' && bytes.Contains(uri, []byte("://")) {
		// Absolute form (RFC 9112 §3.2.2): keep the path and query only.
		req.URI().DisablePathNormalizing = true
		req.SetRequestURIBytes(req.URI().RequestURI())
		uri = req.Header.RequestURI()
	}
	d, ok := p.decideOnce(ctx, st, &req.Header, uri) // Expect: decided before 100 Continue
	if p.ops.access != nil && d.e != nil {
		st.keyID = d.e.keyID
	}
	if !ok {
		return d.result, 0
	}
	e, res, result := d.e, d.res, d.result

	if p.maxBody > 0 && req.Header.ContentLength() == -1 && req.IsBodyStream() {
		// Chunked: the size is known only once read, so count as it streams.
		req.SetBodyStream(&limitedReader{r: req.BodyStream(), left: p.maxBody}, -1)
	}
	u := p.pick()
	st.head = p.appendHead(st.head[:0], ctx, &st.rw, u, e)
	ctx.Response.Header.SetNoDefaultContentType(true)

	t := p.now()
	err := u.do(req, &ctx.Response, st.head) // the transport applies upTimeout
	st.end = p.now()
	upstream := st.end.Sub(t)
	if err != nil {
		return p.upstreamFailed(ctx, u, err), upstream
	}
	st.rw.stripResponse(&ctx.Response.Header)
	st.buf = setLimitHeaders(&ctx.Response.Header, res, st.buf)
	return result, upstream
}

// reject answers a request the gate refused.
func (p *Proxy) reject(ctx *fasthttp.RequestCtx, st *reqState, err error, d Decision) metrics.Result {
	switch {
	case errors.Is(err, limiter.ErrLimited):
		wait := max(ceilSeconds(d.Rate.RetryAfter), 1) // SPEC: wait_seconds >= 1
		st.buf = setLimitHeaders(&ctx.Response.Header, d, st.buf[:0])
		b := fasthttp.AppendUint(st.buf[:0], int(wait))
		ctx.Response.Header.SetCanonical(hRetryAfter, b)
		b = append(b[:0], `{"error":"rate_limited","message":"rate limit exceeded, retry in `...)
		b = fasthttp.AppendUint(b, int(wait))
		b = append(b, ` s","wait_seconds":`...)
		b = fasthttp.AppendUint(b, int(wait))
		b = append(b, '}')
		writeError(ctx, fasthttp.StatusTooManyRequests, b)
		st.buf = b
		return metrics.ResultRateLimited
	case errors.Is(err, quota.ErrExceeded):
		st.buf = setLimitHeaders(&ctx.Response.Header, d, st.buf[:0])
		st.buf = appendQuotaExceeded(&ctx.Response.Header, d.Quota, st.buf[:0])
		writeError(ctx, fasthttp.StatusTooManyRequests, st.buf)
		return metrics.ResultQuotaExceeded
	case errors.Is(err, keys.ErrExpiredKey):
		ctx.Response.Header.SetCanonical(hWWWAuthenticate, challengeInvalid)
		writeError(ctx, fasthttp.StatusUnauthorized, errExpiredKey)
		return metrics.ResultExpiredKey
	case errors.Is(err, keys.ErrInvalidKey):
		ctx.Response.Header.SetCanonical(hWWWAuthenticate, challengeInvalid)
		writeError(ctx, fasthttp.StatusUnauthorized, errInvalidKey)
		return metrics.ResultInvalidKey
	}
	p.log.Error("key lookup failed", slog.Any("err", err))
	writeError(ctx, fasthttp.StatusServiceUnavailable, errStore)
	return metrics.ResultStoreError
}

// upstreamFailed answers a request whose upstream exchange failed.
func (p *Proxy) upstreamFailed(ctx *fasthttp.RequestCtx, u *upstream, err error) metrics.Result {
	ctx.Response.Reset()
	switch {
	case errors.Is(err, errBodyTooLarge):
		ctx.SetConnectionClose() // the rest of the body is still coming
		writeError(ctx, fasthttp.StatusRequestEntityTooLarge, p.errTooLarge)
		return metrics.ResultTooLarge
	case errors.Is(err, fasthttp.ErrTimeout):
		p.log.Warn("upstream timed out", slog.String("upstream", u.name), slog.Duration("timeout", p.upTimeout))
		writeError(ctx, fasthttp.StatusGatewayTimeout, errUpstreamTimeout)
		return metrics.ResultUpstreamTimeout
	}
	u.markDown(p.now())
	p.log.Warn("upstream unavailable", slog.String("upstream", u.name), slog.Any("err", err))
	writeError(ctx, fasthttp.StatusBadGateway, errUpstreamDown)
	return metrics.ResultUpstreamError
}

// setLimitHeaders adds the RateLimit-* headers (when a rate limit applies)
// and the X-Quota-* headers (when a quota applies) for d, using buf as scratch.
func setLimitHeaders(h *fasthttp.ResponseHeader, d Decision, buf []byte) []byte {
	if d.Rate.Limit > 0 {
		buf = setRateLimit(h, d.Rate, buf)
	}
	if d.Quota.Limit > 0 {
		buf = setQuota(h, d.Quota, buf)
	}
	return buf
}

// setQuota adds the X-Quota-* headers for q; X-Quota-Reset (seconds to the
// refill) is absent for a total quota, which never refills.
func setQuota(h *fasthttp.ResponseHeader, q quota.Result, buf []byte) []byte {
	buf = fasthttp.AppendUint(buf[:0], int(q.Limit))
	h.SetCanonical(hQuotaLimit, buf)
	buf = fasthttp.AppendUint(buf[:0], int(max(q.Remaining, 0)))
	h.SetCanonical(hQuotaRemaining, buf)
	if q.ResetsAt > 0 {
		buf = fasthttp.AppendUint(buf[:0], int(ceilSeconds(q.Reset)))
		h.SetCanonical(hQuotaReset, buf)
	}
	return buf
}

// appendQuotaExceeded sets Retry-After (unless the quota never refills) and
// appends the 429 quota_exceeded body to b.
func appendQuotaExceeded(h *fasthttp.ResponseHeader, q quota.Result, b []byte) []byte {
	if q.ResetsAt <= 0 {
		return append(b, `{"error":"quota_exceeded","message":"quota used up; it does not refill"}`...)
	}
	wait := max(ceilSeconds(q.Reset), 1)
	b = fasthttp.AppendUint(b, int(wait))
	h.SetCanonical(hRetryAfter, b)
	b = append(b[:0], `{"error":"quota_exceeded","message":"quota used up, refills in `...)
	b = fasthttp.AppendUint(b, int(wait))
	b = append(b, ` s","wait_seconds":`...)
	b = fasthttp.AppendUint(b, int(wait))
	return append(b, '}')
}

// setRateLimit adds the RateLimit-* headers for res, using buf as scratch.
func setRateLimit(h *fasthttp.ResponseHeader, res limiter.Result, buf []byte) []byte {
	buf = fasthttp.AppendUint(buf[:0], int(res.Limit))
	h.SetCanonical(hRateLimitLimit, buf)
	buf = fasthttp.AppendUint(buf[:0], int(max(res.Remaining, 0)))
	h.SetCanonical(hRateLimitRemain, buf)
	buf = fasthttp.AppendUint(buf[:0], int(ceilSeconds(res.Reset)))
	h.SetCanonical(hRateLimitReset, buf)
	return buf
}

// ceilSeconds rounds d up to whole seconds, at least 1 when d > 0.
func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}

func appendIP(b []byte, ip net.IP) []byte {
	if ip4 := ip.To4(); ip4 != nil {
		return fasthttp.AppendIPv4(b, ip4)
	}
	if a, ok := netip.AddrFromSlice(ip); ok {
		return a.AppendTo(b)
	}
	return append(b, "unknown"...)
}

// pathOf returns the path of a raw request URI, without its query.
func pathOf(uri []byte) []byte {
	if i := bytes.IndexAny(uri, "?#"); i >= 0 {
		return uri[:i]
	}
	return uri
}

// underPath reports whether p is base or below it.
func underPath(p, base []byte) bool {
	return bytes.HasPrefix(p, base) && (len(p) == len(base) || p[len(base)] == '/')
}

// Errors JSON bodies (SPEC §3), from the one error table.
var (
	errMissingKey      = entryBody(httperr.MissingKey)
	errInvalidKey      = entryBody(httperr.InvalidKey)
	errExpiredKey      = entryBody(httperr.ExpiredKey)
	errStore           = entryBody(httperr.StoreUnavailable)
	errUpstreamDown    = entryBody(httperr.UpstreamDown)
	errUpstreamTimeout = entryBody(httperr.UpstreamTimeout)
	errNotFound        = errorBody("not_found", "there is nothing here")
)

func entryBody(e httperr.Entry) []byte { return errorBody(e.Code, e.Message) }

func errorBody(code, msg string) []byte {
	return []byte(`{"error":"` + code + `","message":"` + msg + `"}`)
}

var contentTypeJSON = []byte("application/json")

func writeError(ctx *fasthttp.RequestCtx, status int, body []byte) {
	ctx.Response.SetStatusCode(status)
	ctx.Response.Header.SetContentTypeBytes(contentTypeJSON)
	ctx.Response.SetBody(body)
}

// errBodyTooLarge ends a chunked request body that outgrows max_body_bytes.
var errBodyTooLarge = errors.New("request body too large")

// limitedReader passes a body through until more than left bytes came.
type limitedReader struct {
	r    io.Reader
	left int64
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if int64(len(p)) > l.left+1 {
		p = p[:l.left+1]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	if l.left < 0 {
		return 0, errBodyTooLarge
	}
	return n, err
}

func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(isBase62(c) || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

func isBase62(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}
