package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// proxyGet sends a request through the proxy and returns the response,
// whose body the caller need not read.
func (c *client) proxyGet(token string) *http.Response {
	c.t.Helper()
	req, _ := http.NewRequest("GET", c.proxy+"/", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

func nextMonth(now time.Time) int64 {
	y, m, _ := now.UTC().Date()
	return time.Date(y, m+1, 1, 0, 0, 0, 0, time.UTC).Unix()
}

func TestEndToEndQuota(t *testing.T) {
	up := echoUpstream(t)
	app := startApp(t, filepath.Join(t.TempDir(), "kg.db"), up.URL, `
quotas:
  generic: {limit: 5, period: month}
`)
	c := newClient(t, app)

	// A generic key under the type's quota: 5 requests, then 429 until the
	// 1st of next month.
	key := c.must(201, "POST", "/v1/keys", map[string]any{})
	id, tok := key["id"].(string), key["token"].(string)
	for i := 1; i <= 5; i++ {
		resp := c.proxyGet(tok)
		if resp.StatusCode != 200 || resp.Header.Get("X-Quota-Limit") != "5" || resp.Header.Get("X-Quota-Remaining") != strconv.Itoa(5-i) {
			t.Fatalf("request %d: %d %v", i, resp.StatusCode, resp.Header)
		}
	}
	resp := c.proxyGet(tok)
	wait := nextMonth(time.Now()) - time.Now().Unix()
	ra, _ := strconv.ParseInt(resp.Header.Get("Retry-After"), 10, 64)
	reset, _ := strconv.ParseInt(resp.Header.Get("X-Quota-Reset"), 10, 64)
	if resp.StatusCode != 429 || ra < wait-5 || ra > wait+5 || reset < wait-5 || reset > wait+5 || resp.Header.Get("X-Quota-Remaining") != "0" {
		t.Fatalf("6th request: %d %v, want 429 with Retry-After ≈ %d", resp.StatusCode, resp.Header, wait)
	}
	code, body := c.get(tok, "/")
	if code != 429 || body["error"] != "quota_exceeded" || body["wait_seconds"].(float64) < float64(wait-5) {
		t.Fatalf("quota_exceeded body: %d %v", code, body)
	}
	k := c.must(200, "GET", "/v1/keys/"+id, nil)
	q, _ := k["quota"].(map[string]any)
	if q == nil || q["limit"] != 5.0 || q["period"] != "month" || q["used"] != 5.0 || q["remaining"] != 0.0 || q["resets_at"] != float64(nextMonth(time.Now())) {
		t.Fatalf("key quota = %v", k["quota"])
	}

	// Raising the limit grants more at once, on this node's cached entry too.
	c.must(200, "PATCH", "/v1/keys/"+id, map[string]any{"quota": map[string]any{"limit": 7, "period": "month"}})
	for i := 0; i < 2; i++ {
		if resp := c.proxyGet(tok); resp.StatusCode != 200 {
			t.Fatalf("after raising to 7, request %d: %d", i, resp.StatusCode)
		}
	}
	if resp := c.proxyGet(tok); resp.StatusCode != 429 {
		t.Fatalf("8th request: %d", resp.StatusCode)
	}
	// Removing the key's own quota falls back to the type's (5, used 7).
	k = c.must(200, "PATCH", "/v1/keys/"+id, map[string]any{"quota": nil})
	if q := k["quota"].(map[string]any); q["limit"] != 5.0 || q["used"] != 7.0 || q["remaining"] != 0.0 {
		t.Fatalf("after removing the override: %v", q)
	}

	// A user's own quota, used by POST /v1/validate with a cost.
	c.must(200, "PUT", "/v1/users/ann", map[string]any{"email": "ann@example.com", "quota": map[string]any{"limit": 10, "period": "day"}})
	utok := c.must(201, "POST", "/v1/keys", map[string]any{"user_id": "ann"})["token"].(string)
	for _, s := range []struct {
		cost int
		code int
	}{{8, 200}, {3, 429}, {2, 200}, {1, 429}} {
		code, out := c.call("POST", "/v1/validate", map[string]any{"api_key": utok, "cost": s.cost})
		if code != s.code {
			t.Fatalf("validate cost %d: %d %v", s.cost, code, out)
		}
	}
	if code, out := c.call("POST", "/v1/validate", map[string]any{"api_key": utok, "cost": 1001}); code != 400 {
		t.Fatalf("cost 1001: %d %v", code, out)
	}
	if resp := c.proxyGet(utok); resp.StatusCode != 429 {
		t.Fatalf("proxy after validate used the quota: %d", resp.StatusCode)
	}
	u := c.must(200, "GET", "/v1/users/ann", nil)
	if q := u["quota"].(map[string]any); q["used"] != 10.0 || q["period"] != "day" {
		t.Fatalf("user quota = %v", q)
	}
	// A second personal key of the same user shares the quota.
	utok2 := c.must(201, "POST", "/v1/keys", map[string]any{"user_id": "ann"})["token"].(string)
	if resp := c.proxyGet(utok2); resp.StatusCode != 429 {
		t.Fatalf("another key of the same user: %d", resp.StatusCode)
	}
	// null removes the override: no quota for personal keys by default.
	u = c.must(200, "PUT", "/v1/users/ann", map[string]any{"email": "ann@example.com", "quota": nil})
	if u["quota"] != nil {
		t.Fatalf("user quota after null = %v", u["quota"])
	}
	if resp := c.proxyGet(utok); resp.StatusCode != 200 || resp.Header.Get("X-Quota-Limit") != "" {
		t.Fatalf("without a quota: %d %v", resp.StatusCode, resp.Header)
	}

	// A total quota never refills: 429 without Retry-After or wait_seconds.
	c.must(200, "PUT", "/v1/orgs/acme", map[string]any{"name": "Acme", "quota": map[string]any{"limit": 1, "period": "total"}})
	otok := c.must(201, "POST", "/v1/keys", map[string]any{"org_id": "acme"})["token"].(string)
	if resp := c.proxyGet(otok); resp.StatusCode != 200 || resp.Header.Get("X-Quota-Reset") != "" {
		t.Fatalf("total, first: %d %v", resp.StatusCode, resp.Header)
	}
	resp = c.proxyGet(otok)
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "" {
		t.Fatalf("total, second: %d %v", resp.StatusCode, resp.Header)
	}
	if code, body := c.get(otok, "/"); code != 429 || body["error"] != "quota_exceeded" || body["wait_seconds"] != nil {
		t.Fatalf("total body: %v", body)
	}
	if o := c.must(200, "GET", "/v1/orgs/acme", nil); o["quota"].(map[string]any)["resets_at"] != nil {
		t.Fatalf("org quota = %v", o["quota"])
	}
	for _, bad := range []any{map[string]any{"limit": -1}, map[string]any{"limit": 5, "period": "week"}, map[string]any{"period": "day"}, "5"} {
		if code, out := c.call("PUT", "/v1/orgs/acme", map[string]any{"name": "Acme", "quota": bad}); code != 400 {
			t.Errorf("quota %v: %d %v", bad, code, out)
		}
	}
	if code, _ := c.call("POST", "/v1/keys", map[string]any{"user_id": "ann", "quota": map[string]any{"limit": 1}}); code != 400 {
		t.Errorf("personal key with its own quota: %d", code)
	}
}

// TestEndToEndQuotaAfterRateLimit: rate-limited and refused requests use
// no quota.
func TestEndToEndQuotaAfterRateLimit(t *testing.T) {
	up := echoUpstream(t)
	app := startApp(t, filepath.Join(t.TempDir(), "kg.db"), up.URL, `
rate_limits:
  generic: {limit: 2, window: 1h}
quotas:
  generic: {limit: 100, period: day}
`)
	c := newClient(t, app)
	key := c.must(201, "POST", "/v1/keys", map[string]any{})
	var codes []int
	for range 5 {
		codes = append(codes, c.proxyGet(key["token"].(string)).StatusCode)
	}
	if fmt.Sprint(codes) != "[200 200 429 429 429]" {
		t.Fatalf("codes = %v", codes)
	}
	q := c.must(200, "GET", "/v1/keys/"+key["id"].(string), nil)["quota"].(map[string]any)
	if q["used"] != 2.0 || q["remaining"] != 98.0 {
		t.Fatalf("quota after rate limiting = %v, want 2 used", q)
	}
}

// TestEndToEndQuotaSIGTERM: quota use survives a clean shutdown of the real
// binary although it was never flushed before.
func TestEndToEndQuotaSIGTERM(t *testing.T) {
	up := echoUpstream(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "keygate.yaml")
	adminAddr, proxyAddr := freeAddr(t), freeAddr(t)
	os.WriteFile(cfgPath, []byte(fmt.Sprintf(`
proxy: {listen: %q, upstreams: [%q]}
admin: {listen: %q, token: %q}
store: {path: %q}
usage: {flush_interval: 1h}
quotas: {generic: {limit: 10, period: month}}
`, proxyAddr, up.URL, adminAddr, testAdminToken, filepath.Join(dir, "kg.db"))), 0o600)
	start := func() *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "KEYGATE_TEST_MAIN=1", "KEYGATE_TEST_ARGS=serve --config "+cfgPath)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill() })
		waitReady(t, "http://"+adminAddr+"/readyz")
		return cmd
	}
	cmd := start()
	c := &client{t: t, admin: "http://" + adminAddr, proxy: "http://" + proxyAddr}
	key := c.must(201, "POST", "/v1/keys", map[string]any{})
	for range 7 {
		c.proxyGet(key["token"].(string))
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
	start()
	q := c.must(200, "GET", "/v1/keys/"+key["id"].(string), nil)["quota"].(map[string]any)
	if q["used"] != 7.0 {
		t.Fatalf("used after restart = %v, want 7", q["used"])
	}
	for i := 0; i < 4; i++ {
		want := 200
		if i == 3 {
			want = 429
		}
		if resp := c.proxyGet(key["token"].(string)); resp.StatusCode != want {
			t.Fatalf("request %d after restart: %d, want %d", 8+i, resp.StatusCode, want)
		}
	}
}

// TestEndToEndQuotaTwoNodes: two gateways sharing the store and Redis give
// out exactly the quota between them, under concurrent load.
func TestEndToEndQuotaTwoNodes(t *testing.T) {
	rc := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	defer rc.Close()
	if err := rc.Ping(context.Background()).Err(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("redis not reachable: %v", err)
		}
		t.Skipf("redis not reachable: %v", err)
	}
	up := echoUpstream(t)
	db := filepath.Join(t.TempDir(), "kg.db")
	extra := `
limiter: {backend: redis, redis_addr: "127.0.0.1:6379", timeout: 2s}
quotas: {generic: {limit: 60, period: day}}
`
	a, b := startApp(t, db, up.URL, extra), startApp(t, db, up.URL, extra)
	ca, cb := newClient(t, a), newClient(t, b)
	key := ca.must(201, "POST", "/v1/keys", map[string]any{})
	id, tok := key["id"].(string), key["token"].(string)
	t.Cleanup(func() {
		iter := rc.Scan(context.Background(), 0, "keygate:q:k:"+id+":*", 10).Iterator()
		for iter.Next(context.Background()) {
			rc.Del(context.Background(), iter.Val())
		}
	})
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := ca
			if g%2 == 1 {
				c = cb
			}
			for range 20 {
				if c.proxyGet(tok).StatusCode == 200 {
					allowed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if allowed.Load() != 60 {
		t.Fatalf("allowed %d of 160 across two nodes, want exactly 60", allowed.Load())
	}
	// Both nodes flush their share; the store then holds the whole count.
	a.Close()
	b.Close()
	c := startApp(t, db, up.URL, `quotas: {generic: {limit: 60, period: day}}`)
	q := newClient(t, c).must(200, "GET", "/v1/keys/"+id, nil)["quota"].(map[string]any)
	if q["used"] != 60.0 {
		t.Fatalf("used in the store after both nodes stopped = %v, want 60", q["used"])
	}
}
