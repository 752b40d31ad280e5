package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/admin"
	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/sqlite"
)

const cliToken = "cli-test-token"

// cliEnv is an admin port on 127.0.0.1:0 over SQLite, for the client.
type cliEnv struct {
	t   *testing.T
	url string
	svc *keys.Service
}

func newCLIEnv(t *testing.T) *cliEnv {
	t.Helper()
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "cli.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	tokens, err := keys.NewTokens("kg")
	if err != nil {
		t.Fatal(err)
	}
	svc, err := keys.NewService(ctx, store, tokens, keys.Options{
		Expirations: []keys.Expiration{{Name: "1mo", After: 30 * 24 * time.Hour}, {Name: "never", Never: true}},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(admin.New(admin.Options{Service: svc, Token: cliToken, Usage: store}).Handler())
	t.Cleanup(srv.Close)
	return &cliEnv{t: t, url: srv.URL, svc: svc}
}

// run runs the client with the admin URL and token in the environment.
func (e *cliEnv) run(args ...string) (stdout, stderr string, err error) {
	return e.runEnv([]string{"KEYGATE_ADMIN_URL=" + e.url, "KEYGATE_ADMIN_TOKEN=" + cliToken, "HOME=/nonexistent"}, args...)
}

func (e *cliEnv) runEnv(env []string, args ...string) (stdout, stderr string, err error) {
	var out, errOut bytes.Buffer
	err = runClient(context.Background(), args, env, &out, &errOut)
	return out.String(), errOut.String(), err
}

// ok runs the client and fails unless it succeeds.
func (e *cliEnv) ok(args ...string) string {
	e.t.Helper()
	out, errOut, err := e.run(args...)
	if err != nil || errOut != "" {
		e.t.Fatalf("%v: err %v, stderr %q", args, err, errOut)
	}
	return out
}

// okJSON runs the client and decodes its JSON output.
func (e *cliEnv) okJSON(args ...string) map[string]any {
	e.t.Helper()
	out := e.ok(args...)
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		e.t.Fatalf("%v: output is not JSON: %v\n%s", args, err, out)
	}
	return m
}

// fails runs the client, expects an error and returns stderr.
func (e *cliEnv) fails(args ...string) string {
	e.t.Helper()
	out, errOut, err := e.run(args...)
	if err == nil {
		e.t.Fatalf("%v: no error; stdout %q", args, out)
	}
	if !errors.Is(err, errReported) && !errors.Is(err, flag.ErrHelp) {
		e.t.Fatalf("%v: error %v does not say it was reported", args, err)
	}
	if out != "" {
		e.t.Fatalf("%v: stdout %q on failure", args, out)
	}
	return errOut
}

func TestClientKeys(t *testing.T) {
	e := newCLIEnv(t)
	u := e.okJSON("users", "upsert", "alice", "--email", "a@example.com")
	if u["user_id"] != "alice" || u["email"] != "a@example.com" {
		t.Fatalf("user = %v", u)
	}
	e.okJSON("orgs", "upsert", "acme", "--name", "Acme")
	m := e.okJSON("orgs", "add-member", "acme", "alice", "--role", "Admin")
	if m["role"] != "Admin" {
		t.Fatalf("membership = %v", m)
	}

	k := e.okJSON("keys", "create", "--user-id", "alice", "--display-name", "ci", "--expires-in", "1mo", "--metadata", `{"a":1}`)
	id, token := k["id"].(string), k["token"].(string)
	if k["type"] != "personal" || k["display_name"] != "ci" || k["expires_at"] == nil || k["metadata"].(map[string]any)["a"] != float64(1) {
		t.Fatalf("created = %v", k)
	}
	if _, err := e.svc.Validate(context.Background(), token); err != nil {
		t.Fatalf("created token does not validate: %v", err)
	}
	org := e.okJSON("keys", "create", "--org-id", "acme", "--user-id", "alice", "--expires-at", "2099-01-02T03:04:05Z")
	if org["type"] != "org" || org["expires_at"] != float64(time.Date(2099, 1, 2, 3, 4, 5, 0, time.UTC).Unix()) {
		t.Fatalf("org key = %v", org)
	}

	table := e.ok("keys", "list", "--user-id", "alice", "--status", "all")
	lines := strings.Split(strings.TrimSpace(table), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "ID ") || !strings.Contains(table, id) || !strings.Contains(table, "acme (by alice)") || strings.Contains(table, token) {
		t.Fatalf("table:\n%s", table)
	}
	list := e.okJSON("keys", "list", "--type", "personal", "--output", "json")
	if ks := list["keys"].([]any); len(ks) != 1 || list["next_cursor"] != "" {
		t.Fatalf("json list = %v", list)
	}

	if got := e.okJSON("keys", "get", id); got["id"] != id || got["token"] != nil {
		t.Fatalf("get = %v", got)
	}
	vertical := e.ok("keys", "get", id, "--output", "table") // a flag after the argument
	if !strings.Contains(vertical, "display_name:  ci") || !strings.Contains(vertical, "archived_at:   -") {
		t.Fatalf("vertical:\n%s", vertical)
	}
	if got := e.okJSON("keys", "update", id, "--display-name", "deploy", "--never-expire"); got["display_name"] != "deploy" || got["expires_at"] != nil {
		t.Fatalf("updated = %v", got)
	}
	if got := e.okJSON("keys", "--output", "json", "archive", id); got["archived_at"] == nil {
		t.Fatalf("archived = %v", got)
	}
	if out := e.ok("keys", "delete", id); out != "" {
		t.Fatalf("delete printed %q", out)
	}
	stderr := e.fails("keys", "get", id)
	if stderr != "error: not_found: key "+id+" not found\n" {
		t.Fatalf("stderr = %q", stderr)
	}
}

func TestClientUsersAndOrgs(t *testing.T) {
	e := newCLIEnv(t)
	e.ok("users", "upsert", "bob", "--email", "bob@example.com", "--metadata", `{"team":"x"}`, "--rate-limit", "100/1m")
	// Without --email the stored email is kept.
	u := e.okJSON("users", "upsert", "bob", "--enabled=false")
	if u["email"] != "bob@example.com" || u["enabled"] != false || u["rate_limit"] == nil {
		t.Fatalf("user = %v", u)
	}
	if u = e.okJSON("users", "upsert", "bob", "--rate-limit", "none"); u["rate_limit"] != nil || u["enabled"] != false {
		t.Fatalf("user = %v", u)
	}
	if u = e.okJSON("users", "unblock", "bob"); u["enabled"] != true {
		t.Fatalf("unblocked = %v", u)
	}
	if u = e.okJSON("users", "block", "bob"); u["enabled"] != false {
		t.Fatalf("blocked = %v", u)
	}
	e.ok("users", "upsert", "carol", "--email", "")
	e.ok("orgs", "upsert", "acme", "--name", "Acme")
	e.ok("orgs", "add-member", "acme", "bob")
	if u = e.okJSON("users", "get", "bob"); len(u["orgs"].([]any)) != 1 || u["orgs"].([]any)[0].(map[string]any)["role"] != "Member" {
		t.Fatalf("user orgs = %v", u)
	}
	if o := e.okJSON("orgs", "get", "acme"); len(o["members"].([]any)) != 1 {
		t.Fatalf("org = %v", o)
	}
	users := e.ok("users", "list")
	if !strings.Contains(users, "USER ID") || !strings.Contains(users, "bob@example.com") || !strings.Contains(users, "carol") {
		t.Fatalf("users table:\n%s", users)
	}
	if orgs := e.ok("orgs", "list"); !strings.Contains(orgs, "Acme") {
		t.Fatalf("orgs table:\n%s", orgs)
	}
	e.ok("orgs", "remove-member", "acme", "bob")
	if o := e.okJSON("orgs", "get", "acme"); len(o["members"].([]any)) != 0 {
		t.Fatalf("org after removal = %v", o)
	}
	e.ok("orgs", "delete", "acme")
	e.ok("users", "delete", "bob")
	if s := e.fails("users", "get", "bob"); !strings.HasPrefix(s, "error: not_found: ") {
		t.Fatalf("stderr = %q", s)
	}
}

func TestClientPagination(t *testing.T) {
	e := newCLIEnv(t)
	for range 5 {
		e.ok("keys", "create")
	}
	all := e.okJSON("keys", "list", "--page-size", "2", "--all", "--output", "json")
	if n := len(all["keys"].([]any)); n != 5 || all["next_cursor"] != "" {
		t.Fatalf("--all: %d keys, next_cursor %v", n, all["next_cursor"])
	}
	page := e.ok("keys", "list", "--page-size", "2")
	if n := strings.Count(page, "generic"); n != 2 || !strings.Contains(page, "(more: --cursor ") {
		t.Fatalf("one page:\n%s", page)
	}
	tableAll := e.ok("keys", "list", "--page-size", "2", "--all")
	if n := strings.Count(tableAll, "generic"); n != 5 || strings.Contains(tableAll, "more:") {
		t.Fatalf("table --all:\n%s", tableAll)
	}
}

func TestClientImport(t *testing.T) {
	e := newCLIEnv(t)
	file := filepath.Join(t.TempDir(), "import.json")
	if err := os.WriteFile(file, []byte(`{"keys": [{"token": "legacy-1", "display_name": "old"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	m := e.okJSON("keys", "import", file)
	if ks := m["keys"].([]any); len(ks) != 1 || ks[0].(map[string]any)["imported"] != true {
		t.Fatalf("import = %v", m)
	}
	if _, err := e.svc.Validate(context.Background(), "legacy-1"); err != nil {
		t.Fatal(err)
	}
}

func TestClientErrors(t *testing.T) {
	e := newCLIEnv(t)
	e.ok("users", "upsert", "alice", "--email", "a@example.com")

	s := e.fails("keys", "create", "--user-id", "nobody")
	if s != `error: invalid_request: invalid user_id: user "nobody" does not exist`+"\n" {
		t.Fatalf("API error printed as %q", s)
	}
	s = e.fails("keys", "create", "--user-id", "alice", "--expires-in", "5y", "--display-name", strings.Repeat("x", 201))
	if !strings.HasPrefix(s, "error: invalid_request: ") || !strings.Contains(s, "(display_name: must be at most 200 characters; expires_in: ") {
		t.Fatalf("two fields printed as %q", s)
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"keys", "get"}, "keys get: want <id>, got 0 argument(s)"},
		{[]string{"keys", "get", "a", "b"}, "keys get: want <id>, got 2 argument(s)"},
		{[]string{"orgs", "add-member", "acme"}, "orgs add-member: want <org> <user>"},
		{[]string{"keys", "frob"}, `unknown command "keys frob"`},
		{[]string{"keys"}, "keys: missing command"},
		{[]string{"keys", "list", "--output", "yaml"}, `--output: "yaml" is not json or table`},
		{[]string{"keys", "create", "--metadata", "{nope"}, "not valid JSON"},
		{[]string{"keys", "create", "--expires-at", "soon"}, "RFC 3339"},
		{[]string{"users", "upsert", "alice", "--rate-limit", "lots"}, "100/1m"},
		{[]string{"keys", "list", "--bogus"}, "flag provided but not defined: -bogus"},
		{[]string{"keys", "list", "-h"}, "-token"},
		{[]string{"keys", "import", "/nonexistent/file.json"}, "no such file"},
		{[]string{"keys", "list", "--token", "wrong"}, "error: unauthorized: "},
		{[]string{"keys", "list", "--status", "bogus"}, "(status: must be active, archived, expired or all)"},
	} {
		if s := e.fails(c.args...); !strings.Contains(s, c.want) {
			t.Errorf("%v: stderr %q, want %q in it", c.args, s, c.want)
		}
	}

	// No token anywhere.
	_, s, err := e.runEnv([]string{"KEYGATE_ADMIN_URL=" + e.url}, "keys", "list")
	if !errors.Is(err, errReported) || !strings.Contains(s, "no admin token") {
		t.Fatalf("no token: %v %q", err, s)
	}
	// Flags beat the environment.
	out, s, err := e.runEnv([]string{"KEYGATE_ADMIN_URL=http://127.0.0.1:1", "KEYGATE_ADMIN_TOKEN=wrong"}, "keys", "list", "--admin-url", e.url+"/", "--token", cliToken)
	if err != nil || !strings.HasPrefix(out, "ID ") {
		t.Fatalf("flags over env: %v %q %q", err, out, s)
	}
	// Something other than the admin API answering.
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "bad gateway", http.StatusBadGateway)
	}))
	defer bad.Close()
	if _, s, _ = e.runEnv([]string{"KEYGATE_ADMIN_TOKEN=x"}, "keys", "list", "--admin-url", bad.URL); s != "error: GET /v1/keys: HTTP 502: bad gateway\n" {
		t.Fatalf("non-API answer printed as %q", s)
	}
	// Nobody listening.
	if _, s, _ = e.runEnv([]string{"KEYGATE_ADMIN_TOKEN=x"}, "keys", "list", "--admin-url", "http://127.0.0.1:1"); !strings.Contains(s, "connection refused") {
		t.Fatalf("connection refused printed as %q", s)
	}
	// -h is help, not an error to report, and never shows the token.
	if _, s, err := e.run("keys", "list", "-h"); !errors.Is(err, flag.ErrHelp) || !strings.Contains(s, "-token") || strings.Contains(s, cliToken) {
		t.Fatalf("-h: %v %q", err, s)
	}
}
