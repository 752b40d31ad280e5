package admin

import (
	"encoding/json"
	"net/http"

	"github.com/keygate/keygate/keys"
)

// userJSON is a user as answered by the user calls: orgs always present.
type userJSON struct {
	*keys.User
	Orgs  []keys.UserOrg `json:"orgs"`
	Quota *quotaJSON     `json:"quota"`
}

func userOut(u *keys.User) userJSON {
	out := userJSON{User: u, Orgs: u.Orgs}
	if out.Orgs == nil {
		out.Orgs = []keys.UserOrg{}
	}
	return out
}

// orgJSON is an org as answered by the org calls: members always present.
type orgJSON struct {
	*keys.Org
	Members []keys.Member `json:"members"`
	Quota   *quotaJSON    `json:"quota"`
}

func orgOut(o *keys.Org) orgJSON {
	out := orgJSON{Org: o, Members: o.Members}
	if out.Members == nil {
		out.Members = []keys.Member{}
	}
	return out
}

const ownerIDRule = "must be 1–128 characters of A-Z a-z 0-9 . _ : @ -"

// pathOwnerID returns a user or org id from the path, checked up front so
// that a bad id is named whatever the body holds.
func pathOwnerID(r *http.Request, wildcard, field string) (string, error) {
	id := r.PathValue(wildcard)
	if !keys.ValidOwnerID(id) {
		return "", badField(field, ownerIDRule)
	}
	return id, nil
}

type userRequest struct {
	Email     *string         `json:"email"`
	Enabled   *bool           `json:"enabled"`
	Metadata  json.RawMessage `json:"metadata"`
	RateLimit json.RawMessage `json:"rate_limit"`
	Quota     json.RawMessage `json:"quota"`
}

// putUser upserts a user: email is required (PUT replaces it); absent
// enabled, metadata and rate_limit keep what is stored; rate_limit null
// removes the override.
func (s *Server) putUser(w http.ResponseWriter, r *http.Request) error {
	id, err := pathOwnerID(r, "id", "user_id")
	if err != nil {
		return err
	}
	var req userRequest
	if err := decodeBody(w, r, &req); err != nil {
		return err
	}
	if req.Email == nil {
		return badField("email", `required ("" for none)`)
	}
	rl, clear, err := rateLimitOf(req.RateLimit)
	if err != nil {
		return err
	}
	q, clearQ, err := quotaOf(req.Quota)
	if err != nil {
		return err
	}
	u, err := s.svc.UpsertUser(r.Context(), keys.UserInput{
		ID: id, Email: *req.Email, Enabled: req.Enabled, Metadata: metadataOf(req.Metadata),
		RateLimit: rl, ClearRateLimit: clear, Quota: q, ClearQuota: clearQ,
	})
	if err != nil {
		return err
	}
	return s.writeUser(w, r, u)
}

func (s *Server) getUser(w http.ResponseWriter, r *http.Request) error {
	id, err := pathOwnerID(r, "id", "user_id")
	if err != nil {
		return err
	}
	u, err := s.svc.GetUser(r.Context(), id)
	if err != nil {
		return notFoundAs(err, "user %q not found", id)
	}
	return s.writeUser(w, r, u)
}

func (s *Server) blockUser(w http.ResponseWriter, r *http.Request) error {
	return s.setUserEnabled(w, r, false)
}

func (s *Server) unblockUser(w http.ResponseWriter, r *http.Request) error {
	return s.setUserEnabled(w, r, true)
}

func (s *Server) setUserEnabled(w http.ResponseWriter, r *http.Request, enabled bool) error {
	id, err := pathOwnerID(r, "id", "user_id")
	if err != nil {
		return err
	}
	u, err := s.svc.SetUserEnabled(r.Context(), id, enabled)
	if err != nil {
		return notFoundAs(err, "user %q not found", id)
	}
	return s.writeUser(w, r, u)
}

func (s *Server) deleteUser(w http.ResponseWriter, r *http.Request) error {
	id, err := pathOwnerID(r, "id", "user_id")
	if err != nil {
		return err
	}
	if err := s.svc.DeleteUser(r.Context(), id); err != nil {
		return notFoundAs(err, "user %q not found", id)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// listPage reads the cursor and page_size of the owner lists.
func listPage(r *http.Request) (cursor string, limit int, err error) {
	q := newQuery(r, "cursor", "page_size")
	cursor = q.str("cursor")
	if cursor != "" && !keys.ValidOwnerID(cursor) {
		q.add("cursor", "not a cursor returned by this API")
	}
	limit = int(q.integer("page_size", 100, 1, 1000))
	return cursor, limit, q.err()
}

func (s *Server) listUsers(w http.ResponseWriter, r *http.Request) error {
	cursor, limit, err := listPage(r)
	if err != nil {
		return err
	}
	us, next, err := s.svc.ListUsers(r.Context(), cursor, limit)
	if err != nil {
		return err
	}
	if us == nil {
		us = []keys.User{}
	}
	writeJSON(w, http.StatusOK, struct {
		Users      []keys.User `json:"users"`
		NextCursor string      `json:"next_cursor"`
	}{us, next})
	return nil
}

type orgRequest struct {
	Name      string          `json:"name"`
	Metadata  json.RawMessage `json:"metadata"`
	RateLimit json.RawMessage `json:"rate_limit"`
	Quota     json.RawMessage `json:"quota"`
}

// putOrg upserts an org, with the same rules as putUser (name required).
func (s *Server) putOrg(w http.ResponseWriter, r *http.Request) error {
	id, err := pathOwnerID(r, "id", "org_id")
	if err != nil {
		return err
	}
	var req orgRequest
	if err := decodeBody(w, r, &req); err != nil {
		return err
	}
	rl, clear, err := rateLimitOf(req.RateLimit)
	if err != nil {
		return err
	}
	q, clearQ, err := quotaOf(req.Quota)
	if err != nil {
		return err
	}
	o, err := s.svc.UpsertOrg(r.Context(), keys.OrgInput{
		ID: id, Name: req.Name, Metadata: metadataOf(req.Metadata), RateLimit: rl, ClearRateLimit: clear,
		Quota: q, ClearQuota: clearQ,
	})
	if err != nil {
		return err
	}
	return s.writeOrg(w, r, o)
}

func (s *Server) getOrg(w http.ResponseWriter, r *http.Request) error {
	id, err := pathOwnerID(r, "id", "org_id")
	if err != nil {
		return err
	}
	o, err := s.svc.GetOrg(r.Context(), id)
	if err != nil {
		return notFoundAs(err, "org %q not found", id)
	}
	return s.writeOrg(w, r, o)
}

func (s *Server) deleteOrg(w http.ResponseWriter, r *http.Request) error {
	id, err := pathOwnerID(r, "id", "org_id")
	if err != nil {
		return err
	}
	if err := s.svc.DeleteOrg(r.Context(), id); err != nil {
		return notFoundAs(err, "org %q not found", id)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) listOrgs(w http.ResponseWriter, r *http.Request) error {
	cursor, limit, err := listPage(r)
	if err != nil {
		return err
	}
	orgs, next, err := s.svc.ListOrgs(r.Context(), cursor, limit)
	if err != nil {
		return err
	}
	if orgs == nil {
		orgs = []keys.Org{}
	}
	writeJSON(w, http.StatusOK, struct {
		Orgs       []keys.Org `json:"orgs"`
		NextCursor string     `json:"next_cursor"`
	}{orgs, next})
	return nil
}

type memberRequest struct {
	Role string `json:"role"`
}

// memberIDs returns the org and user ids of a membership path.
func memberIDs(r *http.Request) (orgID, userID string, err error) {
	problems := map[string][]string{}
	orgID, userID = r.PathValue("id"), r.PathValue("user_id")
	if !keys.ValidOwnerID(orgID) {
		problems["org_id"] = []string{ownerIDRule}
	}
	if !keys.ValidOwnerID(userID) {
		problems["user_id"] = []string{ownerIDRule}
	}
	if len(problems) > 0 {
		return "", "", &keys.Error{Code: keys.EInvalid, Message: "invalid ids in the path", Fields: problems}
	}
	return orgID, userID, nil
}

func (s *Server) putMember(w http.ResponseWriter, r *http.Request) error {
	orgID, userID, err := memberIDs(r)
	if err != nil {
		return err
	}
	var req memberRequest
	if err := decodeBody(w, r, &req); err != nil {
		return err
	}
	m, err := s.svc.PutMember(r.Context(), orgID, userID, req.Role)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, m)
	return nil
}

func (s *Server) deleteMember(w http.ResponseWriter, r *http.Request) error {
	orgID, userID, err := memberIDs(r)
	if err != nil {
		return err
	}
	if err := s.svc.RemoveMember(r.Context(), orgID, userID); err != nil {
		return notFoundAs(err, "user %q is not a member of org %q", userID, orgID)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
