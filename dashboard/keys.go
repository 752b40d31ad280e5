package dashboard

import (
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strings"

	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/usage"
)

// keyLabel names a key for people: its display name and hint.
func keyLabel(k *keys.Key) string {
	if k.DisplayName == "" {
		return k.Display
	}
	return k.DisplayName + " (" + k.Display + ")"
}

type keyFilterForm struct {
	Type, UserID, OrgID, Status, Q string
}

type keyListData struct {
	Filter   keyFilterForm
	Keys     []keyView
	Next     string // query of the next page; "" on the last
	First    string // query of the first page; "" on it
	Types    []string
	Statuses []string
}

func (d *Dashboard) keyList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	form := keyFilterForm{Type: q.Get("type"), UserID: strings.TrimSpace(q.Get("user_id")), OrgID: strings.TrimSpace(q.Get("org_id")),
		Status: q.Get("status"), Q: strings.TrimSpace(q.Get("q"))}
	if form.Status == "" {
		form.Status = "active"
	}
	data := keyListData{Filter: form, Types: []string{"personal", "org", "generic"}, Statuses: []string{"active", "expired", "archived", "all"}}
	pg := d.page(r, "Keys", "keys", &data)
	f := keys.KeyFilter{UserID: form.UserID, OrgID: form.OrgID, Status: form.Status, Search: form.Q,
		Limit: dashPageSize, Cursor: q.Get("cursor")}
	var err error
	if form.Type != "" {
		if f.Type, err = keys.ParseType(form.Type); err != nil {
			pg.Error = "type: " + err.Error()
			d.render(w, r, http.StatusBadRequest, "keys", pg)
			return
		}
	}
	ks, next, err := d.svc.ListKeys(r.Context(), f)
	if keys.ErrorCode(err) == keys.EInvalid {
		pg.Error = err.Error()
		d.render(w, r, http.StatusBadRequest, "keys", pg)
		return
	}
	if err != nil {
		d.internal(w, r, "Listing keys", err)
		return
	}
	data.Keys = d.keyViews(ks)
	if next != "" {
		nq := cloneValues(q)
		nq.Set("cursor", next)
		data.Next = "?" + nq.Encode()
	}
	if q.Get("cursor") != "" {
		fq := cloneValues(q)
		fq.Del("cursor")
		data.First = "?" + fq.Encode()
	}
	d.render(w, r, http.StatusOK, "keys", pg)
}

func cloneValues(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		if len(vs) > 0 && vs[0] != "" {
			out.Set(k, vs[0])
		}
	}
	return out
}

type choiceOpt struct {
	Value, Label string
	Selected     bool
	Disabled     bool
}

type newKeyForm struct {
	Type, UserID, OrgID, DisplayName, ExpiresIn, Metadata string
}

type newKeyData struct {
	Form        newKeyForm
	Types       []choiceOpt
	Expirations []choiceOpt
	Fields      map[string][]string
}

func (d *Dashboard) newKeyData(f newKeyForm, fields map[string][]string) *newKeyData {
	data := &newKeyData{Form: f, Fields: fields}
	for _, t := range keys.Types {
		data.Types = append(data.Types, choiceOpt{Value: t.String(), Label: t.String(), Selected: f.Type == t.String(), Disabled: !d.svc.Enabled(t)})
	}
	data.Expirations = append(data.Expirations, choiceOpt{Value: "", Label: "default", Selected: f.ExpiresIn == ""})
	for _, e := range d.svc.Expirations() {
		data.Expirations = append(data.Expirations, choiceOpt{Value: e.Name, Label: e.Name, Selected: f.ExpiresIn == e.Name})
	}
	return data
}

func (d *Dashboard) newKeyPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := newKeyForm{Type: q.Get("type"), UserID: q.Get("user_id"), OrgID: q.Get("org_id")}
	if f.Type == "" {
		switch {
		case f.OrgID != "":
			f.Type = "org"
		case f.UserID != "":
			f.Type = "personal"
		}
	}
	d.render(w, r, http.StatusOK, "key_new", d.page(r, "New key", "keys", d.newKeyData(f, nil)))
}

type createdData struct {
	Key   keyView
	Token string
	// RolledFrom is the key just rolled into Key; nil on creation.
	RolledFrom *keys.Key
}

// createKey creates a key and shows its token in this response only.
func (d *Dashboard) createKey(w http.ResponseWriter, r *http.Request) {
	pf := r.PostForm
	f := newKeyForm{Type: pf.Get("type"), UserID: strings.TrimSpace(pf.Get("user_id")), OrgID: strings.TrimSpace(pf.Get("org_id")),
		DisplayName: strings.TrimSpace(pf.Get("display_name")), ExpiresIn: pf.Get("expires_in"), Metadata: strings.TrimSpace(pf.Get("metadata"))}
	in := keys.CreateKeyInput{UserID: f.UserID, OrgID: f.OrgID, DisplayName: f.DisplayName, ExpiresIn: f.ExpiresIn}
	var err error
	if f.Type != "" {
		if in.Type, err = keys.ParseType(f.Type); err != nil {
			err = keys.FieldError("type", "must be personal, org or generic")
		}
	}
	if f.Metadata != "" {
		in.Metadata = []byte(f.Metadata)
	}
	var k *keys.Key
	var token string
	if err == nil {
		k, token, err = d.svc.CreateKey(r.Context(), in)
	}
	var kerr *keys.Error
	if errors.As(err, &kerr) && kerr.Code == keys.EInvalid {
		pg := d.page(r, "New key", "keys", d.newKeyData(f, kerr.Fields))
		pg.Error = "The key was not created: " + kerr.Error()
		d.render(w, r, http.StatusBadRequest, "key_new", pg)
		return
	}
	if err != nil {
		d.internal(w, r, "Creating the key", err)
		return
	}
	d.log.Info("dashboard key created", "key_id", k.ID)
	data := createdData{Key: keyView{Key: *k, Status: k.Status(d.now())}, Token: token}
	d.render(w, r, http.StatusCreated, "key_created", d.page(r, "Key created", "keys", data))
}

// keyOf returns the key named by the path, answering 404 itself.
func (d *Dashboard) keyOf(w http.ResponseWriter, r *http.Request) (*keys.Key, bool) {
	id := r.PathValue("id")
	if !keys.ValidKeyID(id) {
		d.notFound(w, r)
		return nil, false
	}
	k, err := d.svc.GetKey(r.Context(), id)
	if errors.Is(err, keys.ErrNotFound) {
		d.notFound(w, r)
		return nil, false
	}
	if err != nil {
		d.internal(w, r, "Reading the key", err)
		return nil, false
	}
	return k, true
}

type keyPageData struct {
	Key     keyView
	Quota   *quotaJSON    // generic keys' own standing
	Graces  []graceOption // roll choices; nil when the key cannot roll
	Creator string
	Chart   template.HTML
	Ranges  []dashRange
	Audit   []keys.AuditEvent
}

func (d *Dashboard) keyPage(w http.ResponseWriter, r *http.Request) {
	k, ok := d.keyOf(w, r)
	if !ok {
		return
	}
	data := keyPageData{Key: keyView{Key: *k, Status: k.Status(d.now())}}
	if data.Key.Status == "active" {
		data.Graces = d.graceOptions()
	}
	if k.Type == keys.TypeGeneric {
		data.Quota = d.standing(r.Context(), keys.KeyOwner(k.ID), k.Quota, keys.TypeGeneric)
	}
	var err error
	if data.Chart, data.Ranges, err = d.chart(r, keys.UsageQuery{KeyID: k.ID}, "Requests with "+keyLabel(k)); err != nil {
		d.internal(w, r, "Usage", err)
		return
	}
	if data.Audit, err = d.svc.ListAudit(r.Context(), keys.AuditFilter{KeyID: k.ID, Limit: 100}); err != nil {
		d.internal(w, r, "Audit", err)
		return
	}
	// The oldest event is the creation (or import); its actor is the creator.
	if n := len(data.Audit); n > 0 {
		if ev := data.Audit[n-1]; ev.Action == keys.ActionKeyCreated || ev.Action == keys.ActionKeyImported {
			data.Creator = ev.Actor
		}
	}
	d.render(w, r, http.StatusOK, "key", d.page(r, keyLabel(k), "keys", data))
}

func (d *Dashboard) archiveKey(w http.ResponseWriter, r *http.Request) {
	k, ok := d.keyOf(w, r)
	if !ok {
		return
	}
	if _, err := d.svc.ArchiveKey(r.Context(), k.ID); err != nil {
		d.internal(w, r, "Archiving the key", err)
		return
	}
	d.setFlash(r, "Archived "+keyLabel(k)+". It no longer validates; its record, usage and audit trail stay.")
	http.Redirect(w, r, "/keys/"+k.ID, http.StatusSeeOther)
}

type deleteKeyData struct {
	Key      keyView
	Requests int64 // in the last 30 days
}

func (d *Dashboard) confirmDeleteKey(w http.ResponseWriter, r *http.Request) {
	k, ok := d.keyOf(w, r)
	if !ok {
		return
	}
	rng, _ := usage.ParseChartRange("30d")
	q := rng.Query(d.now())
	q.KeyID = k.ID
	_, total, err := d.store.Usage(r.Context(), q)
	if err != nil {
		d.internal(w, r, "Usage", err)
		return
	}
	data := deleteKeyData{Key: keyView{Key: *k, Status: k.Status(d.now())}, Requests: total}
	d.render(w, r, http.StatusOK, "key_delete", d.page(r, "Delete "+keyLabel(k), "keys", data))
}

func (d *Dashboard) deleteKey(w http.ResponseWriter, r *http.Request) {
	k, ok := d.keyOf(w, r)
	if !ok {
		return
	}
	if err := d.svc.DeleteKey(r.Context(), k.ID); err != nil {
		d.internal(w, r, "Deleting the key", err)
		return
	}
	d.log.Info("dashboard key deleted", "key_id", k.ID)
	d.setFlash(r, fmt.Sprintf("Deleted %s for good (id %s). Its audit events remain in the audit log.", keyLabel(k), k.ID))
	http.Redirect(w, r, "/keys", http.StatusSeeOther)
}
