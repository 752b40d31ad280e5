package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/keygate/keygate/keys"
)

// fakeClock is a settable clock for tests.
type fakeClock struct{ t time.Time }

func (c *fakeClock) Now() time.Time      { return c.t }
func (c *fakeClock) Add(d time.Duration) { c.t = c.t.Add(d) }
func newClock() *fakeClock               { return &fakeClock{t: time.Unix(1_800_000_000, 0)} }

type harness struct {
	t       *testing.T
	store   keys.Store
	svc     *keys.Service
	clock   *fakeClock
	changes []keys.Change
}

func newHarness(t *testing.T, open Opener, mod func(*keys.Options)) *harness {
	t.Helper()
	ctx := context.Background()
	st := open(t)
	tok, err := keys.NewTokens("kg")
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, store: st, clock: newClock()}
	opts := keys.Options{
		Now:               h.clock.Now,
		Expirations:       []keys.Expiration{{Name: "2w", After: 14 * 24 * time.Hour}, {Name: "1mo", After: 30 * 24 * time.Hour}, {Name: "never", Never: true}},
		DefaultExpiration: "never",
		OnChange:          func(c keys.Change) { h.changes = append(h.changes, c) },
	}
	if mod != nil {
		mod(&opts)
	}
	h.svc, err = keys.NewService(ctx, st, tok, opts)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func (h *harness) user(id string) {
	h.t.Helper()
	if _, err := h.svc.UpsertUser(context.Background(), keys.UserInput{ID: id, Email: id + "@example.com"}); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) org(id string, members ...string) {
	h.t.Helper()
	ctx := context.Background()
	if _, err := h.svc.UpsertOrg(ctx, keys.OrgInput{ID: id, Name: "Org " + id}); err != nil {
		h.t.Fatal(err)
	}
	for _, m := range members {
		if _, err := h.svc.PutMember(ctx, id, m, "Admin"); err != nil {
			h.t.Fatal(err)
		}
	}
}

func (h *harness) key(in keys.CreateKeyInput) (*keys.Key, string) {
	h.t.Helper()
	k, tok, err := h.svc.CreateKey(context.Background(), in)
	if err != nil {
		h.t.Fatal(err)
	}
	return k, tok
}

// validate returns the validation error of token ("" when valid).
func (h *harness) validate(token string) error {
	_, err := h.svc.Validate(context.Background(), token)
	return err
}

func testLifecycleSmoke(t *testing.T, open Opener) {
	h := newHarness(t, open, nil)
	h.user("alice")
	k, tok := h.key(keys.CreateKeyInput{UserID: "alice", DisplayName: "ci", Metadata: []byte(`{"plan": "pro"}`)})
	if k.Type != keys.TypePersonal || string(k.Metadata) != `{"plan":"pro"}` {
		t.Fatalf("key = %+v", k)
	}
	id, err := h.svc.Validate(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	if id.Key.ID != k.ID || id.User == nil || id.User.Email != "alice@example.com" {
		t.Fatalf("identity = %+v", id)
	}
	if _, err := h.svc.ArchiveKey(context.Background(), k.ID); err != nil {
		t.Fatal(err)
	}
	if err := h.validate(tok); !errors.Is(err, keys.ErrInvalidKey) {
		t.Fatalf("archived: err = %v", err)
	}
}

func mustTokens(t testing.TB, prefix string) *keys.Tokens {
	t.Helper()
	tok, err := keys.NewTokens(prefix)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
