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
)

// ErrStoreUnavailable wraps the error of a key lookup that failed for
// another reason than an unknown key (503 store_unavailable).
var ErrStoreUnavailable = errors.New("store_unavailable")

// Limiter counts a request against its owner's limit; *limiter.Memory and
// *limiter.Redis are Limiters. On a backend error it returns the Result its
// on_error policy decided, with the error.
type Limiter interface {
	Allow(ctx context.Context, owner string, l limiter.Limit) (limiter.Result, error)
}

// Recorder counts validated requests per key; *usage.Recorder is one.
type Recorder interface {
	Record(keyID string, allowed bool)
}

// GateOptions configure a Gate. Nil fields turn their step off.
type GateOptions struct {
	Limiter  Limiter          // nil: no rate limits
	Recorder Recorder         // nil: usage is not counted
	Metrics  *metrics.Metrics // nil: nothing is measured
	// Now returns the time keys expire against; nil means time.Now.
	Now func() time.Time
}

// Gate decides whether a token may pass: its shape, the cache or the store,
// the invalidation rules, the owner's rate limit; it counts usage for every
// request that presents a valid key. The proxy and the admin validation
// endpoint share it. Safe for concurrent use.
type Gate struct {
	svc     *keys.Service
	tokens  *keys.Tokens
	cache   *Cache
	enabled func(keys.Type) bool
	limiter Limiter
	usage   Recorder
	m       *metrics.Metrics
	now     func() time.Time
}

// NewGate returns a Gate over svc, looking keys up through cache.
func NewGate(svc *keys.Service, cache *Cache, opts GateOptions) *Gate {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Gate{
		svc:     svc,
		tokens:  svc.Tokens(),
		cache:   cache,
		enabled: svc.Enabled,
		limiter: opts.Limiter,
		usage:   opts.Recorder,
		m:       opts.Metrics,
		now:     opts.Now,
	}
}

// Check validates token and applies its owner's rate limit. It returns the
// identity and the limit's result, or one of keys.ErrInvalidKey,
// keys.ErrExpiredKey, limiter.ErrLimited (with the Result filled in for
// Retry-After) or an error wrapping ErrStoreUnavailable. A request with a
// valid key is counted in usage as allowed or rate limited, and every call
// is counted in Metrics by result. The returned Identity is shared: do not
// modify it.
func (g *Gate) Check(ctx context.Context, token string) (*keys.Identity, limiter.Result, error) {
	e, res, err := g.check(ctx, unsafe.Slice(unsafe.StringData(token), len(token)))
	if g.m != nil {
		g.m.Request(resultOf(err))
	}
	if err != nil {
		return nil, res, err
	}
	return e.id, res, nil
}

// check is Check for the proxy: token is only read, never kept, and the
// answer is the cache entry, with its precomputed header values. It does not
// count the request's result in Metrics (the proxy does, once it knows it).
func (g *Gate) check(ctx context.Context, token []byte) (*entry, limiter.Result, error) {
	switch f, _ := g.tokens.Check(unsafe.String(unsafe.SliceData(token), len(token))); f {
	case keys.FormatMalformed:
		return nil, limiter.Result{}, keys.ErrInvalidKey
	case keys.FormatForeign:
		if !g.svc.HasImported() {
			return nil, limiter.Result{}, keys.ErrInvalidKey
		}
	}
	now := g.now()
	hash := sha256.Sum256(token)
	e, from, err := g.cache.lookup(ctx, g.svc, &hash, now)
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
		return nil, limiter.Result{}, fmt.Errorf("%w: %w", ErrStoreUnavailable, err)
	}
	if e.id == nil {
		return nil, limiter.Result{}, keys.ErrInvalidKey
	}
	if err := e.id.Check(now, g.enabled); err != nil {
		return nil, limiter.Result{}, err
	}
	res := limiter.Result{Allowed: true}
	if g.limiter != nil && !e.limit.Unlimited() {
		var lerr error
		res, lerr = g.limiter.Allow(ctx, e.owner, e.limit)
		if lerr != nil && g.m != nil {
			g.m.LimiterError() // the limiter's on_error policy decided res
		}
	}
	if g.usage != nil {
		g.usage.Record(e.keyID, res.Allowed)
	}
	if !res.Allowed {
		return e, res, limiter.ErrLimited
	}
	return e, res, nil
}

// resultOf maps a Check error to its metrics result.
func resultOf(err error) metrics.Result {
	switch {
	case err == nil:
		return metrics.ResultAllowed
	case errors.Is(err, limiter.ErrLimited):
		return metrics.ResultRateLimited
	case errors.Is(err, keys.ErrExpiredKey):
		return metrics.ResultExpiredKey
	case errors.Is(err, keys.ErrInvalidKey):
		return metrics.ResultInvalidKey
	}
	return metrics.ResultStoreError
}
