package postgres

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keygate/keygate/keys"
)

// twoNodes opens two stores on one database, as two keygate nodes do.
func twoNodes(t *testing.T) (*DB, *DB) {
	dsn := migrated(t)
	return open(t, dsn), open(t, dsn)
}

func insertKeys(t *testing.T, db *DB, ids ...string) {
	t.Helper()
	ctx := context.Background()
	var ks []*keys.Key
	for i, id := range ids {
		ks = append(ks, &keys.Key{ID: id, Type: keys.TypeGeneric, Display: "kg…" + id, CreatedAt: 1, Hash: [32]byte{byte(i), 7}})
	}
	if err := db.Update(ctx, func(tx keys.Tx) error { return tx.InsertKeys(ctx, ks) }); err != nil {
		t.Fatal(err)
	}
}

// TestNodesAddUsage: flushes from two nodes at once, each naming the same
// keys and minutes in different orders, add up exactly, never deadlock, and
// leave last_used_at at the latest minute however they interleave.
func TestNodesAddUsage(t *testing.T) {
	a, b := twoNodes(t)
	ctx := context.Background()
	ids := []string{"k1", "k2", "k3", "k4", "k5"}
	insertKeys(t, a, ids...)
	const writers, flushes = 8, 25
	base := int64(1_800_000_000 / 60 * 60)
	var wg sync.WaitGroup
	errs := make(chan error, writers*flushes)
	for w := range writers {
		db := a
		if w%2 == 1 {
			db = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for f := range flushes {
				var counts []keys.UsageCount
				for i := range ids {
					// Writers walk the keys in opposite orders and minutes back and forth.
					id := ids[i]
					if w%2 == 1 {
						id = ids[len(ids)-1-i]
					}
					counts = append(counts, keys.UsageCount{KeyID: id, Minute: base + int64((f*7+w)%10)*60, Allowed: 1, RateLimited: 1})
				}
				if err := db.AddUsage(ctx, counts); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for _, id := range ids {
		_, total, err := a.Usage(ctx, keys.UsageQuery{KeyID: id, From: base, To: base + 3600, Interval: "hour"})
		if err != nil {
			t.Fatal(err)
		}
		if want := int64(writers * flushes * 2); total != want {
			t.Errorf("%s: total %d, want %d", id, total, want)
		}
		k, err := b.GetKey(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if want := base + 9*60; k.LastUsedAt == nil || *k.LastUsedAt != want {
			t.Errorf("%s: last_used_at %v, want %d (the latest minute)", id, k.LastUsedAt, want)
		}
	}
}

// TestNodesTakePortalLink: many takers on two nodes, one link: one wins.
func TestNodesTakePortalLink(t *testing.T) {
	a, b := twoNodes(t)
	ctx := context.Background()
	h := [32]byte{1, 2, 3}
	if err := a.CreatePortalLink(ctx, keys.PortalLink{Hash: h, UserID: "u1", ExpiresAt: 2_000_000_000}); err != nil {
		t.Fatal(err)
	}
	var won, lost atomic.Int64
	var wg sync.WaitGroup
	for i := range 20 {
		db := a
		if i%2 == 1 {
			db = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := db.TakePortalLink(ctx, h, 1_900_000_000)
			switch {
			case err == nil:
				won.Add(1)
			case errors.Is(err, keys.ErrNotFound):
				lost.Add(1)
			default:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if won.Load() != 1 || lost.Load() != 19 {
		t.Errorf("won %d, lost %d; want 1 and 19", won.Load(), lost.Load())
	}
}

// TestNodesCompactUsage: both nodes rolling up at once count nothing twice
// and lose nothing.
func TestNodesCompactUsage(t *testing.T) {
	a, b := twoNodes(t)
	ctx := context.Background()
	insertKeys(t, a, "k1")
	now := time.Unix(1_800_000_000, 0)
	var counts []keys.UsageCount
	for m := range 300 { // five hours of minutes, ending two hours ago
		counts = append(counts, keys.UsageCount{KeyID: "k1", Minute: now.Add(-7*time.Hour).Unix() + int64(m)*60, Allowed: 1})
	}
	if err := a.AddUsage(ctx, counts); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for _, db := range []*DB{a, b, a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := db.CompactUsage(ctx, now, time.Hour, 30*24*time.Hour); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	_, total, err := b.Usage(ctx, keys.UsageQuery{KeyID: "k1", From: now.Add(-8 * time.Hour).Unix(), To: now.Unix(), Interval: "day"})
	if err != nil {
		t.Fatal(err)
	}
	if total != 300 {
		t.Errorf("total after concurrent compactions = %d, want 300", total)
	}
	var minutes int
	if err := a.pool.QueryRow(ctx, `SELECT COUNT(*) FROM usage_minute`).Scan(&minutes); err != nil || minutes != 0 {
		t.Errorf("minute buckets left after compaction: %d, %v; want 0 (all older than an hour)", minutes, err)
	}
}
