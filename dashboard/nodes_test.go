package dashboard

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/keygate/keygate/admin"
	"github.com/keygate/keygate/keys"
)

// A dashboard login on one node works on another node sharing the store,
// and signing out on one signs out everywhere.
func TestDashSessionAcrossNodes(t *testing.T) {
	e := newDashEnv(t)
	other, err := keys.NewService(context.Background(), e.store, e.svc.Tokens(), keys.Options{Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	srv := admin.New(admin.Options{Service: other, Token: dashTestToken, Usage: e.store, Now: e.clock.Now})
	New(Options{Service: other, Store: e.store, Token: dashTestToken, Settings: nil, Now: e.clock.Now}).
		Register(srv.Mux())
	nodeB := httptest.NewServer(srv.Handler())
	t.Cleanup(nodeB.Close)

	c, _ := e.login()
	get := func(base string) dashResp {
		req, _ := http.NewRequest(http.MethodGet, base+"/keys", nil)
		return c.do(req)
	}
	if r := get(nodeB.URL); r.status != http.StatusOK {
		t.Fatalf("node B: %d\n%s", r.status, r.body)
	}
	if r := c.post("/logout", nil); r.status != http.StatusSeeOther {
		t.Fatalf("logout on A: %d", r.status)
	}
	if r := get(nodeB.URL); r.status != http.StatusSeeOther {
		t.Fatalf("node B after logout on A: %d, want a redirect to the login form", r.status)
	}
}
