package webhooks

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keygate/keygate/keys"
)

// TestSenderSchedule drives a Sender with an injected clock against a
// receiver that keeps failing: the waits follow retry_delays (the last one
// repeating), the webhook-id never changes, and past max_age the delivery
// is failed.
func TestSenderSchedule(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	var status atomic.Int32
	status.Store(http.StatusInternalServerError)
	var ids []string
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ids = append(ids, r.Header.Get("webhook-id"))
		if s := status.Load(); s == http.StatusFound {
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
			return
		}
		w.WriteHeader(int(status.Load()))
	}))
	defer rcv.Close()
	clk := &clock{t: time.Unix(1_000_000, 0)}
	ep := Endpoint{URL: rcv.URL, Secret: []byte("0123456789abcdef01234567")}
	ob := NewOutbox([]Endpoint{ep}, clk.Now)
	if err := ob.Send(ctx, st, "quota.exhausted", map[string]string{"key_id": "k"}); err != nil {
		t.Fatal(err)
	}
	var outcomes []string
	s := NewSender(SenderOptions{Store: st, Endpoints: []Endpoint{ep}, Now: clk.Now, MaxAge: 3 * time.Hour,
		RetryDelays: []time.Duration{5 * time.Second, time.Minute, time.Hour},
		OnOutcome:   func(o string) { outcomes = append(outcomes, o) }})
	get := func() keys.Delivery {
		ds, _, err := st.ListDeliveries(ctx, keys.DeliveryFilter{})
		if err != nil || len(ds) != 1 {
			t.Fatalf("deliveries %v %v", ds, err)
		}
		return ds[0]
	}
	start := clk.Now()
	for i, wait := range []time.Duration{5 * time.Second, time.Minute, time.Hour, time.Hour} {
		if n, err := s.RunOnce(ctx); err != nil || n != 1 {
			t.Fatalf("attempt %d: claimed %d, %v", i+1, n, err)
		}
		d := get()
		if d.Status != keys.DeliveryPending || d.Attempts != i+1 || d.NextAt != clk.Now().Add(wait).UnixMilli() || d.LastError != "endpoint answered 500 Internal Server Error" {
			t.Fatalf("after attempt %d: %+v", i+1, d)
		}
		clk.Set(clk.Now().Add(wait - time.Second))
		if n, _ := s.RunOnce(ctx); n != 0 {
			t.Fatalf("attempt %d: sent again before its time", i+1)
		}
		clk.Set(clk.Now().Add(time.Second))
	}
	// now start+2h1m5s: the next wait (1h) would end past max_age (3h).
	if clk.Now().Sub(start) != 2*time.Hour+time.Minute+5*time.Second {
		t.Fatalf("clock at %v", clk.Now().Sub(start))
	}
	s.RunOnce(ctx)
	if d := get(); d.Status != keys.DeliveryFailed || d.Attempts != 5 {
		t.Fatalf("past max_age: %+v", d)
	}
	for _, id := range ids {
		if id != ids[0] {
			t.Fatalf("webhook-ids %v", ids)
		}
	}
	if len(ids) != 5 || len(outcomes) != 5 || outcomes[3] != OutcomeRetry || outcomes[4] != OutcomeFailed {
		t.Errorf("%d requests, outcomes %v", len(ids), outcomes)
	}

	// Retried by hand past max_age: one attempt. A redirect is not a
	// success (failed again); a 2xx is.
	if _, err := st.RetryDelivery(ctx, ids[0], clk.Now()); err != nil {
		t.Fatal(err)
	}
	status.Store(http.StatusFound)
	s.RunOnce(ctx)
	if d := get(); d.Status != keys.DeliveryFailed || d.LastError != "endpoint answered 302 Found" {
		t.Fatalf("after a redirect: %+v", d)
	}
	if _, err := st.RetryDelivery(ctx, ids[0], clk.Now()); err != nil {
		t.Fatal(err)
	}
	status.Store(http.StatusAccepted)
	s.RunOnce(ctx)
	if d := get(); d.Status != keys.DeliveryDelivered || d.DeliveredAt == nil || *d.DeliveredAt != clk.Now().Unix() || d.LastError != "" {
		t.Fatalf("after a 202: %+v", d)
	}

	// An endpoint no longer configured: failed at once, nothing sent.
	other := Endpoint{URL: "http://127.0.0.1:1/gone", Secret: ep.Secret}
	if err := NewOutbox([]Endpoint{other}, clk.Now).Send(ctx, st, "quota.exhausted", nil); err != nil {
		t.Fatal(err)
	}
	s.RunOnce(ctx)
	ds, _, _ := st.ListDeliveries(ctx, keys.DeliveryFilter{Endpoint: other.URL})
	if len(ds) != 1 || ds[0].Status != keys.DeliveryFailed || ds[0].LastError != "endpoint http://127.0.0.1:1/gone is no longer configured" {
		t.Errorf("removed endpoint: %+v", ds)
	}
}
