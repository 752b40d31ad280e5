package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/keys"
)

// The webhook outbox: deliveries written in a transaction, claimed by one
// sender at a time, and the expiry scheduler's verbs.

func delivery(n int, endpoint string, at time.Time) keys.Delivery {
	return keys.Delivery{ID: fmt.Sprintf("msg_%04d", n), Endpoint: endpoint, Type: "user.upserted",
		Payload: json.RawMessage(`{"type":"user.upserted","n":` + fmt.Sprint(n) + `}`), CreatedAt: at.Unix(),
		Status: keys.DeliveryPending, NextAt: at.UnixMilli()}
}

func testStoreOutbox(t *testing.T, open Opener) {
	st := open(t)
	t0 := time.Unix(1_800_000_000, 0)

	// A rolled-back transaction writes no delivery.
	errBoom := errors.New("boom")
	if err := st.Update(ctx, func(tx keys.Tx) error {
		if err := tx.InsertDeliveries(ctx, []keys.Delivery{delivery(0, "http://a", t0)}); err != nil {
			return err
		}
		return errBoom
	}); !errors.Is(err, errBoom) {
		t.Fatalf("Update = %v", err)
	}
	if ds, _, err := st.ListDeliveries(ctx, keys.DeliveryFilter{}); err != nil || len(ds) != 0 {
		t.Fatalf("after rollback: %v %v", ds, err)
	}

	update(t, st, func(tx keys.Tx) error {
		var ds []keys.Delivery
		for i := 1; i <= 5; i++ {
			ep := "http://a"
			if i%2 == 0 {
				ep = "http://b"
			}
			ds = append(ds, delivery(i, ep, t0))
		}
		return tx.InsertDeliveries(ctx, ds)
	})
	if err := st.Update(ctx, func(tx keys.Tx) error { return tx.InsertDeliveries(ctx, []keys.Delivery{delivery(1, "http://a", t0)}) }); !errors.Is(err, keys.ErrConflict) {
		t.Errorf("duplicate id: %v, want ErrConflict", err)
	}

	// Not due yet: nothing to claim.
	if ds, err := st.ClaimDeliveries(ctx, t0.Add(-time.Second), time.Minute, 10); err != nil || len(ds) != 0 {
		t.Fatalf("claim before due: %v %v", ds, err)
	}
	got, err := st.ClaimDeliveries(ctx, t0, time.Minute, 3)
	if err != nil || len(got) != 3 || got[0].ID != "msg_0001" || got[1].ID != "msg_0002" || got[2].ID != "msg_0003" {
		t.Fatalf("claim = %v %v, want the 3 oldest in order", got, err)
	}
	if string(got[0].Payload) != `{"type":"user.upserted","n":1}` || got[0].Endpoint != "http://a" || got[0].Status != keys.DeliveryPending {
		t.Errorf("claimed %+v", got[0])
	}
	// Leased: another claim gets the rest only, until the lease runs out.
	rest, err := st.ClaimDeliveries(ctx, t0, time.Minute, 10)
	if err != nil || len(rest) != 2 || rest[0].ID != "msg_0004" {
		t.Fatalf("second claim = %v %v", rest, err)
	}
	if again, _ := st.ClaimDeliveries(ctx, t0.Add(59*time.Second), time.Minute, 10); len(again) != 0 {
		t.Fatalf("claimed while leased: %v", again)
	}
	if again, _ := st.ClaimDeliveries(ctx, t0.Add(61*time.Second), time.Minute, 10); len(again) != 5 {
		t.Fatalf("after the leases ran out: %d claimed, want 5", len(again))
	}

	// Outcomes.
	at := t0.Unix() + 62
	d1 := got[0]
	d1.Status, d1.Attempts, d1.DeliveredAt = keys.DeliveryDelivered, 1, &at
	d2 := got[1]
	d2.Attempts, d2.NextAt, d2.LastError = 1, t0.Add(10*time.Minute).UnixMilli(), "endpoint answered 500"
	d3 := got[2]
	d3.Status, d3.Attempts, d3.LastError = keys.DeliveryFailed, 7, "timeout"
	for _, d := range []*keys.Delivery{&d1, &d2, &d3} {
		if err := st.FinishDelivery(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	ds, _, err := st.ListDeliveries(ctx, keys.DeliveryFilter{Status: keys.DeliveryPending})
	if err != nil || len(ds) != 3 || ds[0].ID != "msg_0005" || ds[2].ID != "msg_0002" || ds[2].LastError != "endpoint answered 500" || ds[2].Attempts != 1 {
		t.Fatalf("pending = %+v %v", ds, err)
	}
	if ds, _, _ := st.ListDeliveries(ctx, keys.DeliveryFilter{Status: keys.DeliveryDelivered}); len(ds) != 1 || *ds[0].DeliveredAt != at {
		t.Errorf("delivered = %+v", ds)
	}
	if ds, _, _ := st.ListDeliveries(ctx, keys.DeliveryFilter{Endpoint: "http://b"}); len(ds) != 2 || ds[0].ID != "msg_0004" {
		t.Errorf("endpoint b = %+v", ds)
	}
	// Paging.
	var ids []string
	for cursor := ""; ; {
		page, next, err := st.ListDeliveries(ctx, keys.DeliveryFilter{Limit: 2, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range page {
			ids = append(ids, d.ID)
		}
		if cursor = next; cursor == "" {
			break
		}
	}
	if fmt.Sprint(ids) != "[msg_0005 msg_0004 msg_0003 msg_0002 msg_0001]" {
		t.Errorf("paged = %v", ids)
	}
	var ke *keys.Error
	if _, _, err := st.ListDeliveries(ctx, keys.DeliveryFilter{Cursor: "nope"}); !errors.As(err, &ke) || ke.Code != keys.EInvalid {
		t.Errorf("bad cursor: %v", err)
	}
	stats, err := st.DeliveryStats(ctx)
	if err != nil || stats.Count[keys.DeliveryPending] != 3 || stats.Count[keys.DeliveryDelivered] != 1 || stats.Count[keys.DeliveryFailed] != 1 || stats.OldestPending != t0.Unix() {
		t.Errorf("stats = %+v %v", stats, err)
	}
	// Retry: the failed one is pending again, due now, same id and attempts.
	r, err := st.RetryDelivery(ctx, "msg_0003", t0.Add(time.Hour))
	if err != nil || r.Status != keys.DeliveryPending || r.Attempts != 7 || r.NextAt != t0.Add(time.Hour).UnixMilli() {
		t.Errorf("retry = %+v %v", r, err)
	}
	if _, err := st.RetryDelivery(ctx, "msg_nope", t0); !errors.Is(err, keys.ErrNotFound) {
		t.Errorf("retry unknown: %v", err)
	}
}

// testStoreClaimConcurrent: of many concurrent claims, each delivery goes
// to exactly one.
func testStoreClaimConcurrent(t *testing.T, open Opener) {
	st := open(t)
	t0 := time.Unix(1_800_000_000, 0)
	const n = 60
	update(t, st, func(tx keys.Tx) error {
		var ds []keys.Delivery
		for i := range n {
			ds = append(ds, delivery(i, "http://a", t0))
		}
		return tx.InsertDeliveries(ctx, ds)
	})
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 10 {
				ds, err := st.ClaimDeliveries(context.Background(), t0, time.Hour, 3)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				for _, d := range ds {
					seen[d.ID]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(seen) != n {
		t.Errorf("%d of %d deliveries claimed", len(seen), n)
	}
	for id, k := range seen {
		if k != 1 {
			t.Errorf("%s claimed %d times", id, k)
		}
	}
}

// testStoreExpiryVerbs: KeysExpiring and NextExpiry read unarchived keys
// by expires_at; marks persist.
func testStoreExpiryVerbs(t *testing.T, open Opener) {
	st := open(t)
	update(t, st, func(tx keys.Tx) error {
		ks := []*keys.Key{newKey(kid(1), keys.TypeGeneric, "", "", 1), newKey(kid(2), keys.TypeGeneric, "", "", 2),
			newKey(kid(3), keys.TypeGeneric, "", "", 3), newKey(kid(4), keys.TypeGeneric, "", "", 4)}
		ks[0].ExpiresAt, ks[1].ExpiresAt, ks[2].ExpiresAt = i64(200), i64(100), i64(150)
		ks[2].ArchivedAt = i64(5)
		return tx.InsertKeys(ctx, ks)
	})
	update(t, st, func(tx keys.Tx) error {
		ks, err := tx.KeysExpiring(ctx, 100, 200)
		if err != nil || len(ks) != 1 || ks[0].ID != kid(1) {
			t.Errorf("KeysExpiring(100, 200] = %v %v", ks, err)
		}
		ks, err = tx.KeysExpiring(ctx, 0, 1000)
		if err != nil || len(ks) != 2 || ks[0].ID != kid(2) || ks[1].ID != kid(1) {
			t.Errorf("KeysExpiring(0, 1000] = %v %v", ks, err)
		}
		if m, err := tx.Mark(ctx, "expired"); err != nil || m != 0 {
			t.Errorf("unset mark = %d %v", m, err)
		}
		if err := tx.SetMark(ctx, "expired", 42); err != nil {
			return err
		}
		return tx.SetMark(ctx, "expired", 43)
	})
	update(t, st, func(tx keys.Tx) error {
		if m, err := tx.Mark(ctx, "expired"); err != nil || m != 43 {
			t.Errorf("mark = %d %v", m, err)
		}
		return nil
	})
	for _, tt := range []struct {
		after, want int64
		ok          bool
	}{{0, 100, true}, {100, 200, true}, {120, 200, true}, {200, 0, false}} {
		at, ok, err := st.NextExpiry(ctx, tt.after)
		if err != nil || at != tt.want || ok != tt.ok {
			t.Errorf("NextExpiry(%d) = %d %v %v, want %d %v", tt.after, at, ok, err, tt.want, tt.ok)
		}
	}
}

// recordingSink is a keys.EventSink that writes one delivery per event.
type recordingSink struct{}

func (recordingSink) Enqueue(ctx context.Context, tx keys.Tx, events []keys.AuditEvent) error {
	var ds []keys.Delivery
	for i, ev := range events {
		d := delivery(i, "http://a", time.Unix(ev.At, 0))
		d.ID, d.Type = fmt.Sprintf("msg_%s_%d_%d", ev.Action, ev.At, time.Now().UnixNano()), ev.Action
		ds = append(ds, d)
	}
	return tx.InsertDeliveries(ctx, ds)
}

// testServiceEventSink: every audit event of a Service change reaches the
// event sink in its transaction; a change that fails writes none.
func testServiceEventSink(t *testing.T, open Opener) {
	h := newHarness(t, open, func(o *keys.Options) { o.Events = recordingSink{} })
	h.user("alice")
	k, _ := h.key(keys.CreateKeyInput{UserID: "alice"})
	if _, err := h.svc.ArchiveKey(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := h.svc.UpdateKey(ctx, "nope", keys.KeyPatch{}); err == nil {
		t.Fatal("update of a missing key succeeded")
	}
	ds, _, err := h.store.ListDeliveries(ctx, keys.DeliveryFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, d := range ds {
		types = append(types, d.Type)
	}
	audit, _ := h.store.ListAudit(ctx, keys.AuditFilter{})
	if len(ds) != len(audit) || fmt.Sprint(types) != "[api_key.archived api_key.created user.upserted]" {
		t.Errorf("deliveries %v for %d audit events", types, len(audit))
	}
}
