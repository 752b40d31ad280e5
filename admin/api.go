package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/pprof"
	"strconv"
	"strings"

	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/limiter"
	"github.com/keygate/keygate/quota"
)

// maxImportKeys bounds one import call; bigger imports are split by the caller.
const maxImportKeys = 10_000

// routes registers the API (documented in README.md, "Admin API").
func (s *Server) routes() {
	m := s.mux
	m.HandleFunc("GET /healthz", s.healthz)
	m.HandleFunc("GET /readyz", s.readyz)
	m.HandleFunc("GET /openapi.json", s.serveOpenAPI)
	m.Handle("GET /metrics", s.api(s.serveMetrics))
	// Profiles of the running gateway, behind the admin token like the API.
	profile := func(h http.HandlerFunc) http.Handler {
		return s.api(func(w http.ResponseWriter, r *http.Request) error { h(w, r); return nil })
	}
	m.Handle("GET /debug/pprof/", profile(pprof.Index))
	m.Handle("GET /debug/pprof/cmdline", profile(pprof.Cmdline))
	m.Handle("GET /debug/pprof/profile", profile(pprof.Profile))
	m.Handle("GET /debug/pprof/symbol", profile(pprof.Symbol))
	m.Handle("GET /debug/pprof/trace", profile(pprof.Trace))

	m.Handle("POST /v1/keys", s.api(s.createKey))
	m.Handle("GET /v1/keys", s.api(s.listKeys))
	m.Handle("POST /v1/keys/import", s.api(s.importKeys))
	m.Handle("GET /v1/keys/{id}", s.api(s.getKey))
	m.Handle("PATCH /v1/keys/{id}", s.api(s.patchKey))
	m.Handle("POST /v1/keys/{id}/archive", s.api(s.archiveKey))
	m.Handle("POST /v1/keys/{id}/roll", s.api(s.rollKey))
	m.Handle("DELETE /v1/keys/{id}", s.api(s.deleteKey))
	m.Handle("POST /v1/validate", s.api(s.validate))

	m.Handle("GET /v1/users", s.api(s.listUsers))
	m.Handle("PUT /v1/users/{id}", s.api(s.putUser))
	m.Handle("GET /v1/users/{id}", s.api(s.getUser))
	m.Handle("POST /v1/users/{id}/block", s.api(s.blockUser))
	m.Handle("POST /v1/users/{id}/unblock", s.api(s.unblockUser))
	m.Handle("DELETE /v1/users/{id}", s.api(s.deleteUser))

	m.Handle("GET /v1/orgs", s.api(s.listOrgs))
	m.Handle("PUT /v1/orgs/{id}", s.api(s.putOrg))
	m.Handle("GET /v1/orgs/{id}", s.api(s.getOrg))
	m.Handle("DELETE /v1/orgs/{id}", s.api(s.deleteOrg))
	m.Handle("PUT /v1/orgs/{id}/members/{user_id}", s.api(s.putMember))
	m.Handle("DELETE /v1/orgs/{id}/members/{user_id}", s.api(s.deleteMember))

	m.Handle("GET /v1/usage", s.api(s.getUsage))
	m.Handle("GET /v1/audit", s.api(s.listAudit))
	m.Handle("POST /v1/portal-links", s.api(s.createPortalLink))
	m.Handle("GET /v1/webhook-deliveries", s.api(s.listDeliveries))
	m.Handle("POST /v1/webhook-deliveries/{id}/retry", s.api(s.retryDelivery))

	// One catch-all per method rather than "/v1/", which would conflict
	// with a page route such as "GET /".
	for _, method := range apiMethods {
		m.fallback(method+" /v1/", s.api(s.noRoute))
	}
	s.propelAuthRoutes()
}

// keyWithToken is a new key's record plus its token, shown only once.
type keyWithToken struct {
	*keys.Key
	Token string `json:"token"`
}

type createKeyRequest struct {
	Type        string          `json:"type"`
	UserID      string          `json:"user_id"`
	OrgID       string          `json:"org_id"`
	DisplayName string          `json:"display_name"`
	Metadata    json.RawMessage `json:"metadata"`
	ExpiresIn   string          `json:"expires_in"`
	ExpiresAt   *int64          `json:"expires_at"`
	Quota       json.RawMessage `json:"quota"`
}

// keyType parses an optional key type field; "" lets keys infer it.
func keyType(field, s string) (keys.Type, error) {
	if s == "" {
		return 0, nil
	}
	t, err := keys.ParseType(s)
	if err != nil {
		return 0, badField(field, "must be personal, org or generic")
	}
	return t, nil
}

func (s *Server) createKey(w http.ResponseWriter, r *http.Request) error {
	var req createKeyRequest
	if err := decodeBody(w, r, &req); err != nil {
		return err
	}
	typ, err := keyType("type", req.Type)
	if err != nil {
		return err
	}
	q, _, err := quotaOf(req.Quota)
	if err != nil {
		return err
	}
	k, token, err := s.svc.CreateKey(r.Context(), keys.CreateKeyInput{
		Type: typ, UserID: req.UserID, OrgID: req.OrgID, DisplayName: req.DisplayName,
		Metadata: metadataOf(req.Metadata), ExpiresIn: req.ExpiresIn, ExpiresAt: req.ExpiresAt, Quota: q,
	})
	if err != nil {
		return err
	}
	return s.writeKey(w, r, http.StatusCreated, k, token)
}

type importRequest struct {
	Keys   []json.RawMessage `json:"keys"`
	DryRun bool              `json:"dry_run"`
	// OnConflict is what a token that is already stored does: "fail" (the
	// default) fails the import with 409, "skip" skips the entry.
	OnConflict string `json:"on_conflict"`
}

type importKey struct {
	Token       string          `json:"token"`
	TokenSHA256 string          `json:"token_sha256"`
	Type        string          `json:"type"`
	UserID      string          `json:"user_id"`
	OrgID       string          `json:"org_id"`
	DisplayName string          `json:"display_name"`
	Metadata    json.RawMessage `json:"metadata"`
	ExpiresAt   *int64          `json:"expires_at"`
}

// importResponse answers an import: the keys imported (none on a dry run),
// how many were or would be imported, and the indexes of entries skipped
// because their token exists (on_conflict: skip).
type importResponse struct {
	Keys    []*keys.Key `json:"keys"`
	Count   int         `json:"count"`
	Skipped []int       `json:"skipped"`
	DryRun  bool        `json:"dry_run"`
}

// importKeys imports existing tokens, all or nothing; a 400 names every bad
// entry, not just the first.
func (s *Server) importKeys(w http.ResponseWriter, r *http.Request) error {
	b, err := readBody(w, r, maxImportBodyBytes)
	if err != nil {
		return err
	}
	var req importRequest
	if err := decodeObject(b, &req, "body"); err != nil {
		return err
	}
	switch {
	case len(req.Keys) == 0:
		return badField("keys", "required: a list of at least one key")
	case len(req.Keys) > maxImportKeys:
		return badField("keys", fmt.Sprintf("at most %d keys per call (got %d)", maxImportKeys, len(req.Keys)))
	}
	opts := keys.ImportOptions{DryRun: req.DryRun}
	switch req.OnConflict {
	case "", "fail":
	case "skip":
		opts.SkipExisting = true
	default:
		return badField("on_conflict", "must be fail or skip")
	}
	ins := make([]keys.CreateKeyInput, 0, len(req.Keys))
	var decodeErrs map[string][]string
	undecoded := map[string]bool{} // entries that failed to decode, like "keys[3]"
	for i, raw := range req.Keys {
		// Each element on its own, so that errors name keys[i].field.
		name := "keys[" + strconv.Itoa(i) + "]"
		var k importKey
		err := decodeObject(raw, &k, name)
		var typ keys.Type
		if err == nil {
			typ, err = keyType(name+".type", k.Type)
		}
		if err != nil {
			var ke *keys.Error
			if !errors.As(err, &ke) {
				return err
			}
			if decodeErrs == nil {
				decodeErrs = map[string][]string{}
			}
			undecoded[name] = true
			for f, p := range ke.Fields {
				decodeErrs[f] = append(decodeErrs[f], p...)
			}
			// A placeholder keeps the indexes of later entries right; its
			// own problems are already listed.
			ins = append(ins, keys.CreateKeyInput{})
			continue
		}
		ins = append(ins, keys.CreateKeyInput{
			Type: typ, UserID: k.UserID, OrgID: k.OrgID, DisplayName: k.DisplayName,
			Metadata: metadataOf(k.Metadata), ExpiresAt: k.ExpiresAt, Token: k.Token, TokenHash: k.TokenSHA256,
		})
	}
	res, err := s.svc.Import(r.Context(), ins, opts)
	if decodeErrs != nil {
		// The entries that decoded were checked too: merge their problems,
		// dropping the placeholders' own.
		fields := decodeErrs
		var ke *keys.Error
		if errors.As(err, &ke) {
			for f, p := range ke.Fields {
				if entry, _, _ := strings.Cut(f, "."); !undecoded[entry] {
					fields[f] = append(fields[f], p...)
				}
			}
		} else if err != nil && keys.ErrorCode(err) == "" {
			return err
		}
		return &keys.Error{Code: keys.EInvalid, Message: fmt.Sprintf("invalid import: %d bad field(s); nothing was imported", len(fields)), Fields: fields}
	}
	if err != nil {
		return err
	}
	out := importResponse{Keys: res.Keys, Count: res.Count, Skipped: res.Skipped, DryRun: req.DryRun}
	status := http.StatusCreated
	if req.DryRun {
		out.Keys, status = []*keys.Key{}, http.StatusOK
	}
	if out.Keys == nil {
		out.Keys = []*keys.Key{}
	}
	writeJSON(w, status, out)
	return nil
}

func (s *Server) listKeys(w http.ResponseWriter, r *http.Request) error {
	q := newQuery(r, "user_id", "org_id", "type", "status", "search", "page_size", "cursor")
	f := keys.KeyFilter{
		UserID: q.ownerID("user_id"),
		OrgID:  q.ownerID("org_id"),
		Status: q.str("status"),
		Search: q.str("search"),
		Limit:  int(q.integer("page_size", 100, 1, 1000)),
		Cursor: q.str("cursor"),
	}
	if t := q.str("type"); t != "" {
		var err error
		if f.Type, err = keys.ParseType(t); err != nil {
			q.add("type", "must be personal, org or generic")
		}
	}
	if err := q.err(); err != nil {
		return err
	}
	ks, next, err := s.svc.ListKeys(r.Context(), f)
	if err != nil {
		return err
	}
	if ks == nil {
		ks = []keys.Key{}
	}
	writeJSON(w, http.StatusOK, struct {
		Keys       []keys.Key `json:"keys"`
		NextCursor string     `json:"next_cursor"`
	}{ks, next})
	return nil
}

func (s *Server) getKey(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	k, err := s.svc.GetKey(r.Context(), id)
	if err != nil {
		return notFoundAs(err, "key %s not found", id)
	}
	return s.writeKey(w, r, http.StatusOK, k, "")
}

type patchKeyRequest struct {
	DisplayName *string         `json:"display_name"`
	Metadata    json.RawMessage `json:"metadata"`
	// ExpiresAt: absent leaves it, null means never, a number sets it.
	ExpiresAt   json.RawMessage `json:"expires_at"`
	NeverExpire *bool           `json:"never_expire"`
	// Quota: absent leaves it, null removes it (generic keys only).
	Quota json.RawMessage `json:"quota"`
}

func (s *Server) patchKey(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if !keys.ValidKeyID(id) {
		// Before the body, so a bad id is named even with a bad body.
		return badField("id", "must be 32 lowercase hex characters")
	}
	var req patchKeyRequest
	if err := decodeBody(w, r, &req); err != nil {
		return err
	}
	p := keys.KeyPatch{DisplayName: req.DisplayName, Metadata: metadataOf(req.Metadata)}
	var err error
	if p.Quota, p.ClearQuota, err = quotaOf(req.Quota); err != nil {
		return err
	}
	if req.NeverExpire != nil {
		p.NeverExpire = *req.NeverExpire
	}
	switch {
	case req.ExpiresAt == nil:
	case string(req.ExpiresAt) == "null":
		if req.NeverExpire != nil && !*req.NeverExpire {
			return badField("never_expire", "contradicts expires_at: null (which means never)")
		}
		p.NeverExpire = true
	default:
		var at int64
		if err := json.Unmarshal(req.ExpiresAt, &at); err != nil {
			return badField("expires_at", "must be unix seconds (an integer) or null for never")
		}
		p.ExpiresAt = &at
	}
	k, err := s.svc.UpdateKey(r.Context(), id, p)
	if err != nil {
		return notFoundAs(err, "key %s not found", id)
	}
	return s.writeKey(w, r, http.StatusOK, k, "")
}

func (s *Server) archiveKey(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	k, err := s.svc.ArchiveKey(r.Context(), id)
	if err != nil {
		return notFoundAs(err, "key %s not found", id)
	}
	writeJSON(w, http.StatusOK, k)
	return nil
}

func (s *Server) deleteKey(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if err := s.svc.DeleteKey(r.Context(), id); err != nil {
		return notFoundAs(err, "key %s not found", id)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type validateRequest struct {
	APIKey string `json:"api_key"`
	// Cost is the quota units the request uses (SPEC §12); nil means 1.
	Cost *int64 `json:"cost"`
}

// maxCost bounds the quota units one validation may use.
const maxCost = 1000

// userInOrg is the creator's membership in an org key's org.
type userInOrg struct {
	OrgID string `json:"org_id"`
	Role  string `json:"role"`
}

type validateResponse struct {
	Key       *keys.Key       `json:"key"`
	User      *keys.User      `json:"user"`
	Org       *keys.Org       `json:"org"`
	UserInOrg *userInOrg      `json:"user_in_org"`
	Metadata  json.RawMessage `json:"metadata"`
}

// checkAPIKey validates token as a proxied request would (counting towards
// usage, rate limits and cost units of quotas) and sets the RateLimit-* and
// X-Quota-* headers. It returns keys.ErrInvalidKey, keys.ErrExpiredKey, a
// *rateLimitedError or *quotaExceededError, or an error answered as 501 or 503. POST /v1/validate and the PropelAuth routes share it.
func (s *Server) checkAPIKey(w http.ResponseWriter, r *http.Request, token string, cost int64) (*keys.Identity, error) {
	if s.checker == nil {
		return nil, errorf(http.StatusNotImplemented, codeNotImplemented, "validation is not enabled on this node")
	}
	id, res, q, err := s.checker.CheckCost(r.Context(), token, cost)
	h := w.Header()
	if res.Limit > 0 {
		h.Set("RateLimit-Limit", strconv.FormatInt(res.Limit, 10))
		h.Set("RateLimit-Remaining", strconv.FormatInt(res.Remaining, 10))
		h.Set("RateLimit-Reset", strconv.FormatInt(ceilSeconds(res.Reset), 10))
	}
	if q.Limit > 0 {
		h.Set("X-Quota-Limit", strconv.FormatInt(q.Limit, 10))
		h.Set("X-Quota-Remaining", strconv.FormatInt(q.Remaining, 10))
		if q.ResetsAt > 0 {
			h.Set("X-Quota-Reset", strconv.FormatInt(ceilSeconds(q.Reset), 10))
		}
	}
	switch {
	case err == nil:
	case errors.Is(err, limiter.ErrLimited):
		return nil, &rateLimitedError{retryAfter: res.RetryAfter}
	case errors.Is(err, quota.ErrExceeded):
		return nil, &quotaExceededError{refill: q.Reset, refills: q.ResetsAt > 0}
	case errors.Is(err, keys.ErrInvalidKey), errors.Is(err, keys.ErrExpiredKey), errors.Is(err, keys.ErrStoreUnavailable):
		return nil, err // the error table: 503 store_unavailable as on the proxy port
	default:
		return nil, fmt.Errorf("%w: %w", keys.ErrStoreUnavailable, err)
	}
	if id == nil {
		return nil, fmt.Errorf("validate: checker returned no identity and no error")
	}
	return id, nil
}

// validate checks a token for an app that does not proxy (SPEC §4.1).
func (s *Server) validate(w http.ResponseWriter, r *http.Request) error {
	if s.checker == nil {
		return errorf(http.StatusNotImplemented, codeNotImplemented, "validation is not enabled on this node")
	}
	var req validateRequest
	if err := decodeBody(w, r, &req); err != nil {
		return err
	}
	if req.APIKey == "" {
		return badField("api_key", "required")
	}
	cost := int64(1)
	if req.Cost != nil {
		if cost = *req.Cost; cost < 1 || cost > maxCost {
			return badField("cost", fmt.Sprintf("must be from 1 to %d, got %d", maxCost, cost))
		}
	}
	id, err := s.checkAPIKey(w, r, req.APIKey, cost)
	if err != nil {
		return err
	}
	out := validateResponse{Key: &id.Key, User: id.User, Org: id.Org, Metadata: id.Key.Metadata}
	if id.Key.Type == keys.TypeOrg && id.Role != "" {
		out.UserInOrg = &userInOrg{OrgID: id.Key.OrgID, Role: id.Role}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
