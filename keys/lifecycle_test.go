package keys

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestKeyTypesLifecycle(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, nil)
	h.user("alice")
	h.org("acme", "alice")
	tests := []struct {
		name string
		in   CreateKeyInput
		typ  Type
	}{
		{"personal", CreateKeyInput{UserID: "alice"}, TypePersonal},
		{"org with creator", CreateKeyInput{OrgID: "acme", UserID: "alice"}, TypeOrg},
		{"org", CreateKeyInput{Type: TypeOrg, OrgID: "acme"}, TypeOrg},
		{"generic", CreateKeyInput{}, TypeGeneric},
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
			if err != nil || got.DisplayName != k.DisplayName || got.Hash != Hash(tok) {
				t.Fatalf("GetKey = %+v, %v", got, err)
			}
			list, _, err := h.svc.ListKeys(ctx, KeyFilter{UserID: tt.in.UserID, OrgID: tt.in.OrgID, Type: tt.typ})
			if err != nil || !containsKey(list, k.ID) {
				t.Fatalf("ListKeys misses %s: %v", k.ID, err)
			}
			name := "renamed"
			up, err := h.svc.UpdateKey(ctx, k.ID, KeyPatch{DisplayName: &name, Metadata: []byte(`{"tier":"gold"}`), NeverExpire: true})
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
			if err := h.validate(tok); !errors.Is(err, ErrInvalidKey) {
				t.Fatalf("archived key validates: %v", err)
			}
			archived, _, _ := h.svc.ListKeys(ctx, KeyFilter{Status: "archived"})
			if !containsKey(archived, k.ID) {
				t.Fatal("archived key not listed as archived")
			}
			if err := h.svc.DeleteKey(ctx, k.ID); err != nil {
				t.Fatal(err)
			}
			if _, err := h.svc.GetKey(ctx, k.ID); !errors.Is(err, ErrNotFound) {
				t.Fatalf("deleted key: %v", err)
			}
			events, _ := h.svc.ListAudit(ctx, AuditFilter{KeyID: k.ID})
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

func containsKey(ks []Key, id string) bool {
	for _, k := range ks {
		if k.ID == id {
			return true
		}
	}
	return false
}

func TestInvalidationRules(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name       string
		leave      bool // keys.org.invalidate_on_creator_leave
		setup      func(h *harness) CreateKeyInput
		change     func(h *harness, k *Key)
		want       error // after change
		undo       func(h *harness)
		afterUndo  error
		changeHits func(c Change, k *Key) bool
	}{
		{
			name:   "expired",
			setup:  func(h *harness) CreateKeyInput { return CreateKeyInput{ExpiresIn: "2w"} },
			change: func(h *harness, k *Key) { h.clock.Add(14 * 24 * time.Hour) },
			want:   ErrExpiredKey,
		},
		{
			name:       "archived",
			setup:      func(h *harness) CreateKeyInput { return CreateKeyInput{} },
			change:     func(h *harness, k *Key) { h.svc.ArchiveKey(ctx, k.ID) },
			want:       ErrInvalidKey,
			changeHits: func(c Change, k *Key) bool { return len(c.KeyIDs) == 1 && c.KeyIDs[0] == k.ID },
		},
		{
			name:       "owner blocked, then unblocked",
			setup:      func(h *harness) CreateKeyInput { h.user("bob"); return CreateKeyInput{UserID: "bob"} },
			change:     func(h *harness, k *Key) { h.svc.SetUserEnabled(ctx, "bob", false) },
			want:       ErrInvalidKey,
			undo:       func(h *harness) { h.svc.SetUserEnabled(ctx, "bob", true) },
			afterUndo:  nil,
			changeHits: func(c Change, k *Key) bool { return c.UserID == "bob" },
		},
		{
			name:       "owner deleted: archived for good",
			setup:      func(h *harness) CreateKeyInput { h.user("bob"); return CreateKeyInput{UserID: "bob"} },
			change:     func(h *harness, k *Key) { h.svc.DeleteUser(ctx, "bob") },
			want:       ErrInvalidKey,
			undo:       func(h *harness) { h.user("bob") },
			afterUndo:  ErrInvalidKey,
			changeHits: func(c Change, k *Key) bool { return c.UserID == "bob" },
		},
		{
			name:       "org deleted: archived for good",
			setup:      func(h *harness) CreateKeyInput { h.org("acme"); return CreateKeyInput{OrgID: "acme"} },
			change:     func(h *harness, k *Key) { h.svc.DeleteOrg(ctx, "acme") },
			want:       ErrInvalidKey,
			undo:       func(h *harness) { h.org("acme") },
			afterUndo:  ErrInvalidKey,
			changeHits: func(c Change, k *Key) bool { return c.OrgID == "acme" },
		},
		{
			name:  "creator leaves, setting on",
			leave: true,
			setup: func(h *harness) CreateKeyInput {
				h.user("bob")
				h.org("acme", "bob")
				return CreateKeyInput{OrgID: "acme", UserID: "bob"}
			},
			change:     func(h *harness, k *Key) { h.svc.RemoveMember(ctx, "acme", "bob") },
			want:       ErrInvalidKey,
			undo:       func(h *harness) { h.svc.PutMember(ctx, "acme", "bob", "Admin") },
			afterUndo:  ErrInvalidKey,
			changeHits: func(c Change, k *Key) bool { return len(c.KeyIDs) == 1 && c.KeyIDs[0] == k.ID },
		},
		{
			name: "creator leaves, setting off",
			setup: func(h *harness) CreateKeyInput {
				h.user("bob")
				h.org("acme", "bob")
				return CreateKeyInput{OrgID: "acme", UserID: "bob"}
			},
			change: func(h *harness, k *Key) { h.svc.RemoveMember(ctx, "acme", "bob") },
			want:   nil,
		},
		{
			name:  "creator deleted, setting on: leaving every org",
			leave: true,
			setup: func(h *harness) CreateKeyInput {
				h.user("bob")
				h.org("acme", "bob")
				return CreateKeyInput{OrgID: "acme", UserID: "bob"}
			},
			change: func(h *harness, k *Key) { h.svc.DeleteUser(ctx, "bob") },
			want:   ErrInvalidKey,
		},
		{
			name: "creator blocked does not touch org keys",
			setup: func(h *harness) CreateKeyInput {
				h.user("bob")
				h.org("acme", "bob")
				return CreateKeyInput{OrgID: "acme", UserID: "bob"}
			},
			change: func(h *harness, k *Key) { h.svc.SetUserEnabled(ctx, "bob", false) },
			want:   nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, func(o *Options) { o.InvalidateOnCreatorLeave = tt.leave })
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

func TestTypeDisabled(t *testing.T) {
	ctx := context.Background()
	st, err := OpenSQLite(ctx, t.TempDir()+"/k.db")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	tok := mustTokens(t, "kg")
	on, _ := NewService(ctx, st, tok, Options{})
	_, token, err := on.CreateKey(ctx, CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	var disabled [4]bool
	disabled[TypeGeneric] = true
	off, _ := NewService(ctx, st, tok, Options{Disabled: disabled})
	if _, err := off.Validate(ctx, token); !errors.Is(err, ErrInvalidKey) {
		t.Fatalf("disabled type validates: %v", err)
	}
	if _, _, err := off.CreateKey(ctx, CreateKeyInput{}); ErrorCode(err) != EInvalid {
		t.Fatalf("created a key of a disabled type: %v", err)
	}
	again, _ := NewService(ctx, st, tok, Options{})
	if _, err := again.Validate(ctx, token); err != nil {
		t.Fatalf("re-enabled type: %v", err)
	}
}

func TestImport(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, nil)
	h.user("alice")
	if h.svc.HasImported() {
		t.Fatal("HasImported before any import")
	}
	if err := h.validate("sk_live_legacy123"); !errors.Is(err, ErrInvalidKey) {
		t.Fatal(err)
	}
	legacyHash := Hash("legacy-two")
	ks, err := h.svc.ImportKeys(ctx, []CreateKeyInput{
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
	var n int
	h.store.rdb.QueryRow(`SELECT COUNT(*) FROM api_keys WHERE display LIKE '%legacy%' OR metadata LIKE '%legacy%' OR display_name LIKE '%legacy%'`).Scan(&n)
	if n != 0 {
		t.Fatal("token stored in clear")
	}
	// All or nothing: a duplicate fails the whole batch.
	_, err = h.svc.ImportKeys(ctx, []CreateKeyInput{{Token: "fresh-one"}, {Token: "sk_live_legacy123"}})
	if ErrorCode(err) != EConflict {
		t.Fatalf("duplicate import: %v", err)
	}
	if err := h.validate("fresh-one"); !errors.Is(err, ErrInvalidKey) {
		t.Fatalf("half an import landed: %v", err)
	}
}

func TestCreateKeyBadInput(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, nil)
	h.user("alice")
	h.user("blocked")
	h.svc.SetUserEnabled(ctx, "blocked", false)
	h.org("acme")
	past := h.clock.Now().Unix() - 1
	tests := []struct {
		name  string
		in    CreateKeyInput
		field string
	}{
		{"personal without user", CreateKeyInput{Type: TypePersonal}, "user_id"},
		{"unknown user", CreateKeyInput{UserID: "nobody"}, "user_id"},
		{"blocked user", CreateKeyInput{UserID: "blocked"}, "user_id"},
		{"bad user id", CreateKeyInput{UserID: "a b"}, "user_id"},
		{"unknown org", CreateKeyInput{OrgID: "nope"}, "org_id"},
		{"org creator not member", CreateKeyInput{OrgID: "acme", UserID: "alice"}, "user_id"},
		{"generic with user", CreateKeyInput{Type: TypeGeneric, UserID: "alice"}, "user_id"},
		{"metadata array", CreateKeyInput{Metadata: []byte(`[1]`)}, "metadata"},
		{"metadata invalid", CreateKeyInput{Metadata: []byte(`{`)}, "metadata"},
		{"metadata too big", CreateKeyInput{Metadata: []byte(`{"a":"` + strings.Repeat("x", 5000) + `"}`)}, "metadata"},
		{"expires_in unknown", CreateKeyInput{ExpiresIn: "5y"}, "expires_in"},
		{"expires_at past", CreateKeyInput{ExpiresAt: &past}, "expires_at"},
		{"display name too long", CreateKeyInput{DisplayName: strings.Repeat("x", 201)}, "display_name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := h.svc.CreateKey(ctx, tt.in)
			var e *Error
			if !errors.As(err, &e) || e.Code != EInvalid || len(e.Fields[tt.field]) == 0 {
				t.Fatalf("err = %v, want a problem with %s", err, tt.field)
			}
		})
	}
	all, _, _ := h.svc.ListKeys(ctx, KeyFilter{Status: "all"})
	if len(all) != 0 {
		t.Fatalf("bad input created %d keys", len(all))
	}
}

func TestPagination(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, nil)
	want := map[string]bool{}
	for i := 0; i < 25; i++ {
		k, _ := h.key(CreateKeyInput{})
		want[k.ID] = true
	}
	cursor, pages := "", 0
	for {
		ks, next, err := h.svc.ListKeys(ctx, KeyFilter{Limit: 10, Cursor: cursor})
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

func TestConcurrentWrites(t *testing.T) {
	ctx := context.Background()
	st, err := OpenSQLite(ctx, t.TempDir()+"/k.db")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	svc, _ := NewService(ctx, st, mustTokens(t, "kg"), Options{})
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			uid := fmt.Sprintf("user%d", i)
			if _, err := svc.UpsertUser(ctx, UserInput{ID: uid, Email: uid + "@x"}); err != nil {
				errs <- err
				return
			}
			for j := 0; j < 5; j++ {
				k, tok, err := svc.CreateKey(ctx, CreateKeyInput{UserID: uid})
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
	ks, _, _ := svc.ListKeys(ctx, KeyFilter{Status: "archived", Limit: 1000})
	if len(ks) != 250 {
		t.Fatalf("archived keys = %d, want 250", len(ks))
	}
}

func TestMigrationsRecordedOnce(t *testing.T) {
	ctx := context.Background()
	path := t.TempDir() + "/k.db"
	for i := 0; i < 2; i++ {
		st, err := OpenSQLite(ctx, path)
		if err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
		var n int
		st.rdb.QueryRow(`SELECT COUNT(*) FROM schema_migrations`).Scan(&n)
		var mode string
		st.rdb.QueryRow(`PRAGMA journal_mode`).Scan(&mode)
		var fk int
		st.rdb.QueryRow(`PRAGMA foreign_keys`).Scan(&fk)
		st.Close()
		if n == 0 || mode != "wal" || fk != 1 {
			t.Fatalf("migrations=%d journal=%s foreign_keys=%d", n, mode, fk)
		}
	}
}

func TestImportIgnoresDefaultExpiration(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.DefaultExpiration = "1mo" })
	ks, err := h.svc.ImportKeys(context.Background(), []CreateKeyInput{{Token: "legacy-forever"}})
	if err != nil {
		t.Fatal(err)
	}
	if ks[0].ExpiresAt != nil {
		t.Fatalf("imported key expires at %d; it should keep working as before", *ks[0].ExpiresAt)
	}
	k, _ := h.key(CreateKeyInput{})
	if k.ExpiresAt == nil {
		t.Fatal("a minted key ignores default_expiration")
	}
}

func TestOwnerFieldsRejectControlCharacters(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, nil)
	if _, err := h.svc.UpsertUser(ctx, UserInput{ID: "eve", Email: "eve@x\r\nX-Keygate-User-Id: admin"}); ErrorCode(err) != EInvalid {
		t.Fatalf("email with CRLF: %v", err)
	}
	if _, err := h.svc.UpsertOrg(ctx, OrgInput{ID: "evil", Name: "Evil\nCorp"}); ErrorCode(err) != EInvalid {
		t.Fatalf("org name with LF: %v", err)
	}
}
