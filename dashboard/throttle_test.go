package dashboard

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// Issue 10.11: the login form did not throttle failed attempts.
func TestLoginThrottled(t *testing.T) {
	e := newDashEnv(t)
	c := e.client()
	form := dashFormRE.FindStringSubmatch(c.get("/login").body)[1]
	for i := 0; i < 10; i++ {
		if r := c.post("/login", url.Values{"form": {form}, "token": {"guess"}}); r.status != http.StatusUnauthorized {
			t.Fatalf("guess %d: %d", i, r.status)
		}
	}
	r := c.post("/login", url.Values{"form": {form}, "token": {dashTestToken}})
	if r.status != http.StatusTooManyRequests || !strings.Contains(r.body, "Too many failed sign-ins") {
		t.Fatalf("after 10 failures, the right token: %d", r.status)
	}
}
