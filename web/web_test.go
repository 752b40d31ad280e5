package web_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/sqlite"
	"github.com/keygate/keygate/web"
)

// twoNodes returns the sessions of kind as two nodes sharing one store see
// them.
func twoNodes(t *testing.T, kind string) (a, b *web.Sessions) {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "k.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return web.NewSessions(st, kind), web.NewSessions(st, kind)
}

func TestLinkMadeOnOneNodeIsRedeemedOnceOnAnother(t *testing.T) {
	ctx := context.Background()
	a, b := twoNodes(t, keys.SessionPortal)
	now := time.Unix(1_800_000_000, 0)
	token, err := a.NewLink(ctx, "alice", "acme", now.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if len(token) != web.TokenLen {
		t.Fatalf("token %q", token)
	}
	if l, err := b.PeekLink(ctx, token, now); err != nil || l.UserID != "alice" || l.OrgID != "acme" {
		t.Fatalf("peek on b: %+v %v", l, err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for _, node := range []*web.Sessions{a, b, a, b, a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := node.TakeLink(ctx, token, now)
			if err == nil {
				mu.Lock()
				wins++
				mu.Unlock()
			} else if !web.IsNotFound(err) {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if wins != 1 {
		t.Fatalf("link redeemed %d times", wins)
	}
	if _, err := a.TakeLink(ctx, "short", now); !errors.Is(err, keys.ErrNotFound) {
		t.Fatalf("malformed token: %v", err)
	}
}

func TestSessionWorksOnEveryNode(t *testing.T) {
	ctx := context.Background()
	a, b := twoNodes(t, keys.SessionDashboard)
	now := time.Unix(1_800_000_000, 0)
	token, s, err := a.Start(ctx, "", "", now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	got, err := b.Get(ctx, token, now, false)
	if err != nil || got.CSRF != s.CSRF || !web.CheckCSRF(s.CSRF, got.CSRF) {
		t.Fatalf("session on b: %+v %v", got, err)
	}
	// The flash set on one node is shown once, on any node.
	if err := b.SetFlash(ctx, token, "Saved."); err != nil {
		t.Fatal(err)
	}
	if got, _ := a.Get(ctx, token, now, true); got.Flash != "Saved." {
		t.Fatalf("flash = %q", got.Flash)
	}
	if got, _ := b.Get(ctx, token, now, true); got.Flash != "" {
		t.Fatalf("flash shown twice: %q", got.Flash)
	}
	if err := a.End(ctx, token); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get(ctx, token, now, false); !web.IsNotFound(err) {
		t.Fatalf("ended session on b: %v", err)
	}
	if _, err := b.Get(ctx, "x", now, false); !web.IsNotFound(err) {
		t.Fatalf("malformed token: %v", err)
	}
}

func TestSecure(t *testing.T) {
	r := httptest.NewRequest("GET", "http://x/", nil)
	if web.Secure(r, "") || !web.Secure(r, "HTTPS://api.example.com") {
		t.Fatal("public URL")
	}
	r.Header.Set("X-Forwarded-Proto", "https")
	if !web.Secure(r, "") {
		t.Fatal("X-Forwarded-Proto")
	}
	if web.CheckCSRF("", "") || web.CheckCSRF("a", "b") || !web.CheckCSRF("a", "a") {
		t.Fatal("CheckCSRF")
	}
}
