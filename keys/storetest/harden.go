package storetest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/keys"
)

// The input bounds of issue 10, through keys.Service on each store.

func testCalendarExpiration(t *testing.T, open Opener) {
	now := time.Date(2026, 1, 31, 9, 0, 0, 0, time.UTC)
	h := newHarness(t, open, func(o *keys.Options) {
		o.Now = func() time.Time { return now }
		o.Expirations = []keys.Expiration{{Name: "6mo", After: 180 * 24 * time.Hour, Months: 6}, {Name: "1y", After: 365 * 24 * time.Hour, Months: 12}}
	})
	for name, want := range map[string]time.Time{
		"6mo": time.Date(2026, 7, 31, 9, 0, 0, 0, time.UTC),
		"1y":  time.Date(2027, 1, 31, 9, 0, 0, 0, time.UTC),
	} {
		k, _ := h.key(keys.CreateKeyInput{ExpiresIn: name})
		if k.ExpiresAt == nil || *k.ExpiresAt != want.Unix() {
			t.Errorf("%s: expires %v, want %s", name, k.ExpiresAt, want)
		}
	}
}

// Issue 10.14: deeply nested metadata was accepted on every object.
func testMetadataDepth(t *testing.T, open Opener) {
	ctx := context.Background()
	h := newHarness(t, open, nil)
	deep := strings.Repeat(`{"a":`, keys.MaxMetadataDepth+1) + "1" + strings.Repeat("}", keys.MaxMetadataDepth+1)
	deepArr := `{"a":` + strings.Repeat("[", keys.MaxMetadataDepth) + strings.Repeat("]", keys.MaxMetadataDepth) + "}"
	ok := strings.Repeat(`{"a":`, keys.MaxMetadataDepth) + `"[[[[[[{{{{"` + strings.Repeat("}", keys.MaxMetadataDepth)
	for _, m := range []string{deep, deepArr} {
		if _, _, err := h.svc.CreateKey(ctx, keys.CreateKeyInput{Metadata: []byte(m)}); keys.ErrorCode(err) != keys.EInvalid || !strings.Contains(err.Error(), "nest") {
			t.Errorf("key metadata %s: %v", m, err)
		}
		if _, err := h.svc.UpsertUser(ctx, keys.UserInput{ID: "u", Email: "u@example.com", Metadata: []byte(m)}); keys.ErrorCode(err) != keys.EInvalid {
			t.Errorf("user metadata %s: %v", m, err)
		}
		if _, err := h.svc.UpsertOrg(ctx, keys.OrgInput{ID: "o", Name: "O", Metadata: []byte(m)}); keys.ErrorCode(err) != keys.EInvalid {
			t.Errorf("org metadata %s: %v", m, err)
		}
	}
	if _, _, err := h.svc.CreateKey(ctx, keys.CreateKeyInput{Metadata: []byte(ok)}); err != nil {
		t.Errorf("depth %d with brackets in a string: %v", keys.MaxMetadataDepth, err)
	}
}

// Issue 10.13: short imported tokens were accepted and shown whole in hints.
func testShortImportedTokens(t *testing.T, open Opener) {
	h := newHarness(t, open, nil)
	if _, err := h.svc.ImportKeys(context.Background(), []keys.CreateKeyInput{{Token: "abc"}}); keys.ErrorCode(err) != keys.EInvalid {
		t.Errorf("3-character import: %v", err)
	}
}

// Issue 10.12: rate limit windows beyond a year are refused.
func testRateWindowBounded(t *testing.T, open Opener) {
	h := newHarness(t, open, nil)
	_, err := h.svc.UpsertUser(context.Background(), keys.UserInput{ID: "u", Email: "u@example.com",
		RateLimit: &keys.RateLimit{Limit: 1, Window: 1_300_000 * time.Hour}})
	if keys.ErrorCode(err) != keys.EInvalid || !strings.Contains(err.Error(), "rate_limit.window") {
		t.Errorf("1,300,000 h window: %v", err)
	}
}
