package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/keygate/keygate/keys"
)

func testRollKey(t *testing.T, open Opener) {
	ctx := context.Background()
	h := newHarness(t, open, nil)
	h.user("alice")
	h.org("acme", "alice")
	exp := h.clock.Now().Add(30 * 24 * time.Hour).Unix()
	old, oldTok := h.key(keys.CreateKeyInput{OrgID: "acme", UserID: "alice", DisplayName: "ci", Metadata: []byte(`{"plan":"pro"}`), ExpiresAt: &exp})

	h.changes = nil
	next, tok, err := h.svc.RollKey(keys.WithActor(ctx, "portal:alice"), old.ID, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if next.Type != keys.TypeOrg || next.OrgID != "acme" || next.UserID != "alice" || next.DisplayName != "ci" ||
		string(next.Metadata) != `{"plan":"pro"}` || next.ExpiresAt == nil || *next.ExpiresAt != exp ||
		next.RolledFrom == nil || *next.RolledFrom != old.ID || next.RolledTo != nil || next.ID == old.ID {
		t.Fatalf("new key = %+v", next)
	}
	if len(h.changes) != 1 || len(h.changes[0].KeyIDs) != 1 || h.changes[0].KeyIDs[0] != old.ID || len(h.changes[0].Hashes) != 1 {
		t.Errorf("changes = %+v, want the old key and the new hash", h.changes)
	}
	stored, _ := h.svc.GetKey(ctx, old.ID)
	graceEnd := h.clock.Now().Add(24 * time.Hour).Unix()
	if stored.RolledTo == nil || *stored.RolledTo != next.ID || stored.ExpiresAt == nil || *stored.ExpiresAt != graceEnd || stored.Archived() {
		t.Fatalf("old key after the roll = %+v", stored)
	}
	if got, _ := h.svc.GetKey(ctx, next.ID); got.RolledFrom == nil || *got.RolledFrom != old.ID {
		t.Fatalf("new key as stored = %+v", got)
	}
	if h.validate(oldTok) != nil || h.validate(tok) != nil {
		t.Fatalf("during the grace period: old %v, new %v", h.validate(oldTok), h.validate(tok))
	}
	h.clock.Add(24 * time.Hour)
	if err := h.validate(oldTok); !errors.Is(err, keys.ErrExpiredKey) {
		t.Fatalf("old key after the grace period: %v", err)
	}
	if err := h.validate(tok); err != nil {
		t.Fatalf("new key after the grace period: %v", err)
	}
	evs, _ := h.svc.ListAudit(ctx, keys.AuditFilter{Action: keys.ActionKeyRolled})
	if len(evs) != 1 || evs[0].KeyID != old.ID || evs[0].Actor != "portal:alice" {
		t.Fatalf("audit = %+v", evs)
	}
	var d map[string]any
	json.Unmarshal(evs[0].Details, &d)
	if d["rolled_from"] != old.ID || d["rolled_to"] != next.ID || d["grace_period"] != "24h0m0s" {
		t.Errorf("audit details = %s", evs[0].Details)
	}

	// Rolling an expired key, an archived key: 409.
	if _, _, err := h.svc.RollKey(ctx, old.ID, 0); !isCode(err, keys.EConflict) {
		t.Errorf("roll expired: %v", err)
	}
	_, err = h.svc.ArchiveKey(ctx, next.ID)
	if _, _, err = h.svc.RollKey(ctx, next.ID, 0); !isCode(err, keys.EConflict) {
		t.Errorf("roll archived: %v", err)
	}
}

func isCode(err error, code string) bool {
	var e *keys.Error
	return errors.As(err, &e) && e.Code == code
}

func testRollKeyGrace(t *testing.T, open Opener) {
	ctx := context.Background()
	h := newHarness(t, open, nil)
	h.user("bob")

	// Grace 0 archives at once.
	k, tok := h.key(keys.CreateKeyInput{UserID: "bob"})
	next, newTok, err := h.svc.RollKey(ctx, k.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.validate(tok); !errors.Is(err, keys.ErrInvalidKey) {
		t.Errorf("old key after a roll without grace: %v", err)
	}
	if h.validate(newTok) != nil || next.ExpiresAt != nil {
		t.Errorf("new key: %v, expires %v", h.validate(newTok), next.ExpiresAt)
	}
	if got, _ := h.svc.GetKey(ctx, k.ID); !got.Archived() || got.ExpiresAt != nil {
		t.Errorf("old key = %+v, want archived, expiry unchanged", got)
	}

	// An expiry earlier than the grace's end is kept.
	soon := h.clock.Now().Add(time.Hour).Unix()
	k, _ = h.key(keys.CreateKeyInput{UserID: "bob", ExpiresAt: &soon})
	if _, _, err := h.svc.RollKey(ctx, k.ID, 48*time.Hour); err != nil {
		t.Fatal(err)
	}
	if got, _ := h.svc.GetKey(ctx, k.ID); *got.ExpiresAt != soon {
		t.Errorf("old expiry %d, want its own %d", *got.ExpiresAt, soon)
	}

	for _, g := range []time.Duration{-time.Second, 721 * time.Hour} {
		if _, _, err := h.svc.RollKey(ctx, k.ID, g); !isCode(err, keys.EInvalid) {
			t.Errorf("grace %s: %v", g, err)
		}
	}
	if _, _, err := h.svc.RollKey(ctx, "key_nope", 0); err == nil {
		t.Error("roll unknown key: no error")
	}
}

func testRollImportedKey(t *testing.T, open Opener) {
	ctx := context.Background()
	h := newHarness(t, open, nil)
	ks, err := h.svc.ImportKeys(ctx, []keys.CreateKeyInput{{Token: "legacy_secret_token_1", DisplayName: "old system"}})
	if err != nil {
		t.Fatal(err)
	}
	next, tok, err := h.svc.RollKey(ctx, ks[0].ID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if f, _ := h.svc.Tokens().Check(tok); f != keys.FormatKeygate || next.Imported || next.DisplayName != "old system" {
		t.Fatalf("rolled import: format %v, key %+v", f, next)
	}
	if h.validate("legacy_secret_token_1") != nil || h.validate(tok) != nil {
		t.Fatal("both tokens should validate during the grace period")
	}
}

func testQuotaOverridesStored(t *testing.T, open Opener) {
	ctx := context.Background()
	h := newHarness(t, open, nil)
	q := &keys.Quota{Limit: 10000, Period: keys.PeriodMonth}
	if _, err := h.svc.UpsertUser(ctx, keys.UserInput{ID: "carol", Quota: q}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.svc.UpsertOrg(ctx, keys.OrgInput{ID: "o1", Name: "O", Quota: &keys.Quota{Limit: 5, Period: keys.PeriodDay}}); err != nil {
		t.Fatal(err)
	}
	u, _ := h.svc.GetUser(ctx, "carol")
	if u.Quota == nil || *u.Quota != *q {
		t.Fatalf("user quota = %+v", u.Quota)
	}
	// An upsert without quota keeps it; ClearQuota removes it.
	h.svc.UpsertUser(ctx, keys.UserInput{ID: "carol", Email: "c@x"})
	if u, _ = h.svc.GetUser(ctx, "carol"); u.Quota == nil {
		t.Fatal("quota lost by an upsert without one")
	}
	_, tok := h.key(keys.CreateKeyInput{UserID: "carol"})
	id, err := h.svc.Validate(ctx, tok)
	if err != nil || id.OwnerQuota() == nil || *id.OwnerQuota() != *q {
		t.Fatalf("identity quota = %+v, %v", id, err)
	}
	h.svc.UpsertUser(ctx, keys.UserInput{ID: "carol", ClearQuota: true})
	if u, _ = h.svc.GetUser(ctx, "carol"); u.Quota != nil {
		t.Fatalf("quota after clearing = %+v", u.Quota)
	}
	if o, _ := h.svc.GetOrg(ctx, "o1"); o.Quota == nil || o.Quota.Period != keys.PeriodDay {
		t.Fatalf("org quota = %+v", o.Quota)
	}

	// Generic keys carry their own; other keys may not.
	g, gtok := h.key(keys.CreateKeyInput{Quota: &keys.Quota{Limit: 3, Period: keys.PeriodTotal}})
	if id, _ := h.svc.Validate(ctx, gtok); id.OwnerQuota() == nil || id.OwnerQuota().Limit != 3 {
		t.Fatalf("generic key quota = %+v", id.Key.Quota)
	}
	if k, err := h.svc.UpdateKey(ctx, g.ID, keys.KeyPatch{ClearQuota: true}); err != nil || k.Quota != nil {
		t.Fatalf("clear key quota: %+v, %v", k, err)
	}
	if _, _, err := h.svc.CreateKey(ctx, keys.CreateKeyInput{UserID: "carol", Quota: q}); !isCode(err, keys.EInvalid) {
		t.Errorf("personal key with a quota: %v", err)
	}
	if _, err := h.svc.UpsertUser(ctx, keys.UserInput{ID: "carol", Quota: &keys.Quota{Limit: -1, Period: keys.PeriodDay}}); !isCode(err, keys.EInvalid) {
		t.Errorf("negative quota: %v", err)
	}
}

func testQuotaUsageStore(t *testing.T, open Opener) {
	ctx := context.Background()
	h := newHarness(t, open, nil)
	add := func(cs ...keys.QuotaCount) {
		t.Helper()
		if err := h.store.AddQuotaUsage(ctx, cs); err != nil {
			t.Fatal(err)
		}
	}
	add(keys.QuotaCount{Owner: "u:a", Period: keys.PeriodMonth, Start: 100, Used: 5}, keys.QuotaCount{Owner: "u:a", Period: keys.PeriodDay, Start: 100, Used: 2})
	add(keys.QuotaCount{Owner: "u:a", Period: keys.PeriodMonth, Start: 100, Used: 7})
	many := make([]keys.QuotaCount, 1200) // more than one statement
	for i := range many {
		many[i] = keys.QuotaCount{Owner: "o:b", Period: keys.PeriodTotal, Start: 0, Used: 1}
	}
	add(many...)
	for _, c := range []keys.QuotaCount{{Owner: "u:a", Period: keys.PeriodMonth, Start: 100, Used: 12}, {Owner: "u:a", Period: keys.PeriodDay, Start: 100, Used: 2}, {Owner: "u:a", Period: keys.PeriodMonth, Start: 200, Used: 0}, {Owner: "o:b", Period: keys.PeriodTotal, Start: 0, Used: 1200}} {
		if n, err := h.store.QuotaUsed(ctx, c.Owner, c.Period, c.Start); err != nil || n != c.Used {
			t.Errorf("QuotaUsed(%s, %s, %d) = %d, %v; want %d", c.Owner, c.Period, c.Start, n, err, c.Used)
		}
	}
}
