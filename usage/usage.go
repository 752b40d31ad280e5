// Package usage counts requests per key and minute in memory and flushes the
// counts to the store in batches.
package usage

import (
	"context"
	"fmt"
	"hash/maphash"
	"log/slog"
	"sync"
	"time"

	"github.com/keygate/keygate/keys"
)

// Sink stores usage counts; every keys.UsageStore is one. AddUsage adds counts to
// what is stored (it is not idempotent) and must not keep counts after it
// returns: the Recorder reuses the slice.
type Sink interface {
	AddUsage(ctx context.Context, counts []keys.UsageCount) error
}

// Options configure a Recorder. The zero value is usable.
type Options struct {
	// FlushInterval is the time between background flushes; 0 means 1s.
	FlushInterval time.Duration
	// Logger receives flush failures; nil discards them.
	Logger *slog.Logger
	// Now returns the time a request is counted at; nil means time.Now.
	Now func() time.Time
	// OnFlush, if not nil, is called after every flush that had counts to
	// write, with its duration, the number of (key, minute) counts in the
	// batch and the sink's error. It must be fast and must not call Flush.
	OnFlush func(d time.Duration, n int, err error)
}

// flushTimeout bounds one background flush, so that a hung store cannot
// stall the flusher forever; counts of a timed-out flush are kept.
const flushTimeout = 30 * time.Second

// shardCount is a power of two so that a key's shard is a mask of its hash.
const shardCount = 64

type bucket struct {
	keyID  string
	minute int64 // unix seconds, a multiple of 60
}

// pending is a shard's counts: one entry per (key, minute) in counts, found
// through idx, so that counting a known bucket hashes the key once.
type pending struct {
	idx    map[bucket]int32
	counts []keys.UsageCount
}

func newPending() pending { return pending{idx: make(map[bucket]int32)} }

func (p *pending) add(b bucket, allowed, rateLimited int64) {
	i, ok := p.idx[b]
	if !ok {
		i = int32(len(p.counts))
		p.idx[b] = i
		p.counts = append(p.counts, keys.UsageCount{KeyID: b.keyID, Minute: b.minute})
	}
	c := &p.counts[i]
	c.Allowed += allowed
	c.RateLimited += rateLimited
}

// reset empties p and keeps its memory.
func (p *pending) reset() {
	clear(p.idx)
	clear(p.counts) // drop key strings for the collector
	p.counts = p.counts[:0]
}

type shard struct {
	mu sync.Mutex
	p  pending
	_  [24]byte // keep shards on separate cache lines
}

// Recorder counts requests per key and minute. Record never touches the
// store; Flush writes all pending counts in one batch. Counts are exact: a
// count is either pending or written, never both or neither, as long as a
// sink error means that nothing was written (a failed flush keeps its
// counts for the next one). Safe for concurrent use.
//
// A Recorder must be made with New.
type Recorder struct {
	sink     Sink
	interval time.Duration
	log      *slog.Logger
	now      func() time.Time
	onFlush  func(time.Duration, int, error)
	seed     maphash.Seed

	shards [shardCount]shard

	flushMu sync.Mutex // serializes flushes; guards spare and batch
	// spare holds each shard's other pending set: a flush swaps it in,
	// drains the old one and keeps it, emptied, for the next swap. Reusing
	// the memory keeps Record free of allocations for keys seen before.
	spare [shardCount]pending
	batch []keys.UsageCount

	mu      sync.Mutex // guards started, closed
	started bool
	closed  bool
	stop    chan struct{}
	done    chan struct{}
}

// New returns a Recorder writing to sink. Call Start to flush in the
// background and Close to stop and flush what is left.
func New(sink Sink, opts Options) *Recorder {
	r := &Recorder{
		sink:     sink,
		interval: opts.FlushInterval,
		log:      opts.Logger,
		now:      opts.Now,
		onFlush:  opts.OnFlush,
		seed:     maphash.MakeSeed(),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	if r.interval <= 0 {
		r.interval = time.Second
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.now == nil {
		r.now = time.Now
	}
	for i := range r.shards {
		r.shards[i].p = newPending()
		r.spare[i] = newPending()
	}
	return r
}

// Record counts one request for keyID in the current minute, as allowed or
// rate limited. It does not allocate for a key already counted since the
// last flush. Counts recorded after Close are only written by a later Flush.
func (r *Recorder) Record(keyID string, allowed bool) {
	r.recordHashed(keyID, r.Hash(keyID), allowed, r.now())
}

// Hash returns the hash of keyID that RecordHashed takes. It is the same
// for the same keyID for the Recorder's lifetime (and differs between
// Recorders), so a caller that records one key many times, such as a cache
// entry, can compute it once.
func (r *Recorder) Hash(keyID string) uint64 { return maphash.String(r.seed, keyID) }

// RecordHashed is Record at now for a caller that holds keyID's Hash and a
// reading of the Recorder's clock (Options.Now): it saves hashing keyID and
// reading the clock again. h must be r.Hash(keyID); any other value could
// count the key in two places at once.
func (r *Recorder) RecordHashed(keyID string, h uint64, allowed bool, now time.Time) {
	r.recordHashed(keyID, h, allowed, now)
}

func (r *Recorder) record(keyID string, allowed bool, now time.Time) {
	r.recordHashed(keyID, r.Hash(keyID), allowed, now)
}

func (r *Recorder) recordHashed(keyID string, h uint64, allowed bool, now time.Time) {
	t := now.Unix()
	b := bucket{keyID: keyID, minute: t - t%60}
	s := r.shardOf(h)
	var a, l int64 = 1, 0
	if !allowed {
		a, l = 0, 1
	}
	s.mu.Lock()
	s.p.add(b, a, l)
	s.mu.Unlock()
}

// shardOf returns the shard of the key whose Hash is h.
func (r *Recorder) shardOf(h uint64) *shard {
	return &r.shards[h&(shardCount-1)]
}

// Flush writes every pending count to the sink in one AddUsage call. When
// the sink fails, the counts stay pending (added to those recorded
// meanwhile) and the next Flush writes them. Flushes run one at a time.
func (r *Recorder) Flush(ctx context.Context) error {
	r.flushMu.Lock()
	defer r.flushMu.Unlock()
	batch := r.batch[:0]
	for i := range r.shards {
		s := &r.shards[i]
		s.mu.Lock()
		old := s.p
		s.p = r.spare[i]
		s.mu.Unlock()
		batch = append(batch, old.counts...)
		old.reset()
		r.spare[i] = old
	}
	r.batch = batch
	if len(batch) == 0 {
		return nil
	}
	start := time.Now()
	err := r.sink.AddUsage(ctx, batch)
	if r.onFlush != nil {
		r.onFlush(time.Since(start), len(batch), err)
	}
	if err != nil {
		r.restore(batch)
	}
	clear(batch) // drop key strings for the collector; keep the memory
	if err != nil {
		return fmt.Errorf("flush usage (%d counts kept): %w", len(batch), err)
	}
	return nil
}

// restore adds the counts of a failed batch back to the pending ones.
func (r *Recorder) restore(batch []keys.UsageCount) {
	for _, u := range batch {
		s := r.shardOf(r.Hash(u.KeyID))
		s.mu.Lock()
		s.p.add(bucket{keyID: u.KeyID, minute: u.Minute}, u.Allowed, u.RateLimited)
		s.mu.Unlock()
	}
}

// Start flushes every FlushInterval in the background until Close. Calls
// after the first, or after Close, do nothing.
func (r *Recorder) Start() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.started || r.closed {
		return
	}
	r.started = true
	go r.loop()
}

func (r *Recorder) loop() {
	defer close(r.done)
	t := time.NewTicker(r.interval)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), flushTimeout)
			if err := r.Flush(ctx); err != nil {
				r.log.Warn("usage flush failed", "err", err)
			}
			cancel()
		}
	}
}

// Close stops the background flusher, waiting for a flush under way, and
// flushes what is pending. It returns ctx's error if ctx ends first, and
// the flush's error otherwise. Close may be called more than once.
func (r *Recorder) Close(ctx context.Context) error {
	r.mu.Lock()
	wasStarted := r.started
	if !r.closed {
		r.closed = true
		close(r.stop)
	}
	r.mu.Unlock()
	if wasStarted {
		select {
		case <-r.done:
		case <-ctx.Done():
			return fmt.Errorf("close usage recorder: %w", ctx.Err())
		}
	}
	return r.Flush(ctx)
}
