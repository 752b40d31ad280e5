package proxy

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/limiter"
	"github.com/keygate/keygate/usage"
)

// BenchmarkCacheHitKeys is the whole gate (limiter, usage, metrics) on
// cache hits spread over 1,000 keys, as in the load test, rather than one
// hot key: every step's memory is then touched less often.
func BenchmarkCacheHitKeys(b *testing.B) {
	s := newStack(b, stackConfig{})
	c, err := NewCache(CacheOptions{Now: time.Now})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(c.Close)
	lim := limiter.NewMemory(limiter.MemoryOptions{})
	b.Cleanup(func() { lim.Close() })
	rec := usage.New(s.store, usage.Options{})
	g := NewGate(s.svc, c, GateOptions{Limiter: lim, Recorder: rec, Metrics: s.m, Now: time.Now})
	toks := make([][]byte, 1000)
	for i := range toks {
		u := fmt.Sprintf("bench%d", i)
		s.user(u, &keys.RateLimit{Limit: 1 << 50, Window: time.Minute})
		_, tok := s.key(keys.CreateKeyInput{UserID: u})
		toks[i] = []byte(tok)
	}
	ctx := context.Background()
	for round := 0; ; round++ {
		misses := 0
		for _, tok := range toks {
			if _, _, err := g.check(ctx, tok, 1); err != nil {
				b.Fatal(err)
			}
			h := keys.Hash(string(tok))
			if _, from, _ := c.lookup(ctx, s.svc, &h, time.Now()); from != fromCache {
				misses++
			}
		}
		c.rc.Wait()
		if misses == 0 {
			break
		}
		if round == 100 {
			b.Fatalf("%d keys still miss the cache", misses)
		}
	}
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(next.Add(1)) * 7919 // each goroutine starts elsewhere in the keys
		for pb.Next() {
			if _, _, err := g.check(ctx, toks[i%len(toks)], 1); err != nil {
				b.Fatal(err)
			}
			i += 337 // a stride prime to len(toks): every key, in a scattered order
		}
	})
}

// slotOf returns the front slot of hash.
func slotOf(c *Cache, hash *[32]byte) *atomic.Pointer[entry] {
	return &c.front[binary.LittleEndian.Uint64(hash[:8])&c.fmask]
}

func TestFrontSlots(t *testing.T) {
	for _, tt := range []struct {
		max  int64
		want int
	}{{1, 1}, {2, 2}, {3, 4}, {1000, 1024}, {1024, 1024}, {100_000, 1 << 16}, {1 << 40, 1 << 16}} {
		if got := frontSlots(tt.max); got != tt.want {
			t.Errorf("frontSlots(%d) = %d, want %d", tt.max, got, tt.want)
		}
	}
}

// TestFrontHitNeedsNoRistretto: a key just loaded is served from its front
// slot with ristretto emptied, through the cache and the whole gate.
func TestFrontHitNeedsNoRistretto(t *testing.T) {
	s := newStack(t, stackConfig{})
	_, tok := s.key(keys.CreateKeyInput{})
	h := keys.Hash(tok)
	src := &countingSource{svc: s.svc}
	ctx := context.Background()
	e, from, err := s.cache.lookup(ctx, src, &h, s.clock.Now())
	if err != nil || from != fromStore {
		t.Fatalf("first lookup: %v %v", from, err)
	}
	if got := slotOf(s.cache, &h).Load(); got != e {
		t.Fatalf("slot holds %p, want the loaded entry %p", got, e)
	}
	s.cache.rc.Clear()
	for i := range 10 {
		if got, from, err := s.cache.lookup(ctx, src, &h, s.clock.Now()); err != nil || from != fromCache || got != e {
			t.Fatalf("lookup %d with ristretto empty: %v %v, same entry %v", i, from, err, got == e)
		}
	}
	if n := src.n.Load(); n != 1 {
		t.Fatalf("store lookups = %d, want 1", n)
	}

	warm(t, s, []byte(tok))
	s.cache.rc.Clear()
	before := storeLookups(t, s)
	for range 10 {
		if _, _, err := s.gate.check(ctx, []byte(tok), 1); err != nil {
			t.Fatal(err)
		}
	}
	if got := storeLookups(t, s) - before; got != 0 {
		t.Errorf("%v store lookups through the gate with ristretto empty, want 0", got)
	}
}

// mapSource resolves the hashes it holds and no others.
type mapSource struct {
	ids map[[32]byte]*keys.Identity
	n   atomic.Int64
}

func (m *mapSource) Lookup(_ context.Context, h [32]byte) (*keys.Identity, error) {
	m.n.Add(1)
	if id, ok := m.ids[h]; ok {
		return id, nil
	}
	return nil, keys.ErrNotFound
}

// TestFrontCollision: two keys sharing a slot take turns in it, each hit
// from ristretto putting its own entry back; an unknown token does not push
// a key in use out of its slot.
func TestFrontCollision(t *testing.T) {
	c, err := NewCache(CacheOptions{TTL: time.Minute, NegativeTTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	a := sha256.Sum256([]byte("a"))
	b, unknown := a, a
	b[7] ^= 1       // another ristretto key, the same slot (it has at most 16 bits)
	unknown[6] ^= 1 // likewise
	if slotOf(c, &a) != slotOf(c, &b) || slotOf(c, &a) != slotOf(c, &unknown) {
		t.Fatal("test hashes do not share a slot")
	}
	src := &mapSource{ids: map[[32]byte]*keys.Identity{
		a: {Key: keys.Key{ID: "a", Type: keys.TypeGeneric}},
		b: {Key: keys.Key{ID: "b", Type: keys.TypeGeneric}},
	}}
	ctx := context.Background()
	look := func(h *[32]byte, want source) *entry {
		t.Helper()
		e, from, err := c.lookup(ctx, src, h, time.Now())
		if err != nil || from != want {
			t.Fatalf("lookup: %v %v, want %v", from, err, want)
		}
		c.rc.Wait()
		return e
	}
	ea := look(&a, fromStore)
	eb := look(&b, fromStore)
	if got := slotOf(c, &a).Load(); got != eb {
		t.Fatal("the second key did not replace the first in the slot")
	}
	if look(&a, fromCache) != ea || slotOf(c, &a).Load() != ea {
		t.Fatal("a hit from ristretto did not put its entry back in the slot")
	}
	look(&unknown, fromStore)
	if slotOf(c, &a).Load() != ea {
		t.Fatal("an unknown token pushed a key in use out of its slot")
	}
	c.rc.Clear()
	look(&a, fromCache) // from the slot
	look(&b, fromStore) // in neither
	if n := src.n.Load(); n != 4 {
		t.Fatalf("store lookups = %d, want 4", n)
	}
}

// TestFrontKeepsNewest: a load that began before another must not replace
// the later one's entry in the slot, whichever finishes first.
func TestFrontKeepsNewest(t *testing.T) {
	c, err := NewCache(CacheOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	h := sha256.Sum256([]byte("k"))
	id := &keys.Identity{Key: keys.Key{ID: "k", Type: keys.TypeGeneric}}
	ns := time.Now().UnixNano()
	older := c.newEntry(&h, id, 1, ns, ns+int64(time.Minute), nil)
	newer := c.newEntry(&h, id, 2, ns, ns+int64(time.Minute), nil)
	later := c.newEntry(&h, id, 2, ns+1, ns+int64(time.Minute), nil)
	slot := slotOf(c, &h)
	for _, tt := range []struct {
		name        string
		first, then *entry
		want        *entry
	}{
		{"older generation after newer", newer, older, newer},
		{"newer generation after older", older, newer, newer},
		{"same generation, later start", newer, later, later},
		{"same generation, earlier start", later, newer, later},
	} {
		slot.Store(tt.first)
		c.fill(slot, tt.then, ns)
		if slot.Load() != tt.want {
			t.Errorf("%s: the slot kept the wrong entry", tt.name)
		}
	}
}

// TestFrontRevocation: every change of the revocation table is seen at once
// by a key whose only cached entry is in its front slot.
func TestFrontRevocation(t *testing.T) {
	s := newStack(t, stackConfig{
		cache: CacheOptions{TTL: time.Hour, NegativeTTL: time.Hour},
		keys:  keys.Options{InvalidateOnCreatorLeave: true},
	})
	ctx := context.Background()
	for n, rv := range revocations {
		t.Run(rv.name, func(t *testing.T) {
			token, change := rv.setup(t, s, 1000+n)
			tok := []byte(token)
			h := keys.Hash(token)
			e, _, err := s.gate.check(ctx, tok, 1)
			if ferr := rv.before(e, err); ferr != nil {
				t.Fatalf("before the change: %v", ferr)
			}
			s.cache.rc.Wait()
			s.cache.rc.Clear()
			held := slotOf(s.cache, &h).Load()
			if held == nil || held.hash != h {
				t.Fatal("the key's entry is not in its slot")
			}
			if err := change(); err != nil {
				t.Fatalf("change: %v", err)
			}
			e, _, err = s.gate.check(ctx, tok, 1)
			if ferr := rv.after(e, err); ferr != nil {
				t.Fatalf("after the change: %v", ferr)
			}
			if slotOf(s.cache, &h).Load() == held {
				t.Error("the slot still holds the entry from before the change")
			}
		})
	}
}

// TestFrontReset: Reset empties the slots, and an entry from before it
// that lands in a slot afterwards (a load racing Reset) is not served.
func TestFrontReset(t *testing.T) {
	s := newStack(t, stackConfig{})
	_, tok := s.key(keys.CreateKeyInput{})
	known := keys.Hash(tok)
	unknownTok, _ := s.tokens.New(keys.TypeGeneric)
	unknown := keys.Hash(unknownTok)
	src := &countingSource{svc: s.svc}
	ctx := context.Background()
	var old [2]*entry
	for i, h := range []*[32]byte{&known, &unknown} {
		old[i], _, _ = s.cache.lookup(ctx, src, h, s.clock.Now())
	}
	s.cache.rc.Wait()
	s.cache.rc.Clear() // only the slots hold the entries now
	for _, h := range []*[32]byte{&known, &unknown} {
		if _, from, _ := s.cache.lookup(ctx, src, h, s.clock.Now()); from != fromCache {
			t.Fatalf("before Reset: %v, want a slot hit", from)
		}
	}
	s.cache.Reset()
	for i := range s.cache.front {
		if s.cache.front[i].Load() != nil {
			t.Fatalf("slot %d not cleared by Reset", i)
		}
	}
	for i, h := range []*[32]byte{&known, &unknown} {
		slotOf(s.cache, h).Store(old[i])
		if _, from, _ := s.cache.lookup(ctx, src, h, s.clock.Now()); from != fromStore {
			t.Fatalf("after Reset: %v, want a store lookup", from)
		}
	}
	if n := src.n.Load(); n != 4 {
		t.Fatalf("store lookups = %d, want 4", n)
	}
}

// TestFrontClose: after Close every lookup goes to the store.
func TestFrontClose(t *testing.T) {
	c, err := NewCache(CacheOptions{NegativeTTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	src := &mapSource{}
	h := sha256.Sum256([]byte("x"))
	e, _, _ := c.lookup(context.Background(), src, &h, time.Now())
	c.Close()
	slotOf(c, &h).Store(e) // as a load racing Close would
	for range 3 {
		if _, from, _ := c.lookup(context.Background(), src, &h, time.Now()); from != fromStore {
			t.Fatalf("after Close: %v, want a store lookup", from)
		}
	}
}

// fakeRecorder counts which of its methods the gate calls, and hashed
// calls given another hash than its own.
type fakeRecorder struct {
	seed                  uint64
	plain, hashed, badSum atomic.Int64
}

func (f *fakeRecorder) Hash(keyID string) uint64 { return f.seed + uint64(len(keyID)) }

func (f *fakeRecorder) Record(string, bool) { f.plain.Add(1) }

func (f *fakeRecorder) RecordHashed(keyID string, h uint64, _ bool, _ time.Time) {
	f.hashed.Add(1)
	if h != f.Hash(keyID) {
		f.badSum.Add(1)
	}
}

// plainRecorder is a Recorder without the hashed path.
type plainRecorder struct{ n atomic.Int64 }

func (p *plainRecorder) Record(string, bool) { p.n.Add(1) }

// TestGateHashes: a gate uses the hashes of an entry only when its own
// recorder and limiter made them; on entries another gate loaded into a
// shared cache, and with a Recorder or Limiter without the hashed path
// (Redis), it takes the plain path.
func TestGateHashes(t *testing.T) {
	s := newStack(t, stackConfig{})
	s.user("alice", &keys.RateLimit{Limit: 4, Window: time.Hour})
	_, tok := s.key(keys.CreateKeyInput{UserID: "alice"})
	ctx := context.Background()
	a, b := &fakeRecorder{seed: 1}, &fakeRecorder{seed: 2}
	gateA := NewGate(s.svc, s.cache, GateOptions{Recorder: a, Limiter: s.lim, Now: s.clock.Now})
	gateB := NewGate(s.svc, s.cache, GateOptions{Recorder: b, Now: s.clock.Now})
	plain := &plainRecorder{}
	gateP := NewGate(s.svc, s.cache, GateOptions{Recorder: plain, Now: s.clock.Now})
	for _, g := range []*Gate{gateA, gateB, gateP, gateA} {
		if _, _, err := g.check(ctx, []byte(tok), 1); err != nil {
			t.Fatal(err)
		}
	}
	if a.hashed.Load() != 2 || a.plain.Load() != 0 || a.badSum.Load() != 0 {
		t.Errorf("gate A: %d hashed (%d bad), %d plain; want 2 hashed", a.hashed.Load(), a.badSum.Load(), a.plain.Load())
	}
	if b.hashed.Load() != 0 || b.plain.Load() != 1 {
		t.Errorf("gate B on A's entry: %d hashed, %d plain; want 1 plain", b.hashed.Load(), b.plain.Load())
	}
	if plain.n.Load() != 1 {
		t.Errorf("plain recorder: %d records, want 1", plain.n.Load())
	}
	h := keys.Hash(tok)
	e := slotOf(s.cache, &h).Load()
	if e.hashedBy != gateA.src.hs || e.usageHash != a.Hash(e.keyID) || e.limitHash != s.lim.Hash(e.owner) {
		t.Errorf("entry hashes: by %p (gate A %p), usage %d, limit %d", e.hashedBy, gateA.src.hs, e.usageHash, e.limitHash)
	}

	// The limit is exact across the hashed (A) and the plain (C) path to
	// the same memory limiter: A used 2 of 4.
	gateC := NewGate(s.svc, s.cache, GateOptions{Limiter: limiterOnly{s.lim}, Now: s.clock.Now})
	for i, want := range []bool{true, true, false} {
		if _, res, _ := gateC.Check(ctx, tok); res.Allowed != want {
			t.Fatalf("check %d through the plain path: allowed %v, want %v", i, res.Allowed, want)
		}
	}
	if _, res, _ := gateA.Check(ctx, tok); res.Allowed {
		t.Fatal("the hashed path allowed a request over the limit")
	}
}

// limiterOnly hides every method of a Limiter but Allow.
type limiterOnly struct{ Limiter }

// TestGateRedisLimiter: the Redis limiter, which has no hashed path, limits
// through the gate as before.
func TestGateRedisLimiter(t *testing.T) {
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	t.Cleanup(func() { client.Close() })
	if err := client.Ping(context.Background()).Err(); err != nil {
		t.Skipf("redis not reachable: %v", err)
	}
	prefix := fmt.Sprintf("keygate:test:gate:%d:", time.Now().UnixNano())
	t.Cleanup(func() {
		ctx := context.Background()
		iter := client.Scan(ctx, 0, prefix+"*", 100).Iterator()
		for iter.Next(ctx) {
			client.Del(ctx, iter.Val())
		}
	})
	s := newStack(t, stackConfig{})
	s.user("alice", &keys.RateLimit{Limit: 2, Window: time.Hour})
	_, tok := s.key(keys.CreateKeyInput{UserID: "alice"})
	rec := &fakeRecorder{}
	g := NewGate(s.svc, s.cache, GateOptions{
		Limiter:  limiter.NewRedis(client, limiter.RedisOptions{KeyPrefix: prefix, Timeout: 5 * time.Second}),
		Recorder: rec,
		Now:      s.clock.Now,
	})
	if g.hlim != nil {
		t.Fatal("the Redis limiter took the hashed path")
	}
	for i, want := range []bool{true, true, false} {
		_, res, err := g.Check(context.Background(), tok)
		if res.Allowed != want || !want && !errors.Is(err, limiter.ErrLimited) {
			t.Fatalf("check %d: %+v %v, want allowed %v", i, res, err, want)
		}
	}
	if rec.hashed.Load() != 3 || rec.badSum.Load() != 0 {
		t.Errorf("usage: %d hashed records (%d bad), want 3", rec.hashed.Load(), rec.badSum.Load())
	}
}
