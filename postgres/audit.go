package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/keygate/keygate/keys"
)

// ListAudit returns the events matching f, newest first. Ids grow in
// commit order because every Update holds the write lock.
func (db *DB) ListAudit(ctx context.Context, f keys.AuditFilter) ([]keys.AuditEvent, error) {
	var where []string
	var args []any
	for _, c := range []struct{ col, v string }{{"key_id", f.KeyID}, {"user_id", f.UserID}, {"org_id", f.OrgID}, {"action", f.Action}} {
		if c.v != "" {
			args = append(args, c.v)
			where = append(where, c.col+" = $"+strconv.Itoa(len(args)))
		}
	}
	if f.Before > 0 {
		args = append(args, f.Before)
		where = append(where, "id < $"+strconv.Itoa(len(args)))
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
	rows, err := db.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list audit: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (keys.AuditEvent, error) {
		var ev keys.AuditEvent
		var details string
		err := r.Scan(&ev.ID, &ev.At, &ev.Action, &ev.Actor, &ev.KeyID, &ev.UserID, &ev.OrgID, &details)
		ev.Details = json.RawMessage(details)
		return ev, err
	})
	if err != nil {
		return nil, fmt.Errorf("list audit: %w", err)
	}
	if out == nil {
		out = []keys.AuditEvent{}
	}
	return out, nil
}

// InsertAudit appends events in order, in one round trip.
func (t *tx) InsertAudit(ctx context.Context, events ...keys.AuditEvent) error {
	if len(events) == 0 {
		return nil
	}
	b := &pgx.Batch{}
	for _, ev := range events {
		b.Queue(`INSERT INTO audit_events (at, action, actor, key_id, user_id, org_id, details) VALUES ($1,$2,$3,$4,$5,$6,$7)`,
			ev.At, ev.Action, ev.Actor, ev.KeyID, ev.UserID, ev.OrgID, jsonText(ev.Details))
	}
	if err := t.tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("insert audit events: %w", err)
	}
	return nil
}
