package dashboard

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/keygate/keygate/keys"
)

// registerOwnerForms adds the pages that create and edit users, orgs and
// memberships. Destructive actions (deleting an owner, removing a member)
// go through a confirmation page first.
func (d *Dashboard) registerOwnerForms(h func(string, http.HandlerFunc)) {
	h("GET /users/new", d.auth(d.userForm))
	h("POST /users", d.auth(d.saveUser))
	h("GET /users/{id}/edit", d.auth(d.userForm))
	h("POST /users/{id}", d.auth(d.saveUser))
	h("GET /users/{id}/delete", d.auth(d.confirmDeleteOwner))
	h("POST /users/{id}/delete", d.auth(d.deleteOwner))
	h("GET /orgs/new", d.auth(d.orgForm))
	h("POST /orgs", d.auth(d.saveOrg))
	h("GET /orgs/{id}/edit", d.auth(d.orgForm))
	h("POST /orgs/{id}", d.auth(d.saveOrg))
	h("GET /orgs/{id}/delete", d.auth(d.confirmDeleteOwner))
	h("POST /orgs/{id}/delete", d.auth(d.deleteOwner))
	h("POST /orgs/{id}/members", d.auth(d.putMember))
	h("GET /orgs/{id}/members/{user}/remove", d.auth(d.confirmRemoveMember))
	h("POST /orgs/{id}/members/{user}/remove", d.auth(d.removeMember))
}

// ownerForm is the user or org form as shown (and as sent back with errors).
type ownerForm struct {
	Kind     string // "user" or "org"
	New      bool
	ID       string
	Email    string // users
	Enabled  bool   // users
	Name     string // orgs
	Metadata string
	Limit    string // rate limit override; both empty: none
	Window   string
	Fields   map[string][]string
}

// Action is where the form posts.
func (f ownerForm) Action() string {
	if f.New {
		return "/" + f.Kind + "s"
	}
	return "/" + f.Kind + "s/" + url.PathEscape(f.ID)
}

func rateFields(r *keys.RateLimit) (limit, window string) {
	if r == nil {
		return "", ""
	}
	return strconv.FormatInt(r.Limit, 10), keys.FormatDuration(r.Window)
}

func (d *Dashboard) userForm(w http.ResponseWriter, r *http.Request) {
	f := ownerForm{Kind: "user", New: true, Enabled: true, Metadata: "{}"}
	if id := r.PathValue("id"); id != "" {
		u, err := d.svc.GetUser(r.Context(), id)
		if !d.found(w, r, "Reading the user", err) {
			return
		}
		f = ownerForm{Kind: "user", ID: u.ID, Email: u.Email, Enabled: u.Enabled, Metadata: prettyJSON(u.Metadata)}
		f.Limit, f.Window = rateFields(u.RateLimit)
	}
	d.renderOwnerForm(w, r, http.StatusOK, f, "")
}

func (d *Dashboard) orgForm(w http.ResponseWriter, r *http.Request) {
	f := ownerForm{Kind: "org", New: true, Metadata: "{}"}
	if id := r.PathValue("id"); id != "" {
		o, err := d.svc.GetOrg(r.Context(), id)
		if !d.found(w, r, "Reading the org", err) {
			return
		}
		f = ownerForm{Kind: "org", ID: o.ID, Name: o.Name, Metadata: prettyJSON(o.Metadata)}
		f.Limit, f.Window = rateFields(o.RateLimit)
	}
	d.renderOwnerForm(w, r, http.StatusOK, f, "")
}

func (d *Dashboard) renderOwnerForm(w http.ResponseWriter, r *http.Request, status int, f ownerForm, errMsg string) {
	title := "New " + f.Kind
	if !f.New {
		title = "Edit " + f.Kind + " " + f.ID
	}
	pg := d.page(r, title, f.Kind+"s", f)
	pg.Error = errMsg
	d.render(w, r, status, "owner_form", pg)
}

// readOwnerForm reads the posted form; the id comes from the path when
// editing, so an edit cannot rename.
func readOwnerForm(r *http.Request, kind string) ownerForm {
	pf := r.PostForm
	f := ownerForm{Kind: kind, New: r.PathValue("id") == "", ID: strings.TrimSpace(pf.Get("id")),
		Email: strings.TrimSpace(pf.Get("email")), Enabled: pf.Get("enabled") == "on", Name: strings.TrimSpace(pf.Get("name")),
		Metadata: strings.TrimSpace(pf.Get("metadata")), Limit: strings.TrimSpace(pf.Get("limit")), Window: strings.TrimSpace(pf.Get("window"))}
	if !f.New {
		f.ID = r.PathValue("id")
	}
	return f
}

// rateLimit reads the override fields: both empty clears it.
func (f ownerForm) rateLimit() (rl *keys.RateLimit, clear bool, err error) {
	if f.Limit == "" && f.Window == "" {
		return nil, true, nil
	}
	n, err := strconv.ParseInt(strings.ReplaceAll(f.Limit, ",", ""), 10, 64)
	if err != nil || n < 0 {
		return nil, false, keys.FieldError("rate_limit.limit", "must be a whole number of requests, 0 for unlimited (leave both fields empty for the default)")
	}
	win, err := time.ParseDuration(f.Window)
	if err != nil || win <= 0 {
		return nil, false, keys.FieldError("rate_limit.window", "must be a duration like 1m, 1h or 500ms")
	}
	return &keys.RateLimit{Limit: n, Window: win}, false, nil
}

// exists reports whether a new owner's id is taken: the form creates, it
// does not silently overwrite.
func (d *Dashboard) exists(r *http.Request, kind, id string) (bool, error) {
	var err error
	if kind == "user" {
		_, err = d.svc.GetUser(r.Context(), id)
	} else {
		_, err = d.svc.GetOrg(r.Context(), id)
	}
	if errors.Is(err, keys.ErrNotFound) || keys.ErrorCode(err) == keys.EInvalid {
		return false, nil
	}
	return err == nil, err
}

func (d *Dashboard) saveUser(w http.ResponseWriter, r *http.Request) { d.saveOwner(w, r, "user") }
func (d *Dashboard) saveOrg(w http.ResponseWriter, r *http.Request)  { d.saveOwner(w, r, "org") }

func (d *Dashboard) saveOwner(w http.ResponseWriter, r *http.Request, kind string) {
	f := readOwnerForm(r, kind)
	verb := "saved"
	if f.New {
		verb = "created"
		if f.ID == "" {
			f.Fields = map[string][]string{"id": {"is required"}}
			d.renderOwnerForm(w, r, http.StatusBadRequest, f, "The "+kind+" was not created: an id is required.")
			return
		}
		taken, err := d.exists(r, kind, f.ID)
		if err != nil {
			d.internal(w, r, "Reading the "+kind, err)
			return
		}
		if taken {
			f.Fields = map[string][]string{"id": {"is taken"}}
			d.renderOwnerForm(w, r, http.StatusConflict, f, "A "+kind+" with the id "+f.ID+" exists already; open it to edit it.")
			return
		}
	} else if taken, err := d.exists(r, kind, f.ID); err != nil || !taken {
		if err != nil {
			d.internal(w, r, "Reading the "+kind, err)
		} else {
			d.notFound(w, r)
		}
		return
	}
	rl, clear, err := f.rateLimit()
	if err == nil {
		var meta []byte
		if f.Metadata != "" {
			meta = []byte(f.Metadata)
		}
		if kind == "user" {
			enabled := f.Enabled
			_, err = d.svc.UpsertUser(r.Context(), keys.UserInput{ID: f.ID, Email: f.Email, Enabled: &enabled, Metadata: meta, RateLimit: rl, ClearRateLimit: clear})
		} else {
			_, err = d.svc.UpsertOrg(r.Context(), keys.OrgInput{ID: f.ID, Name: f.Name, Metadata: meta, RateLimit: rl, ClearRateLimit: clear})
		}
	}
	var kerr *keys.Error
	if errors.As(err, &kerr) && kerr.Code == keys.EInvalid {
		f.Fields = kerr.Fields
		d.renderOwnerForm(w, r, http.StatusBadRequest, f, "The "+kind+" was not "+verb+": "+kerr.Error())
		return
	}
	if err != nil {
		d.internal(w, r, "Saving the "+kind, err)
		return
	}
	d.setFlash(r, strings.ToUpper(kind[:1])+kind[1:]+" "+f.ID+" "+verb+".")
	http.Redirect(w, r, "/"+kind+"s/"+url.PathEscape(f.ID), http.StatusSeeOther)
}

type confirmData struct {
	Heading string
	Lines   []string // what the action does, one consequence a line
	Action  string   // where the confirmed form posts
	Button  string
	Cancel  string
}

// confirmDeleteOwner shows what deleting a user or org does before it is done.
func (d *Dashboard) confirmDeleteOwner(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	ctx := r.Context()
	var data confirmData
	if strings.HasPrefix(r.URL.Path, "/users/") {
		u, err := d.svc.GetUser(ctx, id)
		if !d.found(w, r, "Reading the user", err) {
			return
		}
		data = confirmData{Heading: "Delete user " + u.ID + "?", Lines: []string{
			"Their personal keys are archived for good: requests with them are rejected at once.",
			"They leave every org they are in (" + thousands(int64(len(u.Orgs))) + ").",
			"Org keys they created stay with their orgs, no longer naming them.",
			"The audit log keeps their history.",
		}, Action: "/users/" + url.PathEscape(id) + "/delete", Button: "Delete user", Cancel: "/users/" + url.PathEscape(id)}
	} else {
		o, err := d.svc.GetOrg(ctx, id)
		if !d.found(w, r, "Reading the org", err) {
			return
		}
		data = confirmData{Heading: "Delete org " + o.Name + " (" + o.ID + ")?", Lines: []string{
			"Its keys are archived for good: requests with them are rejected at once.",
			"Its " + thousands(int64(len(o.Members))) + " memberships are removed; the users themselves stay.",
			"The audit log keeps its history.",
		}, Action: "/orgs/" + url.PathEscape(id) + "/delete", Button: "Delete org", Cancel: "/orgs/" + url.PathEscape(id)}
	}
	d.render(w, r, http.StatusOK, "confirm", d.page(r, data.Heading, "", data))
}

func (d *Dashboard) deleteOwner(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	kind, del := "org", d.svc.DeleteOrg
	if strings.HasPrefix(r.URL.Path, "/users/") {
		kind, del = "user", d.svc.DeleteUser
	}
	err := del(r.Context(), id)
	if errors.Is(err, keys.ErrNotFound) || keys.ErrorCode(err) == keys.EInvalid {
		d.notFound(w, r)
		return
	}
	if err != nil {
		d.internal(w, r, "Deleting the "+kind, err)
		return
	}
	d.setFlash(r, "Deleted "+kind+" "+id+".")
	http.Redirect(w, r, "/"+kind+"s", http.StatusSeeOther)
}

// putMember adds a member or changes their role (the same call).
func (d *Dashboard) putMember(w http.ResponseWriter, r *http.Request) {
	orgID := r.PathValue("id")
	userID, role := strings.TrimSpace(r.PostForm.Get("user_id")), strings.TrimSpace(r.PostForm.Get("role"))
	_, err := d.svc.PutMember(r.Context(), orgID, userID, role)
	var kerr *keys.Error
	switch {
	case errors.As(err, &kerr) && (kerr.Code == keys.EInvalid || kerr.Code == keys.ENotFound):
		d.setFlash(r, "Membership not saved: "+kerr.Error())
	case errors.Is(err, keys.ErrNotFound):
		d.setFlash(r, "Membership not saved: no user "+userID+" (create the user first).")
	case err != nil:
		d.internal(w, r, "Saving the membership", err)
		return
	default:
		d.setFlash(r, userID+" is now "+role+" in "+orgID+".")
	}
	http.Redirect(w, r, "/orgs/"+url.PathEscape(orgID)+"#members", http.StatusSeeOther)
}

func (d *Dashboard) confirmRemoveMember(w http.ResponseWriter, r *http.Request) {
	orgID, userID := r.PathValue("id"), r.PathValue("user")
	o, err := d.svc.GetOrg(r.Context(), orgID)
	if !d.found(w, r, "Reading the org", err) {
		return
	}
	lines := []string{
		userID + " loses access to " + o.Name + "'s keys in the portal.",
		"With keys.org.invalidate_on_creator_leave on, the org keys " + userID + " created are archived for good; otherwise they keep working.",
	}
	data := confirmData{Heading: "Remove " + userID + " from " + o.Name + "?", Lines: lines,
		Action: "/orgs/" + url.PathEscape(orgID) + "/members/" + url.PathEscape(userID) + "/remove",
		Button: "Remove member", Cancel: "/orgs/" + url.PathEscape(orgID)}
	d.render(w, r, http.StatusOK, "confirm", d.page(r, data.Heading, "orgs", data))
}

func (d *Dashboard) removeMember(w http.ResponseWriter, r *http.Request) {
	orgID, userID := r.PathValue("id"), r.PathValue("user")
	err := d.svc.RemoveMember(r.Context(), orgID, userID)
	if errors.Is(err, keys.ErrNotFound) || keys.ErrorCode(err) == keys.EInvalid || keys.ErrorCode(err) == keys.ENotFound {
		d.notFound(w, r)
		return
	}
	if err != nil {
		d.internal(w, r, "Removing the member", err)
		return
	}
	d.setFlash(r, "Removed "+userID+" from "+orgID+".")
	http.Redirect(w, r, "/orgs/"+url.PathEscape(orgID)+"#members", http.StatusSeeOther)
}

// thousands writes n with comma thousands separators: 1,234,567.
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// hasField reports whether a form field has a problem, for aria-invalid.
func hasField(fields map[string][]string, name string) bool { return len(fields[name]) > 0 }
