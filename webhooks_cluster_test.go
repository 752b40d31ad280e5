package main

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/postgres/pgtest"
)

// TestClusterWebhooksOnce runs two nodes on one Postgres database, both
// with a sender and an expiry scheduler, makes changes on both at once,
// and checks that the receiver gets each event exactly once.
func TestClusterWebhooksOnce(t *testing.T) {
	needRedis(t)
	dsn := pgtest.NewDatabase(t)
	up := echoUpstream(t)
	rcv := newReceiver(t)
	rcv.fail = func(hook, int) int { time.Sleep(5 * time.Millisecond); return 0 } // keep senders busy at once
	extra := webhooksYAML(rcv.URL, "  expiry_notice: [1s]\n")
	a := newClient(t, startNode(t, dsn, up.URL, extra))
	b := newClient(t, startNode(t, dsn, up.URL, extra))

	const n = 20
	var wg sync.WaitGroup
	for i, c := range []*client{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range n {
				c.must(200, "PUT", fmt.Sprintf("/v1/users/n%d-u%d", i, j), map[string]any{"email": "u@example.com"})
			}
		}()
	}
	wg.Wait()
	exp := time.Now().Unix() + 3
	for _, c := range []*client{a, b} {
		c.must(201, "POST", "/v1/keys", map[string]any{"type": "generic", "expires_at": exp})
	}
	want := map[string]int{"user.upserted": 2 * n, "api_key.created": 2, "api_key.expiring": 2, "api_key.expired": 2}
	waitHooks(t, rcv, 10*time.Second, "every event", func(hs []hook) string {
		got := map[string]int{}
		for _, h := range hs {
			got[h.Type]++
		}
		for typ, k := range want {
			if got[typ] < k {
				return fmt.Sprintf("%v, want %v", got, want)
			}
		}
		return ""
	})
	time.Sleep(1500 * time.Millisecond) // room for a duplicate to show up
	got := map[string]int{}
	ids := map[string]int{}
	for _, h := range rcv.hooks() {
		got[h.Type]++
		ids[h.ID]++
		if err := verifyStandardWebhook(testWebhookSecret, h.ID, h.Timestamp, h.Signature, h.Body, time.Now()); err != nil {
			t.Error(err)
		}
	}
	for typ, k := range want {
		if got[typ] != k {
			t.Errorf("%s delivered %d times, want %d", typ, got[typ], k)
		}
	}
	for id, k := range ids {
		if k != 1 {
			t.Errorf("webhook-id %s delivered %d times", id, k)
		}
	}
}
