// Package quota enforces per-owner request allowances over calendar periods
// (SPEC §12), counting in memory or in Redis and persisting use to the store.
package quota

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/keygate/keygate/keys"
)

// ErrExceeded is returned by callers that refuse a request because its
// owner's quota is used up (429 quota_exceeded).
var ErrExceeded = errors.New("quota_exceeded")

// ErrUnavailable is wrapped into the error Use returns when the counter
// (Redis, or the store for a first load) could not answer; the Result then
// follows DenyOnError.
var ErrUnavailable = errors.New("quota backend unavailable")

// Store persists use: AddQuotaUsage adds counts to what is stored (it is
// not idempotent, and must not keep counts after it returns) and QuotaUsed
// returns the sum stored for one owner's period. *keys.SQLite is one.
type Store interface {
	QuotaUsed(ctx context.Context, owner string, p keys.QuotaPeriod, start int64) (int64, error)
	AddQuotaUsage(ctx context.Context, counts []keys.QuotaCount) error
}

// Options configure an Engine. The zero value counts in memory.
type Options struct {
	// Redis, when set, holds the counters shared by every node (one EVALSHA
	// round trip per check); nil counts in this process's memory.
	Redis redis.Scripter
	// KeyPrefix starts the Redis keys; "" means "keygate:q:".
	KeyPrefix string
	// Timeout bounds each Redis round trip; 0 means 50ms.
	Timeout time.Duration
	// DenyOnError refuses requests whose quota could not be checked; the
	// default lets them through (and still counts them in the store).
	DenyOnError bool
	// FlushInterval is the time between background flushes of use to the
	// store; 0 means 1s.
	FlushInterval time.Duration
	// Logger receives failures, at most one line per second; nil discards them.
	Logger *slog.Logger
	// Errors, if not nil, is called once per failed check (for a metric).
	Errors func()
	// Now returns the time that places a request in its period; nil means time.Now.
	Now func() time.Time
	// OnExhausted, if not nil, is called when a Use takes owner's count to
	// its limit: once per period and limit (with Redis, on the one node
	// whose check crossed it). It runs on the request's goroutine, so it
	// must not block.
	OnExhausted func(owner string, q keys.Quota, r Result)
}

// Result is the outcome of one check, or an owner's standing.
type Result struct {
	// Allowed reports whether the request may proceed.
	Allowed bool
	// Limit is the quota applied; 0 means none, and then the other fields
	// are zero and callers send no X-Quota-* headers.
	Limit  int64
	Period keys.QuotaPeriod
	// Used is the count after this request, Remaining what is left (≥ 0).
	Used, Remaining int64
	// ResetsAt is when the quota refills (unix seconds), Reset the time
	// until then; both 0 for PeriodTotal, which never refills.
	ResetsAt int64
	Reset    time.Duration
}

type window struct{ start, end int64 }

// window returns Window(p, now) through the cache.
func (e *Engine) window(p keys.QuotaPeriod, now time.Time) (start, end int64) {
	if p != keys.PeriodDay && p != keys.PeriodMonth {
		return Window(p, now)
	}
	t := now.Unix()
	if w := e.windows[p].Load(); w != nil && t >= w.start && t < w.end {
		return w.start, w.end
	}
	start, end = Window(p, now)
	e.windows[p].Store(&window{start, end})
	return start, end
}

// countKey names one owner's period.
type countKey struct {
	owner  string
	period keys.QuotaPeriod
	start  int64
}

// state is an owner's count in its current period (memory counting).
type state struct {
	period keys.QuotaPeriod
	start  int64
	used   int64
}

const shardCount = 64

type shard struct {
	mu      sync.Mutex
	states  map[string]state   // memory counting only: owner → current period
	pending map[countKey]int64 // use not yet flushed to the store
	_       [32]byte
}

// Engine checks and counts quota use. With memory counting it is exact for
// one node; with Redis it is exact for every node sharing the Redis. Use is
// written to the store in batches by Flush (in the background after Start,
// and by Close), so a crash forgives at most one flush interval of use.
// Safe for concurrent use; create it with New.
type Engine struct {
	store    Store
	redis    redis.Scripter
	prefix   string
	timeout  time.Duration
	deny     bool
	interval time.Duration
	log      *slog.Logger
	errors   func()
	now      func() time.Time
	seed     maphash.Seed

	onExhausted func(owner string, q keys.Quota, r Result)

	shards [shardCount]shard

	// windows caches the current period of each kind, so a check computes
	// calendar dates only when a period ends.
	windows [4]atomic.Pointer[window]

	// flushMu serialises flushes and first loads, so that a load sees each
	// count either in the store or in pending, never in neither or both.
	flushMu sync.Mutex
	batch   []keys.QuotaCount

	lastLog    atomic.Int64
	suppressed atomic.Int64

	mu      sync.Mutex // guards started, closed
	started bool
	closed  bool
	stop    chan struct{}
	done    chan struct{}
}

// New returns an Engine persisting use to store.
func New(store Store, opts Options) *Engine {
	if opts.KeyPrefix == "" {
		opts.KeyPrefix = "keygate:q:"
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 50 * time.Millisecond
	}
	if opts.FlushInterval <= 0 {
		opts.FlushInterval = time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	e := &Engine{
		store:    store,
		redis:    opts.Redis,
		prefix:   opts.KeyPrefix,
		timeout:  opts.Timeout,
		deny:     opts.DenyOnError,
		interval: opts.FlushInterval,
		log:      opts.Logger,
		errors:   opts.Errors,
		now:      opts.Now,
		seed:     maphash.MakeSeed(),

		onExhausted: opts.OnExhausted,
		stop:        make(chan struct{}),
		done:        make(chan struct{}),
	}
	for i := range e.shards {
		e.shards[i].states = make(map[string]state)
		e.shards[i].pending = make(map[countKey]int64)
	}
	return e
}

func (e *Engine) shard(owner string) *shard {
	return &e.shards[maphash.String(e.seed, owner)&(shardCount-1)]
}

// Use counts cost units of owner's quota q, unless that would take it past
// its limit: then nothing is counted and the Result is not Allowed. A
// request either uses all of cost or nothing. owner is kept as a map key, so
// it must be an ordinary (immutable) string. On a backend failure Use
// returns the Result DenyOnError dictates with an error wrapping
// ErrUnavailable, already logged.
func (e *Engine) Use(ctx context.Context, owner string, q keys.Quota, cost int64) (Result, error) {
	if q.None() {
		return Result{Allowed: true}, nil
	}
	now := e.now()
	start, end := e.window(q.Period, now)
	k := countKey{owner: owner, period: q.Period, start: start}
	var (
		used    int64
		allowed bool
		err     error
	)
	if e.redis != nil {
		used, allowed, err = e.useRedis(ctx, k, q.Limit, cost, end, now)
	} else {
		used, allowed, err = e.useMemory(ctx, k, q.Limit, cost)
	}
	res := result(q, used, end, now)
	res.Allowed = allowed
	if err == nil && allowed && used >= q.Limit && used-cost < q.Limit && e.onExhausted != nil {
		e.onExhausted(owner, q, res)
	}
	if err != nil {
		err = e.fail(owner, err)
		if e.deny {
			// Refused for a second, not until the refill: the real count is unknown.
			res.Allowed, res.Remaining, res.ResetsAt, res.Reset = false, 0, now.Unix()+1, time.Second
			return res, err
		}
		res.Allowed = true
		e.addPending(k, cost) // the store still learns of it
	}
	return res, err
}

// Peek returns owner's standing under q without counting anything.
func (e *Engine) Peek(ctx context.Context, owner string, q keys.Quota) (Result, error) {
	if q.None() {
		return Result{Allowed: true}, nil
	}
	now := e.now()
	start, end := e.window(q.Period, now)
	k := countKey{owner: owner, period: q.Period, start: start}
	var (
		used int64
		err  error
	)
	if e.redis != nil {
		used, err = e.peekRedis(ctx, k)
	} else {
		s := e.shard(owner)
		s.mu.Lock()
		st, ok := s.states[owner]
		s.mu.Unlock()
		if ok && st.period == k.period && st.start == k.start {
			used = st.used
		} else {
			used, err = e.load(ctx, k)
		}
	}
	if err != nil {
		return Result{}, fmt.Errorf("quota of %s: %w", owner, err)
	}
	res := result(q, used, end, now)
	res.Allowed = used < q.Limit
	return res, nil
}

func result(q keys.Quota, used, end int64, now time.Time) Result {
	r := Result{Limit: q.Limit, Period: q.Period, Used: used, Remaining: max(q.Limit-used, 0), ResetsAt: end}
	if end > 0 {
		r.Reset = time.Unix(end, 0).Sub(now)
	}
	return r
}

// useMemory is Use's exact check-and-count on this node.
func (e *Engine) useMemory(ctx context.Context, k countKey, limit, cost int64) (int64, bool, error) {
	s := e.shard(k.owner)
	s.mu.Lock()
	st, ok := s.states[k.owner]
	if !ok || st.period != k.period || st.start != k.start {
		// First use in this process or a new period: resume from the store.
		s.mu.Unlock()
		base, err := e.load(ctx, k)
		if err != nil {
			return 0, false, err
		}
		s.mu.Lock()
		st, ok = s.states[k.owner]
		if !ok || st.period != k.period || st.start != k.start {
			st = state{period: k.period, start: k.start, used: base}
		}
	}
	if st.used+cost > limit {
		s.states[k.owner] = st
		s.mu.Unlock()
		return st.used, false, nil
	}
	st.used += cost
	s.states[k.owner] = st
	s.pending[k] += cost
	s.mu.Unlock()
	return st.used, true, nil
}

// load returns the use of k known to this node: what the store holds plus
// what is pending here.
func (e *Engine) load(ctx context.Context, k countKey) (int64, error) {
	e.flushMu.Lock()
	defer e.flushMu.Unlock()
	used, err := e.store.QuotaUsed(ctx, k.owner, k.period, k.start)
	if err != nil {
		return 0, fmt.Errorf("%w: load from store: %w", ErrUnavailable, err)
	}
	s := e.shard(k.owner)
	s.mu.Lock()
	used += s.pending[k]
	s.mu.Unlock()
	return used, nil
}

func (e *Engine) addPending(k countKey, n int64) {
	s := e.shard(k.owner)
	s.mu.Lock()
	s.pending[k] += n
	s.mu.Unlock()
}

// Flush writes all pending use to the store in one batch. On failure the
// use stays pending for the next flush.
func (e *Engine) Flush(ctx context.Context) error {
	e.flushMu.Lock()
	defer e.flushMu.Unlock()
	batch := e.batch[:0]
	for i := range e.shards {
		s := &e.shards[i]
		s.mu.Lock()
		for k, n := range s.pending {
			if n != 0 {
				batch = append(batch, keys.QuotaCount{Owner: k.owner, Period: k.period, Start: k.start, Used: n})
			}
		}
		clear(s.pending)
		s.mu.Unlock()
	}
	if len(batch) == 0 {
		return nil
	}
	err := e.store.AddQuotaUsage(ctx, batch)
	if err != nil {
		for _, c := range batch {
			e.addPending(countKey{owner: c.Owner, period: c.Period, start: c.Start}, c.Used)
		}
		err = fmt.Errorf("flush quota use: %w", err)
	}
	clear(batch)
	e.batch = batch[:0]
	return err
}

// Start flushes in the background every FlushInterval until Close.
func (e *Engine) Start() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.started || e.closed {
		return
	}
	e.started = true
	go e.loop()
}

func (e *Engine) loop() {
	defer close(e.done)
	t := time.NewTicker(e.interval)
	defer t.Stop()
	for {
		select {
		case <-e.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			if err := e.Flush(ctx); err != nil {
				e.log.Warn("quota flush failed; use kept for the next flush", slog.Any("err", err))
			}
			cancel()
		}
	}
}

// Close stops the background flush and writes what is pending, so a clean
// shutdown loses no use. It is safe to call more than once.
func (e *Engine) Close(ctx context.Context) error {
	e.mu.Lock()
	started, closed := e.started, e.closed
	e.closed = true
	e.mu.Unlock()
	if started && !closed {
		close(e.stop)
		<-e.done
	}
	return e.Flush(ctx)
}

// fail counts and logs a failed check, at most one log line per second.
func (e *Engine) fail(owner string, err error) error {
	if !errors.Is(err, ErrUnavailable) {
		err = fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	err = fmt.Errorf("quota of %s: %w", owner, err)
	if e.errors != nil {
		e.errors()
	}
	now := e.now().UnixNano()
	last := e.lastLog.Load()
	if now-last < int64(time.Second) || !e.lastLog.CompareAndSwap(last, now) {
		e.suppressed.Add(1)
		return err
	}
	e.log.Warn("quota check failed", slog.String("owner", owner), slog.Bool("deny", e.deny),
		slog.Int64("suppressed", e.suppressed.Swap(0)), slog.Any("err", err))
	return err
}
