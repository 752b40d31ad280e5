// Package proxy is keygate's request path: the validation cache, the gate that
// checks a token (shared with the admin validation endpoint) and the fasthttp
// reverse proxy in front of the upstream API.
package proxy

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/dgraph-io/ristretto/v2"

	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/limiter"
)

// CacheOptions configure a Cache. Zero values mean the defaults named.
type CacheOptions struct {
	// TTL is how long a resolved key is trusted without asking the store
	// again; 0 means 30s. Changes made through keys.Service on this node are
	// seen at once through Invalidate, whatever the TTL.
	TTL time.Duration
	// NegativeTTL is how long an unknown token is remembered; 0 means 5s.
	NegativeTTL time.Duration
	// MaxEntries bounds the entries kept (positive and negative); 0 means
	// 100000. It also sizes the front array of recently used entries (see
	// Cache): MaxEntries rounded up to a power of two, at most 65536 slots,
	// which may keep as many entries again alive once the main cache has
	// evicted them.
	MaxEntries int64
	// Limits is the rate limit of each key type (indexed by keys.Type),
	// used for owners without a limit of their own. The zero Limit is unlimited.
	Limits [4]limiter.Limit
	// Quotas is the quota of each key type (indexed by keys.Type), used for
	// owners without a quota of their own. The zero Quota is none.
	Quotas [4]keys.Quota
	// Now returns the current time; nil means time.Now. It must be the
	// clock of the Gate using the cache.
	Now func() time.Time
}

// Source resolves a token hash; *keys.Service is one. It returns
// keys.ErrNotFound for an unknown hash.
type Source interface {
	Lookup(ctx context.Context, hash [32]byte) (*keys.Identity, error)
}

// Cache remembers what token hashes resolve to, so that a request with a
// known key costs no store round trip. It sits in front of Source.Lookup
// and knows nothing of the rules: callers re-check Identity.Check on every
// hit. Invalidate makes every change made through keys.Service visible at
// once on this node, even to lookups that were under way when it ran.
// Safe for concurrent use; create it with NewCache and stop it with Close.
//
// How revocation stays immediate although ristretto's Set is asynchronous:
// every entry records the generation read before its store lookup began.
// Invalidate writes a tombstone carrying a new generation for each key id,
// user id, org id and token hash it names, then publishes that generation.
// An entry is used only while no tombstone relevant to it is newer than the
// entry, so a stale entry that lands in ristretto after the change is never
// served. An entry checked at the current generation is not checked again
// until the next Invalidate, which keeps the hit path free of map lookups.
//
// In front of ristretto sits a direct-mapped array of entries indexed by
// bits of the token hash: a hit there costs one atomic load instead of
// ristretto's shard lock and the bookkeeping of its admission policy. A
// slot holds whatever entry for its index was loaded or found in ristretto
// last, and is verified exactly like a ristretto hit (the full hash, then
// valid), so revocation never depends on a slot being cleared.
type Cache struct {
	rc     *ristretto.Cache[uint64, *entry]
	front  []atomic.Pointer[entry] // see fill
	fmask  uint64                  // len(front)-1
	closed atomic.Bool             // set by Close: lookups skip front
	ttl    time.Duration
	negTTL time.Duration
	limits [4]limiter.Limit
	quotas [4]keys.Quota
	now    func() time.Time

	gen atomic.Uint64 // generation of the latest Invalidate

	mu        sync.RWMutex      // guards tombs and lastPrune; held for writing by Invalidate
	tombs     map[tombKey]tomb  // key, user and org ids
	hashTombs map[[32]byte]tomb // token hashes that came to exist
	lastPrune int64             // unix ns
	resetGen  uint64            // entries older than this are all stale (see Reset)

	fmu     sync.Mutex // guards flights
	flights map[[32]byte]*flight

	refreshCh   chan refreshReq // never closed: senders may outlive Close
	stop        chan struct{}
	refreshDone chan struct{}
	closeOnce   sync.Once
}

// flight is one store lookup under way; concurrent misses for the same
// token wait for it instead of each asking the store.
type flight struct {
	done chan struct{}
	e    *entry
	err  error
}

// tombKey names a key ('k'), user ('u') or org ('o') id. It shares the id's
// string with the cached Identity, so entries need no names of their own.
type tombKey struct {
	kind byte
	id   string
}

// tomb records the last invalidation of one name.
type tomb struct {
	gen uint64
	at  int64 // unix ns, to prune tombstones no live entry can predate
}

// entry is what a token hash resolves to. Apart from validAt and
// refreshing it is immutable once stored, and shared by every request
// using the key. What a hit reads comes first, to share cache lines.
type entry struct {
	hash [32]byte
	id   *keys.Identity // nil: unknown token (negative entry)
	// staleUntil (unix ns) ends serving the entry at all: expires for
	// unknown tokens, twice the TTL for known keys (see loadNow).
	staleUntil int64
	validAt    atomic.Uint64 // latest generation at which no tombstone applied
	// refreshAt (unix ns) is when a hit starts a background reload;
	// refreshing makes it start once.
	refreshAt  int64
	refreshing atomic.Bool

	pre   keys.Precheck // id's rules, worked out once
	limit limiter.Limit
	owner string
	keyID string
	// hashedBy is the gate whose recorder and limiter computed usageHash
	// and limitHash (nil: none did); other gates hash keyID and owner
	// themselves.
	hashedBy  *hashers
	usageHash uint64
	limitHash uint64
	quota     keys.Quota

	gen     uint64                     // generation read before the store lookup
	start   int64                      // unix ns when the load began
	expires int64                      // unix ns: load start + TTL
	hdr     [numIdentityHeaders]string // identity header values; "" = header absent (strings: 16 bytes a slot, not 24)
}

// Identity header slots, in the order of identityHeaderSuffixes.
const (
	hdrKeyID = iota
	hdrKeyType
	hdrUserID
	hdrUserEmail
	hdrOrgID
	hdrOrgName
	hdrMetadata
	numIdentityHeaders
)

// NewCache returns an empty Cache.
func NewCache(opts CacheOptions) (*Cache, error) {
	if opts.TTL <= 0 {
		opts.TTL = 30 * time.Second
	}
	if opts.NegativeTTL <= 0 {
		opts.NegativeTTL = 5 * time.Second
	}
	if opts.MaxEntries <= 0 {
		opts.MaxEntries = 100_000
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	rc, err := ristretto.NewCache(&ristretto.Config[uint64, *entry]{
		NumCounters:        10 * opts.MaxEntries,
		MaxCost:            opts.MaxEntries,
		BufferItems:        64,
		IgnoreInternalCost: true,
		// The key already is 64 bits of SHA-256; the entry holds the full hash.
		KeyToHash: func(k uint64) (uint64, uint64) { return k, 0 },
		// A slow load must not replace what a later load stored.
		ShouldUpdate: func(cur, prev *entry) bool { return cur.gen >= prev.gen },
	})
	if err != nil {
		return nil, fmt.Errorf("create key cache: %w", err)
	}
	c := &Cache{
		rc:        rc,
		front:     make([]atomic.Pointer[entry], frontSlots(opts.MaxEntries)),
		ttl:       opts.TTL,
		negTTL:    opts.NegativeTTL,
		limits:    opts.Limits,
		quotas:    opts.Quotas,
		now:       opts.Now,
		tombs:     make(map[tombKey]tomb),
		hashTombs: make(map[[32]byte]tomb),

		flights: make(map[[32]byte]*flight),

		refreshCh:   make(chan refreshReq, 4096),
		stop:        make(chan struct{}),
		refreshDone: make(chan struct{}),
	}
	c.fmask = uint64(len(c.front) - 1)
	go c.refresher()
	c.lastPrune = c.now().UnixNano()
	return c, nil
}

// frontSlots is the size of the front array for maxEntries: a power of two,
// so that a slot is a mask of the hash, and at most 64 Ki slots (512 KiB).
func frontSlots(maxEntries int64) int {
	const most = 1 << 16
	if maxEntries >= most {
		return most
	}
	return 1 << bits.Len64(uint64(max(maxEntries, 1)-1))
}

// Close releases the cache's background goroutines. Lookups after Close
// always go to the store.
func (c *Cache) Close() {
	c.closeOnce.Do(func() {
		c.closed.Store(true)
		c.clearFront()
		close(c.stop)
		<-c.refreshDone
		c.rc.Close()
	})
}

// clearFront empties the front array. Nothing depends on it for
// correctness (every slot hit is verified); it lets the entries go.
func (c *Cache) clearFront() {
	for i := range c.front {
		c.front[i].Store(nil)
	}
}

// Invalidate drops whatever c changed: entries of its key ids, of keys owned
// or created by its user, of keys of its org, and negative entries of its
// token hashes. Once it returns, no lookup starting afterwards sees the old
// state. Use it as keys.Options.OnChange.
func (c *Cache) Invalidate(ch keys.Change) {
	now := c.now().UnixNano()
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.gen.Load() + 1
	t := tomb{gen: g, at: now}
	for _, id := range ch.KeyIDs {
		c.tombs[tombKey{'k', id}] = t
	}
	if ch.UserID != "" {
		c.tombs[tombKey{'u', ch.UserID}] = t
	}
	if ch.OrgID != "" {
		c.tombs[tombKey{'o', ch.OrgID}] = t
	}
	for _, h := range ch.Hashes {
		c.hashTombs[h] = t
	}
	// Publish the generation only after the tombstones: a reader that sees g
	// also sees them (see valid).
	c.gen.Store(g)
	c.pruneLocked(now)
}

// pruneLocked drops tombstones no usable entry can predate. An entry older
// than a tombstone read its generation before the tombstone was published,
// and its load began then too, so it expires at most a TTL after: twice the
// longest TTL leaves a margin for the Invalidate that waited for c.mu while
// the load began. c.mu must be held for writing.
func (c *Cache) pruneLocked(now int64) {
	horizon := 2 * int64(max(c.ttl, c.negTTL))
	if now-c.lastPrune < horizon {
		return
	}
	c.lastPrune = now
	for name, t := range c.tombs {
		if now-t.at > horizon {
			delete(c.tombs, name)
		}
	}
	for h, t := range c.hashTombs {
		if now-t.at > horizon {
			delete(c.hashTombs, h)
		}
	}
}

// source says where lookup found an entry.
type source uint8

const (
	fromCache  source = iota // a usable cache entry
	fromFlight               // a concurrent lookup of the same hash
	fromStore                // this call asked the store
)

// lookup returns the entry for hash, from the cache when it holds a usable
// one, else from src (caching the answer). A store error is returned as is
// and never cached. A hot entry near the end of its TTL is refreshed in the
// background, so keys in steady use do not all miss when their TTLs run out.
func (c *Cache) lookup(ctx context.Context, src Source, hash *[32]byte, now time.Time) (*entry, source, error) {
	k := binary.LittleEndian.Uint64(hash[:8])
	ns := now.UnixNano()
	slot := &c.front[k&c.fmask]
	if e := slot.Load(); e != nil && e.hash == *hash && !c.closed.Load() && c.valid(e, ns) {
		c.served(src, hash, e, ns)
		return e, fromCache, nil
	}
	if e, ok := c.rc.Get(k); ok && e.hash == *hash && c.valid(e, ns) {
		c.served(src, hash, e, ns)
		c.fill(slot, e, ns)
		return e, fromCache, nil
	}
	return c.load(ctx, src, hash, now)
}

// served starts a background reload of e when it is due.
func (c *Cache) served(src Source, hash *[32]byte, e *entry, ns int64) {
	if ns >= e.refreshAt && e.id != nil && e.refreshing.CompareAndSwap(false, true) {
		c.queueRefresh(src, *hash, e) // by value: hash must not escape on the hit path
	}
}

// fill puts e, just loaded or found in ristretto, in its front slot unless
// the slot holds a newer entry for the same hash (a slow load must not
// replace what a later one stored, as in ristretto's ShouldUpdate), or a
// usable known key that an unknown token would push out: a flood of
// unknown tokens must not slow the keys in use. Otherwise the newest
// entry wins the slot, whatever hash the slot held before.
func (c *Cache) fill(slot *atomic.Pointer[entry], e *entry, ns int64) {
	for {
		cur := slot.Load()
		switch {
		case cur == e:
			return
		case cur == nil:
		case cur.hash == e.hash:
			if cur.gen > e.gen || cur.gen == e.gen && cur.start > e.start {
				return
			}
		case e.id == nil && cur.id != nil && ns < cur.staleUntil:
			return
		}
		if slot.CompareAndSwap(cur, e) {
			return
		}
	}
}

// staleLocked reports whether a tombstone relevant to e is newer than e:
// its token hash for a negative entry, else its key, user and org ids.
func (c *Cache) staleLocked(e *entry) bool {
	if c.resetGen > e.gen {
		return true
	}
	// A missing tombstone reads as generation 0, which no entry predates.
	if e.id == nil {
		return c.hashTombs[e.hash].gen > e.gen
	}
	k := &e.id.Key
	return c.tombs[tombKey{'k', k.ID}].gen > e.gen ||
		k.UserID != "" && c.tombs[tombKey{'u', k.UserID}].gen > e.gen ||
		k.OrgID != "" && c.tombs[tombKey{'o', k.OrgID}].gen > e.gen
}

// refreshReq asks the refresher to reload one entry.
type refreshReq struct {
	src  Source
	hash [32]byte
	e    *entry
}

// queueRefresh hands a reload to the refresher. When its queue is full the
// reload is dropped, and a later hit asks again.
func (c *Cache) queueRefresh(src Source, hash [32]byte, e *entry) {
	select {
	case c.refreshCh <- refreshReq{src: src, hash: hash, e: e}:
	default:
		e.refreshing.Store(false)
	}
}

// refresher reloads entries one at a time: when many keys come due at once
// (after a quiet spell) their reloads queue here instead of taking every
// core from the requests they are meant to keep fast.
func (c *Cache) refresher() {
	defer close(c.refreshDone)
	for {
		select {
		case <-c.stop:
			return
		case r := <-c.refreshCh:
			if _, err := c.loadNow(context.Background(), r.src, &r.hash, c.now()); err != nil {
				r.e.refreshing.Store(false) // try again on a later hit
			}
		}
	}
}

// valid reports whether e may be served at now.
func (c *Cache) valid(e *entry, now int64) bool {
	if now >= e.staleUntil {
		return false
	}
	g := c.gen.Load()
	if e.validAt.Load() == g {
		return true // no Invalidate since e was last found valid
	}
	c.mu.RLock()
	stale := c.staleLocked(e)
	c.mu.RUnlock()
	if stale {
		return false
	}
	// g was read before the tombstones: every Invalidate up to g had
	// written its tombstones, and none applies.
	if e.validAt.Load() < g {
		e.validAt.Store(g)
	}
	return true
}

// load asks src and caches the answer, positive or negative. Concurrent
// loads of one hash share a single store lookup, so a burst of requests
// with one unknown token costs the store one query.
func (c *Cache) load(ctx context.Context, src Source, hash *[32]byte, now time.Time) (*entry, source, error) {
	c.fmu.Lock()
	if f, ok := c.flights[*hash]; ok {
		c.fmu.Unlock()
		<-f.done
		// The flight may have started before an Invalidate that returned
		// before this request began: then its answer is not good enough.
		if f.err == nil && c.valid(f.e, now.UnixNano()) {
			return f.e, fromFlight, nil
		}
		e, err := c.loadNow(ctx, src, hash, now)
		return e, fromStore, err
	}
	f := &flight{done: make(chan struct{})}
	c.flights[*hash] = f
	c.fmu.Unlock()
	f.e, f.err = c.loadNow(ctx, src, hash, now)
	if f.err == nil {
		// Set is asynchronous: wait until the entry is visible so that
		// requests arriving after this flight find it instead of the store.
		c.rc.Wait()
	}
	c.fmu.Lock()
	delete(c.flights, *hash)
	c.fmu.Unlock()
	close(f.done)
	return f.e, fromStore, f.err
}

// loadNow asks src and caches the answer.
func (c *Cache) loadNow(ctx context.Context, src Source, hash *[32]byte, now time.Time) (*entry, error) {
	// The generation is read before the store: whatever changes the store
	// after this point bumps it, so the entry is checked against it.
	g := c.gen.Load()
	id, err := src.Lookup(ctx, *hash)
	switch {
	case errors.Is(err, keys.ErrNotFound):
		id = nil
	case err != nil:
		return nil, fmt.Errorf("look up key: %w", err)
	}
	var hs *hashers
	if gs, ok := src.(*gateSource); ok {
		hs = gs.hs
	}
	e, keep := c.timedEntry(hash, id, g, now.UnixNano(), hs)
	c.store(e, keep)
	return e, nil
}

// timedEntry makes the entry of hash loaded at start (unix ns) with its
// time windows, and returns how long ristretto should keep it. Up to 10% is
// taken off the TTL, so that keys loaded together (at start, after a burst)
// do not all come due together. From 3/4 of its TTL on, a hit reloads a
// known key in the background; until twice its TTL the entry is still
// served meanwhile (stale-while-revalidate, as Unkey does), so a key that
// was idle for a while does not make its next request wait for the store.
// Changes made through keygate are immediate anyway (see Invalidate); the
// TTL bounds only what keygate cannot see.
func (c *Cache) timedEntry(hash *[32]byte, id *keys.Identity, g uint64, start int64, hs *hashers) (*entry, time.Duration) {
	ttl := c.ttl
	if id == nil {
		ttl = c.negTTL
	}
	ttl -= time.Duration(rand.Int64N(int64(ttl)/10 + 1))
	e := c.newEntry(hash, id, g, start, start+int64(ttl), hs)
	e.refreshAt, e.staleUntil = start+int64(ttl)*3/4, e.expires
	keep := ttl
	if id != nil {
		e.staleUntil, keep = start+2*int64(ttl), 2*ttl
	}
	return e, keep
}

// store puts e in ristretto for keep and in its front slot. It reports
// false when ristretto dropped the set (its buffer was full).
func (c *Cache) store(e *entry, keep time.Duration) bool {
	k := binary.LittleEndian.Uint64(e.hash[:8])
	if !c.rc.SetWithTTL(k, e, 1, keep) {
		return false
	}
	if !c.closed.Load() {
		c.fill(&c.front[k&c.fmask], e, e.start)
	}
	return true
}

// newEntry makes the entry of hash, with the hashes hs computes (hs nil:
// none).
func (c *Cache) newEntry(hash *[32]byte, id *keys.Identity, gen uint64, start, expires int64, hs *hashers) *entry {
	e := &entry{hash: *hash, id: id, gen: gen, start: start, expires: expires}
	e.validAt.Store(gen)
	if id == nil {
		return e
	}
	k := &id.Key
	e.pre = id.Precheck()
	e.keyID = k.ID
	e.owner = id.Owner()
	if hs != nil {
		e.hashedBy = hs
		if hs.usage != nil {
			e.usageHash = hs.usage(e.keyID)
		}
		if hs.limit != nil {
			e.limitHash = hs.limit(e.owner)
		}
	}
	if r := id.OwnerRateLimit(); r != nil {
		e.limit = limiter.Limit{Limit: r.Limit, Window: r.Window}
	} else if k.Type < keys.Type(len(c.limits)) {
		e.limit = c.limits[k.Type]
	}
	if q := id.OwnerQuota(); q != nil {
		e.quota = *q
	} else if k.Type < keys.Type(len(c.quotas)) {
		e.quota = c.quotas[k.Type]
	}

	e.hdr[hdrKeyID] = headerValue(k.ID)
	e.hdr[hdrKeyType] = headerValue(k.Type.String())
	if k.UserID != "" {
		e.hdr[hdrUserID] = headerValue(k.UserID)
		if id.User != nil && id.User.Email != "" {
			e.hdr[hdrUserEmail] = headerValue(id.User.Email)
		}
	}
	if k.OrgID != "" {
		e.hdr[hdrOrgID] = headerValue(k.OrgID)
		if id.Org != nil && id.Org.Name != "" {
			e.hdr[hdrOrgName] = headerValue(id.Org.Name)
		}
	}
	meta := []byte(k.Metadata)
	if len(meta) == 0 {
		meta = []byte("{}")
	}
	m := appendASCIIJSON(make([]byte, 0, len(meta)), meta)
	e.hdr[hdrMetadata] = unsafe.String(unsafe.SliceData(m), len(m)) // m is not written again
	return e
}

// headerValue makes s safe as a header value: control characters, which
// could end the header or split it, become spaces. Other bytes (UTF-8 in
// an email or org name) pass as they are.
func headerValue(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' && c != '\t' || c == 0x7f {
			b := []byte(s)
			for j, c := range b {
				if c < ' ' && c != '\t' || c == 0x7f {
					b[j] = ' '
				}
			}
			return string(b)
		}
	}
	return s
}

// appendASCIIJSON appends the JSON text src to dst with every non-ASCII
// character, and DEL, escaped as \uXXXX (UTF-16 surrogate pairs above
// U+FFFF; invalid UTF-8 as U+FFFD). In valid JSON such bytes occur only
// inside strings, where the escape means the same character.
func appendASCIIJSON(dst, src []byte) []byte {
	const hex = "0123456789abcdef"
	esc := func(dst []byte, r rune) []byte {
		return append(dst, '\\', 'u', hex[r>>12&0xf], hex[r>>8&0xf], hex[r>>4&0xf], hex[r&0xf])
	}
	for i := 0; i < len(src); {
		c := src[i]
		if c < utf8.RuneSelf && c != 0x7f {
			dst = append(dst, c)
			i++
			continue
		}
		r, size := utf8.DecodeRune(src[i:])
		i += size
		if r >= 0x10000 {
			r -= 0x10000
			dst = esc(dst, 0xd800+(r>>10))
			dst = esc(dst, 0xdc00+(r&0x3ff))
			continue
		}
		dst = esc(dst, r)
	}
	return dst
}
