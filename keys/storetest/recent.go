package storetest

import (
	"reflect"
	"testing"
	"time"

	"github.com/keygate/keygate/keys"
)

// testStoreRecentIdentities: the cache warm-up read. Unarchived keys that
// have been used, the most recently used first (ties newest first), cut at
// limit; each identity exactly what LookupHash returns.
func testStoreRecentIdentities(t *testing.T, open Opener) {
	st := open(t)
	seedOwners(t, st)
	// Owners with every optional field, so that a column missed by the bulk
	// read shows up as a difference from LookupHash.
	update(t, st, func(tx keys.Tx) error {
		if err := tx.PutUser(ctx, &keys.User{ID: "carol", Email: "carol@example.com", Enabled: false, Metadata: []byte(`{"plan":"pro"}`),
			RateLimit: &keys.RateLimit{Limit: 5, Window: time.Minute}, Quota: &keys.Quota{Limit: 100, Period: keys.PeriodDay}, CreatedAt: 1, UpdatedAt: 2}); err != nil {
			return err
		}
		return tx.PutOrg(ctx, &keys.Org{ID: "gamma", Name: "Org gamma", Metadata: []byte(`{"tier":1}`),
			RateLimit: &keys.RateLimit{Limit: 50, Window: time.Hour}, Quota: &keys.Quota{Limit: 7, Period: keys.PeriodDay}, CreatedAt: 3, UpdatedAt: 4})
	})
	personal := newKey(kid(1), keys.TypePersonal, "alice", "", 10)
	org := newKey(kid(2), keys.TypeOrg, "bob", "acme", 20)
	generic := newKey(kid(3), keys.TypeGeneric, "", "", 30)
	generic.Quota = &keys.Quota{Limit: 3, Period: keys.PeriodDay}
	archived := newKey(kid(4), keys.TypePersonal, "alice", "", 40)
	carol := newKey(kid(5), keys.TypePersonal, "carol", "", 50) // blocked owner: included, no rule applies
	gamma := newKey(kid(6), keys.TypeOrg, "alice", "gamma", 60) // creator not a member
	expired := newKey(kid(7), keys.TypeGeneric, "", "", 70)
	expired.ExpiresAt = i64(75)
	gone := newKey(kid(8), keys.TypeOrg, "", "beta", 80) // org deleted below
	deleted := newKey(kid(9), keys.TypeGeneric, "", "", 90)
	update(t, st, func(tx keys.Tx) error {
		return tx.InsertKeys(ctx, []*keys.Key{personal, org, generic, archived, carol, gamma, expired, gone, deleted})
	})
	// personal and org used in the same minute (the newer, org, comes
	// first), generic later, then carol's, gamma's, the expired and gone
	// keys' once each; the archived and deleted keys latest of all.
	err := st.AddUsage(ctx, []keys.UsageCount{
		{KeyID: personal.ID, Minute: 6000, Allowed: 1},
		{KeyID: org.ID, Minute: 6000, Allowed: 1},
		{KeyID: generic.ID, Minute: 12000, Allowed: 1},
		{KeyID: carol.ID, Minute: 600, Allowed: 1},
		{KeyID: gamma.ID, Minute: 1200, Allowed: 1},
		{KeyID: expired.ID, Minute: 1800, Allowed: 1},
		{KeyID: gone.ID, Minute: 2400, Allowed: 1},
		{KeyID: archived.ID, Minute: 18000, Allowed: 1},
		{KeyID: deleted.ID, Minute: 18000, Allowed: 1},
	})
	if err != nil {
		t.Fatal(err)
	}
	update(t, st, func(tx keys.Tx) error {
		if _, err := tx.ArchiveKeys(ctx, keys.KeySelector{ID: archived.ID}, 100); err != nil {
			return err
		}
		if err := tx.DeleteKey(ctx, deleted.ID); err != nil {
			return err
		}
		return tx.DeleteOrg(ctx, "beta")
	})
	// A key never used is left out, however new.
	update(t, st, func(tx keys.Tx) error {
		return tx.InsertKeys(ctx, []*keys.Key{newKey(kid(10), keys.TypeGeneric, "", "", 200)})
	})
	want := []string{generic.ID, org.ID, personal.ID, gone.ID, expired.ID, gamma.ID, carol.ID}

	for _, tc := range []struct {
		limit int
		want  []string
	}{
		{-1, nil},
		{0, nil},
		{1, want[:1]},
		{3, want[:3]},
		{len(want), want}, // every unarchived key used
		{1000, want},      // fewer keys than the limit
	} {
		got, err := st.RecentIdentities(ctx, tc.limit)
		if err != nil {
			t.Fatalf("RecentIdentities(%d): %v", tc.limit, err)
		}
		if got == nil {
			t.Fatalf("RecentIdentities(%d) = nil, want non-nil", tc.limit)
		}
		ids := make([]string, 0, len(got))
		for _, id := range got {
			ids = append(ids, id.Key.ID)
		}
		if len(ids) != len(tc.want) || len(ids) > 0 && !reflect.DeepEqual(ids, tc.want) {
			t.Errorf("RecentIdentities(%d) = %v, want %v", tc.limit, ids, tc.want)
		}
	}

	// Each identity is exactly what a lookup of its hash returns: the cache
	// warmed from it must hold what a miss would have loaded.
	got, err := st.RecentIdentities(ctx, 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range got {
		one, err := st.LookupHash(ctx, id.Key.Hash)
		if err != nil {
			t.Fatalf("LookupHash(%s): %v", id.Key.ID, err)
		}
		if !reflect.DeepEqual(id, one) {
			t.Errorf("RecentIdentities has %s as\n%+v\nLookupHash returns\n%+v", id.Key.ID, id, one)
		}
	}
	// The owner data really came along (so the comparison above proves something).
	byID := map[string]*keys.Identity{}
	for _, id := range got {
		byID[id.Key.ID] = id
	}
	if id := byID[carol.ID]; id.User == nil || id.User.RateLimit == nil || id.User.Quota == nil || id.User.Enabled {
		t.Errorf("carol's key: %+v, want her (blocked) user with rate limit and quota", id)
	}
	if id := byID[org.ID]; id.Org == nil || id.Org.Name != "Org acme" || id.User == nil || id.Role != "Admin" {
		t.Errorf("org key: %+v, want org acme, creator bob, role Admin", id)
	}
	if id := byID[gamma.ID]; id.Org == nil || id.Org.RateLimit == nil || id.Org.Quota == nil || id.Role != "" {
		t.Errorf("gamma key: %+v, want org gamma with limit and quota, no role", id)
	}
	if id := byID[gone.ID]; id.Org != nil {
		t.Errorf("key of deleted org: %+v, want no org", id)
	}
	if id := byID[generic.ID]; id.Key.Quota == nil || id.Key.LastUsedAt == nil || *id.Key.LastUsedAt != 12000 {
		t.Errorf("generic key: %+v, want its quota and last use at 12000", id.Key)
	}
}
