package dashboard

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/keys"
)

func TestDashOwnerForms(t *testing.T) {
	e := newDashEnv(t)
	ctx := context.Background()
	c, _ := e.login()

	// Empty states say how to start.
	for path, want := range map[string]string{
		"/users": `No users yet. <a href="/users/new">Create one here</a>`,
		"/orgs":  `No orgs yet. <a href="/orgs/new">Create one here</a>`,
		"/keys":  `No keys to show. <a href="/keys/new">Create one here</a>`,
		"/audit": `No events yet.`,
	} {
		if r := c.get(path); !strings.Contains(r.body, want) {
			t.Errorf("%s empty state lacks %q", path, want)
		}
	}

	// Create a user.
	if r := c.get("/users/new"); r.status != http.StatusOK || !strings.Contains(r.body, `action="/users"`) {
		t.Fatalf("new user form: %d", r.status)
	}
	r := c.post("/users", url.Values{"id": {"alice"}, "email": {"alice@example.com"}, "enabled": {"on"},
		"limit": {"1,000"}, "window": {"1m"}, "metadata": {`{"plan":"pro"}`}})
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/users/alice" {
		t.Fatalf("create user: %d %s", r.status, r.body)
	}
	u, err := e.svc.GetUser(ctx, "alice")
	if err != nil || u.Email != "alice@example.com" || !u.Enabled || u.RateLimit == nil || u.RateLimit.Limit != 1000 ||
		u.RateLimit.Window != time.Minute || string(u.Metadata) != `{"plan":"pro"}` {
		t.Fatalf("created user = %+v, %v", u, err)
	}
	if p := c.get("/users/alice"); !strings.Contains(p.body, "User alice created.") || !strings.Contains(p.body, "1,000 requests per 1m") {
		t.Errorf("user page after create lacks the flash or the limit:\n%s", p.body)
	}
	// The same id again is refused, not overwritten.
	if r := c.post("/users", url.Values{"id": {"alice"}, "email": {"other@example.com"}}); r.status != http.StatusConflict || !strings.Contains(r.body, "exists already") {
		t.Errorf("duplicate user: %d", r.status)
	}
	// Bad input comes back with the values and names the field.
	r = c.post("/users", url.Values{"id": {"bob"}, "email": {"bob@example.com"}, "limit": {"ten"}, "window": {"1m"}, "metadata": {"{}"}})
	if r.status != http.StatusBadRequest || !strings.Contains(r.body, "rate_limit.limit") || !strings.Contains(r.body, `value="bob@example.com"`) || !strings.Contains(r.body, `aria-invalid="true"`) {
		t.Errorf("bad limit: %d\n%s", r.status, r.body)
	}
	r = c.post("/users", url.Values{"id": {"bob"}, "metadata": {"[1]"}})
	if r.status != http.StatusBadRequest || !strings.Contains(r.body, "metadata") {
		t.Errorf("bad metadata: %d", r.status)
	}
	if _, err := e.svc.GetUser(ctx, "bob"); err == nil {
		t.Errorf("a refused form created bob")
	}

	// Edit: the form is filled in; unchecking enabled blocks; empty limit clears.
	if f := c.get("/users/alice/edit"); !strings.Contains(f.body, `value="1000"`) || !strings.Contains(f.body, `value="1m"`) || !strings.Contains(f.body, "checked") {
		t.Errorf("edit form not filled in:\n%s", f.body)
	}
	if r := c.post("/users/alice", url.Values{"email": {"a@example.com"}, "metadata": {"{}"}}); r.status != http.StatusSeeOther {
		t.Fatalf("edit user: %d %s", r.status, r.body)
	}
	if u, _ := e.svc.GetUser(ctx, "alice"); u.Email != "a@example.com" || u.Enabled || u.RateLimit != nil {
		t.Errorf("edited user = %+v", u)
	}
	if r := c.post("/users/nobody", url.Values{"email": {"x@example.com"}}); r.status != http.StatusNotFound {
		t.Errorf("edit unknown user: %d", r.status)
	}

	// Orgs and members.
	if r := c.post("/orgs", url.Values{"id": {"acme"}, "name": {"Acme Inc"}, "limit": {"5000"}, "window": {"1h"}}); r.status != http.StatusSeeOther {
		t.Fatalf("create org: %d %s", r.status, r.body)
	}
	if r := c.post("/orgs/acme", url.Values{"name": {"Acme Corp"}, "limit": {"5000"}, "window": {"1h"}}); r.status != http.StatusSeeOther {
		t.Fatalf("edit org: %d", r.status)
	}
	if o, _ := e.svc.GetOrg(ctx, "acme"); o.Name != "Acme Corp" || o.RateLimit == nil || o.RateLimit.Limit != 5000 {
		t.Errorf("org = %+v", o)
	}
	if r := c.post("/orgs/acme/members", url.Values{"user_id": {"alice"}, "role": {"Admin"}}); r.status != http.StatusSeeOther {
		t.Fatalf("add member: %d", r.status)
	}
	if r := c.post("/orgs/acme/members", url.Values{"user_id": {"alice"}, "role": {"Owner"}}); r.status != http.StatusSeeOther {
		t.Fatalf("change role: %d", r.status)
	}
	if o, _ := e.svc.GetOrg(ctx, "acme"); len(o.Members) != 1 || o.Members[0].Role != "Owner" {
		t.Errorf("members = %+v", o.Members)
	}
	c.post("/orgs/acme/members", url.Values{"user_id": {"ghost"}, "role": {"Owner"}})
	if p := c.get("/orgs/acme"); !strings.Contains(p.body, "Membership not saved") || !strings.Contains(p.body, "5,000 requests per 1h") {
		t.Errorf("unknown member not reported, or no limit:\n%s", p.body)
	}
	// Removing asks first; only the confirmed post removes.
	if conf := c.get("/orgs/acme/members/alice/remove"); conf.status != http.StatusOK || !strings.Contains(conf.body, "Remove alice from Acme Corp?") {
		t.Errorf("remove confirmation: %d\n%s", conf.status, conf.body)
	}
	if o, _ := e.svc.GetOrg(ctx, "acme"); len(o.Members) != 1 {
		t.Errorf("the confirmation page removed the member")
	}
	if r := c.post("/orgs/acme/members/alice/remove", nil); r.status != http.StatusSeeOther {
		t.Fatalf("remove member: %d", r.status)
	}
	if o, _ := e.svc.GetOrg(ctx, "acme"); len(o.Members) != 0 {
		t.Errorf("members after remove = %+v", o.Members)
	}

	// Deleting asks first too.
	for _, path := range []string{"/users/alice", "/orgs/acme"} {
		if conf := c.get(path + "/delete"); conf.status != http.StatusOK || !strings.Contains(conf.body, "archived for good") {
			t.Errorf("%s delete confirmation: %d", path, conf.status)
		}
		if r := c.post(path+"/delete", nil); r.status != http.StatusSeeOther {
			t.Errorf("%s delete: %d", path, r.status)
		}
	}
	if _, err := e.svc.GetUser(ctx, "alice"); err == nil {
		t.Errorf("alice not deleted")
	}
	if _, err := e.svc.GetOrg(ctx, "acme"); err == nil {
		t.Errorf("acme not deleted")
	}
	// Every change was audited as the admin.
	ev, _ := e.svc.ListAudit(ctx, keys.AuditFilter{UserID: "alice"})
	if len(ev) < 3 || ev[0].Actor != "admin" {
		t.Errorf("audit for alice = %+v", ev)
	}
	// A form without the session's CSRF token does nothing.
	if r := c.post("/users", url.Values{"id": {"mallory"}, "csrf": {"forged"}}); r.status != http.StatusForbidden {
		t.Errorf("forged form: %d", r.status)
	}
}

func TestThousands(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -45678: "-45,678", 100000: "100,000"} {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%d) = %q, want %q", n, got, want)
		}
	}
}
