package limiter

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var t0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// newFakeMemory returns a Memory whose epoch is t0; tests pass times to allow.
func newFakeMemory(t testing.TB, opts MemoryOptions) *Memory {
	opts.Now = func() time.Time { return t0 }
	m := NewMemory(opts)
	t.Cleanup(func() { m.Close() })
	return m
}

func TestMemoryChecks(t *testing.T) {
	runCheckCases(t, func(t *testing.T) checker {
		m := newFakeMemory(t, MemoryOptions{})
		now := t0
		return checker{
			allow:   func(owner string, l Limit) (Result, error) { return m.allow(owner, l, now), nil },
			advance: func(d time.Duration) { now = now.Add(d) },
		}
	})
}

// TestMemoryHashedChecks runs the shared cases through AllowHashed.
func TestMemoryHashedChecks(t *testing.T) {
	runCheckCases(t, func(t *testing.T) checker {
		m := newFakeMemory(t, MemoryOptions{})
		now := t0
		return checker{
			allow: func(owner string, l Limit) (Result, error) {
				return m.AllowHashed(owner, m.Hash(owner), l, now), nil
			},
			advance: func(d time.Duration) { now = now.Add(d) },
		}
	})
}

// TestMemoryHashedSharesBucket: Allow and AllowHashed count one owner in
// one bucket, exactly, when called concurrently.
func TestMemoryHashedSharesBucket(t *testing.T) {
	m := NewMemory(MemoryOptions{})
	defer m.Close()
	h := m.Hash("hot")
	if h != m.Hash("hot") {
		t.Fatal("Hash is not stable")
	}
	var ok atomic.Int64
	var wg sync.WaitGroup
	for i := range 1000 {
		wg.Go(func() {
			var r Result
			if i%2 == 0 {
				r, _ = m.Allow(context.Background(), "hot", perHour(100))
			} else {
				r = m.AllowHashed("hot", h, perHour(100), time.Now())
			}
			if r.Allowed {
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	if n := ok.Load(); n != 100 {
		t.Fatalf("allowed %d, want 100", n)
	}
	if n := m.len(); n != 1 {
		t.Fatalf("holds %d owners, want 1", n)
	}
}

func TestMemoryAllowUsesNow(t *testing.T) {
	now := t0
	m := NewMemory(MemoryOptions{Now: func() time.Time { return now }})
	defer m.Close()
	l := perHour(1)
	if r, _ := m.Allow(context.Background(), "a", l); !r.Allowed {
		t.Fatalf("first: %+v", r)
	}
	if r, _ := m.Allow(context.Background(), "a", l); r.Allowed {
		t.Fatalf("second: %+v", r)
	}
	now = now.Add(time.Hour)
	if r, err := m.Allow(context.Background(), "a", l); !r.Allowed || err != nil {
		t.Fatalf("after an hour: %+v, %v", r, err)
	}
}

func TestMemoryUnlimitedKeepsNoState(t *testing.T) {
	m := newFakeMemory(t, MemoryOptions{})
	for i := range 100 {
		m.allow("o"+strconv.Itoa(i), Limit{Window: time.Minute}, t0)
	}
	if n := m.len(); n != 0 {
		t.Fatalf("holds %d owners, want 0", n)
	}
}

func TestMemoryExactUnderConcurrency(t *testing.T) {
	m := NewMemory(MemoryOptions{})
	defer m.Close()
	var ok atomic.Int64
	var wg sync.WaitGroup
	for range 1000 {
		wg.Go(func() {
			if r, _ := m.Allow(context.Background(), "hot", perHour(100)); r.Allowed {
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	if n := ok.Load(); n != 100 {
		t.Fatalf("allowed %d, want 100", n)
	}
}

func TestMemorySweepBoundsMemory(t *testing.T) {
	const owners = 20000
	m := newFakeMemory(t, MemoryOptions{Shards: 8, IdleTTL: 10 * time.Minute})
	l := Limit{Limit: 10, Window: time.Minute}
	for i := range owners {
		m.allow("u:"+strconv.Itoa(i), l, t0)
	}
	m.allow("busy", Limit{Limit: 10, Window: time.Hour}, t0)
	if n := m.len(); n != owners+1 {
		t.Fatalf("holds %d owners, want %d", n, owners+1)
	}

	// Buckets are full again 6s after t0, but not yet idle for IdleTTL.
	m.sweep(t0.Add(10 * time.Minute))
	if n := m.len(); n != owners+1 {
		t.Fatalf("after early sweep: holds %d owners, want %d", n, owners+1)
	}

	m.sweep(t0.Add(6*time.Second + 10*time.Minute))
	if n := m.len(); n != 1 {
		t.Fatalf("after sweep: holds %d owners, want 1 (the busy one)", n)
	}
	for i := range m.shards {
		if p := m.shards[i].peak; p > 1 {
			t.Fatalf("shard %d: map not rebuilt, peak %d", i, p)
		}
	}
	// An evicted owner starts again with a full bucket, as it would have anyway.
	if r := m.allow("u:1", l, t0.Add(time.Hour)); r.Remaining != 9 {
		t.Fatalf("evicted owner: %+v", r)
	}

	m.sweep(t0.Add(time.Hour + 10*time.Minute))
	m.sweep(t0.Add(2 * time.Hour))
	if n := m.len(); n != 0 {
		t.Fatalf("after last sweep: holds %d owners, want 0", n)
	}
}

// TestMemorySweepLoop checks that the background sweep runs and Close stops it.
func TestMemorySweepLoop(t *testing.T) {
	var offset atomic.Int64
	m := NewMemory(MemoryOptions{
		IdleTTL: 10 * time.Millisecond,
		Now:     func() time.Time { return time.Now().Add(time.Duration(offset.Load())) },
	})
	for i := range 100 {
		m.Allow(context.Background(), strconv.Itoa(i), perHour(5))
	}
	offset.Store(int64(2 * time.Hour))
	deadline := time.Now().Add(10 * time.Second)
	for m.len() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("sweep never ran: %d owners left", m.len())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestMemoryShards(t *testing.T) {
	for _, tt := range []struct{ in, want int }{{1, 1}, {3, 4}, {64, 64}, {100, 128}} {
		m := NewMemory(MemoryOptions{Shards: tt.in})
		m.Close()
		if len(m.shards) != tt.want || m.mask != uint64(tt.want-1) {
			t.Errorf("Shards %d: got %d shards, mask %d", tt.in, len(m.shards), m.mask)
		}
	}
	m := NewMemory(MemoryOptions{})
	m.Close()
	if len(m.shards) < 64 {
		t.Errorf("default: %d shards, want >= 64", len(m.shards))
	}
}

func TestMemoryAllowDoesNotAllocate(t *testing.T) {
	m := NewMemory(MemoryOptions{})
	defer m.Close()
	ctx := context.Background()
	l := Limit{Limit: 1 << 40, Window: time.Hour}
	m.Allow(ctx, "u:alice", l)
	if n := testing.AllocsPerRun(1000, func() { m.Allow(ctx, "u:alice", l) }); n != 0 {
		t.Fatalf("Allow allocates %v times per call for a known owner", n)
	}
	h, now := m.Hash("u:alice"), time.Now()
	if n := testing.AllocsPerRun(1000, func() { m.AllowHashed("u:alice", h, l, now) }); n != 0 {
		t.Fatalf("AllowHashed allocates %v times per call for a known owner", n)
	}
}

func BenchmarkMemoryAllow(b *testing.B) {
	m := NewMemory(MemoryOptions{})
	defer m.Close()
	owners := make([]string, 1000)
	for i := range owners {
		owners[i] = "u:" + strconv.Itoa(i)
	}
	ctx := context.Background()
	l := Limit{Limit: 1000, Window: time.Second}
	for _, o := range owners {
		m.Allow(ctx, o, l)
	}
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(next.Add(1)) * 7919 // each goroutine starts elsewhere in the owners
		for pb.Next() {
			m.Allow(ctx, owners[i%len(owners)], l)
			i++
		}
	})
}

// BenchmarkMemoryAllowHashed is BenchmarkMemoryAllow with the owners'
// hashes computed once and the clock read by the caller, as the gate does.
func BenchmarkMemoryAllowHashed(b *testing.B) {
	m := NewMemory(MemoryOptions{})
	defer m.Close()
	owners := make([]string, 1000)
	hs := make([]uint64, len(owners))
	for i := range owners {
		owners[i] = "u:" + strconv.Itoa(i)
		hs[i] = m.Hash(owners[i])
	}
	l := Limit{Limit: 1000, Window: time.Second}
	for i, o := range owners {
		m.AllowHashed(o, hs[i], l, time.Now())
	}
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(next.Add(1)) * 7919 // each goroutine starts elsewhere in the owners
		for pb.Next() {
			j := i % len(owners)
			m.AllowHashed(owners[j], hs[j], l, time.Now())
			i++
		}
	})
}
