// Package limiter enforces per-owner rate limits with GCRA, in memory or in Redis.
package limiter

import (
	"errors"
	"time"
)

// ErrUnavailable is wrapped into the error a backend returns when it could not
// decide (Redis unreachable, timeout); the Result then follows the backend's
// OnError policy.
var ErrUnavailable = errors.New("rate limiter backend unavailable")

// Limit allows at most Limit requests per Window for one owner: bursts of up
// to Limit requests from an idle state, then a steady Limit per Window (one
// request every Window/Limit).
//
// The zero value, and any Limit <= 0 or Window <= 0, means unlimited: every
// request is allowed and no state is kept.
type Limit struct {
	Limit  int64
	Window time.Duration
}

// Unlimited reports whether l allows everything.
func (l Limit) Unlimited() bool { return l.Limit <= 0 || l.Window <= 0 }

// Result is the outcome of one check.
type Result struct {
	// Allowed reports whether the request may proceed.
	Allowed bool
	// Limit is the limit applied; 0 means none is known (unlimited, or a
	// backend that could not answer), and then callers should not send
	// RateLimit-* headers. Only RetryAfter may then be set (a denial).
	Limit int64
	// Remaining is how many more requests would be allowed right now (>= 0).
	Remaining int64
	// Reset is the time until the bucket is full again; callers round it up
	// to whole seconds for RateLimit-Reset.
	Reset time.Duration
	// RetryAfter, when !Allowed, is the time until the next request would be
	// allowed (> 0); it is 0 when Allowed.
	RetryAfter time.Duration
}

// gcra is a Limit in the units of one backend's clock.
type gcra struct {
	interval int64 // emission interval: one request per interval
	capacity int64 // interval*limit, so that bursts are exactly limit requests
}

// MaxWindow is the longest window a Limit means; a longer one counts as
// MaxWindow. Keeping windows (and so capacities) this small keeps every sum
// of times far from overflowing int64 nanoseconds, and exact in the Redis
// script's doubles (2^53 µs). Config and the admin API refuse longer ones.
const MaxWindow = 366 * 24 * time.Hour

// newGCRA converts a limited l into clock units of unit (1 for nanoseconds).
// The interval is rounded down (never below 1), so the steady rate is at
// least Limit per Window, and the capacity is interval*Limit rather than
// Window, so a burst is exactly Limit requests whatever the rounding.
// Window is capped at MaxWindow and Limit at MaxWindow in units, so the
// capacity is at most MaxWindow (or that many units).
func newGCRA(l Limit, unit time.Duration) gcra {
	w := min(l.Window, MaxWindow)
	n := min(l.Limit, int64(MaxWindow/unit))
	iv := int64(w/unit) / n
	if iv < 1 {
		iv = 1
	}
	return gcra{interval: iv, capacity: iv * n}
}

// decide applies one request at now to the theoretical arrival time tat
// (the time at which the bucket is full again; tat <= now means full) and
// returns the tat to store when allowed. All values are in g's unit.
//
// A tat more than capacity ahead can only come from a lowered limit; it is
// clamped so a lowered limit means "bucket empty", not a debt from the old one.
//
// It works on the distance d = tat-now, which lies in [0, capacity], so no
// sum exceeds now+capacity: whatever the limit, nothing overflows.
func (g gcra) decide(tat, now int64) (next int64, allowed bool, remaining, reset, retry int64) {
	var d int64
	if tat > now {
		d = min(tat-now, g.capacity) // tat > now: no overflow
	}
	if d <= g.capacity-g.interval {
		d += g.interval
		return now + d, true, (g.capacity - d) / g.interval, d, 0
	}
	return now + d, false, (g.capacity - d) / g.interval, d, d + g.interval - g.capacity
}
