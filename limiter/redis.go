package limiter

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// OnError decides what a check does when the backend cannot answer.
type OnError int

const (
	// OnErrorAllow lets the request through (the default: fail open).
	OnErrorAllow OnError = iota
	// OnErrorDeny rejects the request with a RetryAfter of one second.
	OnErrorDeny
)

func (o OnError) String() string {
	if o == OnErrorDeny {
		return "deny"
	}
	return "allow"
}

// RedisOptions configures a Redis. The zero value is ready to use.
type RedisOptions struct {
	// KeyPrefix is put before the owner to form the Redis key; "" means "keygate:rl:".
	KeyPrefix string
	// Timeout bounds each check, round trip included; 0 means 50ms.
	Timeout time.Duration
	// OnError decides checks that fail; the zero value is OnErrorAllow.
	OnError OnError
	// Logger receives failures, at most one line per second; nil means discard.
	Logger *slog.Logger
	// Errors, if not nil, is called once per failed check (for a metric).
	Errors func()
	// Now returns the current time, used only to pace the failure log; the
	// buckets run on the Redis server's clock. nil means time.Now.
	Now func() time.Time
}

// Redis is a rate limiter shared by every node that uses the same Redis: one
// EVALSHA round trip per check, each bucket one key that expires once full.
// It is safe for concurrent use.
//
// The script reads the clock with Redis TIME rather than taking it from the
// caller, so nodes with skewed clocks still share one exact limit.
type Redis struct {
	client  redis.Scripter
	prefix  string
	timeout time.Duration
	onError OnError
	log     *slog.Logger
	errors  func()
	now     func() time.Time

	lastLog    atomic.Int64 // unix ns of the last failure logged
	suppressed atomic.Int64 // failures not logged since
}

// gcraScript runs one GCRA check in microseconds (Lua numbers are doubles,
// exact to 2^53: unix microseconds fit, nanoseconds would not). It mirrors
// gcra.decide. KEYS[1]: bucket; ARGV[1]: interval in µs; ARGV[2]: limit.
// It returns {allowed, remaining, reset µs, retry-after µs}.
var gcraScript = redis.NewScript(`
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local capacity = interval * tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
if tat > now + capacity then tat = now + capacity end
local nxt = tat + interval
if nxt - now <= capacity then
  redis.call('SET', KEYS[1], string.format('%.0f', nxt), 'PX', string.format('%.0f', math.ceil((nxt - now) / 1000)))
  return {1, math.floor((capacity - (nxt - now)) / interval), nxt - now, 0}
end
return {0, math.floor((capacity - (tat - now)) / interval), tat - now, nxt - now - capacity}
`)

// NewRedis returns a Redis that runs its checks on client (a *redis.Client,
// *redis.ClusterClient or *redis.Ring). The caller keeps ownership of client.
//
// The client must be made with ContextTimeoutEnabled: without it go-redis
// ignores the per-check Timeout and a hung Redis stalls each request for the
// client's ReadTimeout; NewRedis logs a warning when it can see this.
func NewRedis(client redis.Scripter, opts RedisOptions) *Redis {
	if opts.KeyPrefix == "" {
		opts.KeyPrefix = "keygate:rl:"
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 50 * time.Millisecond
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if c, ok := client.(*redis.Client); ok && !c.Options().ContextTimeoutEnabled {
		opts.Logger.Warn("redis client ignores context deadlines; rate limit checks are not bounded by the limiter timeout",
			slog.Duration("timeout", opts.Timeout))
	}
	return &Redis{
		client:  client,
		prefix:  opts.KeyPrefix,
		timeout: opts.Timeout,
		onError: opts.OnError,
		log:     opts.Logger,
		errors:  opts.Errors,
		now:     opts.Now,
	}
}

// Allow counts one request for owner against l. When Redis fails it returns
// the Result that OnError dictates together with an error wrapping
// ErrUnavailable, which callers may log or ignore; the failure has already
// been logged and passed to Errors.
func (r *Redis) Allow(ctx context.Context, owner string, l Limit) (Result, error) {
	if l.Unlimited() {
		return Result{Allowed: true}, nil
	}
	g := newGCRA(l, time.Microsecond)
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	v, err := gcraScript.Run(ctx, r.client, []string{r.prefix + owner}, g.interval, g.capacity/g.interval).Int64Slice()
	if err == nil && len(v) != 4 {
		err = fmt.Errorf("script returned %d values, want 4", len(v))
	}
	if err != nil {
		return r.fail(owner, err)
	}
	return Result{
		Allowed:    v[0] == 1,
		Limit:      l.Limit,
		Remaining:  v[1],
		Reset:      time.Duration(v[2]) * time.Microsecond,
		RetryAfter: time.Duration(v[3]) * time.Microsecond,
	}, nil
}

// fail applies OnError. While Redis is down the real state of the bucket
// is unknown, so the Result carries no limit (Limit 0): callers then send
// no RateLimit-* headers rather than invented ones. A denial still says
// when to retry.
func (r *Redis) fail(owner string, err error) (Result, error) {
	err = fmt.Errorf("rate limit %s in redis: %w: %w", owner, ErrUnavailable, err)
	if r.errors != nil {
		r.errors()
	}
	r.logFailure(owner, err)
	if r.onError == OnErrorDeny {
		return Result{RetryAfter: time.Second}, err
	}
	return Result{Allowed: true}, err
}

// logFailure logs at most one failure per second, so an outage does not
// turn every request into a log line; the count of the others goes along.
func (r *Redis) logFailure(owner string, err error) {
	now := r.now().UnixNano()
	last := r.lastLog.Load()
	if now-last < int64(time.Second) || !r.lastLog.CompareAndSwap(last, now) {
		r.suppressed.Add(1)
		return
	}
	r.log.Warn("rate limiter backend failed",
		slog.String("owner", owner),
		slog.String("on_error", r.onError.String()),
		slog.Int64("suppressed", r.suppressed.Swap(0)),
		slog.Any("err", err))
}

// Close releases nothing: the client belongs to the caller. It exists so
// both backends share a lifecycle.
func (r *Redis) Close() error { return nil }
