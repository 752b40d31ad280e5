package admin_test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
)

// TestBadInput sends every call bad input and checks that each answers a
// 4xx JSON error naming the field, and that the database is unchanged.
func TestBadInput(t *testing.T) {
	e := newEnv(t, nil)
	e.user("alice")
	e.user("bob")
	e.must(200, "POST", "/v1/users/bob/block", "")
	e.user("carol")
	e.org("acme", "alice")
	keyID, token := e.key(`{"user_id": "alice"}`)
	archived, _ := e.key(`{"user_id": "alice"}`)
	e.must(200, "POST", "/v1/keys/"+archived+"/archive", "")

	unknownKey := strings.Repeat("0", 32)
	past := strconv.FormatInt(t0.Unix()-1, 10)
	future := strconv.FormatInt(t0.Unix()+3600, 10)
	bigMeta := `{"blob": "` + strings.Repeat("x", 5000) + `"}`
	bigBody := `{"display_name": "` + strings.Repeat("x", 2<<20) + `"}`
	longName := strings.Repeat("n", 201)
	longID := strings.Repeat("a", 129)
	var tooMany strings.Builder
	tooMany.WriteString(`{"keys": [`)
	for i := range 10_001 {
		if i > 0 {
			tooMany.WriteByte(',')
		}
		fmt.Fprintf(&tooMany, `{"token": "t%d"}`, i)
	}
	tooMany.WriteString(`]}`)

	cases := []struct {
		name         string
		method, path string
		body         string
		status       int
		code         string
		fields       []string // each must be named in fields
	}{
		// POST /v1/keys
		{"malformed JSON", "POST", "/v1/keys", `{"user_id":`, 400, "invalid_request", []string{"body"}},
		{"syntax error", "POST", "/v1/keys", `{"user_id" "alice"}`, 400, "invalid_request", []string{"body"}},
		{"array body", "POST", "/v1/keys", `[]`, 400, "invalid_request", []string{"body"}},
		{"null body", "POST", "/v1/keys", `null`, 400, "invalid_request", []string{"body"}},
		{"empty body", "POST", "/v1/keys", ``, 400, "invalid_request", []string{"body"}},
		{"blank body", "POST", "/v1/keys", " \n ", 400, "invalid_request", []string{"body"}},
		{"two objects", "POST", "/v1/keys", `{} {}`, 400, "invalid_request", []string{"body"}},
		{"trailing garbage", "POST", "/v1/keys", `{"user_id": "alice"}x`, 400, "invalid_request", []string{"body"}},
		{"unknown field", "POST", "/v1/keys", `{"user": "alice"}`, 400, "invalid_request", []string{"user"}},
		{"user_id wrong type", "POST", "/v1/keys", `{"user_id": 5}`, 400, "invalid_request", []string{"user_id"}},
		{"display_name wrong type", "POST", "/v1/keys", `{"display_name": true}`, 400, "invalid_request", []string{"display_name"}},
		{"expires_at string", "POST", "/v1/keys", `{"expires_at": "tomorrow"}`, 400, "invalid_request", []string{"expires_at"}},
		{"expires_at fraction", "POST", "/v1/keys", `{"expires_at": 1.5}`, 400, "invalid_request", []string{"expires_at"}},
		{"expires_at overflow", "POST", "/v1/keys", `{"expires_at": 1e30}`, 400, "invalid_request", []string{"expires_at"}},
		{"oversize body", "POST", "/v1/keys", bigBody, 400, "invalid_request", []string{"body"}},
		{"oversize metadata", "POST", "/v1/keys", `{"user_id": "alice", "metadata": ` + bigMeta + `}`, 400, "invalid_request", []string{"metadata"}},
		{"metadata array", "POST", "/v1/keys", `{"metadata": [1]}`, 400, "invalid_request", []string{"metadata"}},
		{"metadata string", "POST", "/v1/keys", `{"metadata": "x"}`, 400, "invalid_request", []string{"metadata"}},
		{"unknown type", "POST", "/v1/keys", `{"type": "team"}`, 400, "invalid_request", []string{"type"}},
		{"type wrong type", "POST", "/v1/keys", `{"type": 1}`, 400, "invalid_request", []string{"type"}},
		{"unknown user", "POST", "/v1/keys", `{"user_id": "nobody"}`, 400, "invalid_request", []string{"user_id"}},
		{"bad user id", "POST", "/v1/keys", `{"user_id": "a b"}`, 400, "invalid_request", []string{"user_id"}},
		{"long user id", "POST", "/v1/keys", `{"user_id": "` + longID + `"}`, 400, "invalid_request", []string{"user_id"}},
		{"unknown org", "POST", "/v1/keys", `{"org_id": "nope"}`, 400, "invalid_request", []string{"org_id"}},
		{"expires_in not a choice", "POST", "/v1/keys", `{"user_id": "alice", "expires_in": "5y"}`, 400, "invalid_request", []string{"expires_in"}},
		{"expires_at in the past", "POST", "/v1/keys", `{"user_id": "alice", "expires_at": ` + past + `}`, 400, "invalid_request", []string{"expires_at"}},
		{"expires_in and expires_at", "POST", "/v1/keys", `{"expires_in": "1mo", "expires_at": ` + future + `}`, 400, "invalid_request", []string{"expires_at"}},
		{"personal key for a blocked user", "POST", "/v1/keys", `{"user_id": "bob"}`, 400, "invalid_request", []string{"user_id"}},
		{"org key by a non-member", "POST", "/v1/keys", `{"org_id": "acme", "user_id": "carol"}`, 400, "invalid_request", []string{"user_id"}},
		{"personal key with an org", "POST", "/v1/keys", `{"type": "personal", "user_id": "alice", "org_id": "acme"}`, 400, "invalid_request", []string{"org_id"}},
		{"generic key with a user", "POST", "/v1/keys", `{"type": "generic", "user_id": "alice"}`, 400, "invalid_request", []string{"user_id"}},
		{"personal key without user", "POST", "/v1/keys", `{"type": "personal"}`, 400, "invalid_request", []string{"user_id"}},
		{"display_name too long", "POST", "/v1/keys", `{"display_name": "` + longName + `"}`, 400, "invalid_request", []string{"display_name"}},

		// GET, PATCH, archive, DELETE /v1/keys/{id}
		{"get bad id", "GET", "/v1/keys/nothex", "", 400, "invalid_request", []string{"id"}},
		{"get upper-case id", "GET", "/v1/keys/" + strings.ToUpper(keyID), "", 400, "invalid_request", []string{"id"}},
		{"get unknown key", "GET", "/v1/keys/" + unknownKey, "", 404, "not_found", nil},
		{"patch bad id", "PATCH", "/v1/keys/xyz", `{"display_name": "x"}`, 400, "invalid_request", []string{"id"}},
		{"patch unknown field", "PATCH", "/v1/keys/" + keyID, `{"name": "x"}`, 400, "invalid_request", []string{"name"}},
		{"patch empty body", "PATCH", "/v1/keys/" + keyID, ``, 400, "invalid_request", []string{"body"}},
		{"patch expires_at string", "PATCH", "/v1/keys/" + keyID, `{"expires_at": "x"}`, 400, "invalid_request", []string{"expires_at"}},
		{"patch expires_at object", "PATCH", "/v1/keys/" + keyID, `{"expires_at": {}}`, 400, "invalid_request", []string{"expires_at"}},
		{"patch expires_at past", "PATCH", "/v1/keys/" + keyID, `{"expires_at": ` + past + `}`, 400, "invalid_request", []string{"expires_at"}},
		{"patch expires_at and never", "PATCH", "/v1/keys/" + keyID, `{"expires_at": ` + future + `, "never_expire": true}`, 400, "invalid_request", []string{"never_expire"}},
		{"patch null expires_at but never_expire false", "PATCH", "/v1/keys/" + keyID, `{"expires_at": null, "never_expire": false}`, 400, "invalid_request", []string{"never_expire"}},
		{"patch never_expire string", "PATCH", "/v1/keys/" + keyID, `{"never_expire": "yes"}`, 400, "invalid_request", []string{"never_expire"}},
		{"patch oversize metadata", "PATCH", "/v1/keys/" + keyID, `{"metadata": ` + bigMeta + `}`, 400, "invalid_request", []string{"metadata"}},
		{"patch display_name number", "PATCH", "/v1/keys/" + keyID, `{"display_name": 5}`, 400, "invalid_request", []string{"display_name"}},
		{"patch unknown key", "PATCH", "/v1/keys/" + unknownKey, `{"display_name": "x"}`, 404, "not_found", nil},
		{"patch archived key", "PATCH", "/v1/keys/" + archived, `{"display_name": "x"}`, 409, "conflict", nil},
		{"archive bad id", "POST", "/v1/keys/xyz/archive", "", 400, "invalid_request", []string{"id"}},
		{"archive unknown key", "POST", "/v1/keys/" + unknownKey + "/archive", "", 404, "not_found", nil},
		{"delete bad id", "DELETE", "/v1/keys/xyz", "", 400, "invalid_request", []string{"id"}},
		{"delete unknown key", "DELETE", "/v1/keys/" + unknownKey, "", 404, "not_found", nil},

		// GET /v1/keys
		{"list bad status", "GET", "/v1/keys?status=bogus", "", 400, "invalid_request", []string{"status"}},
		{"list page_size 0", "GET", "/v1/keys?page_size=0", "", 400, "invalid_request", []string{"page_size"}},
		{"list page_size 1001", "GET", "/v1/keys?page_size=1001", "", 400, "invalid_request", []string{"page_size"}},
		{"list page_size abc", "GET", "/v1/keys?page_size=abc", "", 400, "invalid_request", []string{"page_size"}},
		{"list bad type", "GET", "/v1/keys?type=team", "", 400, "invalid_request", []string{"type"}},
		{"list bad user id", "GET", "/v1/keys?user_id=a%20b", "", 400, "invalid_request", []string{"user_id"}},
		{"list bad cursor", "GET", "/v1/keys?cursor=xyz", "", 400, "invalid_request", []string{"cursor"}},
		{"list unknown parameter", "GET", "/v1/keys?user=alice", "", 400, "invalid_request", []string{"user"}},
		{"list repeated parameter", "GET", "/v1/keys?user_id=a&user_id=b", "", 400, "invalid_request", []string{"user_id"}},

		// POST /v1/keys/import
		{"import no keys", "POST", "/v1/keys/import", `{}`, 400, "invalid_request", []string{"keys"}},
		{"import empty list", "POST", "/v1/keys/import", `{"keys": []}`, 400, "invalid_request", []string{"keys"}},
		{"import keys object", "POST", "/v1/keys/import", `{"keys": {}}`, 400, "invalid_request", []string{"keys"}},
		{"import element not an object", "POST", "/v1/keys/import", `{"keys": [1]}`, 400, "invalid_request", []string{"keys[0]"}},
		{"import element unknown field", "POST", "/v1/keys/import", `{"keys": [{"token": "abc"}, {"token": "abd", "bogus": 1}]}`, 400, "invalid_request", []string{"keys[1].bogus"}},
		{"import token wrong type", "POST", "/v1/keys/import", `{"keys": [{"token": 5}]}`, 400, "invalid_request", []string{"keys[0].token"}},
		{"import no token", "POST", "/v1/keys/import", `{"keys": [{}]}`, 400, "invalid_request", []string{"keys[0].token"}},
		{"import token and hash", "POST", "/v1/keys/import", `{"keys": [{"token": "abc", "token_sha256": "` + strings.Repeat("a", 64) + `"}]}`, 400, "invalid_request", []string{"keys[0].token"}},
		{"import bad hash", "POST", "/v1/keys/import", `{"keys": [{"token_sha256": "xyz"}]}`, 400, "invalid_request", []string{"keys[0].token_sha256"}},
		{"import malformed keygate token", "POST", "/v1/keys/import", `{"keys": [{"token": "kgp_abc"}]}`, 400, "invalid_request", []string{"keys[0].token"}},
		{"import token with a space", "POST", "/v1/keys/import", `{"keys": [{"token": "a b"}]}`, 400, "invalid_request", []string{"keys[0].token"}},
		{"import bad type", "POST", "/v1/keys/import", `{"keys": [{"token": "abc", "type": "team"}]}`, 400, "invalid_request", []string{"keys[0].type"}},
		{"import one bad owner", "POST", "/v1/keys/import", `{"keys": [{"token": "good-token-000001"}, {"token": "good-token-000002", "user_id": "nobody"}]}`, 400, "invalid_request", []string{"keys[1].user_id"}},
		{"import duplicates", "POST", "/v1/keys/import", `{"keys": [{"token": "same-token-000001"}, {"token": "same-token-000001"}]}`, 400, "invalid_request", []string{"keys[1].token"}},
		{"import oversize metadata", "POST", "/v1/keys/import", `{"keys": [{"token": "abc", "metadata": ` + bigMeta + `}]}`, 400, "invalid_request", []string{"keys[0].metadata"}},
		{"import short token", "POST", "/v1/keys/import", `{"keys": [{"token": "short-token-15c"}]}`, 400, "invalid_request", []string{"keys[0].token"}},
		{"import expires_at past", "POST", "/v1/keys/import", `{"keys": [{"token": "abc", "expires_at": ` + past + `}]}`, 400, "invalid_request", []string{"keys[0].expires_at"}},
		{"import existing token", "POST", "/v1/keys/import", `{"keys": [{"token": "` + token + `"}]}`, 409, "conflict", []string{"keys[0].token"}},
		{"import too many", "POST", "/v1/keys/import", tooMany.String(), 400, "invalid_request", []string{"keys"}},

		// POST /v1/validate
		{"validate no key", "POST", "/v1/validate", `{}`, 400, "invalid_request", []string{"api_key"}},
		{"validate key wrong type", "POST", "/v1/validate", `{"api_key": 5}`, 400, "invalid_request", []string{"api_key"}},
		{"validate unknown field", "POST", "/v1/validate", `{"key": "x"}`, 400, "invalid_request", []string{"key"}},
		{"validate malformed", "POST", "/v1/validate", `{"api_key": "x"`, 400, "invalid_request", []string{"body"}},

		// users
		{"put user bad id", "PUT", "/v1/users/a%20b", `{"email": "a@b"}`, 400, "invalid_request", []string{"user_id"}},
		{"put user long id", "PUT", "/v1/users/" + longID, `{"email": "a@b"}`, 400, "invalid_request", []string{"user_id"}},
		{"put user no email", "PUT", "/v1/users/dave", `{}`, 400, "invalid_request", []string{"email"}},
		{"put user email number", "PUT", "/v1/users/dave", `{"email": 5}`, 400, "invalid_request", []string{"email"}},
		{"put user long email", "PUT", "/v1/users/dave", `{"email": "` + strings.Repeat("e", 321) + `"}`, 400, "invalid_request", []string{"email"}},
		{"put user enabled string", "PUT", "/v1/users/dave", `{"email": "", "enabled": "yes"}`, 400, "invalid_request", []string{"enabled"}},
		{"put user oversize metadata", "PUT", "/v1/users/alice", `{"email": "", "metadata": ` + bigMeta + `}`, 400, "invalid_request", []string{"metadata"}},
		{"put user rate_limit number", "PUT", "/v1/users/dave", `{"email": "", "rate_limit": 5}`, 400, "invalid_request", []string{"rate_limit"}},
		{"put user rate_limit negative", "PUT", "/v1/users/dave", `{"email": "", "rate_limit": {"limit": -1, "window": "1m"}}`, 400, "invalid_request", []string{"rate_limit"}},
		{"put user rate_limit bad window", "PUT", "/v1/users/dave", `{"email": "", "rate_limit": {"limit": 1, "window": "soon"}}`, 400, "invalid_request", []string{"rate_limit"}},
		{"put user rate_limit no window", "PUT", "/v1/users/dave", `{"email": "", "rate_limit": {"limit": 1}}`, 400, "invalid_request", []string{"rate_limit"}},
		{"put user rate_limit limit string", "PUT", "/v1/users/dave", `{"email": "", "rate_limit": {"limit": "x", "window": "1m"}}`, 400, "invalid_request", []string{"rate_limit.limit"}},
		{"put user rate_limit unknown field", "PUT", "/v1/users/dave", `{"email": "", "rate_limit": {"limit": 1, "window": "1m", "burst": 2}}`, 400, "invalid_request", []string{"rate_limit"}},
		{"put user unknown field", "PUT", "/v1/users/dave", `{"email": "", "name": "Dave"}`, 400, "invalid_request", []string{"name"}},
		{"put user empty body", "PUT", "/v1/users/dave", ``, 400, "invalid_request", []string{"body"}},
		{"get user bad id", "GET", "/v1/users/a%20b", "", 400, "invalid_request", []string{"user_id"}},
		{"get unknown user", "GET", "/v1/users/nobody", "", 404, "not_found", nil},
		{"block unknown user", "POST", "/v1/users/nobody/block", "", 404, "not_found", nil},
		{"unblock bad id", "POST", "/v1/users/a%2Fb/unblock", "", 400, "invalid_request", []string{"user_id"}},
		{"delete unknown user", "DELETE", "/v1/users/nobody", "", 404, "not_found", nil},
		{"list users page_size 0", "GET", "/v1/users?page_size=0", "", 400, "invalid_request", []string{"page_size"}},
		{"list users bad cursor", "GET", "/v1/users?cursor=a%20b", "", 400, "invalid_request", []string{"cursor"}},
		{"list users unknown parameter", "GET", "/v1/users?email=x", "", 400, "invalid_request", []string{"email"}},

		// orgs and members
		{"put org no name", "PUT", "/v1/orgs/beta", `{}`, 400, "invalid_request", []string{"name"}},
		{"put org name number", "PUT", "/v1/orgs/beta", `{"name": 5}`, 400, "invalid_request", []string{"name"}},
		{"put org bad id", "PUT", "/v1/orgs/a%20b", `{"name": "B"}`, 400, "invalid_request", []string{"org_id"}},
		{"put org zero window", "PUT", "/v1/orgs/beta", `{"name": "B", "rate_limit": {"limit": 1, "window": "0s"}}`, 400, "invalid_request", []string{"rate_limit"}},
		{"put org oversize metadata", "PUT", "/v1/orgs/acme", `{"name": "A", "metadata": ` + bigMeta + `}`, 400, "invalid_request", []string{"metadata"}},
		{"put org metadata array", "PUT", "/v1/orgs/acme", `{"name": "A", "metadata": []}`, 400, "invalid_request", []string{"metadata"}},
		{"get unknown org", "GET", "/v1/orgs/nope", "", 404, "not_found", nil},
		{"delete unknown org", "DELETE", "/v1/orgs/nope", "", 404, "not_found", nil},
		{"put member no role", "PUT", "/v1/orgs/acme/members/carol", `{}`, 400, "invalid_request", []string{"role"}},
		{"put member long role", "PUT", "/v1/orgs/acme/members/carol", `{"role": "` + strings.Repeat("r", 65) + `"}`, 400, "invalid_request", []string{"role"}},
		{"put member role number", "PUT", "/v1/orgs/acme/members/carol", `{"role": 1}`, 400, "invalid_request", []string{"role"}},
		{"put member unknown org", "PUT", "/v1/orgs/nope/members/carol", `{"role": "Admin"}`, 404, "not_found", nil},
		{"put member unknown user", "PUT", "/v1/orgs/acme/members/nobody", `{"role": "Admin"}`, 404, "not_found", nil},
		{"put member bad user id", "PUT", "/v1/orgs/acme/members/a%20b", `{"role": "Admin"}`, 400, "invalid_request", []string{"user_id"}},
		{"put member bad ids", "PUT", "/v1/orgs/a%20b/members/c%20d", `{"role": "Admin"}`, 400, "invalid_request", []string{"org_id", "user_id"}},
		{"delete non-member", "DELETE", "/v1/orgs/acme/members/carol", "", 404, "not_found", nil},
		{"list orgs page_size big", "GET", "/v1/orgs?page_size=100000", "", 400, "invalid_request", []string{"page_size"}},

		// GET /v1/usage
		{"usage no owner", "GET", "/v1/usage", "", 400, "invalid_request", []string{"key_id"}},
		{"usage two owners", "GET", "/v1/usage?user_id=alice&org_id=acme", "", 400, "invalid_request", []string{"user_id", "org_id"}},
		{"usage bad interval", "GET", "/v1/usage?user_id=alice&interval=week", "", 400, "invalid_request", []string{"interval"}},
		{"usage bad from", "GET", "/v1/usage?user_id=alice&from=abc", "", 400, "invalid_request", []string{"from"}},
		{"usage negative to", "GET", "/v1/usage?user_id=alice&to=-5", "", 400, "invalid_request", []string{"to"}},
		{"usage from after to", "GET", "/v1/usage?user_id=alice&from=2000&to=1000", "", 400, "invalid_request", []string{"from"}},
		{"usage too many points", "GET", "/v1/usage?user_id=alice&interval=minute&from=" + strconv.FormatInt(t0.Unix()-30*86400, 10), "", 400, "invalid_request", []string{"from", "interval"}},
		{"usage bad key id", "GET", "/v1/usage?key_id=xyz", "", 400, "invalid_request", []string{"key_id"}},
		{"usage unknown key", "GET", "/v1/usage?key_id=" + unknownKey, "", 404, "not_found", nil},
		{"usage unknown parameter", "GET", "/v1/usage?user_id=alice&step=hour", "", 400, "invalid_request", []string{"step"}},

		// GET /v1/audit
		{"audit unknown action", "GET", "/v1/audit?action=bogus", "", 400, "invalid_request", []string{"action"}},
		{"audit limit 0", "GET", "/v1/audit?limit=0", "", 400, "invalid_request", []string{"limit"}},
		{"audit limit 1001", "GET", "/v1/audit?limit=1001", "", 400, "invalid_request", []string{"limit"}},
		{"audit negative before", "GET", "/v1/audit?before=-1", "", 400, "invalid_request", []string{"before"}},
		{"audit bad key id", "GET", "/v1/audit?key_id=xyz", "", 400, "invalid_request", []string{"key_id"}},
		{"audit unknown parameter", "GET", "/v1/audit?cursor=5", "", 400, "invalid_request", []string{"cursor"}},

		// POST /v1/portal-links
		{"portal no user", "POST", "/v1/portal-links", `{}`, 400, "invalid_request", []string{"user_id"}},
		{"portal unknown user", "POST", "/v1/portal-links", `{"user_id": "nobody"}`, 400, "invalid_request", []string{"user_id"}},
		{"portal blocked user", "POST", "/v1/portal-links", `{"user_id": "bob"}`, 400, "invalid_request", []string{"user_id"}},
		{"portal non-member org", "POST", "/v1/portal-links", `{"user_id": "carol", "org_id": "acme"}`, 400, "invalid_request", []string{"org_id"}},
		{"portal bad org id", "POST", "/v1/portal-links", `{"user_id": "alice", "org_id": "a b"}`, 400, "invalid_request", []string{"org_id"}},
		{"portal ttl 0", "POST", "/v1/portal-links", `{"user_id": "alice", "ttl_seconds": 0}`, 400, "invalid_request", []string{"ttl_seconds"}},
		{"portal ttl too long", "POST", "/v1/portal-links", `{"user_id": "alice", "ttl_seconds": 100000}`, 400, "invalid_request", []string{"ttl_seconds"}},
		{"portal ttl string", "POST", "/v1/portal-links", `{"user_id": "alice", "ttl_seconds": "60"}`, 400, "invalid_request", []string{"ttl_seconds"}},
		{"portal unknown field", "POST", "/v1/portal-links", `{"user_id": "alice", "redirect": "x"}`, 400, "invalid_request", []string{"redirect"}},

		// routes
		{"wrong method", "PUT", "/v1/keys", `{}`, 405, "method_not_allowed", nil},
		{"unknown call", "GET", "/v1/nothing", "", 404, "not_found", nil},
		{"unknown nested call", "POST", "/v1/keys/" + keyID + "/restore", "", 404, "not_found", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := e.dump()
			r := e.call(c.method, c.path, c.body)
			if r.status != c.status {
				t.Fatalf("status %d, want %d: %s", r.status, c.status, r.body)
			}
			if ct := r.header.Get("Content-Type"); ct != "application/json" {
				t.Fatalf("Content-Type %q", ct)
			}
			m := r.obj(t)
			if m["error"] != c.code || m["message"] == "" {
				t.Fatalf("error %v, want %s: %s", m["error"], c.code, r.body)
			}
			fields, ok := m["fields"].(map[string]any)
			if !ok {
				t.Fatalf("fields missing: %s", r.body)
			}
			for _, f := range c.fields {
				if probs, _ := fields[f].([]any); len(probs) == 0 {
					t.Errorf("field %q not named: %s", f, r.body)
				}
			}
			if len(c.fields) == 0 && len(fields) != 0 {
				t.Errorf("unexpected fields: %s", r.body)
			}
			if strings.Contains(string(r.body), token) {
				t.Fatal("an error shows a token")
			}
			if after := e.dump(); after != before {
				t.Fatalf("the database changed:\nbefore:\n%s\nafter:\n%s", before, after)
			}
		})
	}
	if n := e.linker.count(); n != 0 {
		t.Fatalf("portal linker called %d times on bad input", n)
	}
}
