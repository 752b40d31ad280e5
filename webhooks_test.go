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

	c.must(200, "PUT", "/v1/users/alice", map[string]any{"email": "alice@example.com"})
	c.must(200, "PUT", "/v1/users/bob", map[string]any{"email": "bob@example.com"})
	c.must(200, "PUT", "/v1/orgs/acme", map[string]any{"name": "Acme"})
	c.must(200, "PUT", "/v1/orgs/acme/members/bob", map[string]any{"role": "Admin"})
	created := c.must(201, "POST", "/v1/keys", map[string]any{"user_id": "alice", "display_name": "ci"})
	token, id := created["token"].(string), created["id"].(string)
	c.must(200, "PATCH", "/v1/keys/"+id, map[string]any{"display_name": "ci-2"})
	c.must(200, "POST", "/v1/keys/"+id+"/archive", nil)
	c.must(204, "DELETE", "/v1/keys/"+id, nil)
	c.must(201, "POST", "/v1/keys/import", map[string]any{"keys": []any{map[string]any{"token": "sk_live_imported_1", "user_id": "alice"}}})
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
		"quota.exhausted": 1,
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
		for _, secret := range []string{token, "sk_live_imported_1"} {
			if strings.Contains(string(h.Body), secret) {
				t.Errorf("%s carries a token: %s", h.Type, h.Body)
			}
		}
		if err := verifyStandardWebhook(testWebhookSecret, h.ID, h.Timestamp, h.Signature, append(h.Body, ' '), time.Now()); err == nil {
			t.Errorf("a changed body verifies")
		}
	}
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
		if late := h.At.Sub(time.Unix(tt.due, 0)); late < 0 || late > 2*time.Second {
			t.Errorf("%s arrived %v after its due time, want within [0, 2s]", tt.typ, late)
		}
	}
	if d := rcv.ofType("api_key.expiring")[0].Data; d["notice_seconds"] != float64(2) {
		t.Errorf("api_key.expiring data = %v", d)
	}
	list := c.must(200, "GET", "/v1/webhook-deliveries?status=delivered", nil)
	if n := len(list["deliveries"].([]any)); n != len(rcv.hooks()) {
		t.Errorf("%d delivered deliveries listed, want %d", n, len(rcv.hooks()))
	}
}
