package proxy

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"unsafe"

	"github.com/valyala/fasthttp"

	"github.com/keygate/keygate/metrics"
)

// ForwardAuthOptions configure forward auth (SPEC §10): a reverse proxy
// the operator already runs (nginx auth_request, Caddy forward_auth,
// Traefik ForwardAuth, Envoy ext_authz) asks keygate whether to let each
// request through.
type ForwardAuthOptions struct {
	// Path is where the sub-requests come, on the proxy port, matching the
	// path itself and everything below it (Envoy appends the original path
	// to its path_prefix). "" turns forward auth off.
	Path string
	// LimitedStatus is the status of the answer to a request over its
	// owner's limits (a 429 otherwise); 0 means 429. nginx's auth_request
	// passes only 2xx, 401 and 403 on, so its configuration asks for 403
	// and turns that back into a 429 (examples/forward-auth/nginx).
	LimitedStatus int
}

// forwardAuth is the Proxy's forward-auth setup; its zero value is off.
type forwardAuth struct {
	path          []byte // without a trailing slash; nil = off
	limitedStatus int
	errHeader     []byte // <prefix>Error: the refusal's JSON body, for nginx
}

func newForwardAuth(o ForwardAuthOptions, prefix []byte) (forwardAuth, error) {
	var f forwardAuth
	if o.Path == "" {
		return f, nil
	}
	if !strings.HasPrefix(o.Path, "/") || strings.HasSuffix(o.Path, "/") || strings.ContainsAny(o.Path, "?#%* \t") {
		return f, fmt.Errorf("forward_auth.path: %q must be a plain path starting with / and not ending with it", o.Path)
	}
	f.path = []byte(o.Path)
	f.limitedStatus = o.LimitedStatus
	if f.limitedStatus == 0 {
		f.limitedStatus = fasthttp.StatusTooManyRequests
	}
	if f.limitedStatus < 400 || f.limitedStatus > 599 {
		return f, fmt.Errorf("forward_auth.limited_status: %d is not a 4xx or 5xx status", o.LimitedStatus)
	}
	f.errHeader = append(append([]byte(nil), prefix...), "Error"...)
	return f, nil
}

// Headers that describe the original request to a forward-auth sub-request.
// The X-Forwarded-* names (Caddy, Traefik) win over the X-Original-* ones
// (nginx's documented example).
var (
	hXForwardedMethod = []byte("X-Forwarded-Method")
	hXOriginalMethod  = []byte("X-Original-Method")
	hXForwardedURI    = []byte("X-Forwarded-Uri")
	hXOriginalURI     = []byte("X-Original-Uri")
)

// forwardAuth answers one forward-auth sub-request: 200 with an empty body,
// the identity headers (each one, empty when it does not apply) and the
// RateLimit-* headers when the original request may pass;
// otherwise the proxy's own refusal (status, JSON body, headers), plus the
// body again in the <prefix>Error header for proxies that cannot pass a
// sub-request's body on (nginx).
func (p *Proxy) forwardAuth(ctx *fasthttp.RequestCtx) {
	start := p.now()
	st := p.states.Get().(*reqState)
	result := p.authorize(ctx, st)
	p.states.Put(st)
	if p.m != nil {
		p.m.ForwardAuth(result)
		p.m.ObserveGateway(p.now().Sub(start))
	}
	if p.log.Enabled(context.Background(), slog.LevelDebug) {
		p.logForwardAuth(ctx, result)
	}
}

func (p *Proxy) authorize(ctx *fasthttp.RequestCtx, st *reqState) metrics.Result {
	h := &ctx.Request.Header
	uri, mayBePublic := p.originalURI(h)
	d, ok := p.decide(ctx, st, h, uri, mayBePublic)
	resp := &ctx.Response
	if !ok {
		if resp.StatusCode() == fasthttp.StatusTooManyRequests {
			resp.SetStatusCode(p.fwd.limitedStatus)
		}
		resp.Header.SetCanonical(p.fwd.errHeader, resp.Body())
		return d.result
	}
	resp.SetStatusCode(fasthttp.StatusOK)
	resp.Header.SetNoDefaultContentType(true)
	// Every identity header is answered, empty when it does not apply (no
	// org, a public path): a proxy that copies named headers onto the
	// request then overwrites a client's forged copy even where it would
	// not delete it (Caddy before 2.10, for one).
	for i, name := range p.idNames {
		var v []byte
		if d.e != nil {
			v = unsafe.Slice(unsafe.StringData(d.e.hdr[i]), len(d.e.hdr[i])) // only read
		}
		resp.Header.SetCanonical(name, v)
	}
	st.buf = setLimitHeaders(&resp.Header, d.res, st.buf)
	return d.result
}

// originalURI returns the request URI of the request the sub-request asks
// about: X-Forwarded-Uri, else X-Original-URI, else what follows the
// forward-auth path in the sub-request's own URI (Envoy's path_prefix). When
// X-Forwarded-Uri and X-Original-URI are both sent and differ, one of them
// may be the client's own and the other the proxy's, and keygate cannot
// tell which: the request is then never public (mayBePublic false), so a
// client-chosen URI can only cost a key check, never skip one.
func (p *Proxy) originalURI(h *fasthttp.RequestHeader) (uri []byte, mayBePublic bool) {
	fwd, orig := h.PeekCanonical(hXForwardedURI), h.PeekCanonical(hXOriginalURI)
	switch {
	case len(fwd) > 0:
		return fwd, len(orig) == 0 || bytes.Equal(fwd, orig)
	case len(orig) > 0:
		return orig, true
	}
	own := h.RequestURI()
	if len(own) > len(p.fwd.path) && own[len(p.fwd.path)] == '/' {
		return own[len(p.fwd.path):], true
	}
	return nil, false // nothing is known of it: a key is needed
}

// logForwardAuth logs one decision at debug level, with what the asking
// proxy said of the original request. The query is left out: it may hold
// the key.
func (p *Proxy) logForwardAuth(ctx *fasthttp.RequestCtx, result metrics.Result) {
	h := &ctx.Request.Header
	method := h.PeekCanonical(hXForwardedMethod)
	if len(method) == 0 {
		method = h.PeekCanonical(hXOriginalMethod)
	}
	if len(method) == 0 {
		method = h.Method()
	}
	uri, _ := p.originalURI(h)
	attrs := []slog.Attr{
		slog.String("method", string(method)),
		slog.String("host", string(h.PeekCanonical(hXForwardedHost))),
		slog.String("proto", string(h.PeekCanonical(hXForwardedProto))),
		slog.String("path", string(pathOf(uri))),
		slog.String("result", result.String()),
		slog.Int("status", ctx.Response.StatusCode()),
	}
	if id := ctx.Response.Header.PeekBytes(p.idNames[hdrKeyID]); len(id) > 0 {
		attrs = append(attrs, slog.String("key_id", string(id)))
	}
	p.log.LogAttrs(context.Background(), slog.LevelDebug, "forward auth", attrs...)
}
