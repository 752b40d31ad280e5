package webhooks

import (
	"context"
	"encoding/json"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/sqlite"
)

// clock is a settable time.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

func openStore(t *testing.T) keys.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "k.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// TestExpiryMarks drives the scheduler with an injected clock: each notice
// goes out once, when due, and the next due time comes from the index.
func TestExpiryMarks(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	clk := &clock{t: time.Unix(1_000_000, 0)}
	ob := NewOutbox([]Endpoint{{URL: "http://127.0.0.1:1/", Secret: []byte("0123456789abcdef01234567")}}, clk.Now)
	svc, err := keys.NewService(ctx, st, mustTokens(t), keys.Options{Now: clk.Now, Events: ob})
	if err != nil {
		t.Fatal(err)
	}
	e := NewExpiry(ExpiryOptions{Store: st, Outbox: ob, Notices: []time.Duration{time.Hour, 10 * time.Second}, Now: clk.Now})
	if _, err := e.Tick(ctx); err != nil { // first run: marks start at now
		t.Fatal(err)
	}
	exp := clk.Now().Unix() + 7200
	k, _, err := svc.CreateKey(ctx, keys.CreateKeyInput{Type: keys.TypeGeneric, ExpiresAt: &exp})
	if err != nil {
		t.Fatal(err)
	}
	now, err := e.Tick(ctx)
	if err != nil {
		t.Fatal(err)
	}
	due, ok, err := e.NextDue(ctx, now)
	if err != nil || !ok || due.Unix() != exp-3600 {
		t.Fatalf("NextDue = %v %v %v, want %d", due.Unix(), ok, err, exp-3600)
	}
	types := func() map[string]int {
		ds, _, err := st.ListDeliveries(ctx, keys.DeliveryFilter{})
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]int{}
		for _, d := range ds {
			var p struct {
				Data map[string]any `json:"data"`
			}
			json.Unmarshal(d.Payload, &p)
			if d.Type != "api_key.created" && p.Data["id"] != k.ID {
				t.Errorf("%s about %v", d.Type, p.Data["id"])
			}
			m[d.Type]++
		}
		return m
	}
	for _, step := range []struct {
		at   int64
		want map[string]int
	}{
		{exp - 3601, map[string]int{"api_key.created": 1}},
		{exp - 3600, map[string]int{"api_key.created": 1, "api_key.expiring": 1}},
		{exp - 3000, map[string]int{"api_key.created": 1, "api_key.expiring": 1}},
		{exp - 10, map[string]int{"api_key.created": 1, "api_key.expiring": 2}},
		{exp - 1, map[string]int{"api_key.created": 1, "api_key.expiring": 2}},
		{exp, map[string]int{"api_key.created": 1, "api_key.expiring": 2, "api_key.expired": 1}},
		{exp + 100, map[string]int{"api_key.created": 1, "api_key.expiring": 2, "api_key.expired": 1}},
	} {
		clk.Set(time.Unix(step.at, 0))
		if _, err := e.Tick(ctx); err != nil {
			t.Fatal(err)
		}
		if got := types(); !equalCounts(got, step.want) {
			t.Fatalf("at exp%+d: %v, want %v", step.at-exp, got, step.want)
		}
	}
}

func equalCounts(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func mustTokens(t *testing.T) *keys.Tokens {
	tk, err := keys.NewTokens("kg")
	if err != nil {
		t.Fatal(err)
	}
	return tk
}
