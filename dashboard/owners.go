package dashboard

import (
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/keygate/keygate/keys"
)

type ownerListData struct {
	Users []keys.User
	Orgs  []keys.Org
	Next  string
	First bool
	Error string
}

func (d *Dashboard) userList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if id := strings.TrimSpace(q.Get("id")); id != "" {
		http.Redirect(w, r, "/users/"+url.PathEscape(id), http.StatusSeeOther)
		return
	}
	users, next, err := d.svc.ListUsers(r.Context(), q.Get("cursor"), dashPageSize)
	if err != nil {
		d.internal(w, r, "Listing users", err)
		return
	}
	data := ownerListData{Users: users, First: q.Get("cursor") != ""}
	if next != "" {
		data.Next = "?cursor=" + url.QueryEscape(next)
	}
	d.render(w, r, http.StatusOK, "users", d.page(r, "Users", "users", data))
}

func (d *Dashboard) orgList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if id := strings.TrimSpace(q.Get("id")); id != "" {
		http.Redirect(w, r, "/orgs/"+url.PathEscape(id), http.StatusSeeOther)
		return
	}
	orgs, next, err := d.svc.ListOrgs(r.Context(), q.Get("cursor"), dashPageSize)
	if err != nil {
		d.internal(w, r, "Listing orgs", err)
		return
	}
	data := ownerListData{Orgs: orgs, First: q.Get("cursor") != ""}
	if next != "" {
		data.Next = "?cursor=" + url.QueryEscape(next)
	}
	d.render(w, r, http.StatusOK, "orgs", d.page(r, "Orgs", "orgs", data))
}

type ownerPageData struct {
	User     *keys.User
	Org      *keys.Org
	Keys     []keyView
	MoreKeys bool
	Chart    template.HTML
	Ranges   []dashRange
	Audit    []keys.AuditEvent
	Quota    *quotaJSON
}

// ownerKeys fills in the owner's keys of every status, newest first.
func (d *Dashboard) ownerKeys(r *http.Request, data *ownerPageData, f keys.KeyFilter) error {
	f.Status, f.Limit = "all", dashPageSize
	ks, next, err := d.svc.ListKeys(r.Context(), f)
	if err != nil {
		return err
	}
	data.Keys, data.MoreKeys = d.keyViews(ks), next != ""
	return nil
}

func (d *Dashboard) userPage(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	u, err := d.svc.GetUser(r.Context(), id)
	if !d.found(w, r, "Reading the user", err) {
		return
	}
	data := ownerPageData{User: u, Quota: d.standing(r.Context(), keys.UserOwner(u.ID), u.Quota, keys.TypePersonal)}
	if err := d.ownerKeys(r, &data, keys.KeyFilter{UserID: id, Type: keys.TypePersonal}); err != nil {
		d.internal(w, r, "Listing keys", err)
		return
	}
	if data.Chart, data.Ranges, err = d.chart(r, keys.UsageQuery{UserID: id}, "Requests with "+id+"'s personal keys"); err != nil {
		d.internal(w, r, "Usage", err)
		return
	}
	if data.Audit, err = d.svc.ListAudit(r.Context(), keys.AuditFilter{UserID: id, Limit: 20}); err != nil {
		d.internal(w, r, "Audit", err)
		return
	}
	d.render(w, r, http.StatusOK, "user", d.page(r, "User "+id, "users", data))
}

// blockUser blocks or unblocks (by the path's last segment) a user.
func (d *Dashboard) blockUser(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	enable := strings.HasSuffix(r.URL.Path, "/unblock")
	_, err := d.svc.SetUserEnabled(r.Context(), id, enable)
	if !d.found(w, r, "Changing the user", err) {
		return
	}
	if enable {
		d.setFlash(r, "Unblocked "+id+". Their personal keys work again.")
	} else {
		d.setFlash(r, "Blocked "+id+". Their personal keys are rejected until you unblock them.")
	}
	http.Redirect(w, r, "/users/"+url.PathEscape(id), http.StatusSeeOther)
}

func (d *Dashboard) orgPage(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	o, err := d.svc.GetOrg(r.Context(), id)
	if !d.found(w, r, "Reading the org", err) {
		return
	}
	data := ownerPageData{Org: o, Quota: d.standing(r.Context(), keys.OrgOwner(o.ID), o.Quota, keys.TypeOrg)}
	if err := d.ownerKeys(r, &data, keys.KeyFilter{OrgID: id, Type: keys.TypeOrg}); err != nil {
		d.internal(w, r, "Listing keys", err)
		return
	}
	if data.Chart, data.Ranges, err = d.chart(r, keys.UsageQuery{OrgID: id}, "Requests with "+o.Name+"'s keys"); err != nil {
		d.internal(w, r, "Usage", err)
		return
	}
	if data.Audit, err = d.svc.ListAudit(r.Context(), keys.AuditFilter{OrgID: id, Limit: 20}); err != nil {
		d.internal(w, r, "Audit", err)
		return
	}
	d.render(w, r, http.StatusOK, "org", d.page(r, "Org "+o.Name, "orgs", data))
}

type auditData struct {
	Filter  keys.AuditFilter
	Actions []string
	Events  []keys.AuditEvent
	Older   string
}

func (d *Dashboard) auditPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := keys.AuditFilter{KeyID: strings.TrimSpace(q.Get("key_id")), UserID: strings.TrimSpace(q.Get("user_id")),
		OrgID: strings.TrimSpace(q.Get("org_id")), Action: q.Get("action"), Limit: 100}
	data := auditData{Filter: f, Actions: keys.AuditActions}
	pg := d.page(r, "Audit log", "audit", &data)
	if b := q.Get("before"); b != "" {
		n, err := strconv.ParseInt(b, 10, 64)
		if err != nil || n < 1 {
			pg.Error = "before: not an event id"
			d.render(w, r, http.StatusBadRequest, "audit", pg)
			return
		}
		f.Before = n
	}
	events, err := d.svc.ListAudit(r.Context(), f)
	if err != nil {
		d.internal(w, r, "Reading the audit log", err)
		return
	}
	data.Events = events
	if len(events) == f.Limit {
		oq := cloneValues(q)
		oq.Set("before", strconv.FormatInt(events[len(events)-1].ID, 10))
		data.Older = "?" + oq.Encode()
	}
	d.render(w, r, http.StatusOK, "audit", pg)
}

func (d *Dashboard) settingsPage(w http.ResponseWriter, r *http.Request) {
	d.render(w, r, http.StatusOK, "settings", d.page(r, "Settings", "settings", d.settings))
}
