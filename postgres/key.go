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

const keyColumns = `id, hash, type, user_id, org_id, display_name, display, metadata, imported, created_at, expires_at, archived_at, last_used_at, q_limit, q_period, rolled_from, rolled_to`

func scanKey(r pgx.Row, k *keys.Key, extra ...any) error {
	var hash []byte
	var meta string
	var ql, qp *int64
	dest := append([]any{&k.ID, &hash, &k.Type, &k.UserID, &k.OrgID, &k.DisplayName, &k.Display, &meta, &k.Imported, &k.CreatedAt, &k.ExpiresAt, &k.ArchivedAt, &k.LastUsedAt,
		&ql, &qp, &k.RolledFrom, &k.RolledTo}, extra...)
	if err := r.Scan(dest...); err != nil {
		return err
	}
	k.Quota = quotaOf(ql, qp)
	copy(k.Hash[:], hash)
	k.Metadata = json.RawMessage(meta)
	return nil
}

func jsonText(b json.RawMessage) string {
	if len(b) == 0 {
		return "{}"
	}
	return string(b)
}

func getKey(ctx context.Context, q querier, id string, lock bool) (*keys.Key, error) {
	sql := `SELECT ` + keyColumns + ` FROM api_keys WHERE id = $1`
	if lock {
		sql += ` FOR UPDATE`
	}
	var k keys.Key
	if err := scanKey(q.QueryRow(ctx, sql, id), &k); err != nil {
		return nil, fmt.Errorf("get key: %w", notFound(err))
	}
	return &k, nil
}

// GetKey returns the key with id.
func (db *DB) GetKey(ctx context.Context, id string) (*keys.Key, error) {
	return getKey(ctx, db.pool, id, false)
}

// ListKeys returns one page of keys, newest first, and the next cursor.
func (db *DB) ListKeys(ctx context.Context, f keys.KeyFilter, now int64) ([]keys.Key, string, error) {
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if f.UserID != "" {
		where = append(where, "user_id = "+arg(f.UserID))
	}
	if f.OrgID != "" {
		where = append(where, "org_id = "+arg(f.OrgID))
	}
	if f.Type != 0 {
		where = append(where, "type = "+arg(int16(f.Type)))
	}
	switch f.Status {
	case "", "active":
		where = append(where, "archived_at IS NULL AND (expires_at IS NULL OR expires_at > "+arg(now)+")")
	case "archived":
		where = append(where, "archived_at IS NOT NULL")
	case "expired":
		where = append(where, "archived_at IS NULL AND expires_at IS NOT NULL AND expires_at <= "+arg(now))
	}
	if f.Search != "" {
		like := "%" + strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(f.Search) + "%"
		where = append(where, "(id = "+arg(f.Search)+" OR display LIKE "+arg(like)+" OR display_name LIKE "+arg(like)+")")
	}
	if f.Cursor != "" {
		seq, err := strconv.ParseInt(f.Cursor, 10, 64)
		if err != nil || seq <= 0 {
			return nil, "", keys.FieldError("cursor", "not a cursor returned by this API")
		}
		where = append(where, "seq < "+arg(seq))
	}
	q := `SELECT ` + keyColumns + `, seq FROM api_keys`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	q += " ORDER BY seq DESC LIMIT " + strconv.Itoa(limit+1)
	rows, err := db.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, "", fmt.Errorf("list keys: %w", err)
	}
	defer rows.Close()
	out := make([]keys.Key, 0, min(limit, 64))
	var seqs []int64
	for rows.Next() {
		var k keys.Key
		var seq int64
		if err := scanKey(rows, &k, &seq); err != nil {
			return nil, "", fmt.Errorf("list keys: %w", err)
		}
		out = append(out, k)
		seqs = append(seqs, seq)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("list keys: %w", err)
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = strconv.FormatInt(seqs[limit-1], 10)
	}
	return out, next, nil
}

// CountImported returns how many imported keys exist, archived included.
func (db *DB) CountImported(ctx context.Context) (int64, error) {
	var n int64
	if err := db.pool.QueryRow(ctx, `SELECT COUNT(*) FROM api_keys WHERE imported`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count imported keys: %w", err)
	}
	return n, nil
}

// CountKeys returns how many keys exist per type and status at now.
func (db *DB) CountKeys(ctx context.Context, now int64) (map[keys.Type]map[string]int64, error) {
	rows, err := db.pool.Query(ctx, `SELECT type,
		CASE WHEN archived_at IS NOT NULL THEN 'archived' WHEN expires_at IS NOT NULL AND expires_at <= $1 THEN 'expired' ELSE 'active' END AS status,
		COUNT(*) FROM api_keys GROUP BY 1, 2`, now)
	if err != nil {
		return nil, fmt.Errorf("count keys: %w", err)
	}
	defer rows.Close()
	out := map[keys.Type]map[string]int64{}
	for _, t := range keys.Types {
		out[t] = map[string]int64{"active": 0, "expired": 0, "archived": 0}
	}
	for rows.Next() {
		var t keys.Type
		var status string
		var n int64
		if err := rows.Scan(&t, &status, &n); err != nil {
			return nil, fmt.Errorf("count keys: %w", err)
		}
		if out[t] != nil {
			out[t][status] = n
		}
	}
	return out, rows.Err()
}

// identityQuery reads keys with their user, org and the creator's role:
// the one select behind LookupHash and RecentIdentities, so that both
// return the same identity for a key (see scanIdentity).
const identityQuery = `SELECT k.id, k.hash, k.type, k.user_id, k.org_id, k.display_name, k.display, k.metadata, k.imported, k.created_at, k.expires_at, k.archived_at, k.last_used_at,
		k.q_limit, k.q_period, k.rolled_from, k.rolled_to,
		u.id, u.email, u.enabled, u.metadata, u.rl_limit, u.rl_window_ms, u.created_at, u.updated_at,
		o.id, o.name, o.metadata, o.rl_limit, o.rl_window_ms, o.created_at, o.updated_at,
		m.role, u.q_limit, u.q_period, o.q_limit, o.q_period
	FROM api_keys k
	LEFT JOIN users u ON u.id = k.user_id AND k.user_id <> ''
	LEFT JOIN orgs o ON o.id = k.org_id AND k.org_id <> ''
	LEFT JOIN memberships m ON m.org_id = k.org_id AND m.user_id = k.user_id`

// lookupQuery resolves a token hash to its key, user, org and the creator's
// role in one round trip: the cache-miss path. pgx prepares it once per
// connection and reuses the plan.
const lookupQuery = identityQuery + `
	WHERE k.hash = $1`

// recentQuery is RecentIdentities' read. Its WHERE and ORDER BY match the
// partial index api_keys_recent (migration 0004), so Postgres reads the
// first LIMIT entries of the index instead of sorting every key.
const recentQuery = identityQuery + `
	WHERE k.archived_at IS NULL AND k.last_used_at IS NOT NULL
	ORDER BY k.last_used_at DESC, k.seq DESC
	LIMIT $1`

// LookupHash resolves a token hash to its identity in one query.
func (db *DB) LookupHash(ctx context.Context, hash [32]byte) (*keys.Identity, error) {
	id, err := scanIdentity(db.pool.QueryRow(ctx, lookupQuery, hash[:]))
	if err != nil {
		return nil, fmt.Errorf("lookup key: %w", notFound(err))
	}
	return id, nil
}

// RecentIdentities returns the identities of up to limit unarchived keys,
// most recently used first, then never-used ones newest first, in one
// query; see keys.KeyReader.
func (db *DB) RecentIdentities(ctx context.Context, limit int) ([]*keys.Identity, error) {
	if limit <= 0 {
		return []*keys.Identity{}, nil
	}
	rows, err := db.pool.Query(ctx, recentQuery, limit)
	if err != nil {
		return nil, fmt.Errorf("recent identities: %w", err)
	}
	defer rows.Close()
	out := make([]*keys.Identity, 0, min(limit, 1024))
	for rows.Next() {
		id, err := scanIdentity(rows)
		if err != nil {
			return nil, fmt.Errorf("recent identities: %w", err)
		}
		out = append(out, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("recent identities: %w", err)
	}
	return out, nil
}

// scanIdentity reads one row of identityQuery.
func scanIdentity(r pgx.Row) (*keys.Identity, error) {
	var id keys.Identity
	var uid, uemail, umeta, oid, oname, ometa, role *string
	var uenabled *bool
	var ulimit, uwin, ucreated, uupdated, olimit, owin, ocreated, oupdated *int64
	var uql, uqp, oql, oqp *int64
	err := scanKey(r, &id.Key,
		&uid, &uemail, &uenabled, &umeta, &ulimit, &uwin, &ucreated, &uupdated,
		&oid, &oname, &ometa, &olimit, &owin, &ocreated, &oupdated, &role,
		&uql, &uqp, &oql, &oqp)
	if err != nil {
		return nil, err
	}
	if uid != nil {
		id.User = &keys.User{ID: *uid, Email: *uemail, Enabled: *uenabled, Metadata: json.RawMessage(*umeta),
			RateLimit: rateLimitOf(ulimit, uwin), Quota: quotaOf(uql, uqp), CreatedAt: *ucreated, UpdatedAt: *uupdated}
	}
	if oid != nil {
		id.Org = &keys.Org{ID: *oid, Name: *oname, Metadata: json.RawMessage(*ometa),
			RateLimit: rateLimitOf(olimit, owin), Quota: quotaOf(oql, oqp), CreatedAt: *ocreated, UpdatedAt: *oupdated}
	}
	if role != nil {
		id.Role = *role
	}
	return &id, nil
}

// GetKey reads a key inside the transaction, locking its row.
func (t *tx) GetKey(ctx context.Context, id string) (*keys.Key, error) {
	return getKey(ctx, t.tx, id, true)
}

// InsertKeys inserts new keys verbatim; ErrConflict on a duplicate id or hash.
func (t *tx) InsertKeys(ctx context.Context, ks []*keys.Key) error {
	if len(ks) == 0 {
		return nil
	}
	// COPY would be faster for big imports but cannot report which
	// constraint failed as cleanly; a batch keeps it to one round trip.
	b := &pgx.Batch{}
	for _, k := range ks {
		ql, qp := quotaArgs(k.Quota)
		b.Queue(`INSERT INTO api_keys (`+keyColumns+`) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17)`,
			k.ID, k.Hash[:], int16(k.Type), k.UserID, k.OrgID, k.DisplayName, k.Display, jsonText(k.Metadata), k.Imported, k.CreatedAt, k.ExpiresAt, k.ArchivedAt, k.LastUsedAt,
			ql, qp, k.RolledFrom, k.RolledTo)
	}
	if err := t.tx.SendBatch(ctx, b).Close(); err != nil {
		if isUnique(err) {
			return fmt.Errorf("insert key: %w", keys.ErrConflict)
		}
		return fmt.Errorf("insert key: %w", err)
	}
	return nil
}

// UpdateKey stores k's display name, metadata and expiry.
func (t *tx) UpdateKey(ctx context.Context, k *keys.Key) error {
	ql, qp := quotaArgs(k.Quota)
	tag, err := t.tx.Exec(ctx, `UPDATE api_keys SET display_name = $1, metadata = $2, expires_at = $3, q_limit = $4, q_period = $5, rolled_to = $6 WHERE id = $7`,
		k.DisplayName, jsonText(k.Metadata), k.ExpiresAt, ql, qp, k.RolledTo, k.ID)
	if err != nil {
		return fmt.Errorf("update key: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("update key: %w", keys.ErrNotFound)
	}
	return nil
}

// ArchiveKeys archives every unarchived key matching sel and returns them.
func (t *tx) ArchiveKeys(ctx context.Context, sel keys.KeySelector, at int64) ([]keys.Key, error) {
	if sel.IsZero() {
		return nil, fmt.Errorf("archive keys: empty selector")
	}
	where := []string{"archived_at IS NULL"}
	args := []any{at}
	add := func(col string, v any) {
		args = append(args, v)
		where = append(where, col+" = $"+strconv.Itoa(len(args)))
	}
	if sel.ID != "" {
		add("id", sel.ID)
	}
	if sel.Type != 0 {
		add("type", int16(sel.Type))
	}
	if sel.UserID != "" {
		add("user_id", sel.UserID)
	}
	if sel.OrgID != "" {
		add("org_id", sel.OrgID)
	}
	rows, err := t.tx.Query(ctx, `WITH a AS (UPDATE api_keys SET archived_at = $1 WHERE `+strings.Join(where, " AND ")+` RETURNING seq, `+keyColumns+`)
		SELECT `+keyColumns+` FROM a ORDER BY seq`, args...)
	if err != nil {
		return nil, fmt.Errorf("archive keys: %w", err)
	}
	defer rows.Close()
	out := []keys.Key{}
	for rows.Next() {
		var k keys.Key
		if err := scanKey(rows, &k); err != nil {
			return nil, fmt.Errorf("archive keys: %w", err)
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("archive keys: %w", err)
	}
	return out, nil
}

// DeleteKey removes a key and its usage buckets.
func (t *tx) DeleteKey(ctx context.Context, id string) error {
	tag, err := t.tx.Exec(ctx, `DELETE FROM api_keys WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("delete key: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("delete key: %w", keys.ErrNotFound)
	}
	for _, table := range []string{"usage_minute", "usage_hour"} {
		if _, err := t.tx.Exec(ctx, `DELETE FROM `+table+` WHERE key_id = $1`, id); err != nil {
			return fmt.Errorf("delete key usage: %w", err)
		}
	}
	return nil
}

// DetachCreator clears the creator of userID's org keys.
func (t *tx) DetachCreator(ctx context.Context, userID string) ([]string, error) {
	rows, err := t.tx.Query(ctx, `WITH d AS (UPDATE api_keys SET user_id = '' WHERE type = $1 AND user_id = $2 AND $2 <> '' RETURNING seq, id)
		SELECT id FROM d ORDER BY seq`, int16(keys.TypeOrg), userID)
	if err != nil {
		return nil, fmt.Errorf("detach creator: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("detach creator: %w", err)
	}
	if ids == nil {
		ids = []string{}
	}
	return ids, nil
}
