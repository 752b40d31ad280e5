package admin_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v4"

	"github.com/keygate/keygate/admin"
	"github.com/keygate/keygate/admin/openapicheck"
)

// wildcard matches a ServeMux wildcard, {name} or {name...}.
var wildcard = regexp.MustCompile(`\{([^}.]+)(\.\.\.)?\}`)

// operations returns the document's operations as "METHOD /path".
func documented(t *testing.T) map[string]bool {
	t.Helper()
	doc, err := openapicheck.Load()
	if err != nil {
		t.Fatal(err)
	}
	ops := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			ops[method+" "+path] = true
		}
	}
	return ops
}

// TestOpenAPIRoutes keeps the document and the router in step: every route
// the admin mux serves is documented, and every documented operation
// reaches a route (not a catch-all) of the same pattern.
func TestOpenAPIRoutes(t *testing.T) {
	e := newEnv(t, nil)
	ops := documented(t)
	served := map[string]bool{}
	for _, pattern := range e.srv.Routes() {
		method, path, ok := strings.Cut(pattern, " ")
		if !ok {
			t.Fatalf("route %q has no method: every admin route is method-qualified", pattern)
		}
		// ServeMux and OpenAPI spell a path parameter alike, {name}.
		path = wildcard.ReplaceAllString(path, "{$1}")
		served[method+" "+path] = true
		if !ops[method+" "+path] {
			t.Errorf("%s is served but not documented in admin/openapi.yaml", pattern)
		}
	}
	if len(served) < 30 {
		t.Fatalf("only %d routes listed: %v", len(served), e.srv.Routes())
	}
	mux := e.srv.Mux()
	for op := range ops {
		method, path, _ := strings.Cut(op, " ")
		if served[op] {
			continue
		}
		// A documented path that is not a pattern of its own must reach a
		// route that is (a subtree such as /debug/pprof/ serving the named
		// profiles), never a catch-all.
		req, err := http.NewRequest(method, "http://admin"+wildcard.ReplaceAllString(path, "x"), nil)
		if err != nil {
			t.Fatal(err)
		}
		_, pattern := mux.Handler(req)
		if pattern == "" || slices.Contains(e.srv.Fallbacks(), pattern) || !slices.Contains(e.srv.Routes(), pattern) {
			t.Errorf("%s is documented but not served (it reaches %q)", op, pattern)
		}
	}
}

// TestOpenAPIServed: GET /openapi.json answers the document as JSON without
// a token, equal to admin/openapi.yaml.
func TestOpenAPIServed(t *testing.T) {
	e := newEnv(t, nil)
	r := e.callAs("", "GET", "/openapi.json", "")
	if r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q", ct)
	}
	var got, want any
	if err := json.Unmarshal(r.body, &got); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	if err := yaml.Unmarshal(admin.OpenAPIYAML, &want); err != nil {
		t.Fatal(err)
	}
	// Compare through JSON: both sides then hold the same value types.
	wantJSON, err := json.Marshal(want)
	if err != nil {
		t.Fatalf("openapi.yaml does not convert to JSON: %v", err)
	}
	gotJSON, _ := json.Marshal(got)
	if !bytes.Equal(gotJSON, wantJSON) {
		t.Fatal("GET /openapi.json differs from admin/openapi.yaml")
	}
	m := r.obj(t)
	if m["openapi"] != "3.1.0" {
		t.Errorf("openapi = %v, want 3.1.0", m["openapi"])
	}
}

// TestOpenAPIComponents: the shapes every call shares are components,
// referenced rather than copied.
func TestOpenAPIComponents(t *testing.T) {
	doc, err := openapicheck.Load()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"Error", "Key", "KeyFields", "KeyWithToken", "NextCursor", "User", "Org", "AuditEvent", "PropelKey"} {
		if doc.Components.Schemas[name] == nil {
			t.Errorf("no components/schemas/%s", name)
		}
	}
	for _, name := range []string{"Cursor", "PageSize"} {
		if doc.Components.Parameters[name] == nil {
			t.Errorf("no components/parameters/%s", name)
		}
	}
	// No inline copy of the error or key record: their properties appear
	// once in the text.
	src := string(admin.OpenAPIYAML)
	for _, prop := range []string{"wait_seconds: {type: integer", "archived_at:", "next_cursor: {type"} {
		if n := strings.Count(src, prop); n > 1 {
			t.Errorf("%q appears %d times: use the component", prop, n)
		}
	}
	var ids []string
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			if op.OperationID == "" {
				t.Errorf("%s %s has no operationId", method, path)
			}
			ids = append(ids, op.OperationID)
		}
	}
	sort.Strings(ids)
	for i := 1; i < len(ids); i++ {
		if ids[i] == ids[i-1] {
			t.Errorf("operationId %s is used twice", ids[i])
		}
	}
}
