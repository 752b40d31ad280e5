package proxy

import (
	"context"
	"encoding/binary"
	"errors"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keygate/keygate/keys"
)

// warmSource is a WarmSource over a Service that counts its calls and can
// run a hook between its store read and its return (the window in which a
// change can race the warm-up).
type warmSource struct {
	svc   *keys.Service
	calls atomic.Int64
	asked atomic.Int64 // n of the last call
	err   error
	after func() // runs after the read, before Warm sees the identities
}

func (w *warmSource) RecentIdentities(ctx context.Context, n int) ([]*keys.Identity, error) {
	w.calls.Add(1)
	w.asked.Store(int64(n))
	if w.err != nil {
		return nil, w.err
	}
	ids, err := w.svc.RecentIdentities(ctx, n)
	if w.after != nil {
		w.after()
	}
	return ids, err
}

// useAll marks every key of s used (a usage count in the current minute),
// as traffic would have before a restart: the warm-up reads used keys only.
func useAll(t *testing.T, s *stack) {
	t.Helper()
	ks, _, err := s.store.ListKeys(context.Background(), keys.KeyFilter{Status: "all", Limit: 1000}, s.clock.Now().Unix())
	if err != nil {
		t.Fatal(err)
	}
	counts := make([]keys.UsageCount, 0, len(ks))
	for _, k := range ks {
		counts = append(counts, keys.UsageCount{KeyID: k.ID, Minute: s.clock.Now().Unix(), Allowed: 1})
	}
	if err := s.store.AddUsage(context.Background(), counts); err != nil {
		t.Fatal(err)
	}
}

// lookupFrom looks h up and reports where the entry came from.
func lookupFrom(t *testing.T, s *stack, src Source, tok string) (*entry, source) {
	t.Helper()
	h := keys.Hash(tok)
	e, from, err := s.cache.lookup(context.Background(), src, &h, s.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	s.cache.rc.Wait()
	return e, from
}

// TestWarm: warmed keys are cache hits with the entry a lookup would have
// built, and the gate serves them without asking the store.
func TestWarm(t *testing.T) {
	s := newStack(t, stackConfig{cache: CacheOptions{TTL: time.Minute}})
	s.user("alice", &keys.RateLimit{Limit: 7, Window: time.Minute})
	s.org("acme", "Acme", nil)
	s.member("acme", "alice", "Owner")
	_, personal := s.key(keys.CreateKeyInput{UserID: "alice", Metadata: []byte(`{"plan":"pro"}`)})
	_, org := s.key(keys.CreateKeyInput{OrgID: "acme", UserID: "alice"})
	_, generic := s.key(keys.CreateKeyInput{})
	useAll(t, s)
	toks := []string{personal, org, generic}

	src := &warmSource{svc: s.svc}
	n, err := s.cache.Warm(context.Background(), src, 100)
	if err != nil || n != 3 {
		t.Fatalf("Warm = %d, %v; want 3 stored", n, err)
	}

	// The same entries a miss builds: compare with a second cache that
	// looks each key up.
	other, err := NewCache(CacheOptions{TTL: time.Minute, Now: s.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(other.Close)
	counting := &countingSource{svc: s.svc}
	for _, tok := range toks {
		e, from := lookupFrom(t, s, counting, tok)
		if from != fromCache {
			t.Fatalf("%s… after Warm: from %d, want the cache", tok[:8], from)
		}
		h := keys.Hash(tok)
		want, err := other.loadNow(context.Background(), counting, &h, s.clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		if e.keyID != want.keyID || e.owner != want.owner || e.limit != want.limit || e.quota != want.quota ||
			!reflect.DeepEqual(e.hdr, want.hdr) || !reflect.DeepEqual(e.id, want.id) {
			t.Errorf("warmed entry %+v\nwant as looked up %+v", e, want)
		}
		// The TTL windows of a lookup: jittered by at most 10%.
		start := s.clock.Now().UnixNano()
		ttl := e.expires - start
		if ttl > int64(time.Minute) || ttl < int64(time.Minute)*9/10 ||
			e.refreshAt != start+ttl*3/4 || e.staleUntil != start+2*ttl {
			t.Errorf("warmed entry windows: expires +%v, refresh +%v, stale +%v; want a lookup's",
				time.Duration(ttl), time.Duration(e.refreshAt-start), time.Duration(e.staleUntil-start))
		}
	}
	if got := counting.n.Load(); got != int64(len(toks)) { // the reference lookups only
		t.Errorf("store lookups = %d, want %d (none for warmed keys)", got, len(toks))
	}

	// Through the gate: allowed, no store lookup, the owner's own limit.
	for _, tok := range toks {
		id, res, err := s.gate.Check(context.Background(), tok)
		if err != nil || id == nil {
			t.Fatalf("gate: %v", err)
		}
		if id.Key.Type == keys.TypePersonal && res.Limit != 7 {
			t.Errorf("personal key limit = %d, want alice's 7", res.Limit)
		}
	}
	if got := storeLookups(t, s); got != 0 {
		t.Errorf("gate store lookups = %v, want 0", got)
	}
}

// TestWarmRevocation: a change that commits while Warm runs, or after it,
// is honoured: the revoked key goes back to the store and fails; the other
// warmed keys stay hits.
func TestWarmRevocation(t *testing.T) {
	for _, tc := range []struct {
		name   string
		during bool // archive between the store read and the insert
		reset  bool // Reset instead of archiving (a node that lost the cluster channel)
	}{
		{name: "archived during warm-up", during: true},
		{name: "archived after warm-up"},
		{name: "reset during warm-up", during: true, reset: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStack(t, stackConfig{cache: CacheOptions{TTL: time.Hour}})
			revoked, revokedTok := s.key(keys.CreateKeyInput{})
			_, keptTok := s.key(keys.CreateKeyInput{})
			useAll(t, s)
			revoke := func() {
				if tc.reset {
					s.cache.Reset()
					return
				}
				if _, err := s.svc.ArchiveKey(context.Background(), revoked.ID); err != nil {
					t.Fatal(err)
				}
			}
			src := &warmSource{svc: s.svc}
			if tc.during {
				src.after = revoke
			}
			if n, err := s.cache.Warm(context.Background(), src, 10); err != nil || n != 2 {
				t.Fatalf("Warm = %d, %v; want 2", n, err)
			}
			if !tc.during {
				revoke()
			}

			if tc.reset {
				// Every warmed entry predates the Reset: both reload once.
				counting := &countingSource{svc: s.svc}
				lookupFrom(t, s, counting, revokedTok)
				lookupFrom(t, s, counting, keptTok)
				if got := counting.n.Load(); got != 2 {
					t.Errorf("store lookups after Reset = %d, want 2", got)
				}
				return
			}
			if _, _, err := s.gate.Check(context.Background(), revokedTok); !errors.Is(err, keys.ErrInvalidKey) {
				t.Errorf("archived key: %v, want ErrInvalidKey", err)
			}
			if got := storeLookups(t, s); got != 1 {
				t.Errorf("store lookups = %v, want 1 (the archived key, reloaded)", got)
			}
			if _, _, err := s.gate.Check(context.Background(), keptTok); err != nil {
				t.Errorf("kept key: %v", err)
			}
			if got := storeLookups(t, s); got != 1 {
				t.Errorf("store lookups = %v after the kept key, want still 1 (a warmed hit)", got)
			}
		})
	}
}

// TestWarmLimits: n ≤ 0 does nothing, n is capped at the cache's capacity,
// a source error comes back, and entries already cached are left alone.
func TestWarmLimits(t *testing.T) {
	s := newStack(t, stackConfig{cache: CacheOptions{MaxEntries: 2}})
	for range 4 {
		s.key(keys.CreateKeyInput{})
	}
	_, newest := s.key(keys.CreateKeyInput{})
	useAll(t, s)
	src := &warmSource{svc: s.svc}
	for _, n := range []int{0, -5} {
		if got, err := s.cache.Warm(context.Background(), src, n); got != 0 || err != nil {
			t.Errorf("Warm(%d) = %d, %v; want 0, nil", n, got, err)
		}
	}
	if c := src.calls.Load(); c != 0 {
		t.Fatalf("Warm(0) asked the source %d times, want none", c)
	}

	src.err = errors.New("disk on fire")
	if got, err := s.cache.Warm(context.Background(), src, 10); got != 0 || !errors.Is(err, src.err) {
		t.Errorf("Warm with a failing source = %d, %v; want 0 and its error", got, err)
	}
	src.err = nil

	// The newest key is cached by a lookup first; Warm keeps that entry.
	counting := &countingSource{svc: s.svc}
	before, _ := lookupFrom(t, s, counting, newest)
	if _, err := s.cache.Warm(context.Background(), src, 10); err != nil {
		t.Fatal(err)
	}
	if got := src.asked.Load(); got != 2 {
		t.Errorf("Warm(10) on a 2-entry cache asked for %d, want 2", got)
	}
	if after, from := lookupFrom(t, s, counting, newest); from != fromCache || after != before {
		t.Errorf("the entry cached before Warm was replaced (from %d)", from)
	}
}

// TestWarmMany: more entries than ristretto's set buffer holds all land.
func TestWarmMany(t *testing.T) {
	c, err := NewCache(CacheOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	const n = 40_000 // ristretto buffers 32 Ki sets
	ids := make([]*keys.Identity, n)
	for i := range ids {
		id := keys.NewID()
		ids[i] = &keys.Identity{Key: keys.Key{ID: id, Type: keys.TypeGeneric, Hash: keys.Hash(id)}}
	}
	got, err := c.Warm(context.Background(), fixedSource(ids), n)
	if err != nil || got != n {
		t.Fatalf("Warm = %d, %v; want %d", got, err, n)
	}
	missing := 0
	for _, id := range ids {
		h := id.Key.Hash
		if e, _, err := c.lookup(context.Background(), fixedSource(nil), &h, time.Now()); err != nil || e.id != id {
			missing++
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d warmed keys are not in the cache", missing, n)
	}
}

// fixedSource returns its identities, and knows no hash.
type fixedSource []*keys.Identity

func (f fixedSource) RecentIdentities(ctx context.Context, n int) ([]*keys.Identity, error) {
	return f[:min(n, len(f))], nil
}

func (f fixedSource) Lookup(ctx context.Context, hash [32]byte) (*keys.Identity, error) {
	return nil, keys.ErrNotFound
}

// TestGateWarmHashes: entries the gate warms carry its usage and limiter
// hashes, as its own lookups' do, so warmed keys take the hashed path and
// their front slots are filled.
func TestGateWarmHashes(t *testing.T) {
	s := newStack(t, stackConfig{})
	s.user("alice", nil)
	_, tok := s.key(keys.CreateKeyInput{UserID: "alice"})
	useAll(t, s)
	if n, err := s.gate.Warm(context.Background(), &warmSource{svc: s.svc}, 10); err != nil || n != 1 {
		t.Fatalf("Gate.Warm = %d, %v; want 1 stored", n, err)
	}
	h := keys.Hash(tok)
	k := binary.LittleEndian.Uint64(h[:8])
	e := s.cache.front[k&s.cache.fmask].Load()
	if e == nil || e.hash != h {
		t.Fatal("the warmed entry is not in its front slot")
	}
	if e.hashedBy != s.gate.src.hs || e.usageHash != s.rec.Hash(e.keyID) || e.limitHash != s.lim.Hash(e.owner) {
		t.Errorf("warmed entry hashes: by %p (gate %p), usage %d, limit %d", e.hashedBy, s.gate.src.hs, e.usageHash, e.limitHash)
	}
	if _, _, err := s.gate.Check(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	if got := storeLookups(t, s); got != 0 {
		t.Errorf("store lookups = %v, want 0", got)
	}
}
