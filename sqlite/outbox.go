package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keygate/keygate/keys"
)

const deliveryColumns = `seq, id, endpoint, type, payload, created_at, status, attempts, next_at, last_error, delivered_at`

func scanDelivery(r scanner, d *keys.Delivery) (int64, error) {
	var payload string
	var delivered sql.NullInt64
	if err := r.Scan(&d.Seq, &d.ID, &d.Endpoint, &d.Type, &payload, &d.CreatedAt, &d.Status, &d.Attempts, &d.NextAt, &d.LastError, &delivered); err != nil {
		return 0, err
	}
	d.Payload = json.RawMessage(payload)
	if delivered.Valid {
		d.DeliveredAt = &delivered.Int64
	}
	return d.Seq, nil
}

// InsertDeliveries writes new pending deliveries.
func (t *tx) InsertDeliveries(ctx context.Context, ds []keys.Delivery) error {
	if len(ds) == 0 {
		return nil
	}
	st, err := t.stmt(ctx, `INSERT INTO webhook_deliveries (id, endpoint, type, payload, created_at, next_at) VALUES (?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	for _, d := range ds {
		if _, err := st.ExecContext(ctx, d.ID, d.Endpoint, d.Type, string(d.Payload), d.CreatedAt, d.NextAt); err != nil {
			if isUnique(err) {
				return fmt.Errorf("insert delivery %s: %w", d.ID, keys.ErrConflict)
			}
			return fmt.Errorf("insert delivery: %w", err)
		}
	}
	return nil
}

// KeysExpiring returns the unarchived keys with after < expires_at ≤ upTo.
func (t *tx) KeysExpiring(ctx context.Context, after, upTo int64) ([]keys.Key, error) {
	rows, err := t.tx.QueryContext(ctx, `SELECT `+keyColumns+` FROM api_keys INDEXED BY api_keys_expires
		WHERE expires_at IS NOT NULL AND archived_at IS NULL AND expires_at > ? AND expires_at <= ? ORDER BY expires_at, id`, after, upTo)
	if err != nil {
		return nil, fmt.Errorf("keys expiring: %w", err)
	}
	defer rows.Close()
	var out []keys.Key
	for rows.Next() {
		var k keys.Key
		if err := scanKey(rows, &k); err != nil {
			return nil, fmt.Errorf("keys expiring: %w", err)
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// Mark returns the scheduler mark name, 0 when unset.
func (t *tx) Mark(ctx context.Context, name string) (int64, error) {
	var v int64
	err := t.tx.QueryRowContext(ctx, `SELECT at FROM webhook_marks WHERE name = ?`, name).Scan(&v)
	if err == sql.ErrNoRows {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read mark %s: %w", name, err)
	}
	return v, nil
}

// SetMark stores the scheduler mark name.
func (t *tx) SetMark(ctx context.Context, name string, v int64) error {
	if _, err := t.tx.ExecContext(ctx, `INSERT INTO webhook_marks (name, at) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET at = excluded.at`, name, v); err != nil {
		return fmt.Errorf("set mark %s: %w", name, err)
	}
	return nil
}

// ClaimDeliveries leases due deliveries. One node writes to a SQLite file,
// and its writes are serialised on one connection, so a claim is one
// UPDATE … RETURNING.
func (s *Store) ClaimDeliveries(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]keys.Delivery, error) {
	var out []keys.Delivery
	nowMs := now.UnixMilli()
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		out = out[:0]
		rows, err := tx.QueryContext(ctx, `UPDATE webhook_deliveries SET lease_until = ?
			WHERE seq IN (SELECT seq FROM webhook_deliveries WHERE status = 'pending' AND next_at <= ? AND lease_until <= ? ORDER BY seq LIMIT ?)
			RETURNING `+deliveryColumns, nowMs+lease.Milliseconds(), nowMs, nowMs, limit)
		if err != nil {
			return fmt.Errorf("claim deliveries: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var d keys.Delivery
			if _, err := scanDelivery(rows, &d); err != nil {
				return fmt.Errorf("claim deliveries: %w", err)
			}
			out = append(out, d)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	sortDeliveries(out)
	return out, nil
}

// FinishDelivery stores an attempt's outcome and releases the lease.
func (s *Store) FinishDelivery(ctx context.Context, d *keys.Delivery) error {
	return s.writeTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE webhook_deliveries SET status = ?, attempts = ?, next_at = ?, last_error = ?, delivered_at = ?, lease_until = 0 WHERE id = ?`,
			d.Status, d.Attempts, d.NextAt, d.LastError, d.DeliveredAt, d.ID)
		if err != nil {
			return fmt.Errorf("finish delivery: %w", err)
		}
		return nil
	})
}

// RetryDelivery makes a delivery pending again, due now.
func (s *Store) RetryDelivery(ctx context.Context, id string, now time.Time) (*keys.Delivery, error) {
	var d keys.Delivery
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		_, err := scanDelivery(tx.QueryRowContext(ctx, `UPDATE webhook_deliveries SET status = 'pending', next_at = ?, lease_until = 0, delivered_at = NULL
			WHERE id = ? RETURNING `+deliveryColumns, now.UnixMilli(), id), &d)
		if err == sql.ErrNoRows {
			return fmt.Errorf("delivery %s: %w", id, keys.ErrNotFound)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return &d, nil
}

// ListDeliveries returns deliveries newest first; the cursor is the seq of
// the last one returned.
func (s *Store) ListDeliveries(ctx context.Context, f keys.DeliveryFilter) ([]keys.Delivery, string, error) {
	where, args := []string{"1 = 1"}, []any{}
	if f.Status != "" {
		where, args = append(where, "status = ?"), append(args, f.Status)
	}
	if f.Endpoint != "" {
		where, args = append(where, "endpoint = ?"), append(args, f.Endpoint)
	}
	if f.Cursor != "" {
		seq, err := strconv.ParseInt(f.Cursor, 10, 64)
		if err != nil || seq <= 0 {
			return nil, "", keys.FieldError("cursor", "not a cursor returned by this API")
		}
		where, args = append(where, "seq < ?"), append(args, seq)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	rows, err := s.rdb.QueryContext(ctx, `SELECT `+deliveryColumns+` FROM webhook_deliveries WHERE `+strings.Join(where, " AND ")+
		` ORDER BY seq DESC LIMIT `+strconv.Itoa(limit+1), args...)
	if err != nil {
		return nil, "", fmt.Errorf("list deliveries: %w", err)
	}
	defer rows.Close()
	out := []keys.Delivery{}
	var seqs []int64
	for rows.Next() {
		var d keys.Delivery
		seq, err := scanDelivery(rows, &d)
		if err != nil {
			return nil, "", fmt.Errorf("list deliveries: %w", err)
		}
		out, seqs = append(out, d), append(seqs, seq)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("list deliveries: %w", err)
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = strconv.FormatInt(seqs[limit-1], 10)
	}
	return out, next, nil
}

// DeliveryStats counts deliveries by status.
func (s *Store) DeliveryStats(ctx context.Context) (keys.DeliveryStats, error) {
	st := keys.DeliveryStats{Count: map[string]int64{keys.DeliveryPending: 0, keys.DeliveryDelivered: 0, keys.DeliveryFailed: 0}}
	rows, err := s.rdb.QueryContext(ctx, `SELECT status, COUNT(*) FROM webhook_deliveries GROUP BY status`)
	if err != nil {
		return st, fmt.Errorf("delivery stats: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var status string
		var n int64
		if err := rows.Scan(&status, &n); err != nil {
			return st, fmt.Errorf("delivery stats: %w", err)
		}
		st.Count[status] = n
	}
	if err := rows.Err(); err != nil {
		return st, fmt.Errorf("delivery stats: %w", err)
	}
	var oldest sql.NullInt64
	if err := s.rdb.QueryRowContext(ctx, `SELECT MIN(created_at) FROM webhook_deliveries INDEXED BY webhook_deliveries_due WHERE status = 'pending'`).Scan(&oldest); err != nil {
		return st, fmt.Errorf("delivery stats: %w", err)
	}
	st.OldestPending = oldest.Int64
	return st, nil
}

// NextExpiry returns the next expires_at after after, on the expires_at index.
func (s *Store) NextExpiry(ctx context.Context, after int64) (int64, bool, error) {
	var at sql.NullInt64
	err := s.rdb.QueryRowContext(ctx, `SELECT MIN(expires_at) FROM api_keys INDEXED BY api_keys_expires
		WHERE expires_at IS NOT NULL AND archived_at IS NULL AND expires_at > ?`, after).Scan(&at)
	if err != nil {
		return 0, false, fmt.Errorf("next expiry: %w", err)
	}
	return at.Int64, at.Valid, nil
}

// sortDeliveries orders claimed deliveries oldest first (RETURNING has no
// order), so a sender can keep each endpoint's order.
func sortDeliveries(ds []keys.Delivery) {
	slices.SortFunc(ds, func(a, b keys.Delivery) int { return cmp.Compare(a.Seq, b.Seq) })
}
