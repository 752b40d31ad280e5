package proxy

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/keygate/keygate/metrics"
)

// ops holds what the proxy port does for operators rather than for API
// callers: the load balancer health check and the access log. It lives in
// its own file so the request path in proxy.go stays as it was.
type ops struct {
	healthPath []byte                          // nil: no health endpoint
	health     func(ctx context.Context) error // nil: always healthy
	access     *AccessLog                      // nil: no access log
}

var (
	healthOK          = []byte(`{"status":"ok"}`)
	healthUnavailable = []byte(`{"status":"unavailable"}`)
)

func (p *Proxy) initOps(opts Options) error {
	if h := opts.HealthPath; h != "" {
		if !strings.HasPrefix(h, "/") {
			return fmt.Errorf("proxy.health_path: %q must start with /", h)
		}
		p.ops.healthPath = []byte(h)
		p.ops.health = opts.Health
	}
	p.ops.access = opts.AccessLog
	return nil
}

// isHealth reports whether the request is for the health endpoint: the
// exact path, with or without a query. A prefix test first, so other
// requests pay one comparison of a few bytes.
func (p *Proxy) isHealth(ctx *fasthttp.RequestCtx) bool {
	uri := ctx.Request.Header.RequestURI()
	if p.ops.healthPath == nil || !bytes.HasPrefix(uri, p.ops.healthPath) {
		return false
	}
	rest := uri[len(p.ops.healthPath):]
	return len(rest) == 0 || rest[0] == '?' || rest[0] == '#'
}

// serveHealth answers a load balancer's probe: 200 when the node can serve
// (the same check as the admin port's /readyz), 503 otherwise. It needs no
// key and never reaches the upstream; the reason stays in the log.
func (p *Proxy) serveHealth(ctx *fasthttp.RequestCtx) {
	ctx.Response.Header.Set("Cache-Control", "no-store")
	if !ctx.IsGet() && !ctx.IsHead() {
		ctx.Response.Header.Set("Allow", "GET, HEAD")
		writeError(ctx, fasthttp.StatusMethodNotAllowed, errorBody("method_not_allowed", "the health endpoint answers GET and HEAD"))
		return
	}
	if p.ops.health != nil {
		c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := p.ops.health(c); err != nil {
			p.log.Warn("health check failed", slog.Any("err", err))
			writeError(ctx, fasthttp.StatusServiceUnavailable, healthUnavailable)
			return
		}
	}
	writeError(ctx, fasthttp.StatusOK, healthOK)
}

// AccessLog writes one structured line per proxied request (one in every
// Sample requests): method, path without the query, status, result, key
// id, client address, total and upstream durations. The key itself is
// never logged, nor the query string, which may carry it.
type AccessLog struct {
	log   *slog.Logger
	every uint64
	n     atomic.Uint64
}

// NewAccessLog returns an AccessLog writing to log one request in every
// (every <= 1: all of them).
func NewAccessLog(log *slog.Logger, every int) *AccessLog {
	if every < 1 {
		every = 1
	}
	return &AccessLog{log: log, every: uint64(every)}
}

// record logs one request if it is sampled. keyID is "" when no key was
// found; total and upstream are the request's durations.
func (a *AccessLog) record(ctx *fasthttp.RequestCtx, keyID string, res metrics.Result, total, upstream time.Duration) {
	if a.every > 1 && a.n.Add(1)%a.every != 0 {
		return
	}
	a.log.LogAttrs(context.Background(), slog.LevelInfo, "request",
		slog.String("method", string(ctx.Method())),
		slog.String("path", string(pathOf(ctx.Request.Header.RequestURI()))),
		slog.Int("status", ctx.Response.StatusCode()),
		slog.String("result", res.String()),
		slog.String("key_id", keyID),
		slog.String("client", ctx.RemoteIP().String()),
		slog.Duration("duration", total),
		slog.Duration("upstream", upstream),
	)
}
