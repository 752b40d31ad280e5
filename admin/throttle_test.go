package admin_test

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/admin"
)

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Issue 10.11: failed admin API authentication was neither throttled nor
// logged, so the token could be guessed thousands of times a second.
func TestAuthThrottle(t *testing.T) {
	var logs syncBuf
	var e *env
	e = newEnv(t, func(o *admin.Options) {
		o.Throttle = admin.NewAuthThrottle(3, time.Minute, func() time.Time { return e.clock.Now() })
		o.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
	})
	guess := "Bearer wrong-guess-SECRETGUESS"
	for i := 0; i < 3; i++ {
		if r := e.callAs(guess, "GET", "/v1/keys", ""); r.status != 401 {
			t.Fatalf("guess %d: %d", i, r.status)
		}
	}
	// Blocked now, even with the right token: guessing stops here.
	for _, auth := range []string{guess, "Bearer " + testToken} {
		r := e.callAs(auth, "GET", "/v1/keys", "")
		if r.status != 429 || r.header.Get("Retry-After") != "60" || !strings.Contains(string(r.body), `"rate_limited"`) {
			t.Fatalf("%q after 3 failures: %d %s", auth, r.status, r.body)
		}
	}
	if n := strings.Count(logs.String(), "admin API authentication failed"); n != 3 {
		t.Errorf("%d failures logged, want 3:\n%s", n, logs.String())
	}
	if strings.Contains(logs.String(), "SECRETGUESS") {
		t.Errorf("the tried token is in the log:\n%s", logs.String())
	}
	e.clock.Set(e.clock.Now().Add(time.Minute))
	if r := e.callAs("Bearer "+testToken, "GET", "/v1/keys", ""); r.status != 200 {
		t.Fatalf("after the window: %d", r.status)
	}
}
