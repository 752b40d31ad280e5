package dashboard

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/keygate/keygate/keys"
)

func TestDashWebhooks(t *testing.T) {
	e := newDashEnv(t)
	c, _ := e.login()
	if r := c.get("/webhooks"); r.status != http.StatusOK || !strings.Contains(r.body, "No deliveries") {
		t.Fatalf("empty page: %d\n%s", r.status, r.body)
	}
	now := e.clock.Now()
	err := e.store.Update(context.Background(), func(tx keys.Tx) error {
		return tx.InsertDeliveries(context.Background(), []keys.Delivery{
			{ID: "msg_one", Endpoint: "http://127.0.0.1:1/in", Type: "api_key.created", Payload: []byte(`{}`), CreatedAt: now.Unix(), NextAt: now.UnixMilli()},
			{ID: "msg_two", Endpoint: "http://127.0.0.1:1/in", Type: "user.<b>", Payload: []byte(`{}`), CreatedAt: now.Unix(), NextAt: now.UnixMilli()},
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	ds, _ := e.store.ClaimDeliveries(context.Background(), now, 0, 1)
	ds[0].Status, ds[0].Attempts, ds[0].LastError = keys.DeliveryFailed, 9, "endpoint answered 503 <Service Unavailable>"
	if err := e.store.FinishDelivery(context.Background(), &ds[0]); err != nil {
		t.Fatal(err)
	}
	r := c.get("/webhooks")
	for _, want := range []string{"msg_one", "msg_two", "api_key.created", "user.&lt;b&gt;", "failed", "<td>9</td>",
		"endpoint answered 503 &lt;Service Unavailable&gt;", `action="/webhooks/msg_one/retry"`, `aria-current="page">Webhooks`} {
		if !strings.Contains(r.body, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	if r := c.get("/webhooks?status=failed"); !strings.Contains(r.body, "msg_one") || strings.Contains(r.body, "msg_two") {
		t.Errorf("failed filter:\n%s", r.body)
	}
	if r := c.get("/webhooks?status=nope"); r.status != http.StatusBadRequest {
		t.Errorf("bad status: %d", r.status)
	}
	r = c.post("/webhooks/msg_one/retry", nil)
	if r.status != http.StatusSeeOther {
		t.Fatalf("retry: %d\n%s", r.status, r.body)
	}
	if r := c.get("/webhooks?status=pending"); !strings.Contains(r.body, "msg_one") || !strings.Contains(r.body, "same webhook-id") {
		t.Errorf("after retry:\n%s", r.body)
	}
	if r := c.post("/webhooks/msg_nope/retry", nil); r.status != http.StatusNotFound {
		t.Errorf("retry unknown: %d", r.status)
	}
}
