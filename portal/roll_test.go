package portal

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/quota"
)

func TestRollShowsTokenOnce(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.RollGraceOptions = []time.Duration{0, 2 * time.Hour, 48 * time.Hour} })
	e.user("alice")
	k, oldTok := e.key(keys.CreateKeyInput{UserID: "alice", DisplayName: "ci"})
	b, _ := e.login("alice", "")
	page := b.get(base + "/keys/" + k.ID)
	for _, want := range []string{`action="` + base + `/keys/` + k.ID + `/roll"`, `<option value="0s" selected>Stop the old key now</option>`,
		`<option value="2h0m0s">Keep the old key for 2 hours</option>`, `<option value="48h0m0s">Keep the old key for 2 days</option>`} {
		if !strings.Contains(page.body, want) {
			t.Fatalf("key page lacks %s:\n%s", want, page.body)
		}
	}
	r := b.post(base+"/keys/"+k.ID+"/roll", url.Values{"grace_period": {"2h0m0s"}})
	m := tokenRE.FindStringSubmatch(r.body)
	if r.status != http.StatusOK || m == nil || !strings.Contains(r.body, "Key rolled") || !strings.Contains(r.body, "keeps working until 14 Mar 2026 14:00 UTC") {
		t.Fatalf("roll: %d\n%s", r.status, r.body)
	}
	ctx := context.Background()
	for _, tok := range []string{oldTok, m[0]} {
		if _, err := e.svc.Validate(ctx, tok); err != nil {
			t.Fatalf("during the grace period: %v", err)
		}
	}
	// A grace period that is not offered, another's key, no CSRF token: refused.
	k2, _ := e.key(keys.CreateKeyInput{UserID: "alice", DisplayName: "two"})
	b.get(base + "/keys/" + k2.ID)
	if r := b.post(base+"/keys/"+k2.ID+"/roll", url.Values{"grace_period": {"720h"}}); r.status != http.StatusBadRequest {
		t.Errorf("grace not offered: %d", r.status)
	}
	if r := b.post(base+"/keys/"+k2.ID+"/roll", url.Values{"grace_period": {"0s"}, "csrf": {"nope"}}); r.status != http.StatusForbidden {
		t.Errorf("bad CSRF: %d", r.status)
	}
	e.user("bob")
	bk, _ := e.key(keys.CreateKeyInput{UserID: "bob"})
	if r := b.post(base+"/keys/"+bk.ID+"/roll", url.Values{"grace_period": {"0s"}}); r.status != http.StatusNotFound {
		t.Errorf("roll another's key: %d", r.status)
	}
	e.clock.Add(2 * time.Hour)
	if _, err := e.svc.Validate(ctx, oldTok); !errors.Is(err, keys.ErrExpiredKey) {
		t.Fatalf("old key after the grace period: %v", err)
	}
	ev, _ := e.svc.ListAudit(ctx, keys.AuditFilter{Action: keys.ActionKeyRolled})
	if len(ev) != 1 || ev[0].Actor != "portal:alice" {
		t.Fatalf("audit = %+v", ev)
	}
	if strings.Contains(b.get(base+"/").body, m[0]) {
		t.Fatal("the new token is shown again")
	}

}

// fixedQuotas answers every Peek with used units.
type fixedQuotas struct{ used int64 }

func (f fixedQuotas) Peek(_ context.Context, _ string, q keys.Quota) (quota.Result, error) {
	return quota.Result{Limit: q.Limit, Period: q.Period, Used: f.used, Remaining: max(q.Limit-f.used, 0)}, nil
}

func TestQuotaLine(t *testing.T) {
	e := newEnv(t, func(o *Options) {
		o.Quotas = fixedQuotas{used: 1787}
		o.QuotaDefaults[keys.TypePersonal] = keys.Quota{Limit: 10000, Period: keys.PeriodMonth}
	})
	e.user("alice")
	e.org("acme", "Acme", map[string]string{"alice": "Owner"})
	e.svc.UpsertOrg(context.Background(), keys.OrgInput{ID: "acme", Name: "Acme", Quota: &keys.Quota{Limit: 2000, Period: keys.PeriodDay}})
	_, home := e.login("alice", "acme")
	for _, want := range []string{"8,213 of 10,000 requests left this month", "213 of 2,000 requests left today"} {
		if !strings.Contains(home.body, want) {
			t.Errorf("home lacks %q:\n%s", want, home.body)
		}
	}
	if got := thousands(1234567); got != "1,234,567" {
		t.Errorf("thousands = %q", got)
	}
}
