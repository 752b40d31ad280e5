package quota

import (
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/keys"
)

// TestOnExhausted checks that the hook fires once, on the check that takes
// the count to the limit, whichever of two nodes makes it, and again only
// after the limit is raised and reached anew.
func TestOnExhausted(t *testing.T) {
	for _, b := range []string{"memory", "redis"} {
		t.Run(b, func(t *testing.T) {
			var mu sync.Mutex
			var fired []Result
			opts := Options{Timeout: 5 * time.Second, OnExhausted: func(owner string, q keys.Quota, r Result) {
				if owner != "u:alice" {
					t.Errorf("owner %q", owner)
				}
				mu.Lock()
				fired = append(fired, r)
				mu.Unlock()
			}}
			if b == "redis" {
				opts.Redis, opts.KeyPrefix = testRedis(t)
			}
			st := newMapStore()
			nodes := []*Engine{New(st, opts), New(st, opts)}
			if b == "memory" {
				nodes = nodes[:1] // memory counts per process
			}
			q := keys.Quota{Limit: 5, Period: keys.PeriodDay}
			steps := []struct {
				cost    int64
				allowed bool
				fires   int // total after the step
			}{
				{2, true, 0}, {2, true, 0}, // 4 of 5
				{2, false, 0}, // would pass the limit: refused, not exhausted
				{1, true, 1},  // 5 of 5: exhausted
				{1, false, 1}, {1, false, 1},
			}
			for i, s := range steps {
				r := use(t, nodes[i%len(nodes)], "u:alice", q, s.cost)
				mu.Lock()
				n := len(fired)
				mu.Unlock()
				if r.Allowed != s.allowed || n != s.fires {
					t.Fatalf("step %d (cost %d): allowed %v, fired %d; want %v, %d", i, s.cost, r.Allowed, n, s.allowed, s.fires)
				}
			}
			if fired[0].Used != 5 || fired[0].Remaining != 0 {
				t.Errorf("exhausted result %+v", fired[0])
			}
			raised := keys.Quota{Limit: 6, Period: keys.PeriodDay}
			use(t, nodes[0], "u:alice", raised, 1)
			if len(fired) != 2 {
				t.Errorf("after reaching a raised limit: fired %d, want 2", len(fired))
			}
		})
	}
}
