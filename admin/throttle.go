package admin

import (
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Defaults of an AuthThrottle: 10 failed attempts per address, then none
// until the minute that began with the first failure is over.
const (
	DefaultAuthFailures = 10
	DefaultAuthWindow   = time.Minute
)

// maxTracked bounds the addresses an AuthThrottle remembers; past it,
// expired entries are swept on the next failure.
const maxTracked = 10_000

// AuthThrottle counts failed admin-token attempts (API calls and dashboard
// logins) per client address, and refuses every attempt from an address
// that failed Max times within Window, so the token cannot be guessed at
// speed. The address is the connection's, never a header a client can set.
// Create it with NewAuthThrottle; it is safe for concurrent use.
type AuthThrottle struct {
	max    int
	window time.Duration
	now    func() time.Time

	mu   sync.Mutex
	seen map[string]*authFailures
}

type authFailures struct {
	n     int
	since time.Time // first failure of the current window
}

// NewAuthThrottle returns a throttle allowing max failures per window per
// address; max <= 0 or window <= 0 mean the defaults, nil now time.Now.
func NewAuthThrottle(max int, window time.Duration, now func() time.Time) *AuthThrottle {
	if max <= 0 {
		max = DefaultAuthFailures
	}
	if window <= 0 {
		window = DefaultAuthWindow
	}
	if now == nil {
		now = time.Now
	}
	return &AuthThrottle{max: max, window: window, now: now, seen: map[string]*authFailures{}}
}

// Blocked reports whether addr must wait before trying again, and how long.
func (t *AuthThrottle) Blocked(addr string) (time.Duration, bool) {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	f := t.seen[addr]
	if f == nil || f.n < t.max {
		return 0, false
	}
	wait := f.since.Add(t.window).Sub(now)
	if wait <= 0 {
		delete(t.seen, addr)
		return 0, false
	}
	return wait, true
}

// Fail records a failed attempt from addr.
func (t *AuthThrottle) Fail(addr string) {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.seen) >= maxTracked {
		for a, f := range t.seen {
			if !now.Before(f.since.Add(t.window)) {
				delete(t.seen, a)
			}
		}
	}
	f := t.seen[addr]
	if f == nil || !now.Before(f.since.Add(t.window)) {
		if f == nil && len(t.seen) >= maxTracked {
			return // full of live entries: the flood is throttled already
		}
		f = &authFailures{since: now}
		t.seen[addr] = f
	}
	f.n++
}

// ClientAddr is the IP of r's connection, the key failures are counted by.
func ClientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// writeThrottled answers an API call from a throttled address.
func writeThrottled(w http.ResponseWriter, wait time.Duration) {
	secs := waitSeconds(wait)
	w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
	writeJSON(w, http.StatusTooManyRequests, errorBody{Error: "rate_limited",
		Message: "too many failed admin token attempts from this address; try again in " + strconv.FormatInt(secs, 10) + " s",
		Fields:  map[string][]string{}, WaitSeconds: secs})
}
