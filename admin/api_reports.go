package admin

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/keygate/keygate/keys"
)

// maxUsagePoints bounds one usage answer.
const maxUsagePoints = 10_000

var usageSteps = map[string]int64{"minute": 60, "hour": 3600, "day": 86400}

// getUsage answers a usage series with one point per interval, empty ones
// included, so a chart can draw it as is.
func (s *Server) getUsage(w http.ResponseWriter, r *http.Request) error {
	if s.usage == nil {
		return errorf(http.StatusNotImplemented, codeNotImplemented, "usage is not available on this node")
	}
	q := newQuery(r, "key_id", "user_id", "org_id", "from", "to", "interval")
	uq := keys.UsageQuery{KeyID: q.keyID("key_id"), UserID: q.ownerID("user_id"), OrgID: q.ownerID("org_id")}
	var named []string
	for _, n := range []string{"key_id", "user_id", "org_id"} {
		if q.str(n) != "" {
			named = append(named, n)
		}
	}
	switch {
	case len(named) == 0:
		q.add("key_id", "give exactly one of key_id, user_id or org_id")
	case len(named) > 1:
		for _, n := range named {
			q.add(n, "give exactly one of key_id, user_id or org_id")
		}
	}
	now := s.now().Unix()
	uq.To = q.integer("to", now, 0, 1<<40)
	uq.From = q.integer("from", max(0, uq.To-86400), 0, 1<<40)
	uq.Interval = q.str("interval")
	if uq.Interval == "" {
		uq.Interval = "hour"
	}
	step, ok := usageSteps[uq.Interval]
	if !ok {
		q.add("interval", "must be minute, hour or day")
	}
	if err := q.err(); err != nil {
		return err
	}
	if uq.From >= uq.To {
		return badField("from", "must be before to")
	}
	if n := (uq.To - (uq.From - uq.From%step) + step - 1) / step; n > maxUsagePoints {
		msg := fmt.Sprintf("the range holds %d %s intervals, at most %d: move from closer to to or use a longer interval", n, uq.Interval, maxUsagePoints)
		return &keys.Error{Code: keys.EInvalid, Message: "usage range too long", Fields: map[string][]string{"from": {msg}, "interval": {msg}}}
	}
	if uq.KeyID != "" {
		// A typo should not read as "no traffic".
		if _, err := s.svc.GetKey(r.Context(), uq.KeyID); err != nil {
			return notFoundAs(err, "key %s not found", uq.KeyID)
		}
	}
	points, total, err := s.usage.Usage(r.Context(), uq)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, struct {
		Interval string            `json:"interval"`
		From     int64             `json:"from"`
		To       int64             `json:"to"`
		Points   []keys.UsagePoint `json:"points"`
		Total    int64             `json:"total"`
	}{uq.Interval, uq.From, uq.To, keys.FillUsage(points, uq), total})
	return nil
}

// listAudit answers audit events, newest first. next_cursor is the id to
// pass as before for the next page, "" after the last.
func (s *Server) listAudit(w http.ResponseWriter, r *http.Request) error {
	q := newQuery(r, "key_id", "user_id", "org_id", "action", "before", "limit")
	f := keys.AuditFilter{
		KeyID:  q.keyID("key_id"),
		UserID: q.ownerID("user_id"),
		OrgID:  q.ownerID("org_id"),
		Action: q.str("action"),
		Before: q.integer("before", 0, 1, 1<<62),
		Limit:  int(q.integer("limit", 100, 1, 1000)),
	}
	if f.Action != "" && !contains(keys.AuditActions, f.Action) {
		q.add("action", "unknown action")
	}
	if err := q.err(); err != nil {
		return err
	}
	// One more than asked tells whether another page exists. The store is
	// asked directly: the service caps the limit at the page size.
	limit := f.Limit
	f.Limit++
	events, err := s.svc.Store().ListAudit(r.Context(), f)
	if err != nil {
		return err
	}
	next := ""
	if len(events) > limit {
		events = events[:limit]
		next = strconv.FormatInt(events[limit-1].ID, 10)
	}
	if events == nil {
		events = []keys.AuditEvent{}
	}
	writeJSON(w, http.StatusOK, struct {
		Events     []keys.AuditEvent `json:"events"`
		NextCursor string            `json:"next_cursor"`
	}{events, next})
	return nil
}

type portalLinkRequest struct {
	UserID     string `json:"user_id"`
	OrgID      string `json:"org_id"`
	TTLSeconds *int64 `json:"ttl_seconds"`
}

// Portal link lifetimes, in seconds.
const (
	maxPortalTTL = 86400
)

// createPortalLink mints a self-service link for an existing, enabled user
// and, optionally, one of their orgs.
func (s *Server) createPortalLink(w http.ResponseWriter, r *http.Request) error {
	if s.links == nil {
		return errorf(http.StatusNotImplemented, codeNotImplemented, "self-service pages are not enabled on this node")
	}
	var req portalLinkRequest
	if err := decodeBody(w, r, &req); err != nil {
		return err
	}
	problems := map[string][]string{}
	if !keys.ValidOwnerID(req.UserID) {
		problems["user_id"] = []string{"required: " + ownerIDRule}
	}
	if req.OrgID != "" && !keys.ValidOwnerID(req.OrgID) {
		problems["org_id"] = []string{ownerIDRule}
	}
	ttl := int64(0) // 0: the portal's portal.link_ttl (15m by default)
	if req.TTLSeconds != nil {
		if ttl = *req.TTLSeconds; ttl < 1 || ttl > maxPortalTTL {
			problems["ttl_seconds"] = []string{fmt.Sprintf("must be 1–%d seconds", maxPortalTTL)}
		}
	}
	if len(problems) > 0 {
		return &keys.Error{Code: keys.EInvalid, Message: "invalid input", Fields: problems}
	}
	ctx := r.Context()
	u, err := s.svc.GetUser(ctx, req.UserID)
	switch {
	case errors.Is(err, keys.ErrNotFound):
		return badField("user_id", fmt.Sprintf("user %q does not exist", req.UserID))
	case err != nil:
		return err
	case !u.Enabled:
		return badField("user_id", fmt.Sprintf("user %q is blocked", req.UserID))
	}
	if req.OrgID != "" && !memberOf(u, req.OrgID) {
		return badField("org_id", fmt.Sprintf("user %q is not a member of org %q", req.UserID, req.OrgID))
	}
	url, expiresAt, err := s.links.NewLink(ctx, req.UserID, req.OrgID, time.Duration(ttl)*time.Second)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, struct {
		URL       string `json:"url"`
		ExpiresAt int64  `json:"expires_at"`
	}{url, expiresAt})
	return nil
}

func memberOf(u *keys.User, orgID string) bool {
	for _, o := range u.Orgs {
		if o.OrgID == orgID {
			return true
		}
	}
	return false
}
