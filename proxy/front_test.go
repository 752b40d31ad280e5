package proxy

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

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
