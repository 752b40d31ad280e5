package portal

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/keygate/keygate/keys"
)

// A portal session made on one node works on another node that shares the
// store (cookie jars ignore ports, so one browser visits both), and ending
// it on one ends it everywhere.
func TestSessionAcrossNodes(t *testing.T) {
	e := newEnv(t, nil)
	e.user("alice")
	other, err := keys.NewService(context.Background(), e.store, e.svc.Tokens(), keys.Options{Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	nodeB := New(Options{Service: other, Usage: e.store, Path: base, Now: e.clock.Now, DefaultExpiration: "never"})
	t.Cleanup(nodeB.Close)
	srvB := httptest.NewServer(nodeB.Handler())
	t.Cleanup(srvB.Close)

	b, _ := e.login("alice", "")
	if r := b.get(srvB.URL + base + "/"); r.status != http.StatusOK {
		t.Fatalf("home on node B: %d\n%s", r.status, r.body)
	}
	// A form from node B posts to node A with B's CSRF token.
	if r := b.post(base+"/logout", nil); r.status != http.StatusOK {
		t.Fatalf("logout on node A: %d", r.status)
	}
	if r := b.get(srvB.URL + base + "/"); r.status != http.StatusUnauthorized {
		t.Fatalf("node B after logout on A: %d", r.status)
	}
}
