package proxy

import (
	"context"

	"github.com/valyala/fasthttp"

	"github.com/keygate/keygate/metrics"
)

// decision is what decide made of a request.
type decision struct {
	e      *entry     // the key's cache entry; nil on a public path
	res    Decision   // the rate limit's and quota's answers, for RateLimit-* and X-Quota-* headers
	cred   credential // the key presented, if looked for
	result metrics.Result
}

// decide runs SPEC §3 steps 1 to 5 for the proxy and for forward auth
// alike: the public paths (when mayBePublic), the key from h or from uri's
// query, the gate. uri is the request URI the decision is about. When the
// request is refused, decide writes the refusal (status, JSON body, headers)
// to ctx.Response and returns false. A credential on a public path is
// extracted, unchecked, only so that the caller can remove it.
func (p *Proxy) decide(ctx *fasthttp.RequestCtx, st *reqState, h *fasthttp.RequestHeader, uri []byte, mayBePublic bool) (decision, bool) {
	d := decision{result: metrics.ResultPublic}
	if mayBePublic && p.public.match(pathOf(uri), &st.buf) {
		if p.strip {
			d.cred = p.ext.extract(h, uri, st.buf[:0])
		}
		return d, true
	}
	d.cred = p.ext.extract(h, uri, st.buf[:0])
	if d.cred.src == credNone {
		ctx.Response.Header.SetCanonical(hWWWAuthenticate, challengeMissing)
		writeError(ctx, fasthttp.StatusUnauthorized, errMissingKey)
		d.result = metrics.ResultMissingKey
		return d, false
	}
	var err error
	// Not ctx: fasthttp cancels it when shutdown begins, and requests
	// under way should still finish.
	d.e, d.res, err = p.gate.check(context.Background(), d.cred.token, 1)
	if err != nil {
		d.result = p.reject(ctx, st, err, d.res)
		return d, false
	}
	d.result = metrics.ResultAllowed
	return d, true
}
