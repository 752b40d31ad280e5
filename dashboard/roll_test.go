package dashboard

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

// fixedQuotas answers every Peek with used units, refilling at resets.
type fixedQuotas struct {
	used   int64
	resets int64
}

func (f fixedQuotas) Peek(_ context.Context, _ string, q keys.Quota) (quota.Result, error) {
	r := quota.Result{Limit: q.Limit, Period: q.Period, Used: f.used, Remaining: max(q.Limit-f.used, 0)}
	if q.Period != keys.PeriodTotal {
		r.ResetsAt = f.resets
	}
	return r, nil
}

func TestDashRollAndQuota(t *testing.T) {
	april := time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC).Unix()
	e := newDashEnvWith(t, func(o *Options) {
		o.Quotas = fixedQuotas{used: 1787, resets: april}
		o.QuotaDefaults[keys.TypeGeneric] = keys.Quota{Limit: 10000, Period: keys.PeriodMonth}
		o.RollGraceOptions = []time.Duration{0, 24 * time.Hour}
	})
	ctx := context.Background()
	k, tok, err := e.svc.CreateKey(ctx, keys.CreateKeyInput{DisplayName: "partner"})
	if err != nil {
		t.Fatal(err)
	}
	e.svc.UpsertUser(ctx, keys.UserInput{ID: "ann", Quota: &keys.Quota{Limit: 5, Period: keys.PeriodTotal}})
	c, _ := e.login()

	page := c.get("/keys/" + k.ID)
	for _, want := range []string{`action="/keys/` + k.ID + `/roll"`, `<option value="24h0m0s">old key valid 24h0m0s more</option>`,
		"8,213 of 10,000 left this month (1,787 used; refills 1 Apr 2026 00:00 UTC)"} {
		if !strings.Contains(page.body, want) {
			t.Fatalf("key page lacks %q:\n%s", want, page.body)
		}
	}
	if u := c.get("/users/ann"); !strings.Contains(u.body, "0 of 5 left (1,787 used; never refills)") {
		t.Errorf("user page quota:\n%s", u.body)
	}

	r := c.post("/keys/"+k.ID+"/roll", url.Values{"grace_period": {"24h0m0s"}})
	newTok := dashTokenRE.FindString(r.body)
	if r.status != http.StatusCreated || newTok == "" || !strings.Contains(r.body, "Key rolled") || !strings.Contains(r.body, "keeps working until 2026-03-15 12:00 UTC") {
		t.Fatalf("roll: %d\n%s", r.status, r.body)
	}
	for _, tk := range []string{tok, newTok} {
		if _, err := e.svc.Validate(ctx, tk); err != nil {
			t.Fatalf("during the grace period: %v", err)
		}
	}
	old := c.get("/keys/" + k.ID)
	if !strings.Contains(old.body, "Rolled to") || !strings.Contains(old.body, "api_key.rolled") {
		t.Errorf("old key page after the roll:\n%s", old.body)
	}

	// Grace 0 archives; an archived key offers no roll and refuses one.
	id, _ := e.svc.Validate(ctx, newTok)
	c.get("/keys/" + id.Key.ID)
	if r := c.post("/keys/"+id.Key.ID+"/roll", url.Values{"grace_period": {"0s"}}); r.status != http.StatusCreated {
		t.Fatalf("roll without grace: %d", r.status)
	}
	if _, err := e.svc.Validate(ctx, newTok); !errors.Is(err, keys.ErrInvalidKey) {
		t.Errorf("rolled without grace still validates: %v", err)
	}
	if p := c.get("/keys/" + id.Key.ID); strings.Contains(p.body, "/roll\"") {
		t.Errorf("archived key offers a roll")
	}
	if r := c.post("/keys/"+id.Key.ID+"/roll", url.Values{"grace_period": {"0s"}}); r.status != http.StatusConflict {
		t.Errorf("roll archived: %d", r.status)
	}
}
