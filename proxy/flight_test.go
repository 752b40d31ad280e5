package proxy

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keygate/keygate/keys"
)

// slowSource answers every lookup with "not found" after a pause, counting them.
type slowSource struct{ n atomic.Int64 }

func (s *slowSource) Lookup(ctx context.Context, hash [32]byte) (*keys.Identity, error) {
	s.n.Add(1)
	time.Sleep(20 * time.Millisecond)
	return nil, keys.ErrNotFound
}

// A burst of concurrent requests with one unknown token asks the store once,
// and requests after the burst find the negative entry.
func TestConcurrentMissesShareOneLookup(t *testing.T) {
	c, err := NewCache(CacheOptions{NegativeTTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	src := &slowSource{}
	hash := keys.Hash("kgp_unknown")
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e, _, err := c.lookup(context.Background(), src, &hash, time.Now())
			if err != nil || e.id != nil {
				t.Errorf("lookup = %v, %v", e, err)
			}
		}()
	}
	wg.Wait()
	for i := 0; i < 10; i++ {
		if _, from, _ := c.lookup(context.Background(), src, &hash, time.Now()); from != fromCache {
			t.Fatalf("lookup %d after the burst missed the cache", i)
		}
	}
	if n := src.n.Load(); n != 1 {
		t.Fatalf("store lookups = %d, want 1", n)
	}
}

// A request that joins a flight begun before an Invalidate does not take
// the flight's (possibly stale) answer.
func TestFlightAfterInvalidate(t *testing.T) {
	c, _ := NewCache(CacheOptions{NegativeTTL: time.Minute})
	defer c.Close()
	src := &slowSource{}
	hash := keys.Hash("kgp_soon_created")
	go c.lookup(context.Background(), src, &hash, time.Now())
	for src.n.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	c.Invalidate(keys.Change{Hashes: [][32]byte{hash}}) // the key is created now
	c.lookup(context.Background(), src, &hash, time.Now())
	if n := src.n.Load(); n != 2 {
		t.Fatalf("store lookups = %d, want 2: the joiner reused a flight older than the change", n)
	}
}

// A key in steady use is reloaded in the background before its entry
// expires, so its traffic never waits for the store when the TTL runs out.
func TestHotEntryRefreshedAhead(t *testing.T) {
	s := newStack(t, stackConfig{cache: CacheOptions{TTL: time.Minute}})
	_, tok := s.key(keys.CreateKeyInput{})
	h := keys.Hash(tok)
	src := &countingSource{svc: s.svc}
	ctx := context.Background()
	if _, from, err := s.cache.lookup(ctx, src, &h, s.clock.Now()); err != nil || from != fromStore {
		t.Fatalf("first lookup: %v %v", from, err)
	}
	s.cache.rc.Wait()
	s.clock.Advance(50 * time.Second) // past 3/4 of the TTL, before its end
	if _, from, _ := s.cache.lookup(ctx, src, &h, s.clock.Now()); from != fromCache {
		t.Fatalf("lookup at 50s: %v, want a hit", from)
	}
	for deadline := time.Now().Add(5 * time.Second); src.n.Load() < 2; {
		if time.Now().After(deadline) {
			t.Fatal("no background refresh")
		}
		time.Sleep(time.Millisecond)
	}
	s.cache.rc.Wait()
	s.clock.Advance(30 * time.Second) // 80s: the first entry has expired
	if _, from, _ := s.cache.lookup(ctx, src, &h, s.clock.Now()); from != fromCache {
		t.Fatalf("lookup at 80s: %v, want a hit on the refreshed entry", from)
	}
	if n := src.n.Load(); n != 2 {
		t.Fatalf("store lookups = %d, want 2", n)
	}
}

// A key idle past its TTL is served once more while it is reloaded; past
// twice its TTL it is looked up again before being served.
func TestIdleEntryStaleWhileRevalidate(t *testing.T) {
	s := newStack(t, stackConfig{cache: CacheOptions{TTL: time.Minute}})
	_, tok := s.key(keys.CreateKeyInput{})
	h := keys.Hash(tok)
	src := &countingSource{svc: s.svc}
	ctx := context.Background()
	s.cache.lookup(ctx, src, &h, s.clock.Now())
	s.cache.rc.Wait()
	s.clock.Advance(90 * time.Second) // idle past the TTL, within twice it
	if _, from, _ := s.cache.lookup(ctx, src, &h, s.clock.Now()); from != fromCache {
		t.Fatalf("lookup at 90s: %v, want the stale entry", from)
	}
	for deadline := time.Now().Add(5 * time.Second); src.n.Load() < 2; {
		if time.Now().After(deadline) {
			t.Fatal("no background reload of the stale entry")
		}
		time.Sleep(time.Millisecond)
	}
	s.cache.rc.Wait()
	s.clock.Advance(125 * time.Second) // past twice the TTL of the reloaded entry
	if _, from, _ := s.cache.lookup(ctx, src, &h, s.clock.Now()); from != fromStore {
		t.Fatalf("lookup after 2×TTL idle: %v, want a store lookup", from)
	}
}
