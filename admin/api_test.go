package admin_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/admin"
	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/quota"
)

func TestKeyLifecycle(t *testing.T) {
	e := newEnv(t, nil)
	e.user("alice")
	e.org("acme", "alice")
	ctx := context.Background()

	k := e.must(201, "POST", "/v1/keys", `{"user_id": "alice", "display_name": "ci", "metadata": {"plan": "pro"}, "expires_in": "1mo"}`)
	id, token := k["id"].(string), k["token"].(string)
	want := map[string]any{
		"type": "personal", "user_id": "alice", "org_id": "", "display_name": "ci",
		"display": "kgp_…" + token[len(token)-4:], "metadata": map[string]any{"plan": "pro"},
		"created_at": float64(t0.Unix()), "expires_at": float64(t0.Add(30 * 24 * time.Hour).Unix()),
		"archived_at": nil, "last_used_at": nil, "imported": false,
	}
	for f, v := range want {
		if !reflect.DeepEqual(k[f], v) {
			t.Errorf("created key %s = %#v, want %#v", f, k[f], v)
		}
	}
	if !keys.ValidKeyID(id) || !strings.HasPrefix(token, "kgp_") {
		t.Fatalf("id %q token %q", id, token)
	}
	if _, err := e.svc.Validate(ctx, token); err != nil {
		t.Fatalf("new key does not validate: %v", err)
	}

	got := e.must(200, "GET", "/v1/keys/"+id, "")
	if _, ok := got["token"]; ok {
		t.Fatal("GET shows the token")
	}
	for f, v := range want {
		if !reflect.DeepEqual(got[f], v) {
			t.Errorf("got key %s = %#v, want %#v", f, got[f], v)
		}
	}

	orgKey := e.must(201, "POST", "/v1/keys", `{"org_id": "acme", "user_id": "alice"}`)
	if orgKey["type"] != "org" || !strings.HasPrefix(orgKey["token"].(string), "kgo_") || orgKey["expires_at"] != nil {
		t.Fatalf("org key = %v", orgKey)
	}
	gen := e.must(201, "POST", "/v1/keys", `{"type": "generic", "expires_at": `+strconv.FormatInt(t0.Unix()+3600, 10)+`}`)
	if gen["type"] != "generic" || num(t, gen, "expires_at") != t0.Unix()+3600 {
		t.Fatalf("generic key = %v", gen)
	}
	e.must(201, "POST", "/v1/keys", `{}`) // generic, never expires

	for _, c := range []struct {
		query string
		n     int
	}{
		{"", 4}, {"?user_id=alice", 2}, {"?org_id=acme", 1}, {"?type=generic", 2}, {"?type=personal&status=all", 1},
		{"?status=archived", 0}, {"?search=" + id, 1},
	} {
		m := e.must(200, "GET", "/v1/keys"+c.query, "")
		if n := len(list(t, m, "keys")); n != c.n || cursor(t, m) != "" {
			t.Errorf("GET /v1/keys%s: %d keys (want %d), next_cursor %q", c.query, n, c.n, m["next_cursor"])
		}
	}

	// PATCH: absent fields stay, metadata replaces, expires_at null = never.
	p := e.must(200, "PATCH", "/v1/keys/"+id, `{"display_name": "deploy"}`)
	if p["display_name"] != "deploy" || !reflect.DeepEqual(p["metadata"], map[string]any{"plan": "pro"}) || p["expires_at"] == nil {
		t.Fatalf("patched = %v", p)
	}
	p = e.must(200, "PATCH", "/v1/keys/"+id, `{"metadata": {"tier": 2}, "expires_at": `+strconv.FormatInt(t0.Unix()+60, 10)+`}`)
	if !reflect.DeepEqual(p["metadata"], map[string]any{"tier": float64(2)}) || num(t, p, "expires_at") != t0.Unix()+60 {
		t.Fatalf("patched = %v", p)
	}
	if p = e.must(200, "PATCH", "/v1/keys/"+id, `{"expires_at": null}`); p["expires_at"] != nil {
		t.Fatalf("expires_at null: %v", p)
	}
	e.must(200, "PATCH", "/v1/keys/"+id, `{"expires_at": `+strconv.FormatInt(t0.Unix()+60, 10)+`}`)
	if p = e.must(200, "PATCH", "/v1/keys/"+id, `{"never_expire": true}`); p["expires_at"] != nil || p["display_name"] != "deploy" {
		t.Fatalf("never_expire: %v", p)
	}

	// Archive is idempotent and audited once.
	e.clock.Advance(time.Minute)
	a := e.must(200, "POST", "/v1/keys/"+id+"/archive", "")
	if num(t, a, "archived_at") != t0.Unix()+60 {
		t.Fatalf("archived = %v", a)
	}
	e.clock.Advance(time.Minute)
	if a = e.must(200, "POST", "/v1/keys/"+id+"/archive", ""); num(t, a, "archived_at") != t0.Unix()+60 {
		t.Fatalf("archived again = %v", a)
	}
	if _, err := e.svc.Validate(ctx, token); !errors.Is(err, keys.ErrInvalidKey) {
		t.Fatalf("archived key validates: %v", err)
	}
	ev := e.must(200, "GET", "/v1/audit?key_id="+id+"&action=api_key.archived", "")
	if n := len(list(t, ev, "events")); n != 1 {
		t.Fatalf("%d archive events, want 1", n)
	}
	if m := e.must(200, "GET", "/v1/keys?status=archived", ""); len(list(t, m, "keys")) != 1 {
		t.Fatalf("archived list = %v", m)
	}
	if r := e.call("PATCH", "/v1/keys/"+id, `{"display_name": "x"}`); r.status != 409 || r.obj(t)["error"] != "conflict" {
		t.Fatalf("PATCH archived: %d %s", r.status, r.body)
	}

	e.must(204, "DELETE", "/v1/keys/"+id, "")
	if r := e.call("GET", "/v1/keys/"+id, ""); r.status != 404 || r.obj(t)["error"] != "not_found" {
		t.Fatalf("GET deleted: %d %s", r.status, r.body)
	}
	events := list(t, e.must(200, "GET", "/v1/audit?key_id="+id, ""), "events")
	var actions []string
	for _, ev := range events {
		m := ev.(map[string]any)
		actions = append(actions, m["action"].(string))
		if m["actor"] != "admin" {
			t.Errorf("event %v: actor %v, want admin", m["action"], m["actor"])
		}
	}
	wantActions := []string{"api_key.deleted", "api_key.archived", "api_key.updated", "api_key.updated", "api_key.updated", "api_key.updated", "api_key.updated", "api_key.created"}
	if !reflect.DeepEqual(actions, wantActions) {
		t.Fatalf("audit of a deleted key = %v, want %v", actions, wantActions)
	}
}

func TestImportKeys(t *testing.T) {
	e := newEnv(t, nil)
	e.user("alice")
	ctx := context.Background()
	sum := sha256.Sum256([]byte("legacy-token-2"))
	body := `{"keys": [
		{"token": "sk_live_abc123xyz", "user_id": "alice", "display_name": "old", "metadata": {"from": "v1"}},
		{"token_sha256": "` + hex.EncodeToString(sum[:]) + `", "type": "generic", "expires_at": ` + strconv.FormatInt(t0.Unix()+3600, 10) + `}
	]}`
	before := e.dump()
	m := e.must(201, "POST", "/v1/keys/import", body)
	ks := list(t, m, "keys")
	if len(ks) != 2 {
		t.Fatalf("imported %v", m)
	}
	k0, k1 := ks[0].(map[string]any), ks[1].(map[string]any)
	if k0["type"] != "personal" || k0["user_id"] != "alice" || k0["imported"] != true || k0["display"] != "…3xyz" || k0["token"] != nil {
		t.Fatalf("imported key 0 = %v", k0)
	}
	if k1["type"] != "generic" || num(t, k1, "expires_at") != t0.Unix()+3600 {
		t.Fatalf("imported key 1 = %v", k1)
	}
	for _, tok := range []string{"sk_live_abc123xyz", "legacy-token-2"} {
		if _, err := e.svc.Validate(ctx, tok); err != nil {
			t.Errorf("imported %s does not validate: %v", tok, err)
		}
	}
	if e.dump() == before {
		t.Fatal("import changed nothing")
	}
	// Importing a token that exists is a conflict and changes nothing.
	before = e.dump()
	r := e.call("POST", "/v1/keys/import", `{"keys": [{"token": "brand-new-token-01"}, {"token": "sk_live_abc123xyz"}]}`)
	if r.status != 409 || r.obj(t)["error"] != "conflict" {
		t.Fatalf("re-import: %d %s", r.status, r.body)
	}
	if e.dump() != before {
		t.Fatal("failed import changed the database")
	}
}

func TestImportMany(t *testing.T) {
	e := newEnv(t, nil)
	var b strings.Builder
	b.WriteString(`{"keys": [`)
	const n = 10_000
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"token": "legacy-token-%05d", "display_name": "imported %d", "metadata": {"i": %d}}`, i, i, i)
	}
	b.WriteString(`]}`)
	m := e.must(201, "POST", "/v1/keys/import", b.String())
	if got := len(list(t, m, "keys")); got != n {
		t.Fatalf("imported %d keys, want %d", got, n)
	}
	if _, err := e.svc.Validate(context.Background(), "legacy-token-09999"); err != nil {
		t.Fatal(err)
	}
}

func TestValidate(t *testing.T) {
	e := newEnv(t, nil)
	e.user("alice")
	e.org("acme", "alice")
	_, personal := e.key(`{"user_id": "alice", "metadata": {"plan": "pro"}}`)
	_, orgTok := e.key(`{"org_id": "acme", "user_id": "alice"}`)
	_, generic := e.key(`{}`)
	_, soon := e.key(`{"expires_at": ` + strconv.FormatInt(t0.Unix()+60, 10) + `}`)

	r := e.call("POST", "/v1/validate", `{"api_key": "`+personal+`"}`)
	if r.status != 200 {
		t.Fatalf("validate: %d %s", r.status, r.body)
	}
	m := r.obj(t)
	key := m["key"].(map[string]any)
	user := m["user"].(map[string]any)
	if key["type"] != "personal" || user["user_id"] != "alice" || user["email"] != "alice@example.com" ||
		m["org"] != nil || m["user_in_org"] != nil || !reflect.DeepEqual(m["metadata"], map[string]any{"plan": "pro"}) {
		t.Fatalf("validate personal = %s", r.body)
	}
	if r.header.Get("RateLimit-Limit") != "10" || r.header.Get("RateLimit-Remaining") != "9" || r.header.Get("RateLimit-Reset") != "6" {
		t.Fatalf("rate limit headers = %v", r.header)
	}

	m = e.must(200, "POST", "/v1/validate", `{"api_key": "`+orgTok+`"}`)
	if m["org"].(map[string]any)["org_id"] != "acme" || m["user"].(map[string]any)["user_id"] != "alice" ||
		!reflect.DeepEqual(m["user_in_org"], map[string]any{"org_id": "acme", "role": "Admin"}) {
		t.Fatalf("validate org key = %v", m)
	}
	m = e.must(200, "POST", "/v1/validate", `{"api_key": "`+generic+`"}`)
	if m["user"] != nil || m["org"] != nil || m["user_in_org"] != nil || !reflect.DeepEqual(m["metadata"], map[string]any{}) {
		t.Fatalf("validate generic = %v", m)
	}

	for _, c := range []struct{ token, code string }{
		{"kgp_" + strings.Repeat("A", 37), "invalid_api_key"},
		{"not-a-key", "invalid_api_key"},
		{personal + "x", "invalid_api_key"},
	} {
		r := e.call("POST", "/v1/validate", `{"api_key": "`+c.token+`"}`)
		if r.status != 401 || r.obj(t)["error"] != c.code {
			t.Errorf("validate %q: %d %s", c.token, r.status, r.body)
		}
		if r.header.Get("WWW-Authenticate") != "" {
			t.Errorf("validate %q: WWW-Authenticate set: the admin token was fine", c.token)
		}
	}

	e.clock.Advance(2 * time.Minute)
	if r := e.call("POST", "/v1/validate", `{"api_key": "`+soon+`"}`); r.status != 401 || r.obj(t)["error"] != "expired_api_key" {
		t.Fatalf("expired: %d %s", r.status, r.body)
	}
	e.must(200, "POST", "/v1/users/alice/block", "")
	if r := e.call("POST", "/v1/validate", `{"api_key": "`+personal+`"}`); r.status != 401 || r.obj(t)["error"] != "invalid_api_key" {
		t.Fatalf("blocked owner: %d %s", r.status, r.body)
	}
	e.must(200, "POST", "/v1/users/alice/unblock", "")

	e.checker.limited.Store(true)
	r = e.call("POST", "/v1/validate", `{"api_key": "`+personal+`"}`)
	if r.status != 429 || r.header.Get("Retry-After") != "2" {
		t.Fatalf("limited: %d %v %s", r.status, r.header, r.body)
	}
	if m := r.obj(t); m["error"] != "rate_limited" || num(t, m, "wait_seconds") != 2 {
		t.Fatalf("limited body = %s", r.body)
	}
	e.checker.limited.Store(false)

	// Quotas (SPEC §12): cost 1–1000, default 1; 429 quota_exceeded with the
	// wait until the refill, none for a quota that never refills.
	for _, c := range []struct {
		body   string
		status int
		cost   int64
	}{
		{`"cost": 0`, 400, 0}, {`"cost": 1001`, 400, 0}, {`"cost": "5"`, 400, 0}, {`"cost": 1.5`, 400, 0},
		{`"cost": 1000`, 200, 1000}, {`"cost": 7`, 200, 7},
	} {
		e.checker.cost.Store(0)
		r := e.call("POST", "/v1/validate", `{"api_key": "`+personal+`", `+c.body+`}`)
		if r.status != c.status || e.checker.cost.Load() != c.cost {
			t.Errorf("%s: %d %s (cost asked %d)", c.body, r.status, r.body, e.checker.cost.Load())
		}
		if c.status == 400 && !strings.Contains(string(r.body), "cost") {
			t.Errorf("%s: error does not name cost: %s", c.body, r.body)
		}
	}
	e.call("POST", "/v1/validate", `{"api_key": "`+personal+`"}`)
	if e.checker.cost.Load() != 1 {
		t.Errorf("default cost = %d, want 1", e.checker.cost.Load())
	}
	e.checker.quota.Store(&quota.Result{Allowed: true, Limit: 100, Remaining: 40, ResetsAt: 1, Reset: 90 * time.Second})
	r = e.call("POST", "/v1/validate", `{"api_key": "`+personal+`"}`)
	if r.status != 200 || r.header.Get("X-Quota-Limit") != "100" || r.header.Get("X-Quota-Remaining") != "40" || r.header.Get("X-Quota-Reset") != "90" {
		t.Fatalf("quota headers: %d %v", r.status, r.header)
	}
	e.checker.quota.Store(&quota.Result{Limit: 100, ResetsAt: 1, Reset: 3601500 * time.Millisecond})
	r = e.call("POST", "/v1/validate", `{"api_key": "`+personal+`"}`)
	if m := r.obj(t); r.status != 429 || m["error"] != "quota_exceeded" || num(t, m, "wait_seconds") != 3602 || r.header.Get("Retry-After") != "3602" {
		t.Fatalf("quota exceeded: %d %v %s", r.status, r.header, r.body)
	}
	e.checker.quota.Store(&quota.Result{Limit: 100})
	r = e.call("POST", "/v1/validate", `{"api_key": "`+personal+`"}`)
	if m := r.obj(t); r.status != 429 || m["error"] != "quota_exceeded" || m["wait_seconds"] != nil || r.header.Get("Retry-After") != "" || r.header.Get("X-Quota-Reset") != "" {
		t.Fatalf("total quota exceeded: %d %v %s", r.status, r.header, r.body)
	}
	e.checker.quota.Store(nil)

	e.checker.fail.Store(true)
	if r := e.call("POST", "/v1/validate", `{"api_key": "`+personal+`"}`); r.status != 503 || r.obj(t)["error"] != "store_unavailable" || strings.Contains(string(r.body), "disk") {
		t.Fatalf("store down: %d %s", r.status, r.body)
	}

	e2 := newEnv(t, func(o *admin.Options) { o.Checker = nil })
	if r := e2.call("POST", "/v1/validate", `{"api_key": "x"}`); r.status != 501 || r.obj(t)["error"] != "not_implemented" {
		t.Fatalf("no checker: %d %s", r.status, r.body)
	}
}

func TestUsersAndOrgs(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()

	u := e.must(200, "PUT", "/v1/users/bob", `{"email": "bob@example.com", "metadata": {"team": "x"}, "rate_limit": {"limit": 100, "window": "1m"}}`)
	if u["user_id"] != "bob" || u["enabled"] != true || !reflect.DeepEqual(u["orgs"], []any{}) ||
		!reflect.DeepEqual(u["rate_limit"], map[string]any{"limit": float64(100), "window": "1m"}) || num(t, u, "created_at") != t0.Unix() {
		t.Fatalf("user = %v", u)
	}
	// Absent fields keep what is stored; rate_limit null clears.
	u = e.must(200, "PUT", "/v1/users/bob", `{"email": "bob2@example.com"}`)
	if u["email"] != "bob2@example.com" || !reflect.DeepEqual(u["metadata"], map[string]any{"team": "x"}) || u["rate_limit"] == nil {
		t.Fatalf("user after partial upsert = %v", u)
	}
	if u = e.must(200, "PUT", "/v1/users/bob", `{"email": "bob2@example.com", "rate_limit": null, "enabled": false}`); u["rate_limit"] != nil || u["enabled"] != false {
		t.Fatalf("user after clearing = %v", u)
	}
	if u = e.must(200, "POST", "/v1/users/bob/unblock", ""); u["enabled"] != true {
		t.Fatalf("unblocked = %v", u)
	}
	if u = e.must(200, "POST", "/v1/users/bob/block", ""); u["enabled"] != false {
		t.Fatalf("blocked = %v", u)
	}
	e.must(200, "POST", "/v1/users/bob/unblock", "")

	o := e.must(200, "PUT", "/v1/orgs/acme", `{"name": "Acme", "rate_limit": {"limit": 5, "window": "1s"}}`)
	if o["org_id"] != "acme" || o["name"] != "Acme" || !reflect.DeepEqual(o["members"], []any{}) || !reflect.DeepEqual(o["metadata"], map[string]any{}) {
		t.Fatalf("org = %v", o)
	}
	mem := e.must(200, "PUT", "/v1/orgs/acme/members/bob", `{"role": "Owner"}`)
	if !reflect.DeepEqual(mem, map[string]any{"org_id": "acme", "user_id": "bob", "role": "Owner", "created_at": float64(t0.Unix())}) {
		t.Fatalf("membership = %v", mem)
	}
	u = e.must(200, "GET", "/v1/users/bob", "")
	if !reflect.DeepEqual(u["orgs"], []any{map[string]any{"org_id": "acme", "name": "Acme", "role": "Owner"}}) {
		t.Fatalf("user orgs = %v", u["orgs"])
	}
	o = e.must(200, "GET", "/v1/orgs/acme", "")
	if ms := list(t, o, "members"); len(ms) != 1 || ms[0].(map[string]any)["role"] != "Owner" {
		t.Fatalf("org members = %v", o)
	}
	e.must(204, "DELETE", "/v1/orgs/acme/members/bob", "")
	if o = e.must(200, "GET", "/v1/orgs/acme", ""); len(list(t, o, "members")) != 0 {
		t.Fatalf("members after removal = %v", o)
	}
	e.must(404, "DELETE", "/v1/orgs/acme/members/bob", "")

	// Deleting owners archives their keys.
	_, personal := e.key(`{"user_id": "bob"}`)
	_, orgTok := e.key(`{"org_id": "acme"}`)
	e.must(204, "DELETE", "/v1/users/bob", "")
	e.must(404, "GET", "/v1/users/bob", "")
	e.must(204, "DELETE", "/v1/orgs/acme", "")
	e.must(404, "GET", "/v1/orgs/acme", "")
	for _, tok := range []string{personal, orgTok} {
		if _, err := e.svc.Validate(ctx, tok); !errors.Is(err, keys.ErrInvalidKey) {
			t.Errorf("key of a deleted owner: %v", err)
		}
	}
	if m := e.must(200, "GET", "/v1/keys?status=archived", ""); len(list(t, m, "keys")) != 2 {
		t.Fatalf("archived keys = %v", m)
	}
}

func TestUsage(t *testing.T) {
	e := newEnv(t, nil)
	e.user("alice")
	e.org("acme", "alice")
	k1, _ := e.key(`{"user_id": "alice"}`)
	k2, _ := e.key(`{"user_id": "alice"}`)
	k3, _ := e.key(`{"org_id": "acme"}`)
	now := t0.Unix()
	err := e.store.AddUsage(context.Background(), []keys.UsageCount{
		{KeyID: k1, Minute: now - 3600, Allowed: 5, RateLimited: 1},
		{KeyID: k1, Minute: now - 60, Allowed: 2},
		{KeyID: k2, Minute: now - 60, Allowed: 3},
		{KeyID: k3, Minute: now - 7200, Allowed: 7},
		{KeyID: k3, Minute: now - 2*86400, Allowed: 100}, // outside the default range
	})
	if err != nil {
		t.Fatal(err)
	}
	m := e.must(200, "GET", "/v1/usage?key_id="+k1, "")
	points := list(t, m, "points")
	if m["interval"] != "hour" || num(t, m, "total") != 8 || len(points) != 24 || num(t, m, "from") != now-86400 || num(t, m, "to") != now {
		t.Fatalf("key usage = %v", m)
	}
	if p := points[23].(map[string]any); num(t, p, "t") != now-3600 || num(t, p, "allowed") != 7 || num(t, p, "rate_limited") != 1 {
		t.Fatalf("point 23 = %v", p)
	}
	if p := points[0].(map[string]any); num(t, p, "t") != now-86400 || num(t, p, "allowed") != 0 {
		t.Fatalf("empty point 0 = %v", p)
	}
	if m = e.must(200, "GET", "/v1/usage?user_id=alice", ""); num(t, m, "total") != 11 {
		t.Fatalf("user usage = %v", m)
	}
	if m = e.must(200, "GET", "/v1/usage?org_id=acme&interval=day&from="+strconv.FormatInt(now-3*86400, 10), ""); num(t, m, "total") != 107 {
		t.Fatalf("org usage = %v", m)
	}
	m = e.must(200, "GET", fmt.Sprintf("/v1/usage?key_id=%s&interval=minute&from=%d&to=%d", k1, now-300, now), "")
	if points = list(t, m, "points"); len(points) != 5 || num(t, m, "total") != 2 || num(t, points[4].(map[string]any), "allowed") != 2 {
		t.Fatalf("minute usage = %v", m)
	}
	if m = e.must(200, "GET", "/v1/usage?user_id=nobody", ""); num(t, m, "total") != 0 || len(list(t, m, "points")) != 24 {
		t.Fatalf("usage of nobody = %v", m)
	}

	e2 := newEnv(t, func(o *admin.Options) { o.Usage = nil })
	if r := e2.call("GET", "/v1/usage?user_id=alice", ""); r.status != 501 || r.obj(t)["error"] != "not_implemented" {
		t.Fatalf("no usage store: %d %s", r.status, r.body)
	}
}

func TestAuditPagination(t *testing.T) {
	e := newEnv(t, nil)
	for i := range 7 {
		e.user(fmt.Sprintf("u%d", i))
	}
	var ids []float64
	next := ""
	for page := 0; ; page++ {
		q := "/v1/audit?limit=3&action=user.upserted"
		if next != "" {
			q += "&before=" + next
		}
		m := e.must(200, "GET", q, "")
		for _, ev := range list(t, m, "events") {
			ids = append(ids, ev.(map[string]any)["id"].(float64))
		}
		if next = cursor(t, m); next == "" {
			break
		}
		if page > 5 {
			t.Fatal("pagination does not end")
		}
	}
	if len(ids) != 7 {
		t.Fatalf("walked %d events, want 7: %v", len(ids), ids)
	}
	for i := 1; i < len(ids); i++ {
		if ids[i] >= ids[i-1] {
			t.Fatalf("events not newest first: %v", ids)
		}
	}
	m := e.must(200, "GET", "/v1/audit?user_id=u3", "")
	if evs := list(t, m, "events"); len(evs) != 1 || evs[0].(map[string]any)["actor"] != "admin" || cursor(t, m) != "" {
		t.Fatalf("audit for u3 = %v", m)
	}
}

func TestPortalLinks(t *testing.T) {
	e := newEnv(t, nil)
	e.user("alice")
	e.org("acme", "alice")
	m := e.must(201, "POST", "/v1/portal-links", `{"user_id": "alice", "org_id": "acme", "ttl_seconds": 60}`)
	if m["url"] != "http://127.0.0.1:8080/_keygate/portal/login?t=abc" || num(t, m, "expires_at") != t0.Unix()+60 {
		t.Fatalf("link = %v", m)
	}
	e.must(201, "POST", "/v1/portal-links", `{"user_id": "alice"}`)
	if got := e.linker.calls; !reflect.DeepEqual(got, []string{"alice/acme/1m0s", "alice//0s"} /* 0: the portal applies portal.link_ttl */) {
		t.Fatalf("linker calls = %v", got)
	}
	e2 := newEnv(t, func(o *admin.Options) { o.PortalLinks = nil })
	if r := e2.call("POST", "/v1/portal-links", `{"user_id": "alice"}`); r.status != 501 {
		t.Fatalf("no linker: %d %s", r.status, r.body)
	}
}

func TestHealthReadyMetrics(t *testing.T) {
	e := newEnv(t, nil)
	for _, path := range []string{"/healthz", "/readyz"} {
		r := e.callAs("", "GET", path, "")
		if r.status != 200 || strings.TrimSpace(string(r.body)) != `{"status":"ok"}` {
			t.Fatalf("%s: %d %s", path, r.status, r.body)
		}
	}
	e.ready.Store(errors.New("store /secret/path unreachable"))
	if r := e.callAs("", "GET", "/readyz", ""); r.status != 503 || strings.Contains(string(r.body), "secret") {
		t.Fatalf("readyz when not ready: %d %s", r.status, r.body)
	}
	if r := e.callAs("", "GET", "/healthz", ""); r.status != 200 {
		t.Fatalf("healthz when not ready: %d", r.status)
	}
	if r := e.callAs("", "GET", "/metrics", ""); r.status != 401 {
		t.Fatalf("metrics without token: %d", r.status)
	}
	r := e.call("GET", "/metrics", "")
	if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/plain") || !strings.Contains(string(r.body), "keygate_up 1") {
		t.Fatalf("metrics: %d %v %s", r.status, r.header, r.body)
	}
	e2 := newEnv(t, func(o *admin.Options) { o.Metrics, o.Ready = nil, nil })
	if r := e2.call("GET", "/metrics", ""); r.status != 404 {
		t.Fatalf("metrics off: %d", r.status)
	}
	if r := e2.callAs("", "GET", "/readyz", ""); r.status != 200 {
		t.Fatalf("readyz without Ready: %d", r.status)
	}
}

func TestAuth(t *testing.T) {
	e := newEnv(t, nil)
	e.user("alice")
	calls := [][2]string{
		{"GET", "/v1/keys"}, {"POST", "/v1/keys"}, {"GET", "/v1/users/alice"}, {"DELETE", "/v1/users/alice"},
		{"POST", "/v1/validate"}, {"GET", "/v1/usage"}, {"GET", "/v1/audit"}, {"GET", "/metrics"}, {"GET", "/v1/nothing"},
		{"GET", "/debug/pprof/"}, {"GET", "/debug/pprof/heap"},
	}
	for _, auth := range []string{"", "Bearer", "Bearer ", "Bearer wrong", "Bearer " + testToken + "x", "Basic " + testToken, testToken, "Bearer " + testToken[:4]} {
		for _, c := range calls {
			before := e.dump()
			r := e.callAs(auth, c[0], c[1], `{}`)
			if r.status != 401 || r.obj(t)["error"] != "unauthorized" || r.header.Get("WWW-Authenticate") == "" {
				t.Errorf("%q %s %s: %d %s", auth, c[0], c[1], r.status, r.body)
			}
			if e.dump() != before {
				t.Fatalf("%q %s %s changed the database", auth, c[0], c[1])
			}
		}
	}
	if r := e.callAs("bearer "+testToken, "GET", "/v1/keys", ""); r.status != 200 {
		t.Fatalf("lower-case scheme: %d", r.status)
	}
	if r := e.callAs("Bearer "+testToken, "GET", "/debug/pprof/heap?debug=1", ""); r.status != 200 || !strings.Contains(string(r.body), "heap profile") {
		t.Fatalf("pprof heap with the token: %d", r.status)
	}
	if !e.srv.CheckToken(testToken) || e.srv.CheckToken("") || e.srv.CheckToken("x") {
		t.Fatal("CheckToken")
	}

	// No configured token refuses everything, even an empty one.
	e2 := newEnv(t, func(o *admin.Options) { o.Token = "" })
	for _, auth := range []string{"", "Bearer ", "Bearer x"} {
		if r := e2.callAs(auth, "GET", "/v1/keys", ""); r.status != 401 {
			t.Fatalf("no token configured, %q: %d", auth, r.status)
		}
	}
	if e2.srv.CheckToken("") {
		t.Fatal("CheckToken accepts an empty token when none is configured")
	}
}

func TestListsAndPagination(t *testing.T) {
	e := newEnv(t, nil)
	for _, c := range []struct{ path, field string }{
		{"/v1/keys", "keys"}, {"/v1/keys?status=all", "keys"}, {"/v1/users", "users"}, {"/v1/orgs", "orgs"}, {"/v1/audit", "events"},
	} {
		r := e.call("GET", c.path, "")
		if r.status != 200 || !strings.Contains(string(r.body), `"`+c.field+`":[]`) || !strings.Contains(string(r.body), `"next_cursor":""`) {
			t.Errorf("empty %s: %d %s", c.path, r.status, r.body)
		}
	}

	e.user("alice")
	want := map[string]bool{}
	for range 25 {
		id, _ := e.key(`{"user_id": "alice"}`)
		want[id] = true
	}
	for i := range 23 {
		e.user(fmt.Sprintf("user%02d", i))
		e.org(fmt.Sprintf("org%02d", i))
	}
	walk := func(path, field, idField string, pageSize int) map[string]bool {
		t.Helper()
		seen := map[string]bool{}
		next := ""
		for pages := 0; ; pages++ {
			q := fmt.Sprintf("%s?page_size=%d", path, pageSize)
			if next != "" {
				q += "&cursor=" + next
			}
			m := e.must(200, "GET", q, "")
			items := list(t, m, field)
			if len(items) > pageSize {
				t.Fatalf("%s: %d items on a page of %d", q, len(items), pageSize)
			}
			for _, it := range items {
				id := it.(map[string]any)[idField].(string)
				if seen[id] {
					t.Fatalf("%s: %s seen twice", q, id)
				}
				seen[id] = true
			}
			if next = cursor(t, m); next == "" {
				return seen
			}
			if pages > 50 {
				t.Fatalf("%s: pagination does not end", path)
			}
		}
	}
	if got := walk("/v1/keys", "keys", "id", 10); !reflect.DeepEqual(got, want) {
		t.Fatalf("walked %d keys, want %d", len(got), len(want))
	}
	if got := walk("/v1/users", "users", "user_id", 7); len(got) != 24 {
		t.Fatalf("walked %d users, want 24", len(got))
	}
	if got := walk("/v1/orgs", "orgs", "org_id", 23); len(got) != 23 {
		t.Fatalf("walked %d orgs, want 23", len(got))
	}
}

func TestRoutes(t *testing.T) {
	e := newEnv(t, nil)
	// Pages are added on the same mux; "GET /" must not conflict with the API.
	e.srv.Mux().HandleFunc("GET /", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("page")) })
	if r := e.callAs("", "GET", "/", ""); r.status != 200 || string(r.body) != "page" {
		t.Fatalf("page: %d %s", r.status, r.body)
	}
	if r := e.call("GET", "/v1/keys", ""); r.status != 200 {
		t.Fatalf("API after adding a page: %d", r.status)
	}
	r := e.call("GET", "/v1/nothing", "")
	if r.status != 404 || r.obj(t)["error"] != "not_found" {
		t.Fatalf("unknown call: %d %s", r.status, r.body)
	}
	r = e.call("PUT", "/v1/keys", "{}")
	if r.status != 405 || r.obj(t)["error"] != "method_not_allowed" || r.header.Get("Allow") != "GET, POST" {
		t.Fatalf("wrong method: %d %v %s", r.status, r.header, r.body)
	}
	if r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("Cache-Control = %q", r.header.Get("Cache-Control"))
	}
}

func TestConcurrentCreateArchive(t *testing.T) {
	e := newEnv(t, nil)
	e.user("alice")
	const n = 50
	var wg sync.WaitGroup
	errs := make(chan string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := fmt.Sprintf(`{"user_id": "alice", "display_name": "worker %d"}`, i)
			req, _ := http.NewRequest("POST", e.url+"/v1/keys", strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+testToken)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				errs <- err.Error()
				return
			}
			var k struct{ ID string }
			err = decodeAndClose(res, &k)
			if res.StatusCode != 201 || err != nil {
				errs <- fmt.Sprintf("create: %d %v", res.StatusCode, err)
				return
			}
			req, _ = http.NewRequest("POST", e.url+"/v1/keys/"+k.ID+"/archive", nil)
			req.Header.Set("Authorization", "Bearer "+testToken)
			if res, err = http.DefaultClient.Do(req); err != nil {
				errs <- err.Error()
				return
			}
			var body2 map[string]any
			if err := decodeAndClose(res, &body2); res.StatusCode != 200 || err != nil {
				errs <- fmt.Sprintf("archive: %d %v %v", res.StatusCode, err, body2)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	m := e.must(200, "GET", "/v1/keys?status=archived&page_size=1000", "")
	if got := len(list(t, m, "keys")); got != n {
		t.Fatalf("%d archived keys, want %d", got, n)
	}
}
