package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestEndToEndRoll(t *testing.T) {
	up := echoUpstream(t)
	app := startApp(t, filepath.Join(t.TempDir(), "kg.db"), up.URL, "")
	c := newClient(t, app)
	c.must(200, "PUT", "/v1/users/amy", map[string]any{"email": "amy@example.com"})
	old := c.must(201, "POST", "/v1/keys", map[string]any{"user_id": "amy", "display_name": "ci", "metadata": map[string]any{"plan": "pro"}})
	oldID, oldTok := old["id"].(string), old["token"].(string)
	if old["rolled_from"] != nil || old["rolled_to"] != nil {
		t.Fatalf("new key links: %v", old)
	}
	// The old key is cached on this node before the roll.
	if code, _ := c.get(oldTok, "/"); code != 200 {
		t.Fatal(code)
	}

	next := c.must(201, "POST", "/v1/keys/"+oldID+"/roll", map[string]any{"grace_period": "1h"})
	newID, newTok := next["id"].(string), next["token"].(string)
	if next["rolled_from"] != oldID || next["user_id"] != "amy" || next["display_name"] != "ci" || next["type"] != "personal" ||
		next["metadata"].(map[string]any)["plan"] != "pro" || newTok == "" || newID == oldID {
		t.Fatalf("rolled key = %v", next)
	}
	for _, tok := range []string{oldTok, newTok} {
		code, echo := c.get(tok, "/")
		if code != 200 || header(echo, "X-Keygate-User-Id") != "amy" {
			t.Fatalf("during the grace period: %d %v", code, echo)
		}
	}
	got := c.must(200, "GET", "/v1/keys/"+oldID, nil)
	exp := time.Now().Add(time.Hour).Unix()
	if got["rolled_to"] != newID || got["expires_at"].(float64) < float64(exp-5) || got["expires_at"].(float64) > float64(exp+5) {
		t.Fatalf("old key after the roll = %v", got)
	}
	audit := c.must(200, "GET", "/v1/audit?action=api_key.rolled", nil)
	evs := audit["events"].([]any)
	if len(evs) != 1 {
		t.Fatalf("audit = %v", audit)
	}
	d := evs[0].(map[string]any)["details"].(map[string]any)
	if d["rolled_from"] != oldID || d["rolled_to"] != newID || d["grace_period"] != "1h0m0s" {
		t.Fatalf("audit details = %v", d)
	}

	// Without a grace period the old key stops at once (cached or not).
	third := c.must(201, "POST", "/v1/keys/"+newID+"/roll", nil)
	if code, body := c.get(newTok, "/"); code != 401 || body["error"] != "invalid_api_key" {
		t.Fatalf("rolled without grace: %d %v", code, body)
	}
	if code, _ := c.get(third["token"].(string), "/"); code != 200 {
		t.Fatalf("third key: %d", code)
	}
	// Archived keys cannot roll; bad grace periods are named.
	if code, body := c.call("POST", "/v1/keys/"+newID+"/roll", map[string]any{}); code != 409 || body["error"] != "conflict" {
		t.Fatalf("roll archived: %d %v", code, body)
	}
	for _, g := range []string{"721h", "-1s", "tomorrow"} {
		if code, body := c.call("POST", "/v1/keys/"+third["id"].(string)+"/roll", map[string]any{"grace_period": g}); code != 400 || body["fields"].(map[string]any)["grace_period"] == nil {
			t.Errorf("grace %q: %d %v", g, code, body)
		}
	}
	if code, _ := c.call("POST", "/v1/keys/0123456789abcdef0123456789abcdef/roll", nil); code != 404 {
		t.Errorf("roll unknown: %d", code)
	}

	// An imported key rolls into a keygate token.
	imp := c.must(201, "POST", "/v1/keys/import", map[string]any{"keys": []any{map[string]any{"token": "sk_live_legacy_123456"}}})
	impID := imp["keys"].([]any)[0].(map[string]any)["id"].(string)
	r := c.must(201, "POST", "/v1/keys/"+impID+"/roll", map[string]any{"grace_period": "24h"})
	if tok := r["token"].(string); !strings.HasPrefix(tok, "kgg_") || r["imported"] != false {
		t.Fatalf("rolled import = %v", r)
	}
	if code, _ := c.get("sk_live_legacy_123456", "/"); code != 200 {
		t.Fatalf("imported token during grace: %d", code)
	}
}
