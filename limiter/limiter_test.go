package limiter

import (
	"fmt"
	"testing"
	"time"
)

// step is one or more checks in a row: the last must give want, and the ones
// before it must be allowed or denied as want is.
type step struct {
	owner   string // "" means "a"
	limit   Limit
	n       int           // repetitions; 0 means 1
	advance time.Duration // fake clock moves this much before the step (memory only)
}

type checkCase struct {
	name  string
	clock bool // needs the fake clock, so runs against memory only
	steps []step
	want  []Result // one per step
}

var (
	perHour = func(n int64) Limit { return Limit{Limit: n, Window: time.Hour} }
	allowed = func(limit, remaining int64, reset time.Duration) Result {
		return Result{Allowed: true, Limit: limit, Remaining: remaining, Reset: reset}
	}
	denied = func(limit, remaining int64, reset, retry time.Duration) Result {
		return Result{Limit: limit, Remaining: remaining, Reset: reset, RetryAfter: retry}
	}
)

// checkCases run against every backend. Windows are an hour wherever a real
// clock is used so that nothing refills while a case runs.
var checkCases = []checkCase{
	{
		name:  "first request allowed",
		steps: []step{{limit: perHour(5)}},
		want:  []Result{allowed(5, 4, 12*time.Minute)},
	},
	{
		name:  "burst of exactly limit then denied",
		steps: []step{{limit: perHour(5), n: 5}, {limit: perHour(5)}, {limit: perHour(5), n: 3}},
		want: []Result{
			allowed(5, 0, time.Hour),
			denied(5, 0, time.Hour, 12*time.Minute),
			denied(5, 0, time.Hour, 12*time.Minute),
		},
	},
	{
		name:  "remaining counts down",
		steps: []step{{limit: perHour(3)}, {limit: perHour(3)}, {limit: perHour(3)}, {limit: perHour(3)}},
		want: []Result{
			allowed(3, 2, 20*time.Minute),
			allowed(3, 1, 40*time.Minute),
			allowed(3, 0, time.Hour),
			denied(3, 0, time.Hour, 20*time.Minute),
		},
	},
	{
		name:  "limit of one",
		steps: []step{{limit: perHour(1)}, {limit: perHour(1)}},
		want:  []Result{allowed(1, 0, time.Hour), denied(1, 0, time.Hour, time.Hour)},
	},
	{
		name: "limit 0 is unlimited",
		steps: []step{
			{limit: Limit{Window: time.Hour}, n: 1000},
			{limit: Limit{}, n: 10},
			{limit: Limit{Limit: 5}, n: 10}, // no window: unlimited, not a division by zero
			{limit: Limit{Limit: -1, Window: time.Hour}, n: 10},
		},
		want: []Result{{Allowed: true}, {Allowed: true}, {Allowed: true}, {Allowed: true}},
	},
	{
		name: "owners are independent",
		steps: []step{
			{owner: "a", limit: perHour(2), n: 2},
			{owner: "a", limit: perHour(2)},
			{owner: "b", limit: perHour(2)},
			{owner: "a", limit: perHour(2)},
		},
		want: []Result{
			allowed(2, 0, time.Hour),
			denied(2, 0, time.Hour, 30*time.Minute),
			allowed(2, 1, 30*time.Minute),
			denied(2, 0, time.Hour, 30*time.Minute),
		},
	},
	{
		// 1h/7 is not a whole number of nanoseconds or microseconds.
		name:  "uneven division still bursts exactly limit",
		steps: []step{{limit: perHour(7), n: 7}, {limit: perHour(7)}},
		want: []Result{
			allowed(7, 0, 7*(time.Hour/7)),
			denied(7, 0, 7*(time.Hour/7), time.Hour/7),
		},
	},
	{
		name:  "raised limit keeps the share used",
		steps: []step{{limit: perHour(10), n: 5}, {limit: perHour(100)}},
		want: []Result{
			allowed(10, 5, 30*time.Minute),
			allowed(100, 49, 30*time.Minute+36*time.Second),
		},
	},
	{
		name:  "lowered limit keeps the share used",
		steps: []step{{limit: perHour(100), n: 50}, {limit: perHour(10)}},
		want: []Result{
			allowed(100, 50, 30*time.Minute),
			allowed(10, 4, 36*time.Minute),
		},
	},
	{
		// An hour of debt under 100/h must not block a 10/min limit for an hour.
		name: "shorter window caps the debt at a full bucket",
		steps: []step{
			{limit: perHour(100), n: 100},
			{limit: Limit{Limit: 10, Window: time.Minute}},
			{limit: perHour(100)},
		},
		want: []Result{
			allowed(100, 0, time.Hour),
			denied(10, 0, time.Minute, 6*time.Second),
			denied(100, 0, time.Hour, 36*time.Second),
		},
	},
	{
		name:  "refill after one interval",
		clock: true,
		steps: []step{
			{limit: perHour(2), n: 2},
			{limit: perHour(2), advance: 29 * time.Minute},
			{limit: perHour(2), advance: time.Minute},
			{limit: perHour(2)},
			{limit: perHour(2), advance: time.Hour},
		},
		want: []Result{
			allowed(2, 0, time.Hour),
			denied(2, 0, 31*time.Minute, time.Minute),
			allowed(2, 0, time.Hour),
			denied(2, 0, time.Hour, 30*time.Minute),
			allowed(2, 1, 30*time.Minute),
		},
	},
	{
		name:  "full refill after a window",
		clock: true,
		steps: []step{
			{limit: perHour(3), n: 3},
			{limit: perHour(3), n: 3, advance: 2 * time.Hour},
			{limit: perHour(3)},
		},
		want: []Result{
			allowed(3, 0, time.Hour),
			allowed(3, 0, time.Hour),
			denied(3, 0, time.Hour, 20*time.Minute),
		},
	},
	{
		name:  "steady rate after a burst",
		clock: true,
		steps: []step{
			{limit: Limit{Limit: 60, Window: time.Minute}, n: 60},
			{limit: Limit{Limit: 60, Window: time.Minute}, advance: time.Second},
			{limit: Limit{Limit: 60, Window: time.Minute}},
			{limit: Limit{Limit: 60, Window: time.Minute}, advance: time.Second},
			{limit: Limit{Limit: 60, Window: time.Minute}, advance: 500 * time.Millisecond},
		},
		want: []Result{
			allowed(60, 0, time.Minute),
			allowed(60, 0, time.Minute),
			denied(60, 0, time.Minute, time.Second),
			allowed(60, 0, time.Minute),
			denied(60, 0, time.Minute-500*time.Millisecond, 500*time.Millisecond),
		},
	},
}

// checker runs one check; advance moves its clock (nil when it has none).
type checker struct {
	allow   func(owner string, l Limit) (Result, error)
	advance func(time.Duration)
	// tol is how much less than wanted Reset and RetryAfter may be: a real
	// clock moves between checks, and Redis counts in microseconds.
	tol time.Duration
}

// runCheckCases runs checkCases; newChecker gives each case fresh owners.
func runCheckCases(t *testing.T, newChecker func(t *testing.T) checker) {
	for _, tc := range checkCases {
		t.Run(tc.name, func(t *testing.T) {
			c := newChecker(t)
			if tc.clock && c.advance == nil {
				t.Skip("needs a fake clock")
			}
			if len(tc.want) != len(tc.steps) {
				t.Fatalf("case has %d steps and %d results", len(tc.steps), len(tc.want))
			}
			for i, s := range tc.steps {
				if s.advance != 0 {
					c.advance(s.advance)
				}
				owner := s.owner
				if owner == "" {
					owner = "a"
				}
				for j := range max(s.n, 1) {
					got, err := c.allow(owner, s.limit)
					if err != nil {
						t.Fatalf("step %d, check %d: %v", i, j, err)
					}
					if j < s.n-1 {
						if got.Allowed != tc.want[i].Allowed {
							t.Fatalf("step %d, check %d: got %+v, want Allowed %v", i, j, got, tc.want[i].Allowed)
						}
						continue
					}
					if !resultNear(got, tc.want[i], c.tol) {
						t.Fatalf("step %d, check %d: got %+v, want %+v", i, j, got, tc.want[i])
					}
				}
			}
		})
	}
}

func resultNear(got, want Result, tol time.Duration) bool {
	near := func(g, w time.Duration) bool { return g <= w && g >= w-tol }
	return got.Allowed == want.Allowed && got.Limit == want.Limit && got.Remaining == want.Remaining &&
		near(got.Reset, want.Reset) && near(got.RetryAfter, want.RetryAfter)
}

func TestGCRA(t *testing.T) {
	tests := []struct {
		limit    Limit
		unit     time.Duration
		interval int64
		capacity int64
	}{
		{perHour(3), time.Nanosecond, int64(20 * time.Minute), int64(time.Hour)},
		{perHour(3), time.Microsecond, 1_200_000_000, 3_600_000_000},
		{perHour(7), time.Nanosecond, int64(time.Hour / 7), int64(time.Hour/7) * 7},
		// More requests than nanoseconds in the window: one per nanosecond.
		{Limit{Limit: 1000, Window: 10}, time.Nanosecond, 1, 1000},
		{Limit{Limit: 1000, Window: time.Millisecond}, time.Microsecond, 1, 1000},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d per %v in %v", tt.limit.Limit, tt.limit.Window, tt.unit), func(t *testing.T) {
			g := newGCRA(tt.limit, tt.unit)
			if g.interval != tt.interval || g.capacity != tt.capacity {
				t.Fatalf("got %+v, want interval %d capacity %d", g, tt.interval, tt.capacity)
			}
		})
	}
}
