package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/keys"
)

// The tests in this file call the store directly, primitive by primitive.

var ctx = context.Background()

// update runs fn in st.Update and fails the test on error.
func update(t *testing.T, st keys.Store, fn func(tx keys.Tx) error) {
	t.Helper()
	if err := st.Update(ctx, fn); err != nil {
		t.Fatal(err)
	}
}

func i64(v int64) *int64 { return &v }

// newKey returns a key record with a hash derived from id.
func newKey(id string, typ keys.Type, userID, orgID string, createdAt int64) *keys.Key {
	return &keys.Key{ID: id, Type: typ, UserID: userID, OrgID: orgID, DisplayName: "name " + id,
		Display: "kg_…" + id[len(id)-4:], Metadata: json.RawMessage(`{"n":1}`), CreatedAt: createdAt, Hash: keys.Hash("token-" + id)}
}

// kid returns a valid key id (32 hex characters) ending in n.
func kid(n int) string { return fmt.Sprintf("%032x", n) }

// seedOwners creates users alice and bob, org acme with both (alice Owner,
// bob Admin) and org beta with bob.
func seedOwners(t *testing.T, st keys.Store) {
	t.Helper()
	update(t, st, func(tx keys.Tx) error {
		for _, id := range []string{"alice", "bob"} {
			if err := tx.PutUser(ctx, &keys.User{ID: id, Email: id + "@example.com", Enabled: true, CreatedAt: 100, UpdatedAt: 100}); err != nil {
				return err
			}
		}
		for _, id := range []string{"acme", "beta"} {
			if err := tx.PutOrg(ctx, &keys.Org{ID: id, Name: "Org " + id, CreatedAt: 100, UpdatedAt: 100}); err != nil {
				return err
			}
		}
		for _, m := range []keys.Member{{OrgID: "acme", UserID: "alice", Role: "Owner"}, {OrgID: "acme", UserID: "bob", Role: "Admin"}, {OrgID: "beta", UserID: "bob", Role: "Member"}} {
			m.CreatedAt = 100
			if _, err := tx.PutMember(ctx, m); err != nil {
				return err
			}
		}
		return nil
	})
}

func testStoreKeys(t *testing.T, open Opener) {
	st := open(t)
	seedOwners(t, st)
	k := newKey(kid(1), keys.TypeOrg, "alice", "acme", 1000)
	k.ExpiresAt = i64(5000)
	k.Imported = true
	update(t, st, func(tx keys.Tx) error { return tx.InsertKeys(ctx, []*keys.Key{k}) })

	got, err := st.GetKey(ctx, k.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, k) {
		t.Fatalf("GetKey = %+v\nwant %+v", got, k)
	}
	// Errors are sentinels, matched with errors.Is.
	if _, err := st.GetKey(ctx, kid(99)); !errors.Is(err, keys.ErrNotFound) {
		t.Fatalf("GetKey(missing) = %v, want ErrNotFound", err)
	}
	dup := newKey(kid(2), keys.TypeGeneric, "", "", 1001)
	dup.Hash = k.Hash
	if err := st.Update(ctx, func(tx keys.Tx) error { return tx.InsertKeys(ctx, []*keys.Key{dup}) }); !errors.Is(err, keys.ErrConflict) {
		t.Fatalf("InsertKeys(same hash) = %v, want ErrConflict", err)
	}
	same := newKey(kid(1), keys.TypeGeneric, "", "", 1001)
	if err := st.Update(ctx, func(tx keys.Tx) error { return tx.InsertKeys(ctx, []*keys.Key{same}) }); !errors.Is(err, keys.ErrConflict) {
		t.Fatalf("InsertKeys(same id) = %v, want ErrConflict", err)
	}
	for name, fn := range map[string]func(tx keys.Tx) error{
		"UpdateKey": func(tx keys.Tx) error { return tx.UpdateKey(ctx, newKey(kid(99), keys.TypeGeneric, "", "", 0)) },
		"DeleteKey": func(tx keys.Tx) error { return tx.DeleteKey(ctx, kid(99)) },
		"GetKey":    func(tx keys.Tx) error { _, err := tx.GetKey(ctx, kid(99)); return err },
	} {
		if err := st.Update(ctx, fn); !errors.Is(err, keys.ErrNotFound) {
			t.Errorf("%s(missing) = %v, want ErrNotFound", name, err)
		}
	}

	// UpdateKey changes display name, metadata and expiry only.
	upd := *k
	upd.DisplayName, upd.Metadata, upd.ExpiresAt = "renamed", json.RawMessage(`{"n":2}`), nil
	upd.UserID, upd.CreatedAt = "someone", 1 // ignored
	update(t, st, func(tx keys.Tx) error { return tx.UpdateKey(ctx, &upd) })
	got, _ = st.GetKey(ctx, k.ID)
	if got.DisplayName != "renamed" || string(got.Metadata) != `{"n":2}` || got.ExpiresAt != nil || got.UserID != "alice" || got.CreatedAt != 1000 {
		t.Fatalf("after UpdateKey: %+v", got)
	}

	// A failing fn rolls everything back and its error comes back as is.
	errBoom := errors.New("boom")
	err = st.Update(ctx, func(tx keys.Tx) error {
		if err := tx.InsertKeys(ctx, []*keys.Key{newKey(kid(3), keys.TypeGeneric, "", "", 1002)}); err != nil {
			return err
		}
		if err := tx.InsertAudit(ctx, keys.AuditEvent{At: 1, Action: keys.ActionKeyCreated, Actor: "admin", KeyID: kid(3)}); err != nil {
			return err
		}
		return fmt.Errorf("wrapped: %w", errBoom)
	})
	if !errors.Is(err, errBoom) {
		t.Fatalf("Update error = %v, want errBoom", err)
	}
	if _, err := st.GetKey(ctx, kid(3)); !errors.Is(err, keys.ErrNotFound) {
		t.Fatalf("rolled-back key exists: %v", err)
	}
	if evs, _ := st.ListAudit(ctx, keys.AuditFilter{KeyID: kid(3)}); len(evs) != 0 {
		t.Fatalf("rolled-back audit exists: %+v", evs)
	}
	// A domain error from fn survives too.
	err = st.Update(ctx, func(tx keys.Tx) error { return keys.Errorf(keys.EConflict, "no") })
	if keys.ErrorCode(err) != keys.EConflict {
		t.Fatalf("Update(*Error) = %v", err)
	}

	// Reads inside the transaction see its own writes.
	update(t, st, func(tx keys.Tx) error {
		if err := tx.InsertKeys(ctx, []*keys.Key{newKey(kid(4), keys.TypeGeneric, "", "", 1003)}); err != nil {
			return err
		}
		_, err := tx.GetKey(ctx, kid(4))
		return err
	})

	// DeleteKey removes the key and its usage.
	if err := st.AddUsage(ctx, []keys.UsageCount{{KeyID: kid(4), Minute: 60_000, Allowed: 3}}); err != nil {
		t.Fatal(err)
	}
	update(t, st, func(tx keys.Tx) error { return tx.DeleteKey(ctx, kid(4)) })
	if _, err := st.GetKey(ctx, kid(4)); !errors.Is(err, keys.ErrNotFound) {
		t.Fatalf("deleted key: %v", err)
	}
	if pts, total, _ := st.Usage(ctx, keys.UsageQuery{KeyID: kid(4), From: 0, To: 120_000, Interval: "minute"}); total != 0 || len(pts) != 0 {
		t.Fatalf("deleted key's usage: %+v", pts)
	}
	// Reinserting the id starts from zero usage.
	update(t, st, func(tx keys.Tx) error {
		return tx.InsertKeys(ctx, []*keys.Key{newKey(kid(4), keys.TypeGeneric, "", "", 1004)})
	})
	if _, total, _ := st.Usage(ctx, keys.UsageQuery{KeyID: kid(4), From: 0, To: 120_000, Interval: "minute"}); total != 0 {
		t.Fatalf("usage came back: %d", total)
	}
}

func testStoreLookupHash(t *testing.T, open Opener) {
	st := open(t)
	seedOwners(t, st)
	update(t, st, func(tx keys.Tx) error {
		return tx.PutUser(ctx, &keys.User{ID: "carol", Enabled: false, RateLimit: &keys.RateLimit{Limit: 5, Window: time.Minute}, CreatedAt: 1, UpdatedAt: 2})
	})
	org := newKey(kid(1), keys.TypeOrg, "bob", "acme", 1)
	personal := newKey(kid(2), keys.TypePersonal, "carol", "", 2)
	generic := newKey(kid(3), keys.TypeGeneric, "", "", 3)
	update(t, st, func(tx keys.Tx) error { return tx.InsertKeys(ctx, []*keys.Key{org, personal, generic}) })

	id, err := st.LookupHash(ctx, org.Hash)
	if err != nil {
		t.Fatal(err)
	}
	if id.Key.ID != org.ID || id.User == nil || id.User.Email != "bob@example.com" || id.Org == nil || id.Org.Name != "Org acme" || id.Role != "Admin" {
		t.Fatalf("org identity = %+v", id)
	}
	id, _ = st.LookupHash(ctx, personal.Hash)
	if id.User == nil || id.User.Enabled || id.User.RateLimit == nil || *id.User.RateLimit != (keys.RateLimit{Limit: 5, Window: time.Minute}) || id.Org != nil || id.Role != "" {
		t.Fatalf("personal identity = %+v", id)
	}
	id, _ = st.LookupHash(ctx, generic.Hash)
	if id.User != nil || id.Org != nil {
		t.Fatalf("generic identity = %+v", id)
	}
	if _, err := st.LookupHash(ctx, keys.Hash("nope")); !errors.Is(err, keys.ErrNotFound) {
		t.Fatalf("unknown hash: %v", err)
	}
	// Owners as they are now: the membership gone, the role is too.
	update(t, st, func(tx keys.Tx) error { _, err := tx.DeleteMemberships(ctx, "acme", "bob"); return err })
	if id, _ = st.LookupHash(ctx, org.Hash); id.Role != "" || id.User == nil {
		t.Fatalf("after leaving: %+v", id)
	}
	update(t, st, func(tx keys.Tx) error { return tx.DeleteOrg(ctx, "acme") })
	if id, _ = st.LookupHash(ctx, org.Hash); id.Org != nil {
		t.Fatalf("after org deletion: %+v", id)
	}
}

func testStoreArchiveAndDetach(t *testing.T, open Opener) {
	st := open(t)
	seedOwners(t, st)
	ks := []*keys.Key{
		newKey(kid(1), keys.TypeOrg, "bob", "acme", 1),
		newKey(kid(2), keys.TypePersonal, "bob", "", 2),
		newKey(kid(3), keys.TypeOrg, "bob", "beta", 3),
		newKey(kid(4), keys.TypeOrg, "alice", "acme", 4),
		newKey(kid(5), keys.TypeOrg, "bob", "acme", 5),
	}
	update(t, st, func(tx keys.Tx) error { return tx.InsertKeys(ctx, ks) })
	var got []keys.Key
	update(t, st, func(tx keys.Tx) error {
		var err error
		got, err = tx.ArchiveKeys(ctx, keys.KeySelector{Type: keys.TypeOrg, OrgID: "acme", UserID: "bob"}, 777)
		return err
	})
	if len(got) != 2 || got[0].ID != kid(1) || got[1].ID != kid(5) || got[0].ArchivedAt == nil || *got[0].ArchivedAt != 777 {
		t.Fatalf("ArchiveKeys = %+v", got)
	}
	// Already archived keys are not archived again.
	update(t, st, func(tx keys.Tx) error {
		var err error
		got, err = tx.ArchiveKeys(ctx, keys.KeySelector{ID: kid(1)}, 888)
		return err
	})
	if len(got) != 0 {
		t.Fatalf("re-archived: %+v", got)
	}
	if k, _ := st.GetKey(ctx, kid(1)); *k.ArchivedAt != 777 {
		t.Fatalf("archived_at moved to %d", *k.ArchivedAt)
	}
	if err := st.Update(ctx, func(tx keys.Tx) error { _, err := tx.ArchiveKeys(ctx, keys.KeySelector{}, 1); return err }); err == nil {
		t.Fatal("ArchiveKeys with an empty selector succeeded")
	}
	if k, _ := st.GetKey(ctx, kid(4)); k.Archived() {
		t.Fatal("a key outside the selector was archived")
	}

	// DetachCreator clears the creator of org keys only, archived or not.
	var ids []string
	update(t, st, func(tx keys.Tx) error {
		var err error
		ids, err = tx.DetachCreator(ctx, "bob")
		return err
	})
	if !reflect.DeepEqual(ids, []string{kid(1), kid(3), kid(5)}) {
		t.Fatalf("DetachCreator = %v", ids)
	}
	for _, id := range ids {
		if k, _ := st.GetKey(ctx, id); k.UserID != "" {
			t.Fatalf("key %s keeps creator %q", id, k.UserID)
		}
	}
	if k, _ := st.GetKey(ctx, kid(2)); k.UserID != "bob" {
		t.Fatal("a personal key lost its owner")
	}
	if k, _ := st.GetKey(ctx, kid(4)); k.UserID != "alice" {
		t.Fatal("another creator was detached")
	}
}

func testStoreOwners(t *testing.T, open Opener) {
	st := open(t)
	seedOwners(t, st)
	u, err := st.GetUser(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	if want := []keys.UserOrg{{OrgID: "acme", Name: "Org acme", Role: "Admin"}, {OrgID: "beta", Name: "Org beta", Role: "Member"}}; !reflect.DeepEqual(u.Orgs, want) {
		t.Fatalf("orgs = %+v", u.Orgs)
	}
	if string(u.Metadata) != "{}" {
		t.Fatalf("nil metadata stored as %q, want {}", u.Metadata)
	}
	// PutUser replaces everything but CreatedAt.
	update(t, st, func(tx keys.Tx) error {
		return tx.PutUser(ctx, &keys.User{ID: "bob", Email: "new@x", Enabled: false, Metadata: json.RawMessage(`{"a":1}`), RateLimit: &keys.RateLimit{Limit: 1, Window: time.Second}, CreatedAt: 999, UpdatedAt: 200})
	})
	u, _ = st.GetUser(ctx, "bob")
	if u.Email != "new@x" || u.Enabled || string(u.Metadata) != `{"a":1}` || u.RateLimit == nil || u.CreatedAt != 100 || u.UpdatedAt != 200 {
		t.Fatalf("after PutUser: %+v", u)
	}
	update(t, st, func(tx keys.Tx) error {
		u.RateLimit = nil
		return tx.PutUser(ctx, u)
	})
	if u, _ = st.GetUser(ctx, "bob"); u.RateLimit != nil {
		t.Fatal("rate limit not cleared")
	}
	o, err := st.GetOrg(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if len(o.Members) != 2 || o.Members[0].UserID != "alice" || o.Members[1].UserID != "bob" || o.Members[1].Role != "Admin" || o.Members[1].CreatedAt != 100 {
		t.Fatalf("members = %+v", o.Members)
	}
	// PutMember changes the role and keeps CreatedAt.
	var m *keys.Member
	update(t, st, func(tx keys.Tx) error {
		var err error
		m, err = tx.PutMember(ctx, keys.Member{OrgID: "acme", UserID: "bob", Role: "Owner", CreatedAt: 500})
		return err
	})
	if m.Role != "Owner" || m.CreatedAt != 100 {
		t.Fatalf("PutMember = %+v", m)
	}
	if m, err := st.GetMember(ctx, "acme", "bob"); err != nil || m.Role != "Owner" {
		t.Fatalf("GetMember = %+v, %v", m, err)
	}
	for name, mm := range map[string]keys.Member{"no org": {OrgID: "nope", UserID: "bob", Role: "x"}, "no user": {OrgID: "acme", UserID: "nope", Role: "x"}} {
		if err := st.Update(ctx, func(tx keys.Tx) error { _, err := tx.PutMember(ctx, mm); return err }); !errors.Is(err, keys.ErrNotFound) {
			t.Errorf("PutMember(%s) = %v, want ErrNotFound", name, err)
		}
	}
	for name, fn := range map[string]func() error{
		"GetUser":   func() error { _, err := st.GetUser(ctx, "nope"); return err },
		"GetOrg":    func() error { _, err := st.GetOrg(ctx, "nope"); return err },
		"GetMember": func() error { _, err := st.GetMember(ctx, "beta", "alice"); return err },
		"DeleteUser": func() error {
			return st.Update(ctx, func(tx keys.Tx) error { return tx.DeleteUser(ctx, "nope") })
		},
		"DeleteOrg": func() error {
			return st.Update(ctx, func(tx keys.Tx) error { return tx.DeleteOrg(ctx, "nope") })
		},
		"Tx.GetUser": func() error {
			return st.Update(ctx, func(tx keys.Tx) error { _, err := tx.GetUser(ctx, "nope"); return err })
		},
		"Tx.GetOrg": func() error {
			return st.Update(ctx, func(tx keys.Tx) error { _, err := tx.GetOrg(ctx, "nope"); return err })
		},
		"Tx.GetMember": func() error {
			return st.Update(ctx, func(tx keys.Tx) error { _, err := tx.GetMember(ctx, "beta", "alice"); return err })
		},
	} {
		if err := fn(); !errors.Is(err, keys.ErrNotFound) {
			t.Errorf("%s(missing) = %v, want ErrNotFound", name, err)
		}
	}
	// DeleteMemberships returns what it removed, ordered.
	var removed []keys.Member
	update(t, st, func(tx keys.Tx) error {
		var err error
		removed, err = tx.DeleteMemberships(ctx, "", "bob")
		return err
	})
	if len(removed) != 2 || removed[0].OrgID != "acme" || removed[1].OrgID != "beta" {
		t.Fatalf("DeleteMemberships = %+v", removed)
	}
	update(t, st, func(tx keys.Tx) error {
		var err error
		removed, err = tx.DeleteMemberships(ctx, "beta", "bob")
		return err
	})
	if len(removed) != 0 {
		t.Fatalf("removed twice: %+v", removed)
	}
	if err := st.Update(ctx, func(tx keys.Tx) error { _, err := tx.DeleteMemberships(ctx, "", ""); return err }); err == nil {
		t.Fatal("DeleteMemberships of everything succeeded")
	}
	// DeleteOrg takes its memberships along; DeleteUser removes the user.
	update(t, st, func(tx keys.Tx) error { return tx.DeleteOrg(ctx, "acme") })
	if u, _ := st.GetUser(ctx, "alice"); len(u.Orgs) != 0 {
		t.Fatalf("memberships of a deleted org: %+v", u.Orgs)
	}
	update(t, st, func(tx keys.Tx) error { return tx.DeleteUser(ctx, "alice") })
	if _, err := st.GetUser(ctx, "alice"); !errors.Is(err, keys.ErrNotFound) {
		t.Fatalf("deleted user: %v", err)
	}
}

func testStoreOwnerCursors(t *testing.T, open Opener) {
	st := open(t)
	ids := []string{"b", "a", "c:1", "c", "B", "d@x"}
	update(t, st, func(tx keys.Tx) error {
		for _, id := range ids {
			if err := tx.PutUser(ctx, &keys.User{ID: id, Enabled: true}); err != nil {
				return err
			}
			if err := tx.PutOrg(ctx, &keys.Org{ID: id, Name: id}); err != nil {
				return err
			}
		}
		return nil
	})
	want := []string{"B", "a", "b", "c", "c:1", "d@x"} // byte order
	var gotU, gotO []string
	for cursor, pages := "", 0; ; pages++ {
		us, next, err := st.ListUsers(ctx, cursor, 4)
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range us {
			if u.Orgs != nil {
				t.Fatal("ListUsers fills Orgs")
			}
			gotU = append(gotU, u.ID)
		}
		if next == "" {
			break
		}
		cursor = next
		if pages > 3 {
			t.Fatal("ListUsers does not end")
		}
	}
	for cursor := ""; ; {
		os, next, err := st.ListOrgs(ctx, cursor, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range os {
			gotO = append(gotO, o.ID)
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if !reflect.DeepEqual(gotU, want) || !reflect.DeepEqual(gotO, want) {
		t.Fatalf("users %v, orgs %v; want %v", gotU, gotO, want)
	}
	// An exact page ends with an empty cursor or an empty last page, never
	// a repeat; an empty store returns an empty, non-nil page.
	us, next, _ := st.ListUsers(ctx, "d@x", 10)
	if us == nil || len(us) != 0 || next != "" {
		t.Fatalf("past the end: %v %q", us, next)
	}
}

func testStoreListKeys(t *testing.T, open Opener) {
	st := open(t)
	const now = 10_000
	var ks []*keys.Key
	for i := 1; i <= 7; i++ {
		k := newKey(kid(i), keys.TypeGeneric, "", "", int64(i))
		switch i {
		case 2:
			k.ArchivedAt = i64(5)
		case 3:
			k.ExpiresAt = i64(now) // expired at now
		case 4:
			k.ExpiresAt = i64(now + 1)
			k.DisplayName = "100% special_key"
		}
		ks = append(ks, k)
	}
	update(t, st, func(tx keys.Tx) error { return tx.InsertKeys(ctx, ks) })
	ids := func(f keys.KeyFilter) []string {
		t.Helper()
		var out []string
		for pages := 0; ; pages++ {
			page, next, err := st.ListKeys(ctx, f, now)
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range page {
				out = append(out, k.ID[31:])
			}
			if next == "" {
				return out
			}
			if pages > 10 {
				t.Fatal("ListKeys does not end")
			}
			f.Cursor = next
		}
	}
	for _, tt := range []struct {
		f    keys.KeyFilter
		want []string
	}{
		{keys.KeyFilter{Limit: 2}, []string{"7", "6", "5", "4", "1"}},
		{keys.KeyFilter{Status: "all", Limit: 3}, []string{"7", "6", "5", "4", "3", "2", "1"}},
		{keys.KeyFilter{Status: "archived"}, []string{"2"}},
		{keys.KeyFilter{Status: "expired"}, []string{"3"}},
		{keys.KeyFilter{Status: "all", Search: "100%"}, []string{"4"}},
		{keys.KeyFilter{Status: "all", Search: "l_k"}, []string{"4"}},
		{keys.KeyFilter{Status: "all", Search: "%"}, []string{"4"}},
		{keys.KeyFilter{Status: "all", Search: kid(6)}, []string{"6"}},
		{keys.KeyFilter{Status: "all", Search: "…0005"}, []string{"5"}},
	} {
		if got := ids(tt.f); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ListKeys(%+v) = %v, want %v", tt.f, got, tt.want)
		}
	}
	// Keys created after the first page do not appear on later pages.
	page, next, _ := st.ListKeys(ctx, keys.KeyFilter{Limit: 2}, now)
	update(t, st, func(tx keys.Tx) error {
		return tx.InsertKeys(ctx, []*keys.Key{newKey(kid(8), keys.TypeGeneric, "", "", 8)})
	})
	rest, _, _ := st.ListKeys(ctx, keys.KeyFilter{Limit: 10, Cursor: next}, now)
	if len(page) != 2 || len(rest) != 3 {
		t.Fatalf("pages after an insert: %d then %d keys", len(page), len(rest))
	}
	if _, _, err := st.ListKeys(ctx, keys.KeyFilter{Cursor: "bogus"}, now); keys.ErrorCode(err) != keys.EInvalid {
		t.Fatalf("bad cursor: %v", err)
	}
	// Owner and type filters.
	seedOwners(t, st)
	update(t, st, func(tx keys.Tx) error {
		return tx.InsertKeys(ctx, []*keys.Key{newKey(kid(9), keys.TypePersonal, "alice", "", 9), newKey(kid(10), keys.TypeOrg, "alice", "acme", 10)})
	})
	if got := ids(keys.KeyFilter{UserID: "alice"}); !reflect.DeepEqual(got, []string{"a", "9"}) {
		t.Errorf("by user: %v", got)
	}
	if got := ids(keys.KeyFilter{UserID: "alice", Type: keys.TypePersonal}); !reflect.DeepEqual(got, []string{"9"}) {
		t.Errorf("by user and type: %v", got)
	}
	if got := ids(keys.KeyFilter{OrgID: "acme"}); !reflect.DeepEqual(got, []string{"a"}) {
		t.Errorf("by org: %v", got)
	}
	// Counts.
	counts, err := st.CountKeys(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	if g := counts[keys.TypeGeneric]; g["active"] != 6 || g["expired"] != 1 || g["archived"] != 1 {
		t.Errorf("generic counts = %v", g)
	}
	if len(counts) != len(keys.Types) || counts[keys.TypeOrg]["active"] != 1 || counts[keys.TypePersonal]["expired"] != 0 {
		t.Errorf("counts = %v", counts)
	}
	if n, _ := st.CountImported(ctx); n != 0 {
		t.Errorf("CountImported = %d", n)
	}
	imp := newKey(kid(11), keys.TypeGeneric, "", "", 11)
	imp.Imported, imp.ArchivedAt = true, i64(1)
	update(t, st, func(tx keys.Tx) error { return tx.InsertKeys(ctx, []*keys.Key{imp}) })
	if n, _ := st.CountImported(ctx); n != 1 {
		t.Errorf("CountImported = %d, want 1 (archived ones count)", n)
	}
}

func testStoreAudit(t *testing.T, open Opener) {
	st := open(t)
	update(t, st, func(tx keys.Tx) error {
		for i := 1; i <= 5; i++ {
			ev := keys.AuditEvent{ID: 999, At: int64(i), Action: keys.ActionKeyCreated, Actor: "admin", KeyID: kid(i % 2), UserID: "u", Details: json.RawMessage(`{"i":` + fmt.Sprint(i) + `}`)}
			if i == 5 {
				ev.Action, ev.Details = keys.ActionKeyDeleted, nil
			}
			if err := tx.InsertAudit(ctx, ev); err != nil {
				return err
			}
		}
		return nil
	})
	all, err := st.ListAudit(ctx, keys.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 5 || all[0].At != 5 || all[4].At != 1 || all[0].ID <= all[1].ID || string(all[0].Details) != "{}" || string(all[4].Details) != `{"i":1}` {
		t.Fatalf("ListAudit = %+v", all)
	}
	page, _ := st.ListAudit(ctx, keys.AuditFilter{Before: all[1].ID, Limit: 2})
	if len(page) != 2 || page[0].ID != all[2].ID || page[1].ID != all[3].ID {
		t.Fatalf("Before page = %+v", page)
	}
	if evs, _ := st.ListAudit(ctx, keys.AuditFilter{KeyID: kid(1)}); len(evs) != 3 {
		t.Fatalf("by key: %d", len(evs))
	}
	if evs, _ := st.ListAudit(ctx, keys.AuditFilter{Action: keys.ActionKeyDeleted}); len(evs) != 1 || evs[0].At != 5 {
		t.Fatalf("by action: %+v", evs)
	}
	if evs, _ := st.ListAudit(ctx, keys.AuditFilter{OrgID: "none"}); evs == nil || len(evs) != 0 {
		t.Fatalf("no match: %#v", evs)
	}
}

func testStoreLinks(t *testing.T, open Opener) {
	st := open(t)
	h := keys.Hash("link-token")
	if err := st.CreatePortalLink(ctx, keys.PortalLink{Hash: h, UserID: "alice", OrgID: "acme", ExpiresAt: 100}); err != nil {
		t.Fatal(err)
	}
	if err := st.CreatePortalLink(ctx, keys.PortalLink{Hash: h, UserID: "x", ExpiresAt: 100}); !errors.Is(err, keys.ErrConflict) {
		t.Fatalf("duplicate link: %v", err)
	}
	// Peeking does not use it up.
	for range 2 {
		l, err := st.GetPortalLink(ctx, h, 99)
		if err != nil || l.UserID != "alice" || l.OrgID != "acme" || l.ExpiresAt != 100 {
			t.Fatalf("GetPortalLink = %+v, %v", l, err)
		}
	}
	if _, err := st.GetPortalLink(ctx, h, 100); !errors.Is(err, keys.ErrNotFound) {
		t.Fatalf("expired peek: %v", err)
	}
	// Of many concurrent takers, one gets it.
	var wins sync.WaitGroup
	var mu sync.Mutex
	got := 0
	for range 16 {
		wins.Add(1)
		go func() {
			defer wins.Done()
			l, err := st.TakePortalLink(ctx, h, 99)
			switch {
			case err == nil && l.UserID == "alice":
				mu.Lock()
				got++
				mu.Unlock()
			case !errors.Is(err, keys.ErrLinkUsed) || !errors.Is(err, keys.ErrNotFound):
				t.Errorf("TakePortalLink: %v, want ErrLinkUsed (an ErrNotFound)", err)
			}
		}()
	}
	wins.Wait()
	if got != 1 {
		t.Fatalf("%d takers got the link, want 1", got)
	}
	// A used link is told apart from an expired one, and from none.
	if _, err := st.TakePortalLink(ctx, h, 99); !errors.Is(err, keys.ErrLinkUsed) {
		t.Fatalf("second take: %v, want ErrLinkUsed", err)
	}
	if _, err := st.GetPortalLink(ctx, h, 0); !errors.Is(err, keys.ErrNotFound) {
		t.Fatalf("peek at a used link: %v, want ErrNotFound", err)
	}
	if _, err := st.TakePortalLink(ctx, keys.Hash("never made"), 0); !errors.Is(err, keys.ErrNotFound) || errors.Is(err, keys.ErrLinkUsed) || errors.Is(err, keys.ErrLinkExpired) {
		t.Fatalf("unknown link: %v, want plain ErrNotFound", err)
	}
	// An expired link is not given, and stays expired (not used).
	h2 := keys.Hash("expired")
	st.CreatePortalLink(ctx, keys.PortalLink{Hash: h2, UserID: "bob", ExpiresAt: 50})
	for range 2 {
		if _, err := st.TakePortalLink(ctx, h2, 50); !errors.Is(err, keys.ErrLinkExpired) || errors.Is(err, keys.ErrLinkUsed) {
			t.Fatalf("expired take: %v, want ErrLinkExpired", err)
		}
	}
	// Sweep removes links expired LinkMemory ago, used or not, only.
	h3, h4 := keys.Hash("old"), keys.Hash("new")
	st.CreatePortalLink(ctx, keys.PortalLink{Hash: h3, UserID: "bob", ExpiresAt: 10})
	st.CreatePortalLink(ctx, keys.PortalLink{Hash: h4, UserID: "bob", ExpiresAt: 30})
	if err := st.SweepSessions(ctx, 20+keys.LinkMemory); err != nil {
		t.Fatal(err)
	}
	if _, err := st.TakePortalLink(ctx, h3, 20); !errors.Is(err, keys.ErrNotFound) || errors.Is(err, keys.ErrLinkExpired) {
		t.Fatalf("swept link remains: %v", err)
	}
	if _, err := st.GetPortalLink(ctx, h4, 20); err != nil {
		t.Fatalf("live link swept: %v", err)
	}
	if err := st.SweepSessions(ctx, 100+keys.LinkMemory); err != nil {
		t.Fatal(err)
	}
	if _, err := st.TakePortalLink(ctx, h, 99); !errors.Is(err, keys.ErrNotFound) || errors.Is(err, keys.ErrLinkUsed) {
		t.Fatalf("used link after its memory: %v, want plain ErrNotFound", err)
	}
}

func testStoreSessions(t *testing.T, open Opener) {
	st := open(t)
	h := keys.Hash("session-token")
	s := keys.Session{Hash: h, Kind: keys.SessionPortal, UserID: "alice", OrgID: "acme", CSRF: "csrf-1", ExpiresAt: 100}
	if err := st.CreateSession(ctx, s); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateSession(ctx, s); !errors.Is(err, keys.ErrConflict) {
		t.Fatalf("duplicate session: %v", err)
	}
	got, err := st.GetSession(ctx, keys.SessionPortal, h, 99)
	if err != nil || !reflect.DeepEqual(*got, s) {
		t.Fatalf("GetSession = %+v, %v", got, err)
	}
	if _, err := st.GetSession(ctx, keys.SessionDashboard, h, 99); !errors.Is(err, keys.ErrNotFound) {
		t.Fatalf("session of another kind: %v", err)
	}
	if _, err := st.GetSession(ctx, keys.SessionPortal, h, 100); !errors.Is(err, keys.ErrNotFound) {
		t.Fatalf("expired session: %v", err)
	}
	if err := st.SetSessionFlash(ctx, h, "Deleted the key."); err != nil {
		t.Fatal(err)
	}
	if got, _ = st.GetSession(ctx, keys.SessionPortal, h, 99); got.Flash != "Deleted the key." {
		t.Fatalf("flash = %q", got.Flash)
	}
	st.SetSessionFlash(ctx, h, "")
	if got, _ = st.GetSession(ctx, keys.SessionPortal, h, 99); got.Flash != "" {
		t.Fatalf("flash not cleared: %q", got.Flash)
	}
	if err := st.SetSessionFlash(ctx, keys.Hash("gone"), "x"); err != nil {
		t.Fatalf("flash on a missing session: %v", err)
	}
	if err := st.DeleteSession(ctx, h); err != nil {
		t.Fatal(err)
	}
	if _, err := st.GetSession(ctx, keys.SessionPortal, h, 0); !errors.Is(err, keys.ErrNotFound) {
		t.Fatalf("deleted session: %v", err)
	}
	if err := st.DeleteSession(ctx, h); err != nil {
		t.Fatalf("deleting twice: %v", err)
	}
	// Sweep drops expired sessions of every kind.
	old, live := keys.Hash("old"), keys.Hash("live")
	st.CreateSession(ctx, keys.Session{Hash: old, Kind: keys.SessionDashboard, CSRF: "c", ExpiresAt: 10})
	st.CreateSession(ctx, keys.Session{Hash: live, Kind: keys.SessionDashboard, CSRF: "c", ExpiresAt: 30})
	if err := st.SweepSessions(ctx, 20); err != nil {
		t.Fatal(err)
	}
	if _, err := st.GetSession(ctx, keys.SessionDashboard, old, 0); !errors.Is(err, keys.ErrNotFound) {
		t.Fatal("expired session survived the sweep")
	}
	if _, err := st.GetSession(ctx, keys.SessionDashboard, live, 20); err != nil {
		t.Fatalf("live session swept: %v", err)
	}
}

// testStoreSerialisedUpdates checks that Update's read-modify-write is
// safe under concurrency: no increment is lost.
func testStoreSerialisedUpdates(t *testing.T, open Opener) {
	st := open(t)
	update(t, st, func(tx keys.Tx) error {
		return tx.PutUser(ctx, &keys.User{ID: "counter", Enabled: true, Metadata: json.RawMessage(`{"n":0}`)})
	})
	const workers, each = 8, 5
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				err := st.Update(ctx, func(tx keys.Tx) error {
					u, err := tx.GetUser(ctx, "counter")
					if err != nil {
						return err
					}
					var m struct{ N int }
					if err := json.Unmarshal(u.Metadata, &m); err != nil {
						return err
					}
					u.Metadata = json.RawMessage(fmt.Sprintf(`{"n":%d}`, m.N+1))
					return tx.PutUser(ctx, u)
				})
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	u, err := st.GetUser(ctx, "counter")
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf(`{"n":%d}`, workers*each); string(u.Metadata) != want {
		t.Fatalf("metadata = %s, want %s: an update was lost", u.Metadata, want)
	}
}

func testStorePing(t *testing.T, open Opener) {
	st := open(t)
	if err := st.Ping(ctx); err != nil {
		t.Fatalf("Ping on a fresh store: %v", err)
	}
}
