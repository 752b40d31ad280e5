package sqlite

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/keygate/keygate/keys"
)

// InsertAudit appends events to the audit log.
func (t *tx) InsertAudit(ctx context.Context, events ...keys.AuditEvent) error {
	if len(events) == 0 {
		return nil
	}
	st, err := t.stmt(ctx, `INSERT INTO audit_events (at, action, actor, key_id, user_id, org_id, details) VALUES (?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	for _, ev := range events {
		if _, err := st.ExecContext(ctx, ev.At, ev.Action, ev.Actor, ev.KeyID, ev.UserID, ev.OrgID, metaText(ev.Details)); err != nil {
			return fmt.Errorf("insert audit event: %w", err)
		}
	}
	return nil
}

// ListAudit returns audit events, newest first.
func (s *Store) ListAudit(ctx context.Context, f keys.AuditFilter) ([]keys.AuditEvent, error) {
	var where []string
	var args []any
	for _, c := range []struct{ col, v string }{{"key_id", f.KeyID}, {"user_id", f.UserID}, {"org_id", f.OrgID}, {"action", f.Action}} {
		if c.v != "" {
			where, args = append(where, c.col+" = ?"), append(args, c.v)
		}
	}
	if f.Before > 0 {
		where, args = append(where, "id < ?"), append(args, f.Before)
	}
	q := `SELECT id, at, action, actor, key_id, user_id, org_id, details FROM audit_events`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	q += " ORDER BY id DESC LIMIT " + strconv.Itoa(limit)
	rows, err := s.rdb.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list audit: %w", err)
	}
	defer rows.Close()
	out := []keys.AuditEvent{}
	for rows.Next() {
		var ev keys.AuditEvent
		var details string
		if err := rows.Scan(&ev.ID, &ev.At, &ev.Action, &ev.Actor, &ev.KeyID, &ev.UserID, &ev.OrgID, &details); err != nil {
			return nil, fmt.Errorf("list audit: %w", err)
		}
		ev.Details = json.RawMessage(details)
		out = append(out, ev)
	}
	return out, rows.Err()
}
