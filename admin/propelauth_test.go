package admin_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/keygate/keygate/keys"
)

// The wire shapes of the PropelAuth routes (shared/PROPELAUTH.md). The real
// SDK runs against the real binary in propelauth_test.go at the root; these
// pin the answers byte by byte where the SDK would not notice a change.

const pa = "/api/backend/v1/end_user_api_keys"

// paEnv is an env with alice (member of acme as Admin, and of beta) and bob.
func paEnv(t *testing.T) *env {
	e := newEnv(t, nil)
	e.must(200, "PUT", "/v1/users/alice", `{"email": "alice@example.com", "metadata": {"team_name": "x"}}`)
	e.user("bob")
	e.must(200, "PUT", "/v1/orgs/acme", `{"name": "Acme Inc.", "metadata": {"billing_tier": "gold"}}`)
	e.must(200, "PUT", "/v1/orgs/acme/members/alice", `{"role": "Admin"}`)
	e.must(200, "PUT", "/v1/orgs/beta", `{"name": "Ünïcode  Beta"}`)
	e.must(200, "PUT", "/v1/orgs/beta/members/alice", `{"role": "Member"}`)
	return e
}

// jsonEq fails unless got is the JSON value want (an object compared as such).
func jsonEq(t *testing.T, what string, got []byte, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("%s: not JSON: %s", what, got)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("%s: bad want: %v", what, err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("%s:\n got %s\nwant %s", what, got, want)
	}
}

func TestPropelAuthWrongIntegrationKey(t *testing.T) {
	e := paEnv(t)
	id := strings.Repeat("a", 32)
	for _, c := range []struct{ method, path, body string }{
		{"POST", pa, `{}`}, {"GET", pa, ""}, {"GET", pa + "/archived", ""}, {"GET", pa + "/usage?date=2027-01-15", ""},
		{"POST", pa + "/import", `{}`}, {"POST", pa + "/validate", `{}`}, {"POST", pa + "/validate_imported", `{}`},
		{"GET", pa + "/" + id, ""}, {"PATCH", pa + "/" + id, `{}`}, {"DELETE", pa + "/" + id, ""}, {"GET", pa + "/a/b", ""},
	} {
		for _, auth := range []string{"", "Bearer wrong", "Basic " + testToken} {
			if r := e.callAs(auth, c.method, c.path, c.body); r.status != http.StatusUnauthorized {
				t.Errorf("%s %s with %q: %d, want 401: %s", c.method, c.path, auth, r.status, r.body)
			}
		}
	}
}

func TestPropelAuthKeyRecordsAndValidation(t *testing.T) {
	e := paEnv(t)
	now := t0.Unix()
	exp := now + 3600
	personal := e.must(200, "POST", pa, fmt.Sprintf(`{"user_id": "alice", "expires_at_seconds": %d, "metadata": {"plan_tier": "pro"}, "display_name": "CI key"}`, exp))
	org := e.must(200, "POST", pa, `{"org_id": "acme", "user_id": "alice", "metadata": {"scope": "read"}}`)
	orgOnly := e.must(200, "POST", pa, `{"org_id": "acme"}`)
	generic := e.must(200, "POST", pa, `{}`)
	for _, m := range []map[string]any{personal, org, orgOnly, generic} {
		if len(m) != 2 || !keys.ValidKeyID(m["api_key_id"].(string)) || m["api_key_token"] == "" {
			t.Fatalf("create answer %v, want api_key_id (32 hex) and api_key_token", m)
		}
	}
	pid := personal["api_key_id"].(string)
	jsonEq(t, "personal record", e.call("GET", pa+"/"+pid, "").body, fmt.Sprintf(
		`{"api_key_id": %q, "created_at": %d, "expires_at_seconds": %d, "metadata": {"plan_tier": "pro"}, "user_id": "alice", "org_id": null, "display_name": "CI key"}`,
		pid, now, exp))
	// Upper-case hex names the same key (the SDK accepts it).
	if r := e.call("GET", pa+"/"+strings.ToUpper(pid), ""); r.status != 200 {
		t.Fatalf("upper-case id: %d %s", r.status, r.body)
	}
	gid := generic["api_key_id"].(string)
	jsonEq(t, "generic record", e.call("GET", pa+"/"+gid, "").body, fmt.Sprintf(
		`{"api_key_id": %q, "created_at": %d, "expires_at_seconds": null, "metadata": {}, "user_id": null, "org_id": null, "display_name": ""}`, gid, now))

	validate := func(token string) []byte {
		t.Helper()
		r := e.call("POST", pa+"/validate", fmt.Sprintf(`{"api_key_token": %q}`, token))
		if r.status != 200 {
			t.Fatalf("validate: %d %s", r.status, r.body)
		}
		if r.header.Get("RateLimit-Limit") != "10" {
			t.Errorf("validate: RateLimit-Limit %q, want the gate's headers", r.header.Get("RateLimit-Limit"))
		}
		return r.body
	}
	acme := `{"org_id": "acme", "org_name": "Acme Inc.", "url_safe_org_name": "acme-inc", "org_metadata": {"billing_tier": "gold"},
		"user_role": "Admin", "inherited_user_roles_plus_current_role": ["Admin"], "user_permissions": [],
		"org_role_structure": "single_role_in_hierarchy", "additional_roles": []}`
	beta := `{"org_id": "beta", "org_name": "Ünïcode  Beta", "url_safe_org_name": "n-code-beta", "org_metadata": {},
		"user_role": "Member", "inherited_user_roles_plus_current_role": ["Member"], "user_permissions": [],
		"org_role_structure": "single_role_in_hierarchy", "additional_roles": []}`
	alice := fmt.Sprintf(`{"user_id": "alice", "email": "alice@example.com", "email_confirmed": true, "has_password": false,
		"locked": false, "enabled": true, "mfa_enabled": false, "can_create_orgs": false, "created_at": %d, "last_active_at": %d,
		"metadata": {"team_name": "x"}, "org_id_to_org_info": {"acme": %s, "beta": %s}}`, now, now, acme, beta)
	acmeOrg := fmt.Sprintf(`{"org_id": "acme", "org_name": "Acme Inc.", "name": "Acme Inc.", "metadata": {"billing_tier": "gold"},
		"is_saml_configured": false, "can_setup_saml": false, "created_at": %d}`, now)
	jsonEq(t, "personal validation", validate(personal["api_key_token"].(string)), fmt.Sprintf(
		`{"metadata": {"plan_tier": "pro"}, "user": %s, "org": null, "user_in_org": null, "user_id": "alice", "org_id": null}`, alice))
	jsonEq(t, "org validation", validate(org["api_key_token"].(string)), fmt.Sprintf(
		`{"metadata": {"scope": "read"}, "user": %s, "org": %s, "user_in_org": %s, "user_id": "alice", "org_id": "acme"}`, alice, acmeOrg, acme))
	jsonEq(t, "org validation without creator", validate(orgOnly["api_key_token"].(string)), fmt.Sprintf(
		`{"metadata": {}, "user": null, "org": %s, "user_in_org": null, "user_id": null, "org_id": "acme"}`, acmeOrg))
	jsonEq(t, "generic validation", validate(generic["api_key_token"].(string)),
		`{"metadata": {}, "user": null, "org": null, "user_in_org": null, "user_id": null, "org_id": null}`)
}

func TestPropelAuthValidateErrors(t *testing.T) {
	e := paEnv(t)
	expired := e.must(200, "POST", pa, fmt.Sprintf(`{"user_id": "bob", "expires_at_seconds": %d}`, t0.Unix()+60))
	archived := e.must(200, "POST", pa, `{"user_id": "bob"}`)
	e.must(200, "DELETE", pa+"/"+archived["api_key_id"].(string), "")
	blocked := e.must(200, "POST", pa, `{"user_id": "alice"}`)
	e.must(200, "POST", "/v1/users/alice/block", "")
	e.clock.Advance(61e9)
	for _, c := range []struct{ name, body, want string }{
		{"unknown", `{"api_key_token": "kgp_unknown"}`, "invalid"},
		{"malformed", `{"api_key_token": "not a token"}`, "invalid"},
		{"expired", fmt.Sprintf(`{"api_key_token": %q}`, expired["api_key_token"]), "expired"},
		{"archived", fmt.Sprintf(`{"api_key_token": %q}`, archived["api_key_token"]), "invalid"},
		{"owner blocked", fmt.Sprintf(`{"api_key_token": %q}`, blocked["api_key_token"]), "invalid"},
		{"missing", `{}`, "required"},
	} {
		for _, path := range []string{"/validate", "/validate_imported"} {
			r := e.call("POST", pa+path, c.body)
			m := r.obj(t)
			msgs, _ := m["api_key_token"].([]any)
			if r.status != 400 || len(m) != 1 || len(msgs) != 1 || !strings.Contains(msgs[0].(string), c.want) {
				t.Errorf("%s %s: %d %s, want 400 {\"api_key_token\": [\"…%s…\"]}", c.name, path, r.status, r.body, c.want)
			}
		}
	}

	ok := e.must(200, "POST", pa, `{"user_id": "bob"}`)
	body := fmt.Sprintf(`{"api_key_token": %q}`, ok["api_key_token"])
	e.checker.limited.Store(true)
	r := e.call("POST", pa+"/validate", body)
	jsonEq(t, "rate limited", r.body, `{"wait_seconds": 1.5, "error_code": "rate_limit_exceeded",
		"user_facing_error": "Too many requests: the key's owner is over its rate limit; try again in 2 s"}`)
	if r.status != 429 || r.header.Get("Retry-After") != "2" {
		t.Fatalf("rate limited: %d, Retry-After %q", r.status, r.header.Get("Retry-After"))
	}
	e.checker.limited.Store(false)
	e.checker.fail.Store(true)
	if r := e.call("POST", pa+"/validate", body); r.status != 503 {
		t.Fatalf("store failure: %d %s, want 503 (never a 400 that blames the key)", r.status, r.body)
	}
}

func TestPropelAuthBadInput(t *testing.T) {
	e := paEnv(t)
	id := e.must(200, "POST", pa, `{"user_id": "bob"}`)["api_key_id"].(string)
	past := fmt.Sprint(t0.Unix() - 1)
	for _, c := range []struct{ method, path, body, want string }{
		{"POST", pa, `{"user_id": "nobody"}`, `{"user_id": ["user \"nobody\" does not exist"]}`},
		{"POST", pa, `{"org_id": "nowhere"}`, `{"org_id": ["org \"nowhere\" does not exist"]}`},
		{"POST", pa, `{"org_id": "acme", "user_id": "bob"}`, `{"user_id": ["user \"bob\" is not a member of org \"acme\""]}`},
		{"POST", pa, `{"user_id": "bob", "expires_at_seconds": ` + past + `}`, `{"expires_at_seconds": ["must be in the future"]}`},
		{"POST", pa, `{"user_id": "bob", "metadata": [1]}`, `{"metadata": ["must be a JSON object"]}`},
		{"POST", pa, `{"user_id": "bob", "metadata": "{\"a\":"}`, `{"metadata": ["must be a JSON object"]}`},
		{"POST", pa, `{"user_id": "bob", "expires_at_seconds": 1.5}`, `{"expires_at_seconds": ["must be an integer, not number 1.5"]}`},
		{"POST", pa + "/import", `{"user_id": "bob"}`, `{"imported_api_key": ["required: the existing token"]}`},
		{"POST", pa + "/import", `{"imported_api_key": "has space"}`, `{"imported_api_key": ["must be 1–512 printable ASCII characters without spaces, and a token with a keygate prefix must be well-formed"]}`},
		{"PATCH", pa + "/" + id, `{"expires_at_seconds": ` + past + `}`, `{"expires_at_seconds": ["must be in the future"]}`},
		{"PATCH", pa + "/" + id, `{"expires_at_seconds": 1900000000, "set_to_never_expire": true}`, `{"set_to_never_expire": ["cannot be combined with expires_at"]}`},
		{"PATCH", pa + "/" + id, `{"metadata": 3}`, `{"metadata": ["must be a JSON object"]}`},
		{"PATCH", pa + "/nothex", `{}`, `{"api_key_id": ["must be 32 hex characters"]}`},
		{"GET", pa + "/usage", "", `{"date": ["required: a day as YYYY-MM-DD (UTC)"]}`},
		{"GET", pa + "/usage?date=2027-13-01", "", `{"date": ["required: a day as YYYY-MM-DD (UTC)"]}`},
		{"GET", pa + "/usage?date=2027-01-01&api_key_id=" + strings.Repeat("0", 32), "", `{"api_key_id": ["no key with id 00000000000000000000000000000000"]}`},
		{"GET", pa + "?page_size=0", "", `{"page_size": ["must be an integer from 1 to 1000"]}`},
		{"GET", pa + "/archived?page_number=-1", "", `{"page_number": ["must be an integer from 0 to 2147483647"]}`},
	} {
		r := e.call(c.method, c.path, c.body)
		if r.status != 400 {
			t.Errorf("%s %s %s: %d %s, want 400", c.method, c.path, c.body, r.status, r.body)
			continue
		}
		jsonEq(t, c.method+" "+c.path+" "+c.body, r.body, c.want)
	}
}

func TestPropelAuthUpdateDeleteImport(t *testing.T) {
	e := paEnv(t)
	m := e.must(200, "POST", pa, fmt.Sprintf(`{"user_id": "bob", "expires_at_seconds": %d, "metadata": {"a": 1}}`, t0.Unix()+100))
	id := m["api_key_id"].(string)
	get := func() map[string]any { return e.must(200, "GET", pa+"/"+id, "") }

	// Absent fields are unchanged; metadata replaces, as an object or a
	// string holding one.
	jsonEq(t, "patch", e.call("PATCH", pa+"/"+id, `{}`).body, `{}`)
	if got := get(); num(t, got, "expires_at_seconds") != t0.Unix()+100 || got["metadata"].(map[string]any)["a"] != 1.0 {
		t.Fatalf("empty patch changed the key: %v", got)
	}
	e.must(200, "PATCH", pa+"/"+id, `{"metadata": "{\"b\": 2}"}`)
	e.must(200, "PATCH", pa+"/"+id, fmt.Sprintf(`{"expires_at_seconds": %d}`, t0.Unix()+500))
	if got := get(); num(t, got, "expires_at_seconds") != t0.Unix()+500 || !reflect.DeepEqual(got["metadata"], map[string]any{"b": 2.0}) {
		t.Fatalf("after patches: %v", got)
	}
	e.must(200, "PATCH", pa+"/"+id, `{"set_to_never_expire": true, "metadata": {"c": 3}}`)
	if got := get(); got["expires_at_seconds"] != nil || !reflect.DeepEqual(got["metadata"], map[string]any{"c": 3.0}) {
		t.Fatalf("after never expire: %v", got)
	}

	unknown := strings.Repeat("f", 32)
	for _, method := range []string{"GET", "PATCH", "DELETE"} {
		if r := e.call(method, pa+"/"+unknown, `{}`); r.status != 404 {
			t.Errorf("%s unknown id: %d %s, want 404", method, r.status, r.body)
		}
	}
	// DELETE archives, twice is fine, and an archived key cannot be updated.
	for range 2 {
		jsonEq(t, "delete", e.call("DELETE", pa+"/"+id, "").body, `{}`)
	}
	if got := e.must(200, "GET", "/v1/keys/"+id, ""); got["archived_at"] == nil {
		t.Fatalf("DELETE did not archive: %v", got)
	}
	if r := e.call("PATCH", pa+"/"+id, `{"metadata": {}}`); r.status != 400 || !strings.Contains(string(r.body), `"api_key_id"`) {
		t.Fatalf("patch archived: %d %s, want 400 naming api_key_id", r.status, r.body)
	}

	// Import: the token keeps working; the same token twice is a 400.
	imp := e.must(200, "POST", pa+"/import", `{"imported_api_key": "legacy-token-123", "org_id": "acme", "metadata": {"from": "propelauth"}}`)
	if len(imp) != 1 || !keys.ValidKeyID(imp["api_key_id"].(string)) {
		t.Fatalf("import answer %v", imp)
	}
	v := e.must(200, "POST", pa+"/validate_imported", `{"api_key_token": "legacy-token-123"}`)
	if v["org_id"] != "acme" || v["metadata"].(map[string]any)["from"] != "propelauth" {
		t.Fatalf("imported validation %v", v)
	}
	r := e.call("POST", pa+"/import", `{"imported_api_key": "legacy-token-123"}`)
	jsonEq(t, "duplicate import", r.body, `{"imported_api_key": ["a key with this token already exists"]}`)

	for _, path := range []string{pa + "/" + id + "/more", "/api/backend/v1/user/alice", pa + "/"} {
		if r := e.call("GET", path, ""); r.status != 404 || r.header.Get("Content-Type") != "application/json" {
			t.Fatalf("GET %s: %d %q, want a JSON 404", path, r.status, r.header.Get("Content-Type"))
		}
	}
}

// Pages are numbered from 0, ordered newest first with ties broken by id,
// and walking them neither repeats nor skips a key.
func TestPropelAuthPaging(t *testing.T) {
	e := paEnv(t)
	var want []string
	for i := range 23 {
		if i%5 == 0 {
			e.clock.Advance(1e9) // several keys share each created_at
		}
		owner := `"user_id": "alice"`
		if i%3 == 0 {
			owner = `"org_id": "acme", "user_id": "alice"`
		}
		want = append(want, e.must(200, "POST", pa, `{`+owner+`}`)["api_key_id"].(string))
	}
	e.must(200, "POST", pa, `{"user_id": "bob"}`) // not alice's
	var got []string
	var last map[string]any
	for page := 0; ; page++ {
		last = e.must(200, "GET", fmt.Sprintf("%s?user_email=ALICE@example.com&page_size=7&page_number=%d", pa, page), "")
		if num(t, last, "total_api_keys") != 23 || num(t, last, "current_page") != int64(page) || num(t, last, "page_size") != 7 {
			t.Fatalf("page %d: %v", page, last)
		}
		for _, k := range list(t, last, "api_keys") {
			got = append(got, k.(map[string]any)["api_key_id"].(string))
		}
		if !last["has_more_results"].(bool) {
			break
		}
	}
	if len(got) != 23 {
		t.Fatalf("walked %d keys, want 23", len(got))
	}
	seen := map[string]bool{}
	for i, id := range got {
		if seen[id] {
			t.Fatalf("key %s twice", id)
		}
		seen[id] = true
		if i > 0 {
			a, b := e.must(200, "GET", pa+"/"+got[i-1], ""), e.must(200, "GET", pa+"/"+id, "")
			if ca, cb := num(t, a, "created_at"), num(t, b, "created_at"); ca < cb || ca == cb && got[i-1] > id {
				t.Fatalf("order: %s (%d) before %s (%d)", got[i-1], ca, id, cb)
			}
		}
	}
	for _, id := range want {
		if !seen[id] {
			t.Fatalf("key %s skipped", id)
		}
	}
	// Filters: org keys only; archived ones move to /archived.
	if n := num(t, e.must(200, "GET", pa+"?org_id=acme", ""), "total_api_keys"); n != 8 {
		t.Fatalf("org_id=acme: %d keys, want 8", n)
	}
	e.must(200, "DELETE", pa+"/"+want[0], "")
	if n := num(t, e.must(200, "GET", pa+"?user_id=alice", ""), "total_api_keys"); n != 22 {
		t.Fatalf("current after delete: %d, want 22", n)
	}
	arch := e.must(200, "GET", pa+"/archived?user_id=alice", "")
	if l := list(t, arch, "api_keys"); len(l) != 1 || l[0].(map[string]any)["api_key_id"] != want[0] || arch["has_more_results"] != false {
		t.Fatalf("archived: %v", arch)
	}
	empty := e.must(200, "GET", pa+"?user_email=nobody@example.com&page_number=3", "")
	if len(list(t, empty, "api_keys")) != 0 || num(t, empty, "total_api_keys") != 0 {
		t.Fatalf("unknown email: %v", empty)
	}
}

func TestPropelAuthUsage(t *testing.T) {
	e := paEnv(t)
	mk := func(body string) string { return e.must(200, "POST", pa, body)["api_key_id"].(string) }
	personal, orgByAlice, orgOnly, bobs := mk(`{"user_id": "alice"}`), mk(`{"org_id": "acme", "user_id": "alice"}`), mk(`{"org_id": "acme"}`), mk(`{"user_id": "bob"}`)
	day := t0.Unix() - t0.Unix()%86400 // t0's UTC day
	date := t0.UTC().Format("2006-01-02")
	counts := []keys.UsageCount{
		{KeyID: personal, Minute: day, Allowed: 3, RateLimited: 1},
		{KeyID: personal, Minute: day + 86340, Allowed: 2},
		{KeyID: personal, Minute: day - 60, Allowed: 100},    // the day before
		{KeyID: personal, Minute: day + 86400, Allowed: 100}, // the day after
		{KeyID: orgByAlice, Minute: day + 600, Allowed: 10},
		{KeyID: orgOnly, Minute: day + 600, Allowed: 20},
		{KeyID: bobs, Minute: day + 60, Allowed: 7},
	}
	if err := e.store.AddUsage(context.Background(), counts); err != nil {
		t.Fatal(err)
	}
	for q, want := range map[string]int64{
		"":                                       43,
		"&api_key_id=" + personal:                6,
		"&api_key_id=" + strings.ToUpper(bobs):   7,
		"&api_key_id=" + bobs + "&user_id=alice": 0,
		"&user_id=alice":                         16,
		"&org_id=acme":                           30,
		"&org_id=acme&user_id=alice":             10,
		"&user_id=bob":                           7,
	} {
		got := e.must(200, "GET", pa+"/usage?date="+date+q, "")
		if len(got) != 1 || num(t, got, "count") != want {
			t.Errorf("usage%s: %v, want count %d", q, got, want)
		}
	}
	if got := e.must(200, "GET", pa+"/usage?date=2020-01-01", ""); num(t, got, "count") != 0 {
		t.Errorf("another day: %v", got)
	}
}

func TestURLSafeOrgName(t *testing.T) {
	e := newEnv(t, nil)
	e.user("u")
	for name, want := range map[string]string{"Acme Inc.": "acme-inc", "  --  ": "o1", "a__b": "a-b", "ÄBC": "bc", "x9": "x9"} {
		e.must(200, "PUT", "/v1/orgs/o1", fmt.Sprintf(`{"name": %q}`, name))
		e.must(200, "PUT", "/v1/orgs/o1/members/u", `{"role": "Owner"}`)
		tok := e.must(200, "POST", pa, `{"org_id": "o1", "user_id": "u"}`)["api_key_token"].(string)
		v := e.must(200, "POST", pa+"/validate", fmt.Sprintf(`{"api_key_token": %q}`, tok))
		if got := v["user_in_org"].(map[string]any)["url_safe_org_name"]; got != want {
			t.Errorf("url_safe_org_name(%q) = %v, want %q", name, got, want)
		}
	}
}
