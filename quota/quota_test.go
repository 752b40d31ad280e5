package quota

import (
	"context"
	"crypto/rand"
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/keygate/keygate/keys"
)

// mapStore is a Store in memory; fail makes every call fail. The SQLite
// store is tested against the same contract in keys/.
type mapStore struct {
	mu     sync.Mutex
	counts map[countKey]int64
	fail   atomic.Bool
	adds   atomic.Int64
}

func newMapStore() *mapStore { return &mapStore{counts: make(map[countKey]int64)} }

var errDown = errors.New("store down")

func (m *mapStore) QuotaUsed(_ context.Context, owner string, p keys.QuotaPeriod, start int64) (int64, error) {
	if m.fail.Load() {
		return 0, errDown
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.counts[countKey{owner, p, start}], nil
}

func (m *mapStore) AddQuotaUsage(_ context.Context, counts []keys.QuotaCount) error {
	if m.fail.Load() {
		return errDown
	}
	m.adds.Add(1)
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, c := range counts {
		m.counts[countKey{c.Owner, c.Period, c.Start}] += c.Used
	}
	return nil
}

func (m *mapStore) get(owner string, p keys.QuotaPeriod, start int64) int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.counts[countKey{owner, p, start}]
}

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

const redisAddr = "127.0.0.1:6379"

// testRedis returns a client for the local Redis and a key prefix unique to
// the test, whose keys are deleted afterwards. Without Redis the test is
// skipped, or fails when CI=true.
func testRedis(t testing.TB) (*redis.Client, string) {
	t.Helper()
	client := redis.NewClient(&redis.Options{Addr: redisAddr, ContextTimeoutEnabled: true})
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := client.Ping(ctx).Err(); err != nil {
		client.Close()
		if os.Getenv("CI") == "true" {
			t.Fatalf("redis not reachable at %s: %v", redisAddr, err)
		}
		t.Skipf("redis not reachable at %s: %v", redisAddr, err)
	}
	prefix := "keygate:test:q:" + rand.Text() + ":"
	t.Cleanup(func() {
		ctx := context.Background()
		iter := client.Scan(ctx, 0, prefix+"*", 100).Iterator()
		for iter.Next(ctx) {
			client.Del(ctx, iter.Val())
		}
		client.Close()
	})
	return client, prefix
}

// backend makes Engines sharing one counter: each call is another node
// (for Redis) or, for memory, the same process after a restart.
type backend struct {
	name string
	make func(t *testing.T) func(st Store, now func() time.Time) *Engine
}

func backends() []backend {
	return []backend{
		{"memory", func(t *testing.T) func(Store, func() time.Time) *Engine {
			return func(st Store, now func() time.Time) *Engine { return New(st, Options{Now: now}) }
		}},
		{"redis", func(t *testing.T) func(Store, func() time.Time) *Engine {
			client, prefix := testRedis(t)
			return func(st Store, now func() time.Time) *Engine {
				return New(st, Options{Redis: client, KeyPrefix: prefix, Timeout: 5 * time.Second, Now: now})
			}
		}},
	}
}

var (
	month = keys.Quota{Limit: 10, Period: keys.PeriodMonth}
	ctx   = context.Background()
)

func use(t *testing.T, e *Engine, owner string, q keys.Quota, cost int64) Result {
	t.Helper()
	r, err := e.Use(ctx, owner, q, cost)
	if err != nil {
		t.Fatalf("Use: %v", err)
	}
	return r
}

func TestUse(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			t.Run("counts up to the limit, then refuses until the month ends", func(t *testing.T) {
				newEngine := b.make(t)
				c := &clock{t: time.Date(2026, 1, 31, 23, 0, 0, 0, time.UTC)}
				e := newEngine(newMapStore(), c.Now)
				for i := int64(1); i <= 10; i++ {
					r := use(t, e, "u:a", month, 1)
					if !r.Allowed || r.Used != i || r.Remaining != 10-i {
						t.Fatalf("use %d: %+v", i, r)
					}
				}
				r := use(t, e, "u:a", month, 1)
				if r.Allowed || r.Used != 10 || r.Remaining != 0 {
					t.Fatalf("11th use: %+v", r)
				}
				feb := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
				if r.ResetsAt != feb.Unix() || r.Reset != time.Hour {
					t.Errorf("resets at %d in %s, want %d in 1h", r.ResetsAt, r.Reset, feb.Unix())
				}
				if r := use(t, e, "u:b", month, 1); !r.Allowed {
					t.Errorf("another owner refused: %+v", r)
				}
				c.Set(feb)
				if r := use(t, e, "u:a", month, 1); !r.Allowed || r.Used != 1 {
					t.Errorf("first use in February: %+v", r)
				}
			})
			t.Run("a cost is used whole or not at all", func(t *testing.T) {
				e := b.make(t)(newMapStore(), nil)
				if r := use(t, e, "k:x", month, 7); !r.Allowed || r.Remaining != 3 {
					t.Fatalf("cost 7: %+v", r)
				}
				if r := use(t, e, "k:x", month, 4); r.Allowed || r.Used != 7 {
					t.Fatalf("cost 4 of 3 left: %+v", r)
				}
				if r := use(t, e, "k:x", month, 3); !r.Allowed || r.Remaining != 0 {
					t.Fatalf("cost 3 of 3 left: %+v", r)
				}
			})
			t.Run("raising the limit grants more at once", func(t *testing.T) {
				e := b.make(t)(newMapStore(), nil)
				use(t, e, "o:x", month, 10)
				if r := use(t, e, "o:x", month, 1); r.Allowed {
					t.Fatalf("over the limit: %+v", r)
				}
				more := keys.Quota{Limit: 15, Period: keys.PeriodMonth}
				if r := use(t, e, "o:x", more, 1); !r.Allowed || r.Remaining != 4 {
					t.Fatalf("after raising to 15: %+v", r)
				}
			})
			t.Run("day quotas refill at 00:00 UTC, Dec 31 to Jan 1", func(t *testing.T) {
				c := &clock{t: time.Date(2026, 12, 31, 23, 59, 59, 0, time.UTC)}
				e := b.make(t)(newMapStore(), c.Now)
				day := keys.Quota{Limit: 1, Period: keys.PeriodDay}
				use(t, e, "u:d", day, 1)
				r := use(t, e, "u:d", day, 1)
				if r.Allowed || r.Reset != time.Second {
					t.Fatalf("second use: %+v", r)
				}
				c.Set(time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC))
				if r := use(t, e, "u:d", day, 1); !r.Allowed {
					t.Fatalf("first use of the new year: %+v", r)
				}
			})
			t.Run("total never refills", func(t *testing.T) {
				c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
				e := b.make(t)(newMapStore(), c.Now)
				total := keys.Quota{Limit: 2, Period: keys.PeriodTotal}
				use(t, e, "k:t", total, 2)
				c.Set(c.Now().AddDate(5, 0, 0))
				r := use(t, e, "k:t", total, 1)
				if r.Allowed || r.ResetsAt != 0 || r.Reset != 0 {
					t.Fatalf("after five years: %+v", r)
				}
			})
			t.Run("no quota counts nothing", func(t *testing.T) {
				st := newMapStore()
				e := b.make(t)(st, nil)
				if r := use(t, e, "u:n", keys.Quota{}, 1); !r.Allowed || r.Limit != 0 {
					t.Fatalf("no quota: %+v", r)
				}
				e.Close(ctx)
				if st.adds.Load() != 0 {
					t.Errorf("store written %d times", st.adds.Load())
				}
			})
			t.Run("exact under concurrency", func(t *testing.T) {
				newEngine := b.make(t)
				st := newMapStore()
				// Two engines: for Redis two nodes; for memory, one node's
				// engine used from many goroutines is what counts.
				nodes := []*Engine{newEngine(st, nil)}
				if b.name == "redis" {
					nodes = append(nodes, newEngine(st, nil))
				}
				q := keys.Quota{Limit: 500, Period: keys.PeriodMonth}
				var allowed atomic.Int64
				var wg sync.WaitGroup
				for g := range 16 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						e := nodes[g%len(nodes)]
						for range 100 {
							r, err := e.Use(ctx, "o:busy", q, 1)
							if err != nil {
								t.Error(err)
								return
							}
							if r.Allowed {
								allowed.Add(1)
							}
						}
					}()
				}
				wg.Wait()
				if allowed.Load() != 500 {
					t.Errorf("allowed %d of 1600, want exactly 500", allowed.Load())
				}
				for _, e := range nodes {
					if err := e.Close(ctx); err != nil {
						t.Fatal(err)
					}
				}
				start, _ := Window(keys.PeriodMonth, time.Now())
				if got := st.get("o:busy", keys.PeriodMonth, start); got != 500 {
					t.Errorf("store holds %d, want 500", got)
				}
			})
			t.Run("use survives a restart through the store", func(t *testing.T) {
				newEngine := b.make(t)
				st := newMapStore()
				e := newEngine(st, nil)
				use(t, e, "u:r", month, 6)
				if err := e.Close(ctx); err != nil {
					t.Fatal(err)
				}
				e = newEngine(st, nil)
				if r := use(t, e, "u:r", month, 1); !r.Allowed || r.Used != 7 {
					t.Fatalf("after restart: %+v", r)
				}
				p, err := e.Peek(ctx, "u:r", month)
				if err != nil || p.Used != 7 || p.Remaining != 3 {
					t.Fatalf("Peek = %+v, %v", p, err)
				}
			})
			t.Run("a failed flush keeps its use", func(t *testing.T) {
				st := newMapStore()
				e := b.make(t)(st, nil)
				use(t, e, "u:f", month, 3)
				st.fail.Store(true)
				if err := e.Flush(ctx); !errors.Is(err, errDown) {
					t.Fatalf("Flush = %v, want the store's error", err)
				}
				st.fail.Store(false)
				if err := e.Close(ctx); err != nil {
					t.Fatal(err)
				}
				start, _ := Window(keys.PeriodMonth, time.Now())
				if got := st.get("u:f", keys.PeriodMonth, start); got != 3 {
					t.Errorf("store holds %d, want 3", got)
				}
			})
		})
	}
}

func TestStoreUnavailable(t *testing.T) {
	for _, deny := range []bool{false, true} {
		st := newMapStore()
		st.fail.Store(true)
		var errs atomic.Int64
		e := New(st, Options{DenyOnError: deny, Errors: func() { errs.Add(1) }})
		r, err := e.Use(ctx, "u:x", month, 1)
		if !errors.Is(err, ErrUnavailable) || r.Allowed == deny || errs.Load() != 1 {
			t.Errorf("deny=%v: Use = %+v, %v (errors counted %d)", deny, r, err, errs.Load())
		}
		st.fail.Store(false)
		if r := use(t, e, "u:x", month, 1); !r.Allowed {
			t.Errorf("deny=%v: after the store came back: %+v", deny, r)
		}
	}
}

// TestRedisRestart: a counter Redis lost is rebuilt from the store plus
// what this node has not flushed yet.
func TestRedisRestart(t *testing.T) {
	client, prefix := testRedis(t)
	st := newMapStore()
	e := New(st, Options{Redis: client, KeyPrefix: prefix, Timeout: 5 * time.Second})
	use(t, e, "u:rr", month, 4)
	if err := e.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	use(t, e, "u:rr", month, 3) // pending, not yet in the store
	start, _ := Window(keys.PeriodMonth, time.Now())
	if err := client.Del(ctx, e.redisKey(countKey{"u:rr", keys.PeriodMonth, start})).Err(); err != nil {
		t.Fatal(err)
	}
	if r := use(t, e, "u:rr", month, 1); !r.Allowed || r.Used != 8 {
		t.Fatalf("after Redis lost the counter: %+v", r)
	}
	if r := use(t, e, "u:rr", month, 3); r.Allowed {
		t.Fatalf("over the limit after the restart: %+v", r)
	}
}

func TestRedisUnavailable(t *testing.T) {
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", ContextTimeoutEnabled: true, MaxRetries: -1})
	defer client.Close()
	for _, deny := range []bool{false, true} {
		st := newMapStore()
		e := New(st, Options{Redis: client, DenyOnError: deny, Timeout: 100 * time.Millisecond})
		r, err := e.Use(ctx, "u:x", month, 2)
		if !errors.Is(err, ErrUnavailable) || r.Allowed == deny {
			t.Errorf("deny=%v: Use = %+v, %v", deny, r, err)
		}
		e.Close(ctx)
		start, _ := Window(keys.PeriodMonth, time.Now())
		want := int64(2)
		if deny {
			want = 0
		}
		if got := st.get("u:x", keys.PeriodMonth, start); got != want {
			t.Errorf("deny=%v: store holds %d, want %d", deny, got, want)
		}
	}
}

// BenchmarkUseMemory is the quota check on the request path with the
// memory backend: an owner seen before, within its quota.
func BenchmarkUseMemory(b *testing.B) {
	e := New(newMapStore(), Options{})
	q := keys.Quota{Limit: 1 << 62, Period: keys.PeriodMonth}
	owners := []string{"u:1", "u:2", "u:3", "u:4", "u:5", "u:6", "u:7", "u:8"}
	for _, o := range owners {
		e.Use(ctx, o, q, 1)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := e.Use(ctx, owners[i&7], q, 1); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}

func BenchmarkUseRedis(b *testing.B) {
	client, prefix := testRedis(b)
	e := New(newMapStore(), Options{Redis: client, KeyPrefix: prefix, Timeout: time.Second})
	q := keys.Quota{Limit: 1 << 50, Period: keys.PeriodMonth}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.Use(ctx, "u:bench", q, 1); err != nil {
			b.Fatal(err)
		}
	}
}
