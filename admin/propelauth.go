package admin

// PropelAuth compatibility (SPEC §14): PropelAuth's backend API for end-user
// API keys, served on the admin port so that apps written against PropelAuth's
// SDKs move to keygate by sending the SDK's HTTP calls here. The wire contract
// is shared/PROPELAUTH.md. This file only translates: every rule (owners,
// expiry, metadata, validation, rate limits, usage) stays in keys.Service, the
// gate behind checkAPIKey and the usage store.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/keygate/keygate/keys"
)

// propelBase is the path prefix of every PropelAuth end-user API key call.
const propelBase = "/api/backend/v1/end_user_api_keys"

// propelPageSize is PropelAuth's default page size.
const propelPageSize = 10

func (s *Server) propelAuthRoutes() {
	m, p := s.mux, propelBase
	m.Handle("POST "+p, s.propel(s.propelCreate))
	m.Handle("GET "+p, s.propel(s.propelList(false)))
	m.Handle("GET "+p+"/archived", s.propel(s.propelList(true)))
	m.Handle("GET "+p+"/usage", s.propel(s.propelUsage))
	m.Handle("POST "+p+"/import", s.propel(s.propelImport))
	// keygate validates imported and minted tokens alike.
	m.Handle("POST "+p+"/validate", s.propel(s.propelValidate))
	m.Handle("POST "+p+"/validate_imported", s.propel(s.propelValidate))
	m.Handle("GET "+p+"/{id}", s.propel(s.propelGet))
	m.Handle("PATCH "+p+"/{id}", s.propel(s.propelUpdate))
	m.Handle("DELETE "+p+"/{id}", s.propel(s.propelDelete))
	// The rest of PropelAuth's backend API (users, orgs, …) is not served:
	// a JSON 404 rather than the dashboard.
	for _, method := range apiMethods {
		m.fallback(method+" /api/backend/", s.propel(func(w http.ResponseWriter, r *http.Request) error {
			return keys.Errorf(keys.ENotFound, "keygate does not serve PropelAuth's %s %s (only the end-user API key calls under %s)", r.Method, r.URL.Path, propelBase)
		}))
	}
}

// propel wraps a PropelAuth handler: the admin token is the SDK's
// integration API key (a wrong one is 401, which the SDK reports as
// "integrationApiKey is incorrect"); errors are answered in PropelAuth's shapes.
func (s *Server) propel(fn apiFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if !s.authorized(r) {
			s.writeError(w, r, errUnauthorized)
			return
		}
		if err := fn(w, r); err != nil {
			s.writePropelError(w, r, err)
		}
	})
}

// propelFields renames keygate's field names to the ones PropelAuth's
// requests use, so that fieldToErrors names what the caller sent.
var propelFields = map[string]string{
	"id":           "api_key_id",
	"key_id":       "api_key_id",
	"expires_at":   "expires_at_seconds",
	"expires_in":   "expires_at_seconds",
	"never_expire": "set_to_never_expire",
	"token":        "imported_api_key",
	"token_sha256": "imported_api_key",
	"api_key":      "api_key_token",
}

// propelFieldName maps a keygate field name (possibly prefixed "keys[0]."
// by an import) to PropelAuth's.
func propelFieldName(f string) string {
	if i := strings.Index(f, "]."); strings.HasPrefix(f, "keys[") && i > 0 {
		f = f[i+2:]
	}
	if n, ok := propelFields[f]; ok {
		return n
	}
	return f
}

// writePropelError answers err in the shape the SDK parses: every 400 is a
// JSON object of field → [problems] (the SDK exposes it as fieldToErrors),
// and 429 carries PropelAuth's wait_seconds, user_facing_error and
// error_code. The status comes from the admin API's one error table
// (errorResponse); other statuses keep the admin API's body.
func (s *Server) writePropelError(w http.ResponseWriter, r *http.Request, err error) {
	status, body := errorResponse(err)
	switch status {
	case http.StatusTooManyRequests:
		var rl *rateLimitedError
		wait := float64(body.WaitSeconds)
		if errors.As(err, &rl) {
			// PropelAuth's wait_seconds is a decimal; keep milliseconds,
			// and never 0 (the SDK's callers sleep for it).
			wait = max(0.001, math.Ceil(rl.retryAfter.Seconds()*1000)/1000)
		}
		w.Header().Set("Retry-After", strconv.FormatInt(body.WaitSeconds, 10))
		writeJSON(w, status, map[string]any{
			"wait_seconds":      wait,
			"user_facing_error": fmt.Sprintf("Too many requests: the key's owner is over its rate limit; try again in %d s", body.WaitSeconds),
			"error_code":        "rate_limit_exceeded",
		})
	case http.StatusBadRequest:
		fields := make(map[string][]string, len(body.Fields))
		for f, problems := range body.Fields {
			n := propelFieldName(f)
			fields[n] = append(fields[n], problems...)
		}
		if len(fields) == 0 {
			fields["request"] = []string{body.Message}
		}
		writeJSON(w, status, fields)
	default:
		s.writeError(w, r, err)
	}
}

// propelKey is PropelAuth's key record. Times are unix seconds; absent
// owners and "never expires" are null.
type propelKey struct {
	APIKeyID         string          `json:"api_key_id"`
	CreatedAt        int64           `json:"created_at"`
	ExpiresAtSeconds *int64          `json:"expires_at_seconds"`
	Metadata         json.RawMessage `json:"metadata"`
	UserID           *string         `json:"user_id"`
	OrgID            *string         `json:"org_id"`
	DisplayName      string          `json:"display_name"`
}

func newPropelKey(k *keys.Key) propelKey {
	meta := k.Metadata
	if len(meta) == 0 {
		meta = json.RawMessage("{}")
	}
	return propelKey{APIKeyID: k.ID, CreatedAt: k.CreatedAt, ExpiresAtSeconds: k.ExpiresAt, Metadata: meta,
		UserID: nullable(k.UserID), OrgID: nullable(k.OrgID), DisplayName: k.DisplayName}
}

// nullable returns nil for "", so that JSON says null.
func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// propelKeyID reads the {id} path value. The SDK accepts upper-case hex;
// keygate's ids are lower case.
func propelKeyID(r *http.Request) string { return strings.ToLower(r.PathValue("id")) }

// propelMetadata reads a metadata field: absent or null is nil (none given),
// an object is itself, and a string holding a JSON object is that object
// (the SDK's ApiKeyUpdateRequest types metadata as a string).
func propelMetadata(raw json.RawMessage) ([]byte, error) {
	if isNull(raw) {
		return nil, nil
	}
	if raw[0] != '"' {
		return raw, nil
	}
	var str string
	if err := json.Unmarshal(raw, &str); err != nil {
		return nil, badField("metadata", "must be a JSON object or a string holding one")
	}
	if strings.TrimSpace(str) == "" {
		return nil, badField("metadata", "must be a JSON object or a string holding one, not an empty string")
	}
	return []byte(str), nil
}

type propelCreateRequest struct {
	UserID           string          `json:"user_id"`
	OrgID            string          `json:"org_id"`
	ExpiresAtSeconds *int64          `json:"expires_at_seconds"`
	Metadata         json.RawMessage `json:"metadata"`
	DisplayName      string          `json:"display_name"`
}

// propelCreate creates a key: org_id makes an org key (user_id, when given,
// is the member creating it), user_id alone a personal key, neither a
// generic key.
func (s *Server) propelCreate(w http.ResponseWriter, r *http.Request) error {
	var req propelCreateRequest
	if err := decodeBody(w, r, &req); err != nil {
		return err
	}
	meta, err := propelMetadata(req.Metadata)
	if err != nil {
		return err
	}
	k, token, err := s.svc.CreateKey(r.Context(), keys.CreateKeyInput{
		UserID: req.UserID, OrgID: req.OrgID, DisplayName: req.DisplayName, Metadata: meta, ExpiresAt: req.ExpiresAtSeconds,
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, struct {
		APIKeyID    string `json:"api_key_id"`
		APIKeyToken string `json:"api_key_token"`
	}{k.ID, token})
	return nil
}

type propelImportRequest struct {
	ImportedAPIKey   string          `json:"imported_api_key"`
	UserID           string          `json:"user_id"`
	OrgID            string          `json:"org_id"`
	ExpiresAtSeconds *int64          `json:"expires_at_seconds"`
	Metadata         json.RawMessage `json:"metadata"`
	DisplayName      string          `json:"display_name"`
}

// propelImport imports one existing token, kept only as a hash.
func (s *Server) propelImport(w http.ResponseWriter, r *http.Request) error {
	var req propelImportRequest
	if err := decodeBody(w, r, &req); err != nil {
		return err
	}
	if req.ImportedAPIKey == "" {
		return badField("imported_api_key", "required: the existing token")
	}
	meta, err := propelMetadata(req.Metadata)
	if err != nil {
		return err
	}
	ks, err := s.svc.ImportKeys(r.Context(), []keys.CreateKeyInput{{
		UserID: req.UserID, OrgID: req.OrgID, DisplayName: req.DisplayName, Metadata: meta,
		ExpiresAt: req.ExpiresAtSeconds, Token: req.ImportedAPIKey,
	}})
	if keys.ErrorCode(err) == keys.EConflict {
		return badField("imported_api_key", "a key with this token already exists")
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, struct {
		APIKeyID string `json:"api_key_id"`
	}{ks[0].ID})
	return nil
}

func (s *Server) propelGet(w http.ResponseWriter, r *http.Request) error {
	id := propelKeyID(r)
	k, err := s.svc.GetKey(r.Context(), id)
	if err != nil {
		return notFoundAs(err, "key %s not found", id)
	}
	writeJSON(w, http.StatusOK, newPropelKey(k))
	return nil
}

type propelUpdateRequest struct {
	ExpiresAtSeconds *int64          `json:"expires_at_seconds"`
	Metadata         json.RawMessage `json:"metadata"`
	SetToNeverExpire *bool           `json:"set_to_never_expire"`
}

// propelUpdate changes a key's expiry or metadata (which it replaces);
// absent fields are left alone.
func (s *Server) propelUpdate(w http.ResponseWriter, r *http.Request) error {
	id := propelKeyID(r)
	if !keys.ValidKeyID(id) {
		return badField("api_key_id", "must be 32 hex characters")
	}
	var req propelUpdateRequest
	if err := decodeBody(w, r, &req); err != nil {
		return err
	}
	meta, err := propelMetadata(req.Metadata)
	if err != nil {
		return err
	}
	p := keys.KeyPatch{Metadata: meta, ExpiresAt: req.ExpiresAtSeconds}
	if req.SetToNeverExpire != nil {
		p.NeverExpire = *req.SetToNeverExpire
	}
	_, err = s.svc.UpdateKey(r.Context(), id, p)
	if keys.ErrorCode(err) == keys.EConflict {
		// An archived key: a 400 the SDK reports as ApiKeyUpdateException.
		return badField("api_key_id", err.Error())
	}
	if err != nil {
		return notFoundAs(err, "key %s not found", id)
	}
	writeJSON(w, http.StatusOK, struct{}{})
	return nil
}

// propelDelete archives a key (PropelAuth's delete keeps the record among
// the archived keys); deleting an archived key changes nothing.
func (s *Server) propelDelete(w http.ResponseWriter, r *http.Request) error {
	id := propelKeyID(r)
	if _, err := s.svc.ArchiveKey(r.Context(), id); err != nil {
		return notFoundAs(err, "key %s not found", id)
	}
	writeJSON(w, http.StatusOK, struct{}{})
	return nil
}

// propelList answers a page of current (not archived) or archived keys,
// newest first with ties broken by id, pages numbered from 0.
func (s *Server) propelList(archived bool) apiFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		q := newQuery(r, "user_id", "org_id", "user_email", "page_size", "page_number")
		userID, orgID, email := q.ownerID("user_id"), q.ownerID("org_id"), q.str("user_email")
		size := q.integer("page_size", propelPageSize, 1, 1000)
		page := q.integer("page_number", 0, 0, math.MaxInt32)
		if err := q.err(); err != nil {
			return err
		}
		ctx := r.Context()
		userIDs := []string{userID}
		if email != "" {
			ids, err := s.usersWithEmail(ctx, email)
			if err != nil {
				return err
			}
			userIDs = userIDs[:0]
			for _, id := range ids {
				if userID == "" || id == userID {
					userIDs = append(userIDs, id)
				}
			}
		}
		status := "all" // current keys: active and expired, not archived
		if archived {
			status = "archived"
		}
		var all []keys.Key
		for _, uid := range userIDs {
			ks, err := s.allKeys(ctx, keys.KeyFilter{UserID: uid, OrgID: orgID, Status: status})
			if err != nil {
				return err
			}
			for _, k := range ks {
				if k.Archived() == archived {
					all = append(all, k)
				}
			}
		}
		sort.Slice(all, func(i, j int) bool {
			if all[i].CreatedAt != all[j].CreatedAt {
				return all[i].CreatedAt > all[j].CreatedAt
			}
			return all[i].ID < all[j].ID
		})
		total := int64(len(all))
		out := []propelKey{}
		if from := page * size; from < total {
			for _, k := range all[from:min(total, from+size)] {
				out = append(out, newPropelKey(&k))
			}
		}
		writeJSON(w, http.StatusOK, struct {
			APIKeys        []propelKey `json:"api_keys"`
			TotalAPIKeys   int64       `json:"total_api_keys"`
			CurrentPage    int64       `json:"current_page"`
			PageSize       int64       `json:"page_size"`
			HasMoreResults bool        `json:"has_more_results"`
		}{out, total, page, size, (page+1)*size < total})
		return nil
	}
}

// allKeys walks every page of keys.Service's ListKeys for f. PropelAuth's
// pages need a total and numbered pages, which a cursor cannot give, so a
// page costs a walk over the matching keys (see README, design notes).
func (s *Server) allKeys(ctx context.Context, f keys.KeyFilter) ([]keys.Key, error) {
	f.Limit = 1000
	var all []keys.Key
	for {
		ks, next, err := s.svc.ListKeys(ctx, f)
		if err != nil {
			return nil, err
		}
		all = append(all, ks...)
		if next == "" {
			return all, nil
		}
		f.Cursor = next
	}
}

// usersWithEmail returns the ids of the users whose email is email, ignoring
// case. keygate does not index emails (nor require them unique), so it walks
// the users.
func (s *Server) usersWithEmail(ctx context.Context, email string) ([]string, error) {
	var ids []string
	cursor := ""
	for {
		us, next, err := s.svc.ListUsers(ctx, cursor, 1000)
		if err != nil {
			return nil, err
		}
		for _, u := range us {
			if strings.EqualFold(u.Email, email) {
				ids = append(ids, u.ID)
			}
		}
		if next == "" {
			return ids, nil
		}
		cursor = next
	}
}

// propelUsage answers how many validations the matching keys had on one UTC
// day: every validation that counted for a key, allowed or rate limited (the
// usage store's total). No filter means every key.
func (s *Server) propelUsage(w http.ResponseWriter, r *http.Request) error {
	if s.usage == nil {
		return errorf(http.StatusNotImplemented, codeNotImplemented, "usage is not available on this node")
	}
	q := newQuery(r, "date", "api_key_id", "user_id", "org_id")
	keyID := strings.ToLower(q.str("api_key_id"))
	if keyID != "" && !keys.ValidKeyID(keyID) {
		q.add("api_key_id", "must be 32 hex characters")
	}
	userID, orgID := q.ownerID("user_id"), q.ownerID("org_id")
	date := q.str("date")
	day, err := time.Parse(time.DateOnly, date)
	if err != nil {
		q.add("date", "required: a day as YYYY-MM-DD (UTC)")
	}
	if err := q.err(); err != nil {
		return err
	}
	ctx := r.Context()
	uq := keys.UsageQuery{From: day.Unix(), To: day.Unix() + 86400, Interval: "day"}
	var ids []string // keys to sum one by one; nil means one query does
	switch {
	case keyID != "":
		k, err := s.svc.GetKey(ctx, keyID)
		if errors.Is(err, keys.ErrNotFound) {
			return badField("api_key_id", fmt.Sprintf("no key with id %s", keyID))
		} else if err != nil {
			return err
		}
		if (userID == "" || k.UserID == userID) && (orgID == "" || k.OrgID == orgID) {
			uq.KeyID = keyID
		} else {
			ids = []string{} // the key does not match the other filters
		}
	case userID != "":
		// Keys whose user_id is the user's (personal keys and the org keys
		// they created), as the list calls filter.
		ks, err := s.allKeys(ctx, keys.KeyFilter{UserID: userID, OrgID: orgID, Status: "all"})
		if err != nil {
			return err
		}
		ids = make([]string, len(ks))
		for i, k := range ks {
			ids[i] = k.ID
		}
	case orgID != "":
		uq.OrgID = orgID
	}
	var count int64
	if ids == nil {
		if _, count, err = s.usage.Usage(ctx, uq); err != nil {
			return err
		}
	}
	for _, id := range ids {
		uq.KeyID = id
		_, n, err := s.usage.Usage(ctx, uq)
		if err != nil {
			return err
		}
		count += n
	}
	writeJSON(w, http.StatusOK, map[string]int64{"count": count})
	return nil
}

type propelValidateRequest struct {
	APIKeyToken string `json:"api_key_token"`
}

// propelValidate checks an end user's token exactly as POST /v1/validate
// does (counting towards usage and rate limits). A rejected token is a 400
// naming api_key_token, because the SDK reads any 401 as a wrong
// integration key.
func (s *Server) propelValidate(w http.ResponseWriter, r *http.Request) error {
	var req propelValidateRequest
	if err := decodeBody(w, r, &req); err != nil {
		return err
	}
	if req.APIKeyToken == "" {
		return badField("api_key_token", "required")
	}
	id, err := s.checkAPIKey(w, r, req.APIKeyToken, 1)
	switch {
	case errors.Is(err, keys.ErrExpiredKey):
		return badField("api_key_token", "the API key has expired")
	case errors.Is(err, keys.ErrInvalidKey):
		return badField("api_key_token", "the API key is invalid (unknown, malformed, archived, its owner blocked or its type disabled)")
	case err != nil:
		return err
	}
	out, err := s.propelValidation(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// PropelAuth's validation answer. user_id and org_id repeat the key's owner.
type propelValidationBody struct {
	Metadata  json.RawMessage `json:"metadata"`
	User      *propelUser     `json:"user"`
	Org       *propelOrg      `json:"org"`
	UserInOrg *propelMember   `json:"user_in_org"`
	UserID    *string         `json:"user_id"`
	OrgID     *string         `json:"org_id"`
}

// propelUser is PropelAuth's UserMetadata. keygate has no passwords, MFA,
// locks or email confirmation: those fields are constants so that the
// SDK's type holds.
type propelUser struct {
	UserID         string                  `json:"user_id"`
	Email          string                  `json:"email"`
	EmailConfirmed bool                    `json:"email_confirmed"`
	HasPassword    bool                    `json:"has_password"`
	Locked         bool                    `json:"locked"`
	Enabled        bool                    `json:"enabled"`
	MFAEnabled     bool                    `json:"mfa_enabled"`
	CanCreateOrgs  bool                    `json:"can_create_orgs"`
	CreatedAt      int64                   `json:"created_at"`
	LastActiveAt   int64                   `json:"last_active_at"`
	Metadata       json.RawMessage         `json:"metadata"`
	OrgIDToOrgInfo map[string]propelMember `json:"org_id_to_org_info"`
}

// propelOrg sends the name as org_name (PropelAuth's server, the Python and
// Rust SDKs) and as name (the Node SDK's Org type).
type propelOrg struct {
	OrgID            string          `json:"org_id"`
	OrgName          string          `json:"org_name"`
	Name             string          `json:"name"`
	Metadata         json.RawMessage `json:"metadata"`
	IsSAMLConfigured bool            `json:"is_saml_configured"`
	CanSetupSAML     bool            `json:"can_setup_saml"`
	CreatedAt        int64           `json:"created_at"`
}

// propelMember is PropelAuth's user-in-org: with all seven core fields the
// SDK builds an OrgMemberInfo whose isRole, isAtLeastRole and hasPermission
// work. keygate's roles are free strings without a hierarchy.
type propelMember struct {
	OrgID                             string          `json:"org_id"`
	OrgName                           string          `json:"org_name"`
	URLSafeOrgName                    string          `json:"url_safe_org_name"`
	OrgMetadata                       json.RawMessage `json:"org_metadata"`
	UserRole                          string          `json:"user_role"`
	InheritedUserRolesPlusCurrentRole []string        `json:"inherited_user_roles_plus_current_role"`
	UserPermissions                   []string        `json:"user_permissions"`
	OrgRoleStructure                  string          `json:"org_role_structure"`
	AdditionalRoles                   []string        `json:"additional_roles"`
}

func newPropelMember(orgID, name string, meta json.RawMessage, role string) propelMember {
	return propelMember{OrgID: orgID, OrgName: name, URLSafeOrgName: urlSafeName(name, orgID), OrgMetadata: jsonObject(meta),
		UserRole: role, InheritedUserRolesPlusCurrentRole: []string{role}, UserPermissions: []string{},
		OrgRoleStructure: "single_role_in_hierarchy", AdditionalRoles: []string{}}
}

// propelValidation builds the validation answer for id. The user's orgs
// (org_id_to_org_info) are read from the service: the cached identity holds
// only the key's own org.
func (s *Server) propelValidation(ctx context.Context, id *keys.Identity) (*propelValidationBody, error) {
	k := &id.Key
	out := &propelValidationBody{Metadata: jsonObject(k.Metadata), UserID: nullable(k.UserID), OrgID: nullable(k.OrgID)}
	if id.Org != nil {
		o := id.Org
		out.Org = &propelOrg{OrgID: o.ID, OrgName: o.Name, Name: o.Name, Metadata: jsonObject(o.Metadata), CreatedAt: o.CreatedAt}
		if id.User != nil && id.Role != "" {
			m := newPropelMember(o.ID, o.Name, o.Metadata, id.Role)
			out.UserInOrg = &m
		}
	}
	if id.User != nil {
		u := id.User
		pu := &propelUser{UserID: u.ID, Email: u.Email, EmailConfirmed: true, Enabled: u.Enabled,
			CreatedAt: u.CreatedAt, LastActiveAt: u.UpdatedAt, Metadata: jsonObject(u.Metadata),
			OrgIDToOrgInfo: map[string]propelMember{}}
		orgs, err := s.userOrgs(ctx, u.ID, id.Org)
		if err != nil {
			return nil, err
		}
		for _, m := range orgs {
			pu.OrgIDToOrgInfo[m.OrgID] = m
		}
		out.User = pu
	}
	return out, nil
}

// userOrgs returns a user's memberships with each org's metadata. known is
// an org already at hand (the key's), read again from no store.
func (s *Server) userOrgs(ctx context.Context, userID string, known *keys.Org) ([]propelMember, error) {
	u, err := s.svc.GetUser(ctx, userID)
	if errors.Is(err, keys.ErrNotFound) {
		return nil, nil // deleted since the identity was cached
	} else if err != nil {
		return nil, fmt.Errorf("user's orgs: %w", err)
	}
	out := make([]propelMember, 0, len(u.Orgs))
	for _, uo := range u.Orgs {
		var meta json.RawMessage
		if known != nil && known.ID == uo.OrgID {
			meta = known.Metadata
		} else {
			o, err := s.svc.GetOrg(ctx, uo.OrgID)
			if errors.Is(err, keys.ErrNotFound) {
				continue // deleted in between
			} else if err != nil {
				return nil, fmt.Errorf("user's orgs: %w", err)
			}
			meta = o.Metadata
		}
		out = append(out, newPropelMember(uo.OrgID, uo.Name, meta, uo.Role))
	}
	return out, nil
}

// jsonObject returns meta, or {} when empty.
func jsonObject(meta json.RawMessage) json.RawMessage {
	if len(meta) == 0 {
		return json.RawMessage("{}")
	}
	return meta
}

// urlSafeName makes PropelAuth's url_safe_org_name from an org name:
// lower-case ASCII letters and digits, runs of anything else as one "-".
// A name with none of them falls back to the org id.
func urlSafeName(name, orgID string) string {
	var b strings.Builder
	dash := false
	for _, c := range strings.ToLower(name) {
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' {
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			b.WriteRune(c)
			dash = false
		} else {
			dash = true
		}
	}
	if b.Len() == 0 {
		return orgID
	}
	return b.String()
}
