package storetest

import (
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/keys"
)

// day0 is a made-up day start (2024-01-01 00:00 UTC).
const day0 = int64(1704067200)

func testStoreUsage(t *testing.T, open Opener) {
	st := open(t)
	seedOwners(t, st)
	update(t, st, func(tx keys.Tx) error {
		return tx.InsertKeys(ctx, []*keys.Key{
			newKey(kid(1), keys.TypePersonal, "alice", "", 1),
			newKey(kid(2), keys.TypePersonal, "bob", "", 2),
			newKey(kid(3), keys.TypeOrg, "bob", "acme", 3),
			newKey(kid(4), keys.TypeGeneric, "", "", 4),
		})
	})
	add := func(counts ...keys.UsageCount) {
		t.Helper()
		if err := st.AddUsage(ctx, counts); err != nil {
			t.Fatal(err)
		}
	}
	// Additive, aligned to the minute; unknown keys and empty counts dropped.
	add(keys.UsageCount{KeyID: kid(1), Minute: day0 + 5, Allowed: 2},
		keys.UsageCount{KeyID: kid(1), Minute: day0 + 59, Allowed: 1, RateLimited: 1},
		keys.UsageCount{KeyID: kid(99), Minute: day0, Allowed: 7},
		keys.UsageCount{KeyID: kid(2), Minute: day0 + 3600})
	add(keys.UsageCount{KeyID: kid(1), Minute: day0 + 120, Allowed: 4})
	pts, total, err := st.Usage(ctx, keys.UsageQuery{KeyID: kid(1), From: day0, To: day0 + 3600, Interval: "minute"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []keys.UsagePoint{{T: day0, Allowed: 3, RateLimited: 1}, {T: day0 + 120, Allowed: 4}}; !reflect.DeepEqual(pts, want) || total != 8 {
		t.Fatalf("minute points = %+v total %d", pts, total)
	}
	if k, _ := st.GetKey(ctx, kid(1)); k.LastUsedAt == nil || *k.LastUsedAt != day0+120 {
		t.Fatalf("last_used_at = %v", k.LastUsedAt)
	}
	if k, _ := st.GetKey(ctx, kid(2)); k.LastUsedAt != nil {
		t.Fatal("an empty count set last_used_at")
	}
	// last_used_at never goes back.
	add(keys.UsageCount{KeyID: kid(1), Minute: day0, Allowed: 1})
	if k, _ := st.GetKey(ctx, kid(1)); *k.LastUsedAt != day0+120 {
		t.Fatalf("last_used_at went back to %d", *k.LastUsedAt)
	}
	// Several writers at once add up (several nodes flushing).
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 5 {
				if err := st.AddUsage(ctx, []keys.UsageCount{{KeyID: kid(4), Minute: day0 + 7200, Allowed: 1}}); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if _, total, _ := st.Usage(ctx, keys.UsageQuery{KeyID: kid(4), From: day0, To: day0 + 86400, Interval: "hour"}); total != 20 {
		t.Fatalf("concurrent adds: total %d, want 20", total)
	}

	// Owners' series and the all-keys overview.
	add(keys.UsageCount{KeyID: kid(2), Minute: day0 + 3600, Allowed: 10},
		keys.UsageCount{KeyID: kid(3), Minute: day0 + 3660, RateLimited: 5})
	for _, tt := range []struct {
		q     keys.UsageQuery
		total int64
	}{
		{keys.UsageQuery{UserID: "bob", From: day0, To: day0 + 86400, Interval: "hour"}, 10}, // personal keys only
		{keys.UsageQuery{OrgID: "acme", From: day0, To: day0 + 86400, Interval: "day"}, 5},
		{keys.UsageQuery{From: day0, To: day0 + 86400, Interval: "day"}, 9 + 20 + 10 + 5},
		{keys.UsageQuery{KeyID: kid(1), From: day0 + 60, To: day0 + 61, Interval: "minute"}, 0},
		{keys.UsageQuery{KeyID: kid(1), From: day0 + 1, To: day0 + 61, Interval: "minute"}, 5}, // partial first bucket counted whole
	} {
		if _, total, err := st.Usage(ctx, tt.q); err != nil || total != tt.total {
			t.Errorf("Usage(%+v) = %d, %v; want %d", tt.q, total, err, tt.total)
		}
	}
	for _, q := range []keys.UsageQuery{
		{KeyID: kid(1), UserID: "bob", From: day0, To: day0 + 60, Interval: "minute"},
		{KeyID: kid(1), From: day0, To: day0 + 60, Interval: "week"},
	} {
		if _, _, err := st.Usage(ctx, q); keys.ErrorCode(err) != keys.EInvalid {
			t.Errorf("Usage(%+v) = %v, want EInvalid", q, err)
		}
	}
	if pts, _, _ := st.Usage(ctx, keys.UsageQuery{KeyID: kid(1), From: day0 + 86400, To: day0, Interval: "hour"}); pts == nil || len(pts) != 0 {
		t.Fatalf("empty range: %#v", pts)
	}

	// Top lists.
	top, err := st.TopKeys(ctx, day0, 2)
	if err != nil {
		t.Fatal(err)
	}
	if want := []keys.UsageTop{{ID: kid(4), Allowed: 20}, {ID: kid(2), Allowed: 10}}; !reflect.DeepEqual(top, want) {
		t.Fatalf("TopKeys = %+v", top)
	}
	if top, _ := st.TopUsers(ctx, day0, 10); !reflect.DeepEqual(top, []keys.UsageTop{{ID: "bob", Allowed: 10}, {ID: "alice", Allowed: 8, RateLimited: 1}}) {
		t.Fatalf("TopUsers = %+v", top)
	}
	if top, _ := st.TopOrgs(ctx, day0, 10); !reflect.DeepEqual(top, []keys.UsageTop{{ID: "acme", RateLimited: 5}}) {
		t.Fatalf("TopOrgs = %+v", top)
	}
	if top, _ := st.TopKeys(ctx, day0, 0); top == nil || len(top) != 0 {
		t.Fatalf("TopKeys(0) = %#v", top)
	}

	// Compaction moves whole old hours into hour buckets: totals stay, and
	// running it again (or from two nodes) changes nothing.
	now := time.Unix(day0+3*86400, 0)
	before, _, _ := st.Usage(ctx, keys.UsageQuery{From: day0, To: day0 + 86400, Interval: "hour"})
	var cw sync.WaitGroup
	for range 2 {
		cw.Add(1)
		go func() {
			defer cw.Done()
			if err := st.CompactUsage(ctx, now, 24*time.Hour, 30*24*time.Hour); err != nil {
				t.Error(err)
			}
		}()
	}
	cw.Wait()
	after, _, _ := st.Usage(ctx, keys.UsageQuery{From: day0, To: day0 + 86400, Interval: "hour"})
	if !reflect.DeepEqual(before, after) {
		t.Fatalf("compaction changed the hourly series:\n%+v\n%+v", before, after)
	}
	if pts, _, _ := st.Usage(ctx, keys.UsageQuery{KeyID: kid(1), From: day0, To: day0 + 3600, Interval: "minute"}); len(pts) != 0 {
		t.Fatalf("minutes kept past retention: %+v", pts)
	}
	// Past retention, hours go too.
	if err := st.CompactUsage(ctx, time.Unix(day0+40*86400, 0), 24*time.Hour, 30*24*time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, total, _ := st.Usage(ctx, keys.UsageQuery{From: day0, To: day0 + 86400, Interval: "day"}); total != 0 {
		t.Fatalf("usage past retention: %d", total)
	}
	// A key made mid-minute and used at once: its minute bucket starts
	// before it existed, but last_used_at is never earlier than created_at.
	update(t, st, func(tx keys.Tx) error {
		return tx.InsertKeys(ctx, []*keys.Key{newKey(kid(5), keys.TypeGeneric, "", "", day0+150)})
	})
	add(keys.UsageCount{KeyID: kid(5), Minute: day0 + 120, Allowed: 1})
	if k, _ := st.GetKey(ctx, kid(5)); k.LastUsedAt == nil || *k.LastUsedAt != day0+150 {
		t.Fatalf("last_used_at of a key created at +150 used in minute +120 = %v, want %d (created_at)", k.LastUsedAt, day0+150)
	}
}
