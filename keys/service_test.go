package keys

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

// fakeClock is a settable clock for tests.
type fakeClock struct{ t time.Time }

func (c *fakeClock) Now() time.Time      { return c.t }
func (c *fakeClock) Add(d time.Duration) { c.t = c.t.Add(d) }
func newClock() *fakeClock               { return &fakeClock{t: time.Unix(1_800_000_000, 0)} }

type harness struct {
	t       *testing.T
	store   *SQLite
	svc     *Service
	clock   *fakeClock
	changes []Change
}

func newHarness(t *testing.T, mod func(*Options)) *harness {
	t.Helper()
	ctx := context.Background()
	st, err := OpenSQLite(ctx, filepath.Join(t.TempDir(), "k.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	tok, err := NewTokens("kg")
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, store: st, clock: newClock()}
	opts := Options{
		Now:               h.clock.Now,
		Expirations:       []Expiration{{Name: "2w", After: 14 * 24 * time.Hour}, {Name: "1mo", After: 30 * 24 * time.Hour}, {Name: "never", Never: true}},
		DefaultExpiration: "never",
		OnChange:          func(c Change) { h.changes = append(h.changes, c) },
	}
	if mod != nil {
		mod(&opts)
	}
	h.svc, err = NewService(ctx, st, tok, opts)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func (h *harness) user(id string) {
	h.t.Helper()
	if _, err := h.svc.UpsertUser(context.Background(), UserInput{ID: id, Email: id + "@example.com"}); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) org(id string, members ...string) {
	h.t.Helper()
	ctx := context.Background()
	if _, err := h.svc.UpsertOrg(ctx, OrgInput{ID: id, Name: "Org " + id}); err != nil {
		h.t.Fatal(err)
	}
	for _, m := range members {
		if _, err := h.svc.PutMember(ctx, id, m, "Admin"); err != nil {
			h.t.Fatal(err)
		}
	}
}

func (h *harness) key(in CreateKeyInput) (*Key, string) {
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

func TestLifecycleSmoke(t *testing.T) {
	h := newHarness(t, nil)
	h.user("alice")
	k, tok := h.key(CreateKeyInput{UserID: "alice", DisplayName: "ci", Metadata: []byte(`{"plan": "pro"}`)})
	if k.Type != TypePersonal || string(k.Metadata) != `{"plan":"pro"}` {
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
	if err := h.validate(tok); !errors.Is(err, ErrInvalidKey) {
		t.Fatalf("archived: err = %v", err)
	}
}
