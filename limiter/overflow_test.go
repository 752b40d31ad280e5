package limiter

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"
)

// Issue 10.12: 1 request per 1,300,000 h turned into no limit at all in
// the memory limiter: tat+interval overflowed int64 nanoseconds.
func TestLongWindowsStayLimited(t *testing.T) {
	base := time.Unix(1_800_000_000, 0)
	for _, l := range []Limit{
		{Limit: 1, Window: 1_300_000 * time.Hour},
		{Limit: 2, Window: math.MaxInt64},
		{Limit: math.MaxInt64, Window: time.Nanosecond},
		{Limit: 3, Window: MaxWindow},
	} {
		t.Run(fmt.Sprintf("%d per %s", l.Limit, l.Window), func(t *testing.T) {
			m := NewMemory(MemoryOptions{Now: func() time.Time { return base }})
			defer m.Close()
			allowed := 0
			for i := 0; i < 10; i++ {
				if r := m.allow("o", l, base.Add(time.Duration(i)*time.Second)); r.Allowed {
					allowed++
				} else if r.RetryAfter <= 0 || r.Remaining < 0 {
					t.Fatalf("refused with %+v", r)
				}
			}
			if want := int(min(l.Limit, 10)); allowed != want {
				t.Errorf("allowed %d of 10, want %d", allowed, want)
			}
		})
	}
}

// FuzzGCRA checks the arithmetic for any limit, window and times: at one
// instant, exactly min(k, limit) of k requests pass (limit capped as
// newGCRA caps it), results are never negative and a refusal's wait is
// positive.
func FuzzGCRA(f *testing.F) {
	f.Add(int64(1), int64(1_300_000*time.Hour), int64(0), int64(0), uint8(5))
	f.Add(int64(5), int64(time.Minute), int64(1e18), int64(3e18), uint8(9))
	f.Add(int64(math.MaxInt64), int64(1), int64(math.MaxInt64/2), int64(0), uint8(3))
	f.Fuzz(func(t *testing.T, limit, window, now, tat int64, k uint8) {
		l := Limit{Limit: limit, Window: time.Duration(window)}
		if l.Unlimited() || now < 0 || now > math.MaxInt64/2 || tat < 0 {
			return
		}
		g := newGCRA(l, time.Nanosecond)
		if g.interval < 1 || g.capacity < g.interval || g.capacity > int64(MaxWindow) {
			t.Fatalf("%+v: gcra %+v", l, g)
		}
		// From a full bucket (tat <= now), exactly min(k, burst) pass.
		burst := g.capacity / g.interval
		cur, allowed := now, int64(0)
		for i := 0; i < int(k); i++ {
			next, ok, rem, reset, retry := g.decide(cur, now)
			if rem < 0 || reset < 0 || retry < 0 || next < now {
				t.Fatalf("%+v: negative result next=%d rem=%d reset=%d retry=%d", l, next, rem, reset, retry)
			}
			if ok {
				allowed++
				cur = next
			} else if retry <= 0 {
				t.Fatalf("%+v: refused without a wait", l)
			}
		}
		if want := min(int64(k), burst); allowed != want {
			t.Fatalf("%+v: %d of %d passed, want %d", l, allowed, k, want)
		}
		// Any stored tat: the answer stays within the bucket.
		_, _, rem, reset, _ := g.decide(tat, now)
		if rem < 0 || rem > burst || reset < 0 || reset > g.capacity {
			t.Fatalf("%+v tat=%d now=%d: remaining %d reset %d", l, tat, now, rem, reset)
		}
	})
}

// FuzzMemoryVsRedis runs the same burst against both backends: each must
// allow and refuse the same requests with the same Remaining. Windows are
// long enough (≥ 1 s per request) that the real time Redis sees pass does
// not refill a request.
func FuzzMemoryVsRedis(f *testing.F) {
	client, prefix := testRedis(f)
	f.Add(uint8(3), int64(time.Hour), uint8(5))
	f.Add(uint8(1), int64(1_300_000*time.Hour), uint8(3))
	f.Add(uint8(40), int64(MaxWindow)*3, uint8(45))
	n := 0
	f.Fuzz(func(t *testing.T, limit uint8, window int64, k uint8) {
		if limit == 0 || k > 64 || time.Duration(window) < time.Duration(limit)*time.Second {
			return
		}
		l := Limit{Limit: int64(limit), Window: time.Duration(window)}
		base := time.Unix(1_800_000_000, 0)
		m := NewMemory(MemoryOptions{Now: func() time.Time { return base }})
		defer m.Close()
		n++
		r := NewRedis(client, RedisOptions{KeyPrefix: fmt.Sprintf("%sfuzz%d:", prefix, n), Timeout: 5 * time.Second})
		for i := 0; i < int(k); i++ {
			mr, _ := m.Allow(context.Background(), "o", l)
			rr, err := r.Allow(context.Background(), "o", l)
			if err != nil {
				t.Fatal(err)
			}
			if mr.Allowed != rr.Allowed || mr.Remaining != rr.Remaining || mr.Limit != rr.Limit {
				t.Fatalf("%+v request %d: memory %+v, redis %+v", l, i, mr, rr)
			}
		}
	})
}
