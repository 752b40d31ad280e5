package proxy

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/keys"
)

// TestProxyQuota: the proxy answers X-Quota-* on every response under a
// quota and 429 quota_exceeded with Retry-After up to the refill; the
// refused request is counted in metrics and in usage as refused.
func TestProxyQuota(t *testing.T) {
	var c CacheOptions
	c.Quotas[keys.TypeGeneric] = keys.Quota{Limit: 2, Period: keys.PeriodDay}
	s := newStack(t, stackConfig{cache: c, quotas: true})
	_, tok := s.key(keys.CreateKeyInput{})
	// The stack's clock: 1h59m30s before the next UTC midnight.
	now := s.clock.Now().UTC()
	midnight := time.Date(now.Year(), now.Month(), now.Day()+1, 0, 0, 0, 0, time.UTC)
	s.clock.Advance(midnight.Sub(now) - (time.Hour + 59*time.Minute + 30*time.Second))
	for i, want := range []string{"1", "0"} {
		r := s.get(t, "/", "Authorization: Bearer "+tok)
		if r.status != 200 || r.header.Get("X-Quota-Limit") != "2" || r.header.Get("X-Quota-Remaining") != want || r.header.Get("X-Quota-Reset") != "7170" {
			t.Fatalf("request %d: %d %v", i, r.status, r.header)
		}
	}
	r := s.get(t, "/", "Authorization: Bearer "+tok)
	if r.status != 429 || r.header.Get("Retry-After") != "7170" ||
		string(r.body) != `{"error":"quota_exceeded","message":"quota used up, refills in 7170 s","wait_seconds":7170}` {
		t.Fatalf("third request: %d %v %s", r.status, r.header, r.body)
	}
	if v := metricValue(t, s, `keygate_requests_total{result="quota_exceeded"}`); v != 1 {
		t.Errorf("quota_exceeded metric = %v", v)
	}
	s.clock.Advance(2 * time.Hour)
	if r := s.get(t, "/", "Authorization: Bearer "+tok); r.status != 200 || r.header.Get("X-Quota-Remaining") != "1" {
		t.Fatalf("after midnight: %d %v", r.status, r.header)
	}
}

func TestProxyQuotaTotal(t *testing.T) {
	var c CacheOptions
	c.Quotas[keys.TypeGeneric] = keys.Quota{Limit: 1, Period: keys.PeriodTotal}
	s := newStack(t, stackConfig{cache: c, quotas: true})
	_, tok := s.key(keys.CreateKeyInput{})
	if r := s.get(t, "/", "Authorization: Bearer "+tok); r.status != 200 || r.header.Get("X-Quota-Reset") != "" {
		t.Fatalf("first: %d %v", r.status, r.header)
	}
	r := s.get(t, "/", "Authorization: Bearer "+tok)
	if r.status != 429 || r.header.Get("Retry-After") != "" || strings.Contains(string(r.body), "wait_seconds") {
		t.Fatalf("second: %d %v %s", r.status, r.header, r.body)
	}
}

// TestGateCheckWithQuotaDoesNotAllocate pins the cache-hit path with a
// memory-counted quota at zero allocations.
func TestGateCheckWithQuotaDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	var c CacheOptions
	c.Quotas[keys.TypePersonal] = keys.Quota{Limit: 1 << 50, Period: keys.PeriodMonth}
	s := newStack(t, stackConfig{cache: c, quotas: true})
	s.user("alice", &keys.RateLimit{Limit: 1 << 40, Window: time.Minute})
	_, tok := s.key(keys.CreateKeyInput{UserID: "alice"})
	b := []byte(tok)
	ctx := context.Background()
	warm(t, s, b)
	if _, d, _ := s.gate.check(ctx, b, 1); d.Quota.Limit == 0 {
		t.Fatal("no quota applied")
	}
	if n := testing.AllocsPerRun(1000, func() { s.gate.check(ctx, b, 1) }); n != 0 {
		t.Errorf("%v allocations per check, want 0", n)
	}
}

// BenchmarkCacheHitQuota is BenchmarkCacheHit's full gate plus a quota
// counted in memory: the quota check's share of the request path.
func BenchmarkCacheHitQuota(b *testing.B) {
	var c CacheOptions
	c.Quotas[keys.TypePersonal] = keys.Quota{Limit: 1 << 50, Period: keys.PeriodMonth}
	c.Now = time.Now
	s := newStack(b, stackConfig{cache: c, quotas: true})
	s.user("alice", &keys.RateLimit{Limit: 1 << 50, Window: time.Minute})
	_, tok := s.key(keys.CreateKeyInput{UserID: "alice", Metadata: []byte(`{"plan":"pro"}`)})
	warm(b, s, []byte(tok))
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		t := []byte(tok)
		for pb.Next() {
			if _, _, err := s.gate.check(ctx, t, 1); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestForwardAuthQuota: forward auth shares the proxy's decision, so a
// quota applies there with the same headers and refusal.
func TestForwardAuthQuota(t *testing.T) {
	c := CacheOptions{}
	c.Quotas[keys.TypeGeneric] = keys.Quota{Limit: 1, Period: keys.PeriodMonth}
	s := newStack(t, stackConfig{cache: c, quotas: true, upstream: func(string) []string { return nil }, noEcho: true,
		proxy: Options{ForwardAuth: ForwardAuthOptions{Path: authPath}}})
	_, tok := s.key(keys.CreateKeyInput{})
	r := s.get(t, authPath, bearerHeader(tok), "X-Forwarded-Uri: /v1/x")
	if r.status != 200 || r.header.Get("X-Quota-Limit") != "1" || r.header.Get("X-Quota-Remaining") != "0" || r.header.Get("X-Quota-Reset") == "" {
		t.Fatalf("first: %d %v", r.status, r.header)
	}
	r = s.get(t, authPath, bearerHeader(tok), "X-Forwarded-Uri: /v1/x")
	e := expectRefused(t, r, 429, "quota_exceeded")
	if e.WaitSeconds == nil || r.header.Get("Retry-After") == "" || r.header.Get("Retry-After") != r.header.Get("X-Quota-Reset") {
		t.Fatalf("second: wait %v, headers %v", e.WaitSeconds, r.header)
	}
}
