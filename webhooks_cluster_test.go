package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
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

// TestClusterWebhooksNodeKilled: a node killed (SIGKILL) while it sends a
// delivery leaves it leased; once the lease runs out another node sends it,
// with the same webhook-id.
func TestClusterWebhooksNodeKilled(t *testing.T) {
	needRedis(t)
	dsn := pgtest.NewDatabase(t)
	up := echoUpstream(t)
	bin := filepath.Join(t.TempDir(), "keygate")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	rcv := newReceiver(t)
	arrived := make(chan struct{}, 1)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	rcv.fail = func(h hook, nth int) int {
		if len(rcv.hooks()) == 1 { // the first request: B is sending it; hang
			arrived <- struct{}{}
			<-release
		}
		return 0
	}
	// timeout 1s: B's lease is 8×1s + 5s.
	extra := strings.Replace(webhooksYAML(rcv.URL, ""), "timeout: 2s", "timeout: 1s", 1)

	adminAddr, proxyAddr := freeAddr(t), freeAddr(t)
	cfg := strings.Replace(strings.Replace(clusterYAML(dsn, up.URL, extra), `listen: "127.0.0.1:0"`, fmt.Sprintf("listen: %q", proxyAddr), 1),
		`listen: "127.0.0.1:0"`, fmt.Sprintf("listen: %q", adminAddr), 1)
	cfgPath := filepath.Join(t.TempDir(), "b.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", "--config", cfgPath)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	waitReady(t, "http://"+adminAddr+"/readyz")
	b := &client{t: t, admin: "http://" + adminAddr, proxy: "http://" + proxyAddr}
	b.must(200, "PUT", "/v1/users/erin", map[string]any{"email": "erin@example.com"})
	select {
	case <-arrived:
	case <-time.After(5 * time.Second):
		t.Fatal("B never sent the delivery")
	}
	killed := time.Now()
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()

	a := newClient(t, startNode(t, dsn, up.URL, extra))
	waitHooks(t, rcv, 20*time.Second, "the delivery from A", func(hs []hook) string {
		if len(hs) < 2 {
			return fmt.Sprintf("%d requests", len(hs))
		}
		return ""
	})
	hs := rcv.hooks()
	if hs[0].ID != hs[1].ID || hs[1].Type != "user.upserted" {
		t.Errorf("requests %s %s / %s %s: want the same delivery again", hs[0].ID, hs[0].Type, hs[1].ID, hs[1].Type)
	}
	t.Logf("sent again %v after B was killed", hs[1].At.Sub(killed).Round(100*time.Millisecond))
	within(t, 2*time.Second, "delivered", func() string {
		d := deliveries(a, "?status=delivered")
		if len(d) != 1 || d[0]["id"] != hs[0].ID || d[0]["attempts"] != float64(1) {
			return fmt.Sprintf("%v", d)
		}
		return ""
	})
}
