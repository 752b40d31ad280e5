package proxy

import (
	"github.com/valyala/fasthttp"

	"github.com/keygate/keygate/metrics"
)

// expectKey is the user value key of the *decision expect made.
type expectKey struct{}

// expect decides a request that asked for 100 Continue on its headers alone:
// size, key and rate limit, the checks serve would make. A refused request
// gets its error answer at once, without 100 Continue and without its body
// being read (fasthttp then closes the connection); an allowed one carries
// its decision to serve (see decideOnce), so that it is counted once.
func (p *Proxy) expect(ctx *fasthttp.RequestCtx) int {
	req := &ctx.Request
	uri := req.Header.RequestURI()
	path := pathOf(uri)
	if p.portal != nil && underPath(path, p.portalPath) || p.fwd.path != nil && underPath(path, p.fwd.path) {
		return fasthttp.StatusContinue
	}
	st := p.states.Get().(*reqState)
	defer p.states.Put(st)
	var result metrics.Result
	if p.maxBody > 0 && int64(req.Header.ContentLength()) > p.maxBody {
		writeError(ctx, fasthttp.StatusRequestEntityTooLarge, p.errTooLarge)
		result = metrics.ResultTooLarge
	} else {
		// An absolute-form URI is checked as not public here, which only
		// asks more of it.
		d, ok := p.decide(ctx, st, &req.Header, uri, len(uri) > 0 && uri[0] == '/')
		if ok {
			if d.e != nil {
				d.cred = credential{} // may point into st, which goes back to the pool
				ctx.SetUserValue(expectKey{}, &d)
			}
			return fasthttp.StatusContinue
		}
		result = d.result
	}
	if p.m != nil {
		p.m.Request(result)
	}
	return ctx.Response.StatusCode()
}

// decideOnce is decide for serve: the decision expect already made for this
// request, or a fresh one.
func (p *Proxy) decideOnce(ctx *fasthttp.RequestCtx, st *reqState, h *fasthttp.RequestHeader, uri []byte) (decision, bool) {
	if d, ok := ctx.UserValue(expectKey{}).(*decision); ok {
		return *d, true
	}
	return p.decide(ctx, st, h, uri, true)
}
