package admin

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/quota"
)

// QuotaReader reports an owner's standing under a quota without counting
// anything; *quota.Engine is one.
type QuotaReader interface {
	Peek(ctx context.Context, owner string, q keys.Quota) (quota.Result, error)
}

// quotaJSON is an owner's quota as shown (SPEC §12); resets_at is null for
// a total quota, which never refills.
type quotaJSON struct {
	Limit     int64            `json:"limit"`
	Period    keys.QuotaPeriod `json:"period"`
	Used      int64            `json:"used"`
	Remaining int64            `json:"remaining"`
	ResetsAt  *int64           `json:"resets_at"`
}

// QuotaStanding returns the quota that applies to owner (its own, else the
// default of key type t) with its use, nil when none applies or quotas are
// not enabled on this server.
func (s *Server) quotaStanding(ctx context.Context, owner string, own *keys.Quota, t keys.Type) (*quotaJSON, error) {
	if s.quotas == nil {
		return nil, nil
	}
	q := s.quotaDefaults[t]
	if own != nil {
		q = *own
	}
	if q.None() {
		return nil, nil
	}
	res, err := s.quotas.Peek(ctx, owner, q)
	if err != nil {
		return nil, &httpError{status: http.StatusServiceUnavailable, code: codeUnavailable,
			message: "the quota counters are unavailable; try again", cause: err}
	}
	out := &quotaJSON{Limit: q.Limit, Period: q.Period, Used: res.Used, Remaining: res.Remaining}
	if res.ResetsAt > 0 {
		out.ResetsAt = &res.ResetsAt
	}
	return out, nil
}

// keyJSON is a key as answered by the single-key calls: a generic key
// shows its quota (other keys' quotas belong to their user or org).
type keyJSON struct {
	*keys.Key
	Quota *quotaJSON `json:"quota"`
	Token string     `json:"token,omitempty"` // only when just created or rolled
}

func (s *Server) keyOut(ctx context.Context, k *keys.Key, token string) (keyJSON, error) {
	out := keyJSON{Key: k, Token: token}
	if k.Type == keys.TypeGeneric {
		var err error
		out.Quota, err = s.quotaStanding(ctx, keys.KeyOwner(k.ID), k.Quota, keys.TypeGeneric)
		return out, err
	}
	return out, nil
}

// writeKey answers one key with status.
func (s *Server) writeKey(w http.ResponseWriter, r *http.Request, status int, k *keys.Key, token string) error {
	out, err := s.keyOut(r.Context(), k, token)
	if err != nil {
		return err
	}
	writeJSON(w, status, out)
	return nil
}

func (s *Server) writeUser(w http.ResponseWriter, r *http.Request, u *keys.User) error {
	out := userOut(u)
	var err error
	if out.Quota, err = s.quotaStanding(r.Context(), keys.UserOwner(u.ID), u.Quota, keys.TypePersonal); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) writeOrg(w http.ResponseWriter, r *http.Request, o *keys.Org) error {
	out := orgOut(o)
	var err error
	if out.Quota, err = s.quotaStanding(r.Context(), keys.OrgOwner(o.ID), o.Quota, keys.TypeOrg); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// quotaOf decodes an optional quota field: absent → (nil, false), null →
// (nil, true) to remove the override, else the quota.
func quotaOf(raw json.RawMessage) (q *keys.Quota, clear bool, err error) {
	if raw == nil {
		return nil, false, nil
	}
	if string(raw) == "null" {
		return nil, true, nil
	}
	var v keys.Quota
	if err := json.Unmarshal(raw, &v); err != nil {
		var typ *json.UnmarshalTypeError
		if errors.As(err, &typ) && typ.Field != "" {
			return nil, false, badField("quota."+typ.Field, "must be "+jsonKind(typ.Type)+", not "+typ.Value)
		}
		if errors.As(err, &typ) {
			return nil, false, badField("quota", `must be null or an object like {"limit": 10000, "period": "month"}`)
		}
		return nil, false, badField("quota", strings.TrimPrefix(err.Error(), "json: "))
	}
	return &v, false, nil
}

type rollRequest struct {
	GracePeriod *string `json:"grace_period"`
}

// rollKey replaces a key with a new one, the old one valid for the grace
// period (SPEC §11).
func (s *Server) rollKey(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if !keys.ValidKeyID(id) {
		return badField("id", "must be 32 lowercase hex characters")
	}
	var req rollRequest
	if r.ContentLength != 0 {
		if err := decodeBody(w, r, &req); err != nil {
			return err
		}
	}
	var grace time.Duration
	if req.GracePeriod != nil {
		var err error
		if grace, err = time.ParseDuration(*req.GracePeriod); err != nil {
			return badField("grace_period", `must be a Go duration from 0s to 720h, like "24h"`)
		}
	}
	k, token, err := s.svc.RollKey(r.Context(), id, grace)
	if err != nil {
		return notFoundAs(err, "key %s not found", id)
	}
	return s.writeKey(w, r, http.StatusCreated, k, token)
}
