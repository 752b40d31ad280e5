package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// testWebhookSecret is a Standard Webhooks secret: whsec_ and base64 of 32 bytes.
const testWebhookSecret = "whsec_dGVzdC13ZWJob29rLXNlY3JldC0wMTIzNDU2Nzg5YWI="

// hook is one request a receiver got.
type hook struct {
	ID, Timestamp, Signature string
	Body                     []byte
	Type                     string
	Data                     map[string]any
	At                       time.Time
}

// receiver is a webhook endpoint on 127.0.0.1 that records every request
// and answers with what fail decides (nil: 204).
type receiver struct {
	*httptest.Server
	mu   sync.Mutex
	got  []hook
	fail func(h hook, nth int) int // status for the nth (from 1) request with h.ID; 0 = 204
}

func newReceiver(t *testing.T) *receiver {
	t.Helper()
	r := &receiver{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		h := hook{ID: req.Header.Get("webhook-id"), Timestamp: req.Header.Get("webhook-timestamp"),
			Signature: req.Header.Get("webhook-signature"), Body: body, At: time.Now()}
		var p struct {
			Type string         `json:"type"`
			Data map[string]any `json:"data"`
		}
		json.Unmarshal(body, &p)
		h.Type, h.Data = p.Type, p.Data
		r.mu.Lock()
		r.got = append(r.got, h)
		nth := 0
		for _, g := range r.got {
			if g.ID == h.ID {
				nth++
			}
		}
		fail := r.fail
		r.mu.Unlock()
		if fail != nil {
			if code := fail(h, nth); code != 0 {
				w.WriteHeader(code)
				return
			}
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) hooks() []hook {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]hook(nil), r.got...)
}

// ofType returns the hooks of type typ.
func (r *receiver) ofType(typ string) []hook {
	var out []hook
	for _, h := range r.hooks() {
		if h.Type == typ {
			out = append(out, h)
		}
	}
	return out
}

// verifyStandardWebhook checks a request as the Standard Webhooks
// specification describes, written from it (not with keygate's signer):
// the secret after "whsec_" is base64; the signed content is
// "<webhook-id>.<webhook-timestamp>.<body>"; webhook-signature is a
// space-separated list of "v1,<base64 HMAC-SHA256>", any of which may
// match; the timestamp must be within 5 minutes of now.
func verifyStandardWebhook(secret string, id, timestamp, signatures string, body []byte, now time.Time) error {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return fmt.Errorf("secret: %w", err)
	}
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return fmt.Errorf("webhook-timestamp %q: %w", timestamp, err)
	}
	if d := now.Unix() - ts; d > 300 || d < -300 {
		return fmt.Errorf("webhook-timestamp %d too far from now", ts)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + timestamp + "." + string(body)))
	want := mac.Sum(nil)
	for _, s := range strings.Fields(signatures) {
		version, sig, ok := strings.Cut(s, ",")
		if !ok || version != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(sig)
		if err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return fmt.Errorf("no valid v1 signature in %q", signatures)
}

// webhooksYAML configures one endpoint at url with short retry delays.
func webhooksYAML(url, extra string) string {
	return fmt.Sprintf(`webhooks:
  endpoints:
    - url: %q
      secret: %q
  retry_delays: [200ms, 400ms]
  timeout: 2s
%s`, url, testWebhookSecret, extra)
}

// waitHooks waits until check passes on the receiver's hooks.
func waitHooks(t *testing.T, r *receiver, d time.Duration, what string, check func([]hook) string) {
	t.Helper()
	within(t, d, what, func() string { return check(r.hooks()) })
}

// TestEndToEndWebhooksEveryEvent makes every kind of change through the
// admin API and checks that each reaches a real receiver once, signed,
// with the record as data and never a token.
func TestEndToEndWebhooksEveryEvent(t *testing.T) {
	rcv := newReceiver(t)
	app := startApp(t, filepath.Join(t.TempDir(), "k.db"), echoUpstream(t).URL, webhooksYAML(rcv.URL, "  expiry_notice: [2s]\n"))
	c := newClient(t, app)

	sent := time.Now()
	c.must(200, "PUT", "/v1/users/alice", map[string]any{"email": "alice@example.com"})
	c.must(200, "PUT", "/v1/users/bob", map[string]any{"email": "bob@example.com"})
	c.must(200, "PUT", "/v1/orgs/acme", map[string]any{"name": "Acme"})
	c.must(200, "PUT", "/v1/orgs/acme/members/bob", map[string]any{"role": "Admin"})
	created := c.must(201, "POST", "/v1/keys", map[string]any{"user_id": "alice", "display_name": "ci"})
	token, id := created["token"].(string), created["id"].(string)
	c.must(200, "PATCH", "/v1/keys/"+id, map[string]any{"display_name": "ci-2"})
	rolled := c.must(201, "POST", "/v1/keys/"+id+"/roll", map[string]any{"grace_period": "1h"})
	c.must(200, "POST", "/v1/keys/"+id+"/archive", nil)
	c.must(204, "DELETE", "/v1/keys/"+id, nil)
	imported := c.must(201, "POST", "/v1/keys/import", map[string]any{"keys": []any{map[string]any{"token": "sk_live_imported_1", "user_id": "alice"}}})
	importedID := imported["keys"].([]any)[0].(map[string]any)["id"]
	c.must(200, "POST", "/v1/users/alice/block", nil)
	c.must(200, "POST", "/v1/users/alice/unblock", nil)
	c.must(204, "DELETE", "/v1/orgs/acme/members/bob", nil)
	c.must(204, "DELETE", "/v1/orgs/acme", nil)
	c.must(204, "DELETE", "/v1/users/bob", nil)
	// Expires in 4s: the 2s notice is due in 2s, the expiry in 4s.
	exp := time.Now().Unix() + 4
	expiring := c.must(201, "POST", "/v1/keys", map[string]any{"type": "generic", "expires_at": exp})
	if err := app.webhooks.Outbox.Send(t.Context(), app.Service, "quota.exhausted", map[string]any{"key_id": expiring["id"], "quota": "requests", "limit": 10}); err != nil {
		t.Fatal(err)
	}

	want := map[string]int{
		"user.upserted": 2, "org.upserted": 1, "org.member_added": 1, "api_key.created": 2, "api_key.updated": 1,
		"api_key.archived": 1, "api_key.deleted": 1, "api_key.imported": 1, "user.blocked": 1, "user.unblocked": 1,
		"org.member_removed": 1, "org.deleted": 1, "user.deleted": 1, "api_key.expiring": 1, "api_key.expired": 1,
		"quota.exhausted": 1, "api_key.rolled": 1,
	}
	waitHooks(t, rcv, 10*time.Second, "every event", func(hs []hook) string {
		got := map[string]int{}
		for _, h := range hs {
			got[h.Type]++
		}
		for typ, n := range want {
			if got[typ] != n {
				return fmt.Sprintf("%s: %d deliveries, want %d (all: %v)", typ, got[typ], n, got)
			}
		}
		return ""
	})
	ids := map[string]bool{}
	for _, h := range rcv.hooks() {
		if err := verifyStandardWebhook(testWebhookSecret, h.ID, h.Timestamp, h.Signature, h.Body, time.Now()); err != nil {
			t.Errorf("%s %s: %v", h.Type, h.ID, err)
		}
		if !strings.HasPrefix(h.ID, "msg_") || ids[h.ID] {
			t.Errorf("webhook-id %q: not msg_… or sent twice", h.ID)
		}
		ids[h.ID] = true
		for _, secret := range []string{token, "sk_live_imported_1", rolled["token"].(string)} {
			if strings.Contains(string(h.Body), secret) {
				t.Errorf("%s carries a token: %s", h.Type, h.Body)
			}
		}
		if err := verifyStandardWebhook(testWebhookSecret, h.ID, h.Timestamp, h.Signature, append(h.Body, ' '), time.Now()); err == nil {
			t.Errorf("a changed body verifies")
		}
	}
	t.Logf("first event received %v after its change was sent", rcv.ofType("user.upserted")[0].At.Sub(sent).Round(time.Millisecond))
	// Data is the record.
	if d := rcv.ofType("api_key.created")[0].Data; d["id"] != id || d["user_id"] != "alice" || d["display_name"] != "ci" {
		t.Errorf("api_key.created data = %v", d)
	}
	if d := rcv.ofType("user.blocked")[0].Data; d["user_id"] != "alice" || d["enabled"] != false {
		t.Errorf("user.blocked data = %v", d)
	}
	if d := rcv.ofType("org.member_added")[0].Data; d["org_id"] != "acme" || d["user_id"] != "bob" || d["role"] != "Admin" {
		t.Errorf("org.member_added data = %v", d)
	}
	if d := rcv.ofType("api_key.imported")[0].Data; d["count"] != float64(1) || fmt.Sprint(d["ids"]) != fmt.Sprint([]any{importedID}) {
		t.Errorf("api_key.imported data = %v", d)
	}
	if d := rcv.ofType("api_key.rolled")[0].Data; d["id"] != id || d["rolled_to"] != rolled["id"] {
		t.Errorf("api_key.rolled data = %v", d)
	}
	if d := rcv.ofType("api_key.deleted")[0].Data; d["id"] != id {
		t.Errorf("api_key.deleted data = %v", d)
	}
	// Expiry events: the key record, within 2s of their due time.
	for _, tt := range []struct {
		typ string
		due int64
	}{{"api_key.expiring", exp - 2}, {"api_key.expired", exp}} {
		h := rcv.ofType(tt.typ)[0]
		if h.Data["id"] != expiring["id"] {
			t.Errorf("%s data = %v", tt.typ, h.Data)
		}
		late := h.At.Sub(time.Unix(tt.due, 0))
		t.Logf("%s received %v after its due time", tt.typ, late.Round(time.Millisecond))
		if late < 0 || late > 2*time.Second {
			t.Errorf("%s arrived %v after its due time, want within [0, 2s]", tt.typ, late)
		}
	}
	if d := rcv.ofType("api_key.expiring")[0].Data; d["notice_seconds"] != float64(2) {
		t.Errorf("api_key.expiring data = %v", d)
	}
	// The receiver has a delivery before the sender records its outcome.
	within(t, 5*time.Second, "deliveries recorded", func() string {
		list := c.must(200, "GET", "/v1/webhook-deliveries?status=delivered", nil)
		if n := len(list["deliveries"].([]any)); n != len(rcv.hooks()) {
			return fmt.Sprintf("%d delivered deliveries listed, want %d", n, len(rcv.hooks()))
		}
		return ""
	})
}

// deliveries lists the outbox through the admin API.
func deliveries(c *client, query string) []map[string]any {
	c.t.Helper()
	m := c.must(200, "GET", "/v1/webhook-deliveries"+query, nil)
	var out []map[string]any
	for _, d := range m["deliveries"].([]any) {
		out = append(out, d.(map[string]any))
	}
	return out
}

// TestEndToEndWebhooksRetry: a receiver that fails twice gets the third
// attempt, with the same webhook-id each time; one that keeps failing past
// max_age leaves the delivery failed, which POST …/retry sends again.
func TestEndToEndWebhooksRetry(t *testing.T) {
	rcv := newReceiver(t)
	var down sync.Map // ids that always fail
	rcv.fail = func(h hook, nth int) int {
		if _, ok := down.Load(h.Data["user_id"]); ok {
			return http.StatusServiceUnavailable
		}
		if nth <= 2 {
			return []int{http.StatusInternalServerError, http.StatusBadGateway}[nth-1]
		}
		return 0
	}
	app := startApp(t, filepath.Join(t.TempDir(), "k.db"), echoUpstream(t).URL, webhooksYAML(rcv.URL, "  max_age: 4s\n")) // max_age counts from created_at, in whole seconds
	c := newClient(t, app)

	c.must(200, "PUT", "/v1/users/alice", map[string]any{"email": "alice@example.com"})
	waitHooks(t, rcv, 5*time.Second, "third attempt", func(hs []hook) string {
		if len(hs) < 3 {
			return fmt.Sprintf("%d attempts", len(hs))
		}
		return ""
	})
	time.Sleep(100 * time.Millisecond) // a fourth attempt would show now
	hs := rcv.hooks()
	if len(hs) != 3 || hs[0].ID != hs[1].ID || hs[1].ID != hs[2].ID {
		t.Fatalf("attempts %v, want 3 with one webhook-id", hs)
	}
	if !hs[0].At.Add(150*time.Millisecond).Before(hs[1].At) || !hs[1].At.Add(300*time.Millisecond).Before(hs[2].At) {
		t.Errorf("attempts at %v, %v, %v: not after the 200ms and 400ms delays", hs[0].At, hs[1].At, hs[2].At)
	}
	for _, h := range hs {
		if err := verifyStandardWebhook(testWebhookSecret, h.ID, h.Timestamp, h.Signature, h.Body, time.Now()); err != nil {
			t.Error(err)
		}
	}
	within(t, 2*time.Second, "delivered status", func() string {
		d := deliveries(c, "?status=delivered")
		if len(d) != 1 || d[0]["id"] != hs[0].ID || d[0]["attempts"] != float64(3) || d[0]["last_error"] != "" {
			return fmt.Sprintf("%v", d)
		}
		return ""
	})

	// Past max_age: failed, then sent again on request, same id.
	down.Store("bob", true)
	c.must(200, "PUT", "/v1/users/bob", map[string]any{"email": "bob@example.com"})
	var failed map[string]any
	within(t, 10*time.Second, "failed status", func() string {
		d := deliveries(c, "?status=failed&endpoint="+rcv.URL)
		if len(d) != 1 {
			return fmt.Sprintf("%v", d)
		}
		failed = d[0]
		return ""
	})
	if !strings.Contains(failed["last_error"].(string), "503") || failed["attempts"].(float64) < 2 {
		t.Errorf("failed delivery = %v", failed)
	}
	if p := deliveries(c, "?status=pending"); len(p) != 0 {
		t.Errorf("pending = %v", p)
	}
	down.Delete("bob")
	id := failed["id"].(string)
	c.must(200, "POST", "/v1/webhook-deliveries/"+id+"/retry", nil)
	within(t, 3*time.Second, "retried delivery", func() string {
		d := deliveries(c, "?status=delivered")
		for _, x := range d {
			if x["id"] == id {
				return ""
			}
		}
		return fmt.Sprintf("%v", d)
	})
	c.must(404, "POST", "/v1/webhook-deliveries/msg_nope/retry", nil)
	c.must(400, "GET", "/v1/webhook-deliveries?status=sent", nil)
	c.must(400, "GET", "/v1/webhook-deliveries?cursor=x", nil)

	// Paging: one per page, newest first, through to the end.
	var seen []string
	for cursor := ""; ; {
		m := c.must(200, "GET", "/v1/webhook-deliveries?page_size=1&cursor="+cursor, nil)
		for _, d := range m["deliveries"].([]any) {
			seen = append(seen, d.(map[string]any)["type"].(string))
		}
		if cursor = m["next_cursor"].(string); cursor == "" {
			break
		}
	}
	if len(seen) != 2 {
		t.Errorf("paged through %v, want 2 deliveries", seen)
	}

	// Metrics: attempts by outcome, deliveries by status, oldest pending.
	req, _ := http.NewRequest("GET", c.admin+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+testAdminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`keygate_webhook_attempts_total{outcome="delivered"} 2`,
		`keygate_webhook_attempts_total{outcome="failed"} 1`,
		`keygate_webhook_deliveries{status="delivered"} 2`,
		`keygate_webhook_deliveries{status="pending"} 0`,
		`keygate_webhook_oldest_pending_age_seconds 0`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if !strings.Contains(string(body), `keygate_webhook_attempts_total{outcome="retry"}`) {
		t.Errorf("metrics lack the retry outcome")
	}
}

// TestEndToEndWebhooksRestart: deliveries still pending when keygate stops
// go out after it starts again, with their webhook-ids.
func TestEndToEndWebhooksRestart(t *testing.T) {
	rcv := newReceiver(t)
	var up sync.Map
	rcv.fail = func(h hook, nth int) int {
		if _, ok := up.Load("up"); ok {
			return 0
		}
		return http.StatusServiceUnavailable
	}
	db := filepath.Join(t.TempDir(), "k.db")
	yaml := webhooksYAML(rcv.URL, "")
	yaml = strings.Replace(yaml, "[200ms, 400ms]", "[1s]", 1)
	app := startApp(t, db, echoUpstream(t).URL, yaml)
	c := newClient(t, app)
	for _, u := range []string{"u1", "u2", "u3"} {
		c.must(200, "PUT", "/v1/users/"+u, map[string]any{"email": u + "@example.com"})
	}
	waitHooks(t, rcv, 5*time.Second, "first attempts", func(hs []hook) string {
		if len(hs) < 3 {
			return fmt.Sprintf("%d attempts", len(hs))
		}
		return ""
	})
	if err := app.Close(); err != nil {
		t.Fatal(err)
	}
	firstIDs := map[string]bool{}
	for _, h := range rcv.hooks() {
		firstIDs[h.ID] = true
	}
	up.Store("up", true)
	app = startApp(t, db, echoUpstream(t).URL, yaml)
	c = newClient(t, app)
	within(t, 5*time.Second, "delivered after the restart", func() string {
		if d := deliveries(c, "?status=delivered"); len(d) != 3 {
			return fmt.Sprintf("%d delivered", len(d))
		}
		return ""
	})
	for _, d := range deliveries(c, "") {
		if !firstIDs[d["id"].(string)] {
			t.Errorf("delivery %v has a new id", d["id"])
		}
	}
}

// TestEndToEndWebhookQuotaExhausted uses up quotas through the proxy and
// checks that the request taking each owner to its limit sends one
// quota.exhausted, and requests refused after it send none.
func TestEndToEndWebhookQuotaExhausted(t *testing.T) {
	rcv := newReceiver(t)
	extra := "quotas:\n  generic: {limit: 3, period: day}\n  personal: {limit: 2, period: total}\n"
	app := startApp(t, filepath.Join(t.TempDir(), "k.db"), echoUpstream(t).URL, webhooksYAML(rcv.URL, "")+extra)
	c := newClient(t, app)
	generic := c.must(201, "POST", "/v1/keys", map[string]any{"type": "generic"})
	c.must(200, "PUT", "/v1/users/alice", map[string]any{"email": "alice@example.com"})
	personal := c.must(201, "POST", "/v1/keys", map[string]any{"user_id": "alice"})
	for _, k := range []struct {
		token string
		limit int
	}{{generic["token"].(string), 3}, {personal["token"].(string), 2}} {
		for i := range k.limit + 2 {
			want := 200
			if i >= k.limit {
				want = 429
			}
			if code, body := c.get(k.token, "/"); code != want {
				t.Fatalf("request %d: %d %v, want %d", i+1, code, body, want)
			}
		}
	}
	waitHooks(t, rcv, 10*time.Second, "quota.exhausted", func(hs []hook) string {
		if n := len(rcv.ofType("quota.exhausted")); n != 2 {
			return fmt.Sprintf("%d quota.exhausted, want 2", n)
		}
		return ""
	})
	got := map[string]map[string]any{}
	for _, h := range rcv.ofType("quota.exhausted") {
		got[h.Data["owner_type"].(string)] = h.Data
		if err := verifyStandardWebhook(testWebhookSecret, h.ID, h.Timestamp, h.Signature, h.Body, time.Now()); err != nil {
			t.Error(err)
		}
	}
	if d := got["key"]; d == nil || d["owner_id"] != generic["id"] || d["limit"] != 3.0 || d["used"] != 3.0 || d["period"] != "day" || d["resets_at"] == nil {
		t.Errorf("generic key's event: %v", d)
	}
	if d := got["user"]; d == nil || d["owner_id"] != "alice" || d["limit"] != 2.0 || d["period"] != "total" || d["resets_at"] != nil {
		t.Errorf("user's event: %v", d)
	}
	for _, h := range rcv.hooks() {
		if strings.Contains(string(h.Body), generic["token"].(string)) || strings.Contains(string(h.Body), personal["token"].(string)) {
			t.Errorf("%s carries a token", h.Type)
		}
	}
}
