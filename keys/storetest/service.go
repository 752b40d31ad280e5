package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/keys"
)

func testKeyTypesLifecycle(t *testing.T, open Opener) {
	ctx := context.Background()
	h := newHarness(t, open, nil)
	h.user("alice")
	h.org("acme", "alice")
	tests := []struct {
		name string
		in   keys.CreateKeyInput
		typ  keys.Type
	}{
		{"personal", keys.CreateKeyInput{UserID: "alice"}, keys.TypePersonal},
		{"org with creator", keys.CreateKeyInput{OrgID: "acme", UserID: "alice"}, keys.TypeOrg},
		{"org", keys.CreateKeyInput{Type: keys.TypeOrg, OrgID: "acme"}, keys.TypeOrg},
		{"generic", keys.CreateKeyInput{}, keys.TypeGeneric},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.in.DisplayName = "key " + tt.name
			tt.in.ExpiresIn = "1mo"
			k, tok := h.key(tt.in)
			if k.Type != tt.typ {
				t.Fatalf("type = %v, want %v", k.Type, tt.typ)
			}
			if want := h.clock.Now().Add(30 * 24 * time.Hour).Unix(); k.ExpiresAt == nil || *k.ExpiresAt != want {
				t.Fatalf("expires_at = %v, want %d", k.ExpiresAt, want)
			}
			got, err := h.svc.GetKey(ctx, k.ID)
			if err != nil || got.DisplayName != k.DisplayName || got.Hash != keys.Hash(tok) {
				t.Fatalf("GetKey = %+v, %v", got, err)
			}
			list, _, err := h.svc.ListKeys(ctx, keys.KeyFilter{UserID: tt.in.UserID, OrgID: tt.in.OrgID, Type: tt.typ})
			if err != nil || !containsKey(list, k.ID) {
				t.Fatalf("ListKeys misses %s: %v", k.ID, err)
			}
			name := "renamed"
			up, err := h.svc.UpdateKey(ctx, k.ID, keys.KeyPatch{DisplayName: &name, Metadata: []byte(`{"tier":"gold"}`), NeverExpire: true})
			if err != nil || up.DisplayName != "renamed" || up.ExpiresAt != nil || string(up.Metadata) != `{"tier":"gold"}` {
				t.Fatalf("UpdateKey = %+v, %v", up, err)
			}
			id, err := h.svc.Validate(ctx, tok)
			if err != nil || string(id.Key.Metadata) != `{"tier":"gold"}` {
				t.Fatalf("Validate = %+v, %v", id, err)
			}
			if _, err := h.svc.ArchiveKey(ctx, k.ID); err != nil {
				t.Fatal(err)
			}
			if _, err := h.svc.ArchiveKey(ctx, k.ID); err != nil {
				t.Fatalf("archive is not idempotent: %v", err)
			}
			if err := h.validate(tok); !errors.Is(err, keys.ErrInvalidKey) {
				t.Fatalf("archived key validates: %v", err)
			}
			archived, _, _ := h.svc.ListKeys(ctx, keys.KeyFilter{Status: "archived"})
			if !containsKey(archived, k.ID) {
				t.Fatal("archived key not listed as archived")
			}
			if err := h.svc.DeleteKey(ctx, k.ID); err != nil {
				t.Fatal(err)
			}
			if _, err := h.svc.GetKey(ctx, k.ID); !errors.Is(err, keys.ErrNotFound) {
				t.Fatalf("deleted key: %v", err)
			}
			events, _ := h.svc.ListAudit(ctx, keys.AuditFilter{KeyID: k.ID})
			var actions []string
			for _, ev := range events {
				actions = append(actions, ev.Action)
			}
			if got := strings.Join(actions, ","); got != "api_key.deleted,api_key.archived,api_key.updated,api_key.created" {
				t.Fatalf("audit = %s", got)
			}
		})
	}
}

func containsKey(ks []keys.Key, id string) bool {
	for _, k := range ks {
		if k.ID == id {
			return true
		}
	}
	return false
}

func testInvalidationRules(t *testing.T, open Opener) {
	ctx := context.Background()
	tests := []struct {
		name       string
		leave      bool // keys.org.invalidate_on_creator_leave
		setup      func(h *harness) keys.CreateKeyInput
		change     func(h *harness, k *keys.Key)
		want       error // after change
		undo       func(h *harness)
		afterUndo  error
		changeHits func(c keys.Change, k *keys.Key) bool
	}{
		{
			name:   "expired",
			setup:  func(h *harness) keys.CreateKeyInput { return keys.CreateKeyInput{ExpiresIn: "2w"} },
			change: func(h *harness, k *keys.Key) { h.clock.Add(14 * 24 * time.Hour) },
			want:   keys.ErrExpiredKey,
		},
		{
			name:       "archived",
			setup:      func(h *harness) keys.CreateKeyInput { return keys.CreateKeyInput{} },
			change:     func(h *harness, k *keys.Key) { h.svc.ArchiveKey(ctx, k.ID) },
			want:       keys.ErrInvalidKey,
			changeHits: func(c keys.Change, k *keys.Key) bool { return len(c.KeyIDs) == 1 && c.KeyIDs[0] == k.ID },
		},
		{
			name:       "owner blocked, then unblocked",
			setup:      func(h *harness) keys.CreateKeyInput { h.user("bob"); return keys.CreateKeyInput{UserID: "bob"} },
			change:     func(h *harness, k *keys.Key) { h.svc.SetUserEnabled(ctx, "bob", false) },
			want:       keys.ErrInvalidKey,
			undo:       func(h *harness) { h.svc.SetUserEnabled(ctx, "bob", true) },
			afterUndo:  nil,
			changeHits: func(c keys.Change, k *keys.Key) bool { return c.UserID == "bob" },
		},
		{
			name:       "owner deleted: archived for good",
			setup:      func(h *harness) keys.CreateKeyInput { h.user("bob"); return keys.CreateKeyInput{UserID: "bob"} },
			change:     func(h *harness, k *keys.Key) { h.svc.DeleteUser(ctx, "bob") },
			want:       keys.ErrInvalidKey,
			undo:       func(h *harness) { h.user("bob") },
			afterUndo:  keys.ErrInvalidKey,
			changeHits: func(c keys.Change, k *keys.Key) bool { return c.UserID == "bob" },
		},
		{
			name:       "org deleted: archived for good",
			setup:      func(h *harness) keys.CreateKeyInput { h.org("acme"); return keys.CreateKeyInput{OrgID: "acme"} },
			change:     func(h *harness, k *keys.Key) { h.svc.DeleteOrg(ctx, "acme") },
			want:       keys.ErrInvalidKey,
			undo:       func(h *harness) { h.org("acme") },
			afterUndo:  keys.ErrInvalidKey,
			changeHits: func(c keys.Change, k *keys.Key) bool { return c.OrgID == "acme" },
		},
		{
			name:  "creator leaves, setting on",
			leave: true,
			setup: func(h *harness) keys.CreateKeyInput {
				h.user("bob")
				h.org("acme", "bob")
				return keys.CreateKeyInput{OrgID: "acme", UserID: "bob"}
			},
			change:     func(h *harness, k *keys.Key) { h.svc.RemoveMember(ctx, "acme", "bob") },
			want:       keys.ErrInvalidKey,
			undo:       func(h *harness) { h.svc.PutMember(ctx, "acme", "bob", "Admin") },
			afterUndo:  keys.ErrInvalidKey,
			changeHits: func(c keys.Change, k *keys.Key) bool { return len(c.KeyIDs) == 1 && c.KeyIDs[0] == k.ID },
		},
		{
			name: "creator leaves, setting off",
			setup: func(h *harness) keys.CreateKeyInput {
				h.user("bob")
				h.org("acme", "bob")
				return keys.CreateKeyInput{OrgID: "acme", UserID: "bob"}
			},
			change: func(h *harness, k *keys.Key) { h.svc.RemoveMember(ctx, "acme", "bob") },
			want:   nil,
		},
		{
			name:  "creator deleted, setting on: leaving every org",
			leave: true,
			setup: func(h *harness) keys.CreateKeyInput {
				h.user("bob")
				h.org("acme", "bob")
				return keys.CreateKeyInput{OrgID: "acme", UserID: "bob"}
			},
			change: func(h *harness, k *keys.Key) { h.svc.DeleteUser(ctx, "bob") },
			want:   keys.ErrInvalidKey,
		},
		{
			name: "creator blocked does not touch org keys",
			setup: func(h *harness) keys.CreateKeyInput {
				h.user("bob")
				h.org("acme", "bob")
				return keys.CreateKeyInput{OrgID: "acme", UserID: "bob"}
			},
			change: func(h *harness, k *keys.Key) { h.svc.SetUserEnabled(ctx, "bob", false) },
			want:   nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, open, func(o *keys.Options) { o.InvalidateOnCreatorLeave = tt.leave })
			k, tok := h.key(tt.setup(h))
			if err := h.validate(tok); err != nil {
				t.Fatalf("fresh key: %v", err)
			}
			h.changes = nil
			tt.change(h, k)
			if err := h.validate(tok); !errors.Is(err, tt.want) {
				t.Fatalf("after change: err = %v, want %v", err, tt.want)
			}
			if tt.changeHits != nil {
				hit := false
				for _, c := range h.changes {
					hit = hit || tt.changeHits(c, k)
				}
				if !hit {
					t.Fatalf("no OnChange names the key: %+v", h.changes)
				}
			}
			if tt.undo != nil {
				tt.undo(h)
				if err := h.validate(tok); !errors.Is(err, tt.afterUndo) {
					t.Fatalf("after undo: err = %v, want %v", err, tt.afterUndo)
				}
			}
		})
	}
}

func testTypeDisabled(t *testing.T, open Opener) {
	ctx := context.Background()
	st := open(t)
	tok := mustTokens(t, "kg")
	on, _ := keys.NewService(ctx, st, tok, keys.Options{})
	_, token, err := on.CreateKey(ctx, keys.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	var disabled [4]bool
	disabled[keys.TypeGeneric] = true
	off, _ := keys.NewService(ctx, st, tok, keys.Options{Disabled: disabled})
	if _, err := off.Validate(ctx, token); !errors.Is(err, keys.ErrInvalidKey) {
		t.Fatalf("disabled type validates: %v", err)
	}
	if _, _, err := off.CreateKey(ctx, keys.CreateKeyInput{}); keys.ErrorCode(err) != keys.EInvalid {
		t.Fatalf("created a key of a disabled type: %v", err)
	}
	again, _ := keys.NewService(ctx, st, tok, keys.Options{})
	if _, err := again.Validate(ctx, token); err != nil {
		t.Fatalf("re-enabled type: %v", err)
	}
}

func testImport(t *testing.T, open Opener) {
	ctx := context.Background()
	h := newHarness(t, open, nil)
	h.user("alice")
	if h.svc.HasImported() {
		t.Fatal("HasImported before any import")
	}
	if err := h.validate("sk_live_legacy123"); !errors.Is(err, keys.ErrInvalidKey) {
		t.Fatal(err)
	}
	legacyHash := keys.Hash("legacy-two")
	ks, err := h.svc.ImportKeys(ctx, []keys.CreateKeyInput{
		{Token: "sk_live_legacy123", UserID: "alice", DisplayName: "old"},
		{TokenHash: fmt.Sprintf("%x", legacyHash[:])},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(ks) != 2 || !ks[0].Imported || ks[0].Display != "…y123" {
		t.Fatalf("imported = %+v", ks[0])
	}
	if !h.svc.HasImported() {
		t.Fatal("HasImported after import")
	}
	for _, tok := range []string{"sk_live_legacy123", "legacy-two"} {
		if err := h.validate(tok); err != nil {
			t.Fatalf("imported %q: %v", tok, err)
		}
	}
	// The token itself is stored nowhere.
	all, _, err := h.store.ListKeys(ctx, keys.KeyFilter{Status: "all"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range all {
		if strings.Contains(k.Display+k.DisplayName+string(k.Metadata), "legacy") {
			t.Fatalf("token stored in clear: %+v", k)
		}
	}
	// All or nothing: a duplicate fails the whole batch.
	_, err = h.svc.ImportKeys(ctx, []keys.CreateKeyInput{{Token: "fresh-one-0123456"}, {Token: "sk_live_legacy123"}})
	if keys.ErrorCode(err) != keys.EConflict {
		t.Fatalf("duplicate import: %v", err)
	}
	if err := h.validate("fresh-one-0123456"); !errors.Is(err, keys.ErrInvalidKey) {
		t.Fatalf("half an import landed: %v", err)
	}
}

func testCreateKeyBadInput(t *testing.T, open Opener) {
	ctx := context.Background()
	h := newHarness(t, open, nil)
	h.user("alice")
	h.user("blocked")
	h.svc.SetUserEnabled(ctx, "blocked", false)
	h.org("acme")
	past := h.clock.Now().Unix() - 1
	tests := []struct {
		name  string
		in    keys.CreateKeyInput
		field string
	}{
		{"personal without user", keys.CreateKeyInput{Type: keys.TypePersonal}, "user_id"},
		{"unknown user", keys.CreateKeyInput{UserID: "nobody"}, "user_id"},
		{"blocked user", keys.CreateKeyInput{UserID: "blocked"}, "user_id"},
		{"bad user id", keys.CreateKeyInput{UserID: "a b"}, "user_id"},
		{"unknown org", keys.CreateKeyInput{OrgID: "nope"}, "org_id"},
		{"org creator not member", keys.CreateKeyInput{OrgID: "acme", UserID: "alice"}, "user_id"},
		{"generic with user", keys.CreateKeyInput{Type: keys.TypeGeneric, UserID: "alice"}, "user_id"},
		{"metadata array", keys.CreateKeyInput{Metadata: []byte(`[1]`)}, "metadata"},
		{"metadata invalid", keys.CreateKeyInput{Metadata: []byte(`{`)}, "metadata"},
		{"metadata too big", keys.CreateKeyInput{Metadata: []byte(`{"a":"` + strings.Repeat("x", 5000) + `"}`)}, "metadata"},
		{"expires_in unknown", keys.CreateKeyInput{ExpiresIn: "5y"}, "expires_in"},
		{"expires_at past", keys.CreateKeyInput{ExpiresAt: &past}, "expires_at"},
		{"display name too long", keys.CreateKeyInput{DisplayName: strings.Repeat("x", 201)}, "display_name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := h.svc.CreateKey(ctx, tt.in)
			var e *keys.Error
			if !errors.As(err, &e) || e.Code != keys.EInvalid || len(e.Fields[tt.field]) == 0 {
				t.Fatalf("err = %v, want a problem with %s", err, tt.field)
			}
		})
	}
	all, _, _ := h.svc.ListKeys(ctx, keys.KeyFilter{Status: "all"})
	if len(all) != 0 {
		t.Fatalf("bad input created %d keys", len(all))
	}
}

func testPagination(t *testing.T, open Opener) {
	ctx := context.Background()
	h := newHarness(t, open, nil)
	want := map[string]bool{}
	for i := 0; i < 25; i++ {
		k, _ := h.key(keys.CreateKeyInput{})
		want[k.ID] = true
	}
	cursor, pages := "", 0
	for {
		ks, next, err := h.svc.ListKeys(ctx, keys.KeyFilter{Limit: 10, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, k := range ks {
			if !want[k.ID] {
				t.Fatalf("unexpected or repeated key %s", k.ID)
			}
			delete(want, k.ID)
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if len(want) != 0 || pages != 3 {
		t.Fatalf("pages = %d, missed %d keys", pages, len(want))
	}
}

func testConcurrentWrites(t *testing.T, open Opener) {
	ctx := context.Background()
	st := open(t)
	svc, _ := keys.NewService(ctx, st, mustTokens(t, "kg"), keys.Options{})
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			uid := fmt.Sprintf("user%d", i)
			if _, err := svc.UpsertUser(ctx, keys.UserInput{ID: uid, Email: uid + "@x"}); err != nil {
				errs <- err
				return
			}
			for j := 0; j < 5; j++ {
				k, tok, err := svc.CreateKey(ctx, keys.CreateKeyInput{UserID: uid})
				if err != nil {
					errs <- err
					return
				}
				if _, err := svc.Validate(ctx, tok); err != nil {
					errs <- err
					return
				}
				if _, err := svc.ArchiveKey(ctx, k.ID); err != nil {
					errs <- err
					return
				}
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	ks, _, _ := svc.ListKeys(ctx, keys.KeyFilter{Status: "archived", Limit: 1000})
	if len(ks) != 250 {
		t.Fatalf("archived keys = %d, want 250", len(ks))
	}
}

func testImportIgnoresDefaultExpiration(t *testing.T, open Opener) {
	h := newHarness(t, open, func(o *keys.Options) { o.DefaultExpiration = "1mo" })
	ks, err := h.svc.ImportKeys(context.Background(), []keys.CreateKeyInput{{Token: "legacy-forever-0123"}})
	if err != nil {
		t.Fatal(err)
	}
	if ks[0].ExpiresAt != nil {
		t.Fatalf("imported key expires at %d; it should keep working as before", *ks[0].ExpiresAt)
	}
	k, _ := h.key(keys.CreateKeyInput{})
	if k.ExpiresAt == nil {
		t.Fatal("a minted key ignores default_expiration")
	}
}

func testOwnerFieldsRejectControlCharacters(t *testing.T, open Opener) {
	ctx := context.Background()
	h := newHarness(t, open, nil)
	if _, err := h.svc.UpsertUser(ctx, keys.UserInput{ID: "eve", Email: "eve@x\r\nX-Keygate-User-Id: admin"}); keys.ErrorCode(err) != keys.EInvalid {
		t.Fatalf("email with CRLF: %v", err)
	}
	if _, err := h.svc.UpsertOrg(ctx, keys.OrgInput{ID: "evil", Name: "Evil\nCorp"}); keys.ErrorCode(err) != keys.EInvalid {
		t.Fatalf("org name with LF: %v", err)
	}
}

// testDeletedCreatorDetached: an org key created by a since-deleted user
// must not carry their id (issue 10 item 10): if the id were reused, the
// upstream would see the new person as the key's creator.
func testDeletedCreatorDetached(t *testing.T, open Opener) {
	ctx := context.Background()
	h := newHarness(t, open, nil) // invalidate_on_creator_leave off: the key keeps working
	h.user("bob")
	h.org("acme", "bob")
	k, tok := h.key(keys.CreateKeyInput{OrgID: "acme", UserID: "bob"})
	h.changes = nil
	if err := h.svc.DeleteUser(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	id, err := h.svc.Validate(ctx, tok)
	if err != nil {
		t.Fatalf("org key after its creator's deletion: %v", err)
	}
	if id.Key.UserID != "" || id.User != nil || id.Role != "" {
		t.Fatalf("identity still names the deleted creator: key user %q, user %+v, role %q", id.Key.UserID, id.User, id.Role)
	}
	named := false
	for _, c := range h.changes {
		for _, kid := range c.KeyIDs {
			named = named || kid == k.ID
		}
	}
	if !named {
		t.Fatalf("no change names the detached key: %+v", h.changes)
	}
	// A new user with the same id inherits nothing.
	h.user("bob")
	h.svc.PutMember(ctx, "acme", "bob", "Owner")
	if id, _ := h.svc.Validate(ctx, tok); id.Key.UserID != "" || id.User != nil {
		t.Fatalf("reused id inherited the key: %+v", id)
	}
	evs, _ := h.svc.ListAudit(ctx, keys.AuditFilter{KeyID: k.ID, Action: keys.ActionKeyUpdated})
	if len(evs) != 1 || evs[0].Actor != "system" {
		t.Fatalf("detach audit = %+v", evs)
	}
}

// testAuditEvents: every change through the service is audited, owners
// included, with the actor of the context.
func testAuditEvents(t *testing.T, open Opener) {
	h := newHarness(t, open, func(o *keys.Options) { o.InvalidateOnCreatorLeave = true })
	ctx := keys.WithActor(context.Background(), "portal:alice")
	h.user("alice")
	h.user("bob")
	h.org("acme", "bob")
	k, _ := h.key(keys.CreateKeyInput{OrgID: "acme", UserID: "bob"})
	if _, err := h.svc.UpdateKey(ctx, k.ID, keys.KeyPatch{DisplayName: ptr("x")}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.svc.SetUserEnabled(ctx, "alice", false); err != nil {
		t.Fatal(err)
	}
	if _, err := h.svc.SetUserEnabled(ctx, "alice", true); err != nil {
		t.Fatal(err)
	}
	if err := h.svc.DeleteUser(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	if err := h.svc.DeleteOrg(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	evs, err := h.svc.ListAudit(ctx, keys.AuditFilter{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for i := len(evs) - 1; i >= 0; i-- {
		e := evs[i]
		got = append(got, e.Action+" "+e.Actor+" "+e.KeyID+e.UserID+"/"+e.OrgID)
	}
	want := []string{
		"user.upserted admin alice/",
		"user.upserted admin bob/",
		"org.upserted admin /acme",
		"org.member_added admin bob/acme",
		"api_key.created admin " + k.ID + "bob/acme",
		"api_key.updated portal:alice " + k.ID + "bob/acme",
		"user.blocked portal:alice alice/",
		"user.unblocked portal:alice alice/",
		"api_key.archived system " + k.ID + "bob/acme", // creator left the org
		"org.member_removed portal:alice bob/acme",
		"api_key.updated system " + k.ID + "bob/", // creator detached
		"user.deleted portal:alice bob/",
		"org.deleted portal:alice /acme",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("audit log:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func ptr[T any](v T) *T { return &v }

// testChangesNamed: every change that can affect what a token validates to
// reaches OnChange naming what it changed, after the commit.
func testChangesNamed(t *testing.T, open Opener) {
	ctx := context.Background()
	h := newHarness(t, open, nil)
	last := func() keys.Change {
		t.Helper()
		if len(h.changes) == 0 {
			t.Fatal("no change")
		}
		c := h.changes[len(h.changes)-1]
		h.changes = nil
		return c
	}
	h.user("alice")
	if c := last(); c.UserID != "alice" {
		t.Errorf("UpsertUser: %+v", c)
	}
	h.org("acme")
	if c := last(); c.OrgID != "acme" {
		t.Errorf("UpsertOrg: %+v", c)
	}
	h.svc.PutMember(ctx, "acme", "alice", "Owner")
	if c := last(); c.OrgID != "acme" || c.UserID != "alice" {
		t.Errorf("PutMember: %+v", c)
	}
	k, tok := h.key(keys.CreateKeyInput{OrgID: "acme", UserID: "alice"})
	if c := last(); len(c.Hashes) != 1 || c.Hashes[0] != keys.Hash(tok) || c.Imported != 0 {
		t.Errorf("CreateKey: %+v", c)
	}
	h.svc.UpdateKey(ctx, k.ID, keys.KeyPatch{Metadata: []byte(`{"plan":"pro"}`)})
	if c := last(); len(c.KeyIDs) != 1 || c.KeyIDs[0] != k.ID {
		t.Errorf("UpdateKey: %+v", c)
	}
	if _, err := h.svc.ImportKeys(ctx, []keys.CreateKeyInput{{Token: "legacy-token-0001"}, {Token: "legacy-token-0002"}}); err != nil {
		t.Fatal(err)
	}
	if c := last(); len(c.Hashes) != 2 || c.Imported != 2 {
		t.Errorf("ImportKeys: %+v", c)
	}
	if !h.svc.HasImported() {
		t.Error("HasImported after an import")
	}
	// A failed change names nothing.
	if _, err := h.svc.UpdateKey(ctx, keys.NewID(), keys.KeyPatch{DisplayName: ptr("x")}); !errors.Is(err, keys.ErrNotFound) {
		t.Fatalf("update of a missing key: %v", err)
	}
	if len(h.changes) != 0 {
		t.Errorf("a failed update announced %+v", h.changes)
	}
	// Apply takes in changes made on another node.
	other := newHarness(t, open, nil)
	other.svc.Apply(keys.Change{Imported: 1})
	if !other.svc.HasImported() {
		t.Error("Apply did not count another node's import")
	}
}
