package admin_test

import (
	"fmt"
	"strings"
	"testing"
)

// TestImportReportsEveryBadEntry: one 400 names every bad entry, whether it
// failed to decode or failed the service's checks, and nothing is written.
func TestImportReportsEveryBadEntry(t *testing.T) {
	e := newEnv(t, nil)
	e.user("alice")
	before := e.dump()
	r := e.call("POST", "/v1/keys/import", `{"keys": [
		{"token": "good-token-00001"},
		{"token": "good-token-00002", "bogus": 1},
		{"token": "good-token-00003", "user_id": "nobody"},
		{"token": 5},
		{"token": "good-token-00001"},
		{"token": "good-token-00006", "type": "team"},
		{"token": "good-token-00007", "user_id": "alice"}
	]}`)
	body := r.obj(t)
	if r.status != 400 || body["error"] != "invalid_request" {
		t.Fatalf("import: %d %s", r.status, r.body)
	}
	fields := body["fields"].(map[string]any)
	for _, f := range []string{"keys[1].bogus", "keys[2].user_id", "keys[3].token", "keys[4].token", "keys[5].type"} {
		if fields[f] == nil {
			t.Errorf("fields miss %s: %v", f, fields)
		}
	}
	if len(fields) != 5 {
		t.Errorf("fields = %v, want exactly the 5 bad entries", fields)
	}
	if e.dump() != before {
		t.Fatal("a failed import changed the database")
	}
}

func TestImportDryRunAndOnConflict(t *testing.T) {
	e := newEnv(t, nil)
	e.must(201, "POST", "/v1/keys/import", `{"keys": [{"token": "old-token-0000001"}, {"token": "old-token-0000002"}]}`)

	before := e.dump()
	m := e.must(200, "POST", "/v1/keys/import", `{"dry_run": true, "keys": [{"token": "new-token-0000001"}, {"token": "new-token-0000002"}]}`)
	if m["count"] != float64(2) || m["dry_run"] != true || len(list(t, m, "keys")) != 0 {
		t.Fatalf("dry run = %v", m)
	}
	if e.dump() != before {
		t.Fatal("dry run wrote")
	}
	// A dry run runs the store's checks too: existing tokens are conflicts.
	r := e.call("POST", "/v1/keys/import", `{"dry_run": true, "keys": [{"token": "old-token-0000001"}, {"token": "new-token-0000001"}, {"token": "old-token-0000002"}]}`)
	if f := r.obj(t)["fields"].(map[string]any); r.status != 409 || f["keys[0].token"] == nil || f["keys[2].token"] == nil || len(f) != 2 {
		t.Fatalf("dry run conflicts: %d %s", r.status, r.body)
	}

	for _, tt := range []struct {
		name, onConflict string
		status           int
	}{
		{"default fails", "", 409},
		{"fail", `"on_conflict": "fail",`, 409},
		{"bad value", `"on_conflict": "replace",`, 400},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := e.dump()
			r := e.call("POST", "/v1/keys/import", `{`+tt.onConflict+` "keys": [{"token": "new-token-0000001"}, {"token": "old-token-0000001"}]}`)
			if r.status != tt.status || e.dump() != before {
				t.Fatalf("%d %s (changed: %v)", r.status, r.body, e.dump() != before)
			}
		})
	}
	m = e.must(201, "POST", "/v1/keys/import", `{"on_conflict": "skip", "keys": [{"token": "old-token-0000001"}, {"token": "new-token-0000001"}, {"token": "old-token-0000002"}, {"token": "new-token-0000002"}]}`)
	if m["count"] != float64(2) || fmt.Sprint(m["skipped"]) != "[0 2]" || len(list(t, m, "keys")) != 2 {
		t.Fatalf("skip = %v", m)
	}
}

// TestImportOneAuditEventPerBatch: a batch is one api_key.imported event
// with the count and every id, not one event per key.
func TestImportOneAuditEventPerBatch(t *testing.T) {
	e := newEnv(t, nil)
	var b strings.Builder
	b.WriteString(`{"keys": [`)
	const n = 500
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"token": "batch-token-%08d"}`, i)
	}
	b.WriteString(`]}`)
	m := e.must(201, "POST", "/v1/keys/import", b.String())
	ks := list(t, m, "keys")
	a := e.must(200, "GET", "/v1/audit?action=api_key.imported", "")
	events := list(t, a, "events")
	if len(events) != 1 {
		t.Fatalf("%d audit events for one batch, want 1", len(events))
	}
	d := events[0].(map[string]any)["details"].(map[string]any)
	ids := d["ids"].([]any)
	if d["count"] != float64(n) || len(ids) != n || ids[0] != ks[0].(map[string]any)["id"] {
		t.Fatalf("details: count %v, %d ids", d["count"], len(ids))
	}
}
