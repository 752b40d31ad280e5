package limiter

import (
	"context"
	"hash/maphash"
	"runtime"
	"sync"
	"time"
)

// MemoryOptions configures a Memory. The zero value is ready to use.
type MemoryOptions struct {
	// Shards is the number of independently locked maps, rounded up to a power
	// of two; 0 means max(64, GOMAXPROCS*16).
	Shards int
	// IdleTTL is how long an owner whose bucket is full again stays in memory
	// before the background sweep drops it; it is also the sweep interval.
	// Dropping a full bucket loses nothing, so this only trades memory for
	// re-inserts. 0 means 10 minutes.
	IdleTTL time.Duration
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// Memory is a rate limiter for a single node, keeping one int64 per active
// owner in sharded maps. It is safe for concurrent use. Create it with
// NewMemory and stop its sweep with Close.
type Memory struct {
	shards  []memoryShard
	mask    uint64
	seed    maphash.Seed
	now     func() time.Time
	epoch   time.Time // TATs are nanoseconds since epoch, so monotonic time is kept
	idleTTL time.Duration

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

type memoryShard struct {
	mu   sync.Mutex
	tats map[string]int64 // owner → theoretical arrival time, ns since Memory.epoch
	peak int              // largest len(tats) since the map was last rebuilt
	_    [40]byte         // keep neighbouring shards' mutexes off one cache line
}

// NewMemory returns a Memory and starts its eviction sweep.
func NewMemory(opts MemoryOptions) *Memory {
	n := opts.Shards
	if n <= 0 {
		n = max(64, runtime.GOMAXPROCS(0)*16)
	}
	size := 1
	for size < n {
		size <<= 1
	}
	if opts.IdleTTL <= 0 {
		opts.IdleTTL = 10 * time.Minute
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	m := &Memory{
		shards:  make([]memoryShard, size),
		mask:    uint64(size - 1),
		seed:    maphash.MakeSeed(),
		now:     opts.Now,
		epoch:   opts.Now(),
		idleTTL: opts.IdleTTL,
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	for i := range m.shards {
		m.shards[i].tats = make(map[string]int64)
	}
	go m.sweepLoop()
	return m
}

// Allow counts one request for owner against l. It never returns an error.
// owner is kept as a map key, so it must be an ordinary (immutable) string.
func (m *Memory) Allow(_ context.Context, owner string, l Limit) (Result, error) {
	if l.Unlimited() {
		return Result{Allowed: true}, nil
	}
	return m.allowHashed(owner, m.Hash(owner), l, m.now()), nil
}

// Hash returns the hash of owner that AllowHashed takes. It is the same
// for the same owner for the Memory's lifetime (and differs between
// Memories), so a caller that checks one owner many times, such as a cache
// entry, can compute it once.
func (m *Memory) Hash(owner string) uint64 { return maphash.String(m.seed, owner) }

// AllowHashed is Allow at now for a caller that holds owner's Hash and a
// reading of the Memory's clock (MemoryOptions.Now): it saves hashing owner
// and reading the clock again. h must be m.Hash(owner); any other value
// could give the owner two buckets, and so twice its limit.
func (m *Memory) AllowHashed(owner string, h uint64, l Limit, now time.Time) Result {
	return m.allowHashed(owner, h, l, now)
}

func (m *Memory) allow(owner string, l Limit, now time.Time) Result {
	if l.Unlimited() {
		return Result{Allowed: true}
	}
	return m.allowHashed(owner, m.Hash(owner), l, now)
}

func (m *Memory) allowHashed(owner string, h uint64, l Limit, now time.Time) Result {
	if l.Unlimited() {
		return Result{Allowed: true}
	}
	g := newGCRA(l, time.Nanosecond)
	t := int64(now.Sub(m.epoch))
	s := &m.shards[h&m.mask]

	s.mu.Lock()
	tat, ok := s.tats[owner]
	if !ok {
		tat = t
	}
	next, allowed, remaining, reset, retry := g.decide(tat, t)
	if allowed {
		s.tats[owner] = next
		if !ok && len(s.tats) > s.peak {
			s.peak = len(s.tats)
		}
	}
	s.mu.Unlock()

	return Result{
		Allowed:    allowed,
		Limit:      l.Limit,
		Remaining:  remaining,
		Reset:      time.Duration(reset),
		RetryAfter: time.Duration(retry),
	}
}

// Close stops the eviction sweep. It is safe to call more than once; Allow
// keeps working afterwards, without eviction.
func (m *Memory) Close() error {
	m.closeOnce.Do(func() {
		close(m.stop)
		<-m.done
	})
	return nil
}

func (m *Memory) sweepLoop() {
	defer close(m.done)
	t := time.NewTicker(m.idleTTL)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
			m.sweep(m.now())
		}
	}
}

// sweep drops owners whose bucket has been full for at least IdleTTL at now.
func (m *Memory) sweep(now time.Time) {
	cutoff := int64(now.Sub(m.epoch) - m.idleTTL)
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		for owner, tat := range s.tats {
			if tat <= cutoff {
				delete(s.tats, owner)
			}
		}
		// Go maps never shrink; rebuild one that has emptied out so a past
		// flood of owners does not pin its memory.
		if len(s.tats) <= s.peak/4 && s.peak > 64 {
			fresh := make(map[string]int64, len(s.tats))
			for owner, tat := range s.tats {
				fresh[owner] = tat
			}
			s.tats = fresh
			s.peak = len(fresh)
		}
		s.mu.Unlock()
	}
}

// len returns the number of owners held, for tests.
func (m *Memory) len() int {
	n := 0
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		n += len(s.tats)
		s.mu.Unlock()
	}
	return n
}
