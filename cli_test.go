package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/cli"
)

// cliEnv is a whole gateway on 127.0.0.1:0 and the environment pointing
// the CLI at its admin port.
type cliEnv struct {
	t   *testing.T
	app *App
	env []string
	dir string
}

func newCLIEnv(t *testing.T) *cliEnv {
	t.Helper()
	dir := t.TempDir()
	app := startApp(t, filepath.Join(dir, "kg.db"), echoUpstream(t).URL, "")
	return &cliEnv{t: t, app: app, dir: dir,
		env: []string{"KEYGATE_ADMIN_URL=http://" + app.AdminAddr(), "KEYGATE_ADMIN_TOKEN=" + testAdminToken, "HOME=/nonexistent"}}
}

// runCLI runs the command line with env and stdin and returns its exit
// status and output.
func runCLI(env []string, stdin string, args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = cli.Run(context.Background(), args, cli.Options{
		Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errOut, Env: env,
		Serve: func(context.Context, string) error { return fmt.Errorf("serve is not wired in this test") },
	})
	return code, out.String(), errOut.String()
}

func (e *cliEnv) run(args ...string) (int, string, string) { return runCLI(e.env, "", args...) }

// ok runs the command line and fails unless it succeeds quietly.
func (e *cliEnv) ok(args ...string) string {
	e.t.Helper()
	code, out, errOut := e.run(args...)
	if code != 0 || withoutProgress(errOut) != "" {
		e.t.Fatalf("%v: exit %d, stderr %q", args, code, errOut)
	}
	return out
}

// withoutProgress drops an import's progress lines.
func withoutProgress(stderr string) string {
	var b strings.Builder
	for _, l := range strings.SplitAfter(stderr, "\n") {
		if !strings.HasPrefix(l, "progress: ") {
			b.WriteString(l)
		}
	}
	return b.String()
}

// okJSON runs the command line and decodes its JSON output.
func (e *cliEnv) okJSON(args ...string) map[string]any {
	e.t.Helper()
	out := e.ok(args...)
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		e.t.Fatalf("%v: output is not JSON: %v\n%s", args, err, out)
	}
	return m
}

// fails runs the command line, expects exit status code and returns stderr.
func (e *cliEnv) fails(code int, args ...string) string {
	e.t.Helper()
	got, out, errOut := e.run(args...)
	if got != code {
		e.t.Fatalf("%v: exit %d, want %d; stderr %q", args, got, code, errOut)
	}
	if out != "" {
		e.t.Fatalf("%v: stdout %q on failure", args, out)
	}
	return errOut
}

func (e *cliEnv) file(name, content string) string {
	e.t.Helper()
	p := filepath.Join(e.dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		e.t.Fatal(err)
	}
	return p
}

func TestCLIKeys(t *testing.T) {
	e := newCLIEnv(t)
	u := e.okJSON("users", "upsert", "alice", "--email", "a@example.com")
	if u["user_id"] != "alice" || u["email"] != "a@example.com" {
		t.Fatalf("user = %v", u)
	}
	e.okJSON("orgs", "upsert", "acme", "--name", "Acme")
	if m := e.okJSON("members", "add", "acme", "alice", "--role", "Admin"); m["role"] != "Admin" {
		t.Fatalf("membership = %v", m)
	}
	k := e.okJSON("keys", "create", "--user-id", "alice", "--display-name", "ci", "--metadata", `{"a":1}`)
	id, token := k["id"].(string), k["token"].(string)
	if k["type"] != "personal" || k["display_name"] != "ci" || k["metadata"].(map[string]any)["a"] != float64(1) {
		t.Fatalf("created = %v", k)
	}
	if _, err := e.app.Service.Validate(context.Background(), token); err != nil {
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
	if list := e.okJSON("keys", "list", "--type", "personal", "-o", "json"); len(list["keys"].([]any)) != 1 || list["next_cursor"] != "" {
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
	v := e.okJSON("validate", token)
	if v["key"].(map[string]any)["id"] != id {
		t.Fatalf("validate = %v", v)
	}
	// From stdin, so the key is in no process list.
	if code, out, _ := runCLI(e.env, token+"\n", "validate"); code != 0 || !strings.Contains(out, id) {
		t.Fatalf("validate from stdin: %d %s", code, out)
	}
	rolled := e.okJSON("keys", "roll", id, "--grace", "24h")
	if rolled["rolled_from"] != id || rolled["token"] == nil || rolled["display_name"] != "deploy" {
		t.Fatalf("rolled = %v", rolled)
	}
	if got := e.okJSON("keys", "get", id); got["rolled_to"] != rolled["id"] || got["expires_at"] == nil {
		t.Fatalf("old key after roll = %v", got)
	}
	if v := e.okJSON("validate", rolled["token"].(string)); v["key"].(map[string]any)["id"] != rolled["id"] {
		t.Fatalf("rolled token does not validate: %v", v)
	}
	if got := e.okJSON("keys", "--output", "json", "archive", id); got["archived_at"] == nil {
		t.Fatalf("archived = %v", got)
	}
	if s := e.fails(1, "validate", token); !strings.Contains(s, "invalid_api_key") {
		t.Fatalf("validate archived: %q", s)
	}
	audit := e.ok("audit", "--key-id", id)
	for _, want := range []string{"api_key.created", "api_key.updated", "api_key.archived"} {
		if !strings.Contains(audit, want) {
			t.Fatalf("audit misses %s:\n%s", want, audit)
		}
	}
	if u := e.okJSON("usage", "--key-id", id, "--interval", "day"); u["interval"] != "day" {
		t.Fatalf("usage = %v", u)
	}
	if out := e.ok("usage", "--user-id", "alice", "-o", "table"); !strings.Contains(out, "total: ") {
		t.Fatalf("usage table:\n%s", out)
	}
	if out := e.ok("keys", "delete", id); out != "" {
		t.Fatalf("delete printed %q", out)
	}
	if s := e.fails(1, "keys", "get", id); s != "error: not_found: key "+id+" not found\n" {
		t.Fatalf("stderr = %q", s)
	}
	link := e.okJSON("portal-links", "create", "--user-id", "alice", "--ttl", "10m")
	if !strings.Contains(link["url"].(string), "/_keygate/portal") || link["expires_at"] == nil {
		t.Fatalf("portal link = %v", link)
	}
}

func TestCLIUsersOrgsMembers(t *testing.T) {
	e := newCLIEnv(t)
	e.ok("users", "upsert", "bob", "--email", "bob@example.com", "--metadata", `{"team":"x"}`, "--rate-limit", "100/1m")
	// Without --email the stored email is kept.
	u := e.okJSON("users", "upsert", "bob", "--enabled=false")
	if u["email"] != "bob@example.com" || u["enabled"] != false || u["rate_limit"] == nil {
		t.Fatalf("user = %v", u)
	}
	if u = e.okJSON("users", "upsert", "bob", "--rate-limit", "none"); u["rate_limit"] != nil {
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
	e.ok("members", "add", "acme", "bob")
	if members := e.ok("members", "list", "acme"); !strings.Contains(members, "USER ID") || !strings.Contains(members, "bob") || !strings.Contains(members, "Member") {
		t.Fatalf("members table:\n%s", members)
	}
	e.ok("members", "add", "acme", "bob", "--role", "Owner")
	if m := e.okJSON("members", "list", "acme", "-o", "json"); !strings.Contains(fmt.Sprint(m["members"]), "Owner") {
		t.Fatalf("members = %v", m)
	}
	if users := e.ok("users", "list"); !strings.Contains(users, "bob@example.com") || !strings.Contains(users, "carol") {
		t.Fatalf("users table:\n%s", users)
	}
	if orgs := e.ok("orgs", "list"); !strings.Contains(orgs, "Acme") {
		t.Fatalf("orgs table:\n%s", orgs)
	}
	e.ok("members", "remove", "acme", "bob")
	if o := e.okJSON("orgs", "get", "acme"); len(o["members"].([]any)) != 0 {
		t.Fatalf("org after removal = %v", o)
	}
	e.ok("orgs", "delete", "acme")
	e.ok("users", "delete", "bob")
	if s := e.fails(1, "users", "get", "bob"); !strings.HasPrefix(s, "error: not_found: ") {
		t.Fatalf("stderr = %q", s)
	}
}

func TestCLIPagination(t *testing.T) {
	e := newCLIEnv(t)
	for range 5 {
		e.ok("keys", "create")
	}
	if all := e.okJSON("keys", "list", "--page-size", "2", "--all", "-o", "json"); len(all["keys"].([]any)) != 5 || all["next_cursor"] != "" {
		t.Fatalf("--all: %v", all)
	}
	if page := e.ok("keys", "list", "--page-size", "2"); strings.Count(page, "generic") != 2 || !strings.Contains(page, "(more: --cursor ") {
		t.Fatalf("one page:\n%s", page)
	}
}

// TestCLIExitCodes: 0 success, 1 the API refused, 2 bad usage, 3 the admin
// port cannot be reached.
func TestCLIExitCodes(t *testing.T) {
	e := newCLIEnv(t)
	id := e.okJSON("keys", "create")["id"].(string)
	closed := "http://" + freeAddr(t)
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "bad gateway", http.StatusBadGateway)
	}))
	defer bad.Close()
	for _, tt := range []struct {
		name string
		env  []string // nil: the gateway's
		args []string
		code int
		want string // in stderr (or stdout for 0)
	}{
		{"ok", nil, []string{"keys", "get", id}, 0, id},
		{"help", nil, []string{"keys", "--help"}, 0, "Available Commands:"},
		{"not found", nil, []string{"keys", "get", strings.Repeat("0", 32)}, 1, "error: not_found: key "},
		{"bad input", nil, []string{"keys", "create", "--user-id", "nobody"}, 1, `error: invalid_request: invalid user_id: user "nobody" does not exist`},
		{"two bad fields", nil, []string{"keys", "create", "--expires-in", "5y", "--display-name", strings.Repeat("x", 201)}, 1, "(display_name: must be at most 200 characters; expires_in: "},
		{"bad status", nil, []string{"keys", "list", "--status", "bogus"}, 1, "(status: must be active, archived, expired or all)"},
		{"wrong token", nil, []string{"keys", "list", "--token", "wrong"}, 1, "error: unauthorized: "},
		{"not the API", []string{"KEYGATE_ADMIN_TOKEN=x"}, []string{"keys", "list", "--admin-url", bad.URL}, 1, "error: GET /v1/keys: HTTP 502: bad gateway"},
		{"roll bad grace", nil, []string{"keys", "roll", id, "--grace", "721h"}, 1, "grace_period: must be a duration from 0s to 720h"},
		{"no command", nil, []string{}, 2, "missing command"},
		{"unknown command", nil, []string{"frob"}, 2, `unknown command "frob" for "keygate"`},
		{"unknown subcommand", nil, []string{"keys", "frob"}, 2, `unknown command "frob" for "keygate keys"`},
		{"group without command", nil, []string{"keys"}, 2, "keygate keys: missing command"},
		{"unknown flag", nil, []string{"keys", "list", "--bogus"}, 2, "unknown flag: --bogus"},
		{"missing argument", nil, []string{"keys", "get"}, 2, "keygate keys get: want <id>, got 0 argument(s)"},
		{"extra argument", nil, []string{"keys", "get", "a", "b"}, 2, "want <id>, got 2 argument(s)"},
		{"two arguments", nil, []string{"members", "add", "acme"}, 2, "want <org> <user>"},
		{"bad output", nil, []string{"keys", "list", "--output", "yaml"}, 2, `--output: "yaml" is not json or table`},
		{"bad metadata", nil, []string{"keys", "create", "--metadata", "{nope"}, 2, "not valid JSON"},
		{"bad time", nil, []string{"keys", "create", "--expires-at", "soon"}, 2, "RFC 3339"},
		{"exclusive flags", nil, []string{"keys", "create", "--expires-at", "2099-01-01T00:00:00Z", "--expires-in", "1mo"}, 2, "none of the others can be"},
		{"bad rate limit", nil, []string{"users", "upsert", "alice", "--rate-limit", "lots"}, 2, "100/1m"},
		{"required flag", nil, []string{"orgs", "upsert", "acme"}, 2, `required flag(s) "name" not set`},
		{"usage needs an owner", nil, []string{"usage"}, 2, "at least one of the flags"},
		{"nothing to update", nil, []string{"keys", "update", id}, 2, "nothing to change"},
		{"bad on-conflict", nil, []string{"keys", "import", "x.jsonl", "--on-conflict", "replace"}, 2, `--on-conflict: "replace" is not fail or skip`},
		{"serve argument", nil, []string{"serve", "keygate.yaml"}, 2, "keygate serve: want no arguments, got 1"},
		{"no token", []string{"KEYGATE_ADMIN_URL=http://" + e.app.AdminAddr()}, []string{"keys", "list"}, 2, "no admin token"},
		{"bad admin url", nil, []string{"keys", "list", "--admin-url", "127.0.0.1:9080"}, 2, "is not an http(s) URL"},
		{"unreachable", []string{"KEYGATE_ADMIN_TOKEN=x", "KEYGATE_ADMIN_URL=" + closed}, []string{"keys", "list"}, 3, "cannot reach the admin port: "},
		{"unreachable flag over env", nil, []string{"users", "list", "--admin-url", closed}, 3, "connection refused"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			env := tt.env
			if env == nil {
				env = e.env
			}
			code, out, errOut := runCLI(env, "", tt.args...)
			got := errOut
			if tt.code == 0 {
				got = out
			}
			if code != tt.code || !strings.Contains(got, tt.want) {
				t.Fatalf("exit %d, want %d; want %q in\nstdout %q\nstderr %q", code, tt.code, tt.want, out, errOut)
			}
			if strings.Contains(out+errOut, testAdminToken) {
				t.Fatal("the admin token was printed")
			}
		})
	}
}

// TestCLIRoll: keys roll sends the grace period as written.
func TestCLIRoll(t *testing.T) {
	var got string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b bytes.Buffer
		b.ReadFrom(r.Body)
		got = r.Method + " " + r.URL.Path + " " + b.String()
		w.WriteHeader(201)
		w.Write([]byte(`{"id":"new","token":"t"}`))
	}))
	defer srv.Close()
	code, out, errOut := runCLI([]string{"KEYGATE_ADMIN_TOKEN=x", "KEYGATE_ADMIN_URL=" + srv.URL}, "", "keys", "roll", "abc", "--grace", "24h")
	if code != 0 || got != `POST /v1/keys/abc/roll {"grace_period":"24h"}` || !strings.Contains(out, `"token": "t"`) {
		t.Fatalf("exit %d, request %q, out %q, err %q", code, got, out, errOut)
	}
}

func TestCLIImport(t *testing.T) {
	e := newCLIEnv(t)
	e.ok("users", "upsert", "alice", "--email", "a@example.com")
	jsonl := e.file("keys.jsonl", `{"token": "legacy-token-0001", "display_name": "one"}

{"token": "legacy-token-0002", "user_id": "alice", "metadata": {"plan": "pro"}}
{"token_sha256": "`+strings.Repeat("ab", 32)+`", "expires_at": 4102444800}
`)
	out := e.ok("keys", "import", jsonl)
	if !strings.HasPrefix(out, "imported 3 keys, 0 skipped as existing, 0 bad from "+jsonl) {
		t.Fatalf("summary %q", out)
	}
	for _, tok := range []string{"legacy-token-0001", "legacy-token-0002"} {
		if _, err := e.app.Service.Validate(context.Background(), tok); err != nil {
			t.Fatalf("%s: %v", tok, err)
		}
	}
	// One audit event for the batch.
	a := e.okJSON("audit", "--action", "api_key.imported", "-o", "json")
	if evs := a["events"].([]any); len(evs) != 1 || evs[0].(map[string]any)["details"].(map[string]any)["count"] != float64(3) {
		t.Fatalf("audit = %v", a)
	}

	// The same file again: every key conflicts; skip passes over them.
	code, out, s := e.run("keys", "import", jsonl)
	if code != 1 || !strings.HasPrefix(out, "imported 0 keys, 0 skipped as existing, 3 bad (first on line 1); nothing from line 1 on was written") {
		t.Fatalf("conflicts: exit %d, summary %q", code, out)
	}
	for _, line := range []string{":1: token: a key with this token already exists", ":3: token: ", ":4: token: "} {
		if !strings.Contains(s, jsonl+line) {
			t.Fatalf("conflicts: %q misses %q", s, line)
		}
	}
	if out := e.ok("keys", "import", jsonl, "--on-conflict", "skip"); !strings.HasPrefix(out, "imported 0 keys, 3 skipped as existing, 0 bad") {
		t.Fatalf("skip summary %q", out)
	}

	// CSV, with a dry run first that writes nothing.
	csvFile := e.file("keys.csv", "token,user_id,display_name,metadata,expires_at\n"+
		"csv-token-0000001,alice,from csv,\"{\"\"plan\"\":\"\"pro\"\"}\",2099-01-01T00:00:00Z\n"+
		"csv-token-0000002,,generic one,,\n")
	before := e.okJSON("keys", "list", "--status", "all", "-o", "json")
	if out := e.ok("keys", "import", csvFile, "--dry-run"); !strings.HasPrefix(out, "dry run: 2 keys would be imported, 0 skipped as existing, 0 bad; nothing was written") {
		t.Fatalf("dry run summary %q", out)
	}
	if after := e.okJSON("keys", "list", "--status", "all", "-o", "json"); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatal("dry run wrote keys")
	}
	if out := e.ok("keys", "import", csvFile, "-o", "json"); !strings.Contains(out, `"imported":2`) {
		t.Fatalf("csv json summary %q", out)
	}
	k, err := e.app.Service.Validate(context.Background(), "csv-token-0000001")
	if err != nil || k.Key.UserID != "alice" || string(k.Key.Metadata) != `{"plan":"pro"}` || k.Key.ExpiresAt == nil {
		t.Fatalf("csv-1: %+v %v", k, err)
	}
}

// TestCLIImportBadLines: every bad entry is reported with its line, from
// the file's own checks and the server's alike, across batches; batches
// before the first bad entry are written, the rest only checked.
func TestCLIImportBadLines(t *testing.T) {
	e := newCLIEnv(t)
	lines := []string{
		`{"token": "good-token-000001"}`,                      // 1, batch 1
		`{"token": "good-token-000002"}`,                      // 2, batch 1
		`{"token": "good-token-000003"}`,                      // 3, batch 2
		`{"token": "good-token-000004", "user_id": "nobody"}`, // 4, batch 2: no such user
		`not json`,                                              // 5, read by the CLI
		`{"token": "good-token-000006"}`,                        // 6, batch 3
		`{"token": "good-token-000006"}`,                        // 7, batch 3: duplicate
		`{"token": "good-token-000008", "bogus": 1}`,            // 8, batch 4: unknown field
		`{"token": "good-token-000009", "expires_at": "never"}`, // 9, batch 4: wrong type
	}
	file := e.file("bad.jsonl", strings.Join(lines, "\n")+"\n")
	code, out, errOut := e.run("keys", "import", file, "--batch-size", "2")
	if code != 1 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{
		file + `:4: user_id: user "nobody" does not exist`,
		file + ":5: not a JSON object",
		file + ":7: token: duplicate of an earlier key in this request",
		file + ":8: bogus: unknown field",
		file + ":9: expires_at: must be an integer",
		"error: 5 bad entries in " + file,
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr misses %q:\n%s", want, errOut)
		}
	}
	if !strings.Contains(errOut, "progress: 8 keys sent, 100% of the file read") {
		t.Errorf("no plain progress lines:\n%s", errOut)
	}
	if !strings.HasPrefix(out, "imported 2 keys, 0 skipped as existing, 5 bad (first on line 4); nothing from line 3 on was written, only checked") {
		t.Fatalf("summary %q", out)
	}
	for tok, want := range map[string]bool{"good-token-000001": true, "good-token-000002": true, "good-token-000003": false, "good-token-000006": false} {
		_, err := e.app.Service.Validate(context.Background(), tok)
		if (err == nil) != want {
			t.Errorf("%s imported = %v, want %v", tok, err == nil, want)
		}
	}
	// CSV: the file's own problems name their lines too.
	csvFile := e.file("bad.csv", "token,expires_at,metadata\nc-token-000000001,,\nc-token-000000002,soon,\nc-token-000000003,,[1]\nc-token-000000004\n")
	code, _, errOut = e.run("keys", "import", csvFile, "--dry-run")
	for _, want := range []string{csvFile + ":3: expires_at: want unix seconds", csvFile + ":4: metadata: not a JSON object", csvFile + ":5: 1 fields, the header has 3"} {
		if code != 1 || !strings.Contains(errOut, want) {
			t.Errorf("exit %d, stderr misses %q:\n%s", code, want, errOut)
		}
	}
	if s := e.fails(1, "keys", "import", e.file("cols.csv", "token,owner\nx,y\n")); !strings.Contains(s, `unknown column "owner"`) {
		t.Fatalf("unknown column: %q", s)
	}
}

func TestCLIConfigCheck(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(good, []byte("proxy:\n  upstreams: [\"http://127.0.0.1:3000\"]\n"), 0o600)
	broken := filepath.Join(dir, "broken.yaml")
	os.WriteFile(broken, []byte("proxy:\n  listen: \":8080\"\n    upstreams: x\n"), 0o600)
	typo := filepath.Join(dir, "typo.yaml")
	os.WriteFile(typo, []byte("proxy:\n  upstream: [\"http://a\"]\n"), 0o600)
	for _, tt := range []struct {
		name string
		env  []string
		args []string
		code int
		want string
	}{
		{"good", nil, []string{"config", "check", "--config", good}, 0, "config " + good + ": OK"},
		{"client env is known", []string{"KEYGATE_ADMIN_URL=http://x"}, []string{"config", "check", "--config", good}, 0, ": OK"},
		{"unknown variable", []string{"KEYGATE_PROXY_UPSTREAM=http://b", "KEYGATE_LOG_LEVEL=debug"}, []string{"config", "check", "--config", good}, 1,
			"env KEYGATE_PROXY_UPSTREAM: unknown variable: it sets no configuration key (did you mean KEYGATE_PROXY_UPSTREAMS?)"},
		{"bad value from env", []string{"KEYGATE_LOG_LEVEL=loud"}, []string{"config", "check", "--config", good}, 1, "log.level"},
		{"yaml line", nil, []string{"config", "check", "--config", broken}, 1, "line 3: did not find expected key"},
		{"unknown key", nil, []string{"config", "check", "--config", typo}, 1, "proxy.upstream: unknown key (did you mean proxy.upstreams?)"},
		{"missing file", nil, []string{"config", "check", "--config", filepath.Join(dir, "nope.yaml")}, 1, "no such file"},
		{"argument", nil, []string{"config", "check", good}, 2, "want no arguments"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runCLI(tt.env, "", tt.args...)
			if code != tt.code || !strings.Contains(out+errOut, tt.want) {
				t.Fatalf("exit %d, want %d; want %q in\nstdout %q\nstderr %q", code, tt.code, tt.want, out, errOut)
			}
		})
	}
}

func TestCLICompletionAndVersion(t *testing.T) {
	for _, tt := range []struct {
		shell, want string
	}{
		{"bash", "__start_keygate"},
		{"zsh", "#compdef keygate"},
		{"fish", "complete -c keygate"},
	} {
		code, out, errOut := runCLI(nil, "", "completion", tt.shell)
		if code != 0 || !strings.Contains(out, tt.want) || errOut != "" {
			t.Errorf("completion %s: exit %d, %d bytes, stderr %q", tt.shell, code, len(out), errOut)
		}
	}
	if code, _, errOut := runCLI(nil, "", "completion", "powershell"); code != 2 || !strings.Contains(errOut, "not bash, zsh or fish") {
		t.Errorf("completion powershell: exit %d %q", code, errOut)
	}
	code, out, _ := runCLI(nil, "", "version")
	if code != 0 || !strings.HasPrefix(out, "keygate ") || !strings.Contains(out, "github.com/keygate/keygate") {
		t.Fatalf("version: exit %d %q", code, out)
	}
	if code, out2, _ := runCLI(nil, "", "--version"); code != 0 || out2 != out {
		t.Fatalf("--version: exit %d %q, want %q", code, out2, out)
	}
}

// TestServeWiring: serve gets --config, refuses positional arguments and
// warns about unknown KEYGATE_ variables.
func TestServeWiring(t *testing.T) {
	var got []string
	run := func(args ...string) (int, string) {
		var errOut bytes.Buffer
		code := cli.Run(context.Background(), args, cli.Options{Stderr: &errOut,
			Serve: func(_ context.Context, path string) error { got = append(got, path); return nil }})
		return code, errOut.String()
	}
	if code, _ := run("serve", "--config", "x.yaml"); code != 0 || fmt.Sprint(got) != "[x.yaml]" {
		t.Fatalf("serve --config: %d %v", code, got)
	}
	if code, s := run("serve", "x.yaml"); code != 2 || len(got) != 1 || !strings.Contains(s, "want no arguments") {
		t.Fatalf("serve x.yaml: exit %d, served %v, %q", code, got, s)
	}

	dir := t.TempDir()
	cfg := filepath.Join(dir, "keygate.yaml")
	adminAddr := freeAddr(t)
	os.WriteFile(cfg, []byte(fmt.Sprintf("proxy: {listen: \"127.0.0.1:0\", upstreams: [\"http://127.0.0.1:1\"]}\nadmin: {listen: %q, token: %q}\nstore: {path: %q}\n",
		adminAddr, testAdminToken, filepath.Join(dir, "kg.db"))), 0o600)
	ctx, cancel := context.WithCancel(context.Background())
	var stderr bytes.Buffer
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, cfg, []string{"KEYGATE_PROXY_UPSTREAM=http://b", "KEYGATE_ADMIN_URL=http://x"}, &stderr)
	}()
	waitReady(t, "http://"+adminAddr+"/readyz")
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if s := stderr.String(); !strings.Contains(s, "environment variable ignored") || !strings.Contains(s, "KEYGATE_PROXY_UPSTREAMS?") || strings.Contains(s, "KEYGATE_ADMIN_URL") {
		t.Fatalf("serve stderr:\n%s", s)
	}
}

// TestBinaryExitCodes runs the real binary's main: its exit status is the
// CLI's.
func TestBinaryExitCodes(t *testing.T) {
	for _, tt := range []struct {
		args string
		code int
	}{
		{"version", 0},
		{"serve extra", 2},
		{"keys list --token x --admin-url http://" + freeAddr(t), 3},
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "KEYGATE_TEST_MAIN=1", "KEYGATE_TEST_ARGS="+tt.args)
		out, _ := cmd.CombinedOutput()
		if got := cmd.ProcessState.ExitCode(); got != tt.code {
			t.Errorf("keygate %s: exit %d, want %d\n%s", tt.args, got, tt.code, out)
		}
	}
}

// TestCLIImportProgressBar: on a terminal the import draws a bar instead
// of progress lines.
func TestCLIImportProgressBar(t *testing.T) {
	e := newCLIEnv(t)
	file := e.file("k.jsonl", "{\"token\": \"bar-token-0000001\"}\n{\"token\": \"bar-token-0000002\"}\n")
	var out, errOut bytes.Buffer
	code := cli.Run(context.Background(), []string{"keys", "import", file}, cli.Options{
		Stdout: &out, Stderr: &errOut, Env: e.env, IsTerminal: func(io.Writer) bool { return true },
	})
	if code != 0 || !strings.Contains(errOut.String(), "2 keys") || strings.Contains(errOut.String(), "progress:") || !strings.HasPrefix(out.String(), "imported 2 keys") {
		t.Fatalf("exit %d\nstdout %q\nstderr %q", code, out.String(), errOut.String())
	}
}
