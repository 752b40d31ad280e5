package proxy

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"
	"unsafe"

	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/limiter"
	"github.com/keygate/keygate/metrics"
	"github.com/keygate/keygate/quota"
)

// ErrStoreUnavailable wraps the error of a key lookup that failed for
// another reason than an unknown key (503 store_unavailable); it is
// keys.ErrStoreUnavailable.
var ErrStoreUnavailable = keys.ErrStoreUnavailable

// Limiter counts a request against its owner's limit; *limiter.Memory and
// *limiter.Redis are Limiters. On a backend error it returns the Result its
// on_error policy decided, with the error.
type Limiter interface {
	Allow(ctx context.Context, owner string, l limiter.Limit) (limiter.Result, error)
}

// Quotas counts a request against its owner's quota; *quota.Engine is one.
// On a backend error it returns the Result its policy decided, with the error.
type Quotas interface {
	Use(ctx context.Context, owner string, q keys.Quota, cost int64) (quota.Result, error)
}

// Recorder counts validated requests per key; *usage.Recorder is one.
type Recorder interface {
	Record(keyID string, allowed bool)
}

// hashedRecorder is a Recorder that takes a key id's hash, computed once
// per cache entry, and the gate's reading of the clock; *usage.Recorder is
// one. NewGate looks for it, so other Recorders keep the plain Record.
type hashedRecorder interface {
	Hash(keyID string) uint64
	RecordHashed(keyID string, h uint64, allowed bool, now time.Time)
}

// hashedLimiter is a Limiter that never fails and takes an owner's hash,
// computed once per cache entry, and the gate's reading of the clock;
// *limiter.Memory is one. NewGate looks for it, so other Limiters (Redis)
// keep the plain Allow.
type hashedLimiter interface {
	Hash(owner string) uint64
	AllowHashed(owner string, h uint64, l limiter.Limit, now time.Time) limiter.Result
}

// hashers compute, once per cache entry, what a gate's recorder and limiter
// would otherwise hash on every request. Each Gate has its own, and an
// entry records which one made its hashes, so that a gate never uses
// hashes another gate's recorder or limiter made (gates may share a Cache).
type hashers struct {
	usage func(keyID string) uint64 // nil: the recorder takes no hash
	limit func(owner string) uint64 // nil: the limiter takes no hash
}

// gateSource is the Source a Gate looks keys up through: its service, and
// the hashers its entries are made with (nil: none).
type gateSource struct {
	*keys.Service
	hs *hashers
}

// GateOptions configure a Gate. Nil fields turn their step off.
type GateOptions struct {
	Limiter  Limiter          // nil: no rate limits
	Quotas   Quotas           // nil: no quotas
	Recorder Recorder         // nil: usage is not counted
	Metrics  *metrics.Metrics // nil: nothing is measured
	// Now returns the time keys expire against; nil means time.Now. The
	// gate hands its reading to a Recorder or Limiter that takes one
	// (*usage.Recorder, *limiter.Memory) instead of letting it read the
	// clock again, so it must be their clock too.
	Now func() time.Time
}

// Gate decides whether a token may pass: its shape, the cache or the store,
// the invalidation rules, the owner's rate limit; it counts usage for every
// request that presents a valid key. The proxy and the admin validation
// endpoint share it. Safe for concurrent use.
type Gate struct {
	svc     *keys.Service
	src     gateSource // svc, as the cache's Source
	tokens  *keys.Tokens
	cache   *Cache
	enabled func(keys.Type) bool
	limiter Limiter
	hlim    hashedLimiter // limiter, when it is one
	quotas  Quotas
	usage   Recorder
	hrec    hashedRecorder // usage, when it is one
	m       *metrics.Metrics
	now     func() time.Time
}

// NewGate returns a Gate over svc, looking keys up through cache.
func NewGate(svc *keys.Service, cache *Cache, opts GateOptions) *Gate {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	g := &Gate{
		svc:     svc,
		src:     gateSource{Service: svc},
		tokens:  svc.Tokens(),
		cache:   cache,
		enabled: svc.Enabled,
		limiter: opts.Limiter,
		quotas:  opts.Quotas,
		usage:   opts.Recorder,
		m:       opts.Metrics,
		now:     opts.Now,
	}
	var hs hashers
	if r, ok := opts.Recorder.(hashedRecorder); ok {
		g.hrec, hs.usage = r, r.Hash
	}
	if l, ok := opts.Limiter.(hashedLimiter); ok {
		g.hlim, hs.limit = l, l.Hash
	}
	if g.hrec != nil || g.hlim != nil {
		g.src.hs = &hs
	}
	return g
}

// Decision is what the gate's limits said about one request: the rate
// limit's result and, when the owner has a quota, the quota's (Limit 0
// otherwise, and then no X-Quota-* headers are sent).
type Decision struct {
	Rate  limiter.Result
	Quota quota.Result
}

// Check validates token, applies its owner's rate limit and then uses one
// unit of its owner's quota. See CheckCost.
func (g *Gate) Check(ctx context.Context, token string) (*keys.Identity, limiter.Result, error) {
	id, res, _, err := g.CheckCost(ctx, token, 1)
	return id, res, err
}

// CheckCost validates token, applies its owner's rate limit and, if the
// request passes it, uses cost units of its owner's quota. It returns the
// identity and the limits' results, or one of keys.ErrInvalidKey,
// keys.ErrExpiredKey, limiter.ErrLimited, quota.ErrExceeded (with the
// results filled in for Retry-After) or an error wrapping
// ErrStoreUnavailable. A request with a valid key is counted in usage as
// allowed or refused (rate limited or over quota), and every call is
// counted in Metrics by result. The returned Identity is shared: do not
// modify it.
func (g *Gate) CheckCost(ctx context.Context, token string, cost int64) (*keys.Identity, limiter.Result, quota.Result, error) {
	e, d, err := g.check(ctx, unsafe.Slice(unsafe.StringData(token), len(token)), cost)
	if g.m != nil {
		g.m.Request(resultOf(err))
	}
	if err != nil {
		return nil, d.Rate, d.Quota, err
	}
	return e.id, d.Rate, d.Quota, nil
}

// check is CheckCost for the proxy (and forward auth): token is only read,
// never kept, and the answer is the cache entry, with its precomputed header
// values. It does not count the request's result in Metrics (the caller
// does, once it knows it). Rate-limited and refused requests use no quota.
func (g *Gate) check(ctx context.Context, token []byte, cost int64) (*entry, Decision, error) {
	var d Decision
	switch f, _ := g.tokens.Check(unsafe.String(unsafe.SliceData(token), len(token))); f {
	case keys.FormatMalformed:
		return nil, d, keys.ErrInvalidKey
	case keys.FormatForeign:
		if !g.svc.HasImported() {
			return nil, d, keys.ErrInvalidKey
		}
	}
	now := g.now()
	hash := sha256.Sum256(token)
	e, from, err := g.cache.lookup(ctx, &g.src, &hash, now)
	if g.m != nil {
		switch {
		case from == fromCache && e.id == nil:
			g.m.NegativeHit()
		case from == fromCache:
			g.m.CacheHit()
		default:
			g.m.CacheMiss()
			if from == fromStore {
				g.m.StoreLookup()
			}
			if err != nil {
				g.m.StoreError()
			}
		}
	}
	if err != nil {
		return nil, d, fmt.Errorf("%w: %w", ErrStoreUnavailable, err)
	}
	if e.id == nil {
		return nil, d, keys.ErrInvalidKey
	}
	if err := e.pre.Check(now, g.enabled); err != nil {
		return nil, d, err
	}
	// e's hashes are of use only if this gate's recorder and limiter made them.
	hashed := e.hashedBy != nil && e.hashedBy == g.src.hs
	d.Rate = limiter.Result{Allowed: true}
	switch {
	case g.limiter == nil || e.limit.Unlimited():
	case hashed && g.hlim != nil:
		d.Rate = g.hlim.AllowHashed(e.owner, e.limitHash, e.limit, now)
	default:
		var lerr error
		d.Rate, lerr = g.limiter.Allow(ctx, e.owner, e.limit)
		if lerr != nil && g.m != nil {
			g.m.LimiterError() // the limiter's on_error policy decided res
		}
	}
	d.Quota.Allowed = true
	if d.Rate.Allowed && g.quotas != nil && !e.quota.None() {
		// Errors were logged and counted by the engine; its policy decided.
		d.Quota, _ = g.quotas.Use(ctx, e.owner, e.quota, cost)
	}
	allowed := d.Rate.Allowed && d.Quota.Allowed
	switch {
	case g.usage == nil:
	case hashed && g.hrec != nil:
		g.hrec.RecordHashed(e.keyID, e.usageHash, allowed, now)
	default:
		g.usage.Record(e.keyID, allowed)
	}
	switch {
	case !d.Rate.Allowed:
		return e, d, limiter.ErrLimited
	case !d.Quota.Allowed:
		return e, d, quota.ErrExceeded
	}
	return e, d, nil
}

// resultOf maps a Check error to its metrics result.
func resultOf(err error) metrics.Result {
	switch {
	case err == nil:
		return metrics.ResultAllowed
	case errors.Is(err, limiter.ErrLimited):
		return metrics.ResultRateLimited
	case errors.Is(err, quota.ErrExceeded):
		return metrics.ResultQuotaExceeded
	case errors.Is(err, keys.ErrExpiredKey):
		return metrics.ResultExpiredKey
	case errors.Is(err, keys.ErrInvalidKey):
		return metrics.ResultInvalidKey
	}
	return metrics.ResultStoreError
}
