package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/keygate/keygate/keys"
)

const keyColumns = `id, hash, type, user_id, org_id, display_name, display, metadata, imported, created_at, expires_at, archived_at, last_used_at, q_limit, q_period, rolled_from, rolled_to`

type scanner interface{ Scan(dest ...any) error }

// querier is what reads need: the read pool or a write transaction.
type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func scanKey(r scanner, k *keys.Key, extra ...any) error {
	var hash []byte
	var meta string
	var exp, arch, used, ql, qp sql.NullInt64
	var from, to sql.NullString
	dest := append(extra, &k.ID, &hash, &k.Type, &k.UserID, &k.OrgID, &k.DisplayName, &k.Display, &meta, &k.Imported, &k.CreatedAt, &exp, &arch, &used,
		&ql, &qp, &from, &to)
	if err := r.Scan(dest...); err != nil {
		return err
	}
	copy(k.Hash[:], hash)
	k.Metadata = json.RawMessage(meta)
	k.ExpiresAt, k.ArchivedAt, k.LastUsedAt = nullPtr(exp), nullPtr(arch), nullPtr(used)
	k.Quota, k.RolledFrom, k.RolledTo = quotaOf(ql, qp), nullString(from), nullString(to)
	return nil
}

func nullPtr(n sql.NullInt64) *int64 {
	if !n.Valid {
		return nil
	}
	v := n.Int64
	return &v
}

func ptrNull(p *int64) sql.NullInt64 {
	if p == nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: *p, Valid: true}
}

func metaText(m json.RawMessage) string {
	if len(m) == 0 {
		return "{}"
	}
	return string(m)
}

func getKey(ctx context.Context, q querier, id string) (*keys.Key, error) {
	var k keys.Key
	err := scanKey(q.QueryRowContext(ctx, `SELECT `+keyColumns+` FROM api_keys WHERE id = ?`, id), &k)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("key %s: %w", id, keys.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get key: %w", err)
	}
	return &k, nil
}

// GetKey returns the key with id; see keys.KeyReader.
func (s *Store) GetKey(ctx context.Context, id string) (*keys.Key, error) {
	return getKey(ctx, s.rdb, id)
}

// GetKey reads a key inside the transaction.
func (t *tx) GetKey(ctx context.Context, id string) (*keys.Key, error) {
	return getKey(ctx, t.tx, id)
}

// ListKeys returns one page of keys, newest first; the cursor is the seq
// of the page's last key.
func (s *Store) ListKeys(ctx context.Context, f keys.KeyFilter, now int64) ([]keys.Key, string, error) {
	var where []string
	var args []any
	if f.UserID != "" {
		where, args = append(where, "user_id = ?"), append(args, f.UserID)
	}
	if f.OrgID != "" {
		where, args = append(where, "org_id = ?"), append(args, f.OrgID)
	}
	if f.Type != 0 {
		where, args = append(where, "type = ?"), append(args, f.Type)
	}
	switch f.Status {
	case "", "active":
		where, args = append(where, "archived_at IS NULL AND (expires_at IS NULL OR expires_at > ?)"), append(args, now)
	case "archived":
		where = append(where, "archived_at IS NOT NULL")
	case "expired":
		where, args = append(where, "archived_at IS NULL AND expires_at IS NOT NULL AND expires_at <= ?"), append(args, now)
	}
	if f.Search != "" {
		like := "%" + strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(f.Search) + "%"
		where, args = append(where, `(id = ? OR display LIKE ? ESCAPE '\' OR display_name LIKE ? ESCAPE '\')`), append(args, f.Search, like, like)
	}
	if f.Cursor != "" {
		seq, err := strconv.ParseInt(f.Cursor, 10, 64)
		if err != nil || seq <= 0 {
			return nil, "", keys.FieldError("cursor", "not a cursor returned by this API")
		}
		where, args = append(where, "seq < ?"), append(args, seq)
	}
	q := `SELECT seq, ` + keyColumns + ` FROM api_keys`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	q += " ORDER BY seq DESC LIMIT " + strconv.Itoa(limit+1)
	rows, err := s.rdb.QueryContext(ctx, q, args...)
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

// identityQuery reads keys with their user, org and the creator's role:
// the one select behind LookupHash and RecentIdentities, so that both
// return the same identity for a key (see identityRow).
const identityQuery = `SELECT k.id, k.hash, k.type, k.user_id, k.org_id, k.display_name, k.display, k.metadata, k.imported, k.created_at, k.expires_at, k.archived_at, k.last_used_at,
		u.id, u.email, u.enabled, u.metadata, u.rl_limit, u.rl_window_ms, u.created_at, u.updated_at,
		o.id, o.name, o.metadata, o.rl_limit, o.rl_window_ms, o.created_at, o.updated_at,
		m.role, k.q_limit, k.q_period, k.rolled_from, k.rolled_to, u.q_limit, u.q_period, o.q_limit, o.q_period
	FROM api_keys k
	LEFT JOIN users u ON u.id = k.user_id AND k.user_id != ''
	LEFT JOIN orgs o ON o.id = k.org_id AND k.org_id != ''
	LEFT JOIN memberships m ON m.org_id = k.org_id AND m.user_id = k.user_id`

// lookupQuery resolves a token hash to its key, user, org and the
// creator's role in one query; it is prepared once (see Open), since
// planning a four-table join costs more than running it.
const lookupQuery = identityQuery + `
	WHERE k.hash = ?`

// recentQuery is RecentIdentities' read. Its WHERE and ORDER BY match the
// partial index api_keys_recent (migration 0005), so SQLite walks the index
// backwards and stops after LIMIT rows instead of sorting every key; in
// SQLite NULL sorts lowest, so never-used keys come after used ones.
const recentQuery = identityQuery + `
	WHERE k.archived_at IS NULL AND k.last_used_at IS NOT NULL
	ORDER BY k.last_used_at DESC, k.seq DESC
	LIMIT ?`

// LookupHash resolves a token hash to its key, user, org and the creator's
// role, in one query.
func (s *Store) LookupHash(ctx context.Context, hash [32]byte) (*keys.Identity, error) {
	r := identityRow{id: new(keys.Identity)}
	var dest [identityColumns]any
	err := s.lookupStmt.QueryRowContext(ctx, hash[:]).Scan(r.targets(&dest)...)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, keys.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("lookup key: %w", err)
	}
	return r.identity(), nil
}

// RecentIdentities returns the identities of up to limit unarchived keys,
// most recently used first, then never-used ones newest first, in one
// query; see keys.KeyReader.
func (s *Store) RecentIdentities(ctx context.Context, limit int) ([]*keys.Identity, error) {
	if limit <= 0 {
		return []*keys.Identity{}, nil
	}
	rows, err := s.rdb.QueryContext(ctx, recentQuery, limit)
	if err != nil {
		return nil, fmt.Errorf("recent identities: %w", err)
	}
	defer rows.Close()
	out := make([]*keys.Identity, 0, min(limit, 1024))
	for rows.Next() {
		r := identityRow{id: new(keys.Identity)}
		var dest [identityColumns]any
		if err := rows.Scan(r.targets(&dest)...); err != nil {
			return nil, fmt.Errorf("recent identities: %w", err)
		}
		out = append(out, r.identity())
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("recent identities: %w", err)
	}
	return out, nil
}

// identityColumns is how many columns identityQuery selects.
const identityColumns = 37

// identityRow holds one row of identityQuery while it is scanned.
type identityRow struct {
	id                               *keys.Identity // apart from the row: callers keep it, not the row
	khash                            []byte
	kmeta                            string
	exp, arch, used                  sql.NullInt64
	uid, uemail, umeta               sql.NullString
	uenabled                         sql.NullBool
	ulimit, uwin, ucreated, uupdated sql.NullInt64
	oid, oname, ometa                sql.NullString
	olimit, owin, ocreated, oupdated sql.NullInt64
	role, from, to                   sql.NullString
	kql, kqp, uql, uqp, oql, oqp     sql.NullInt64
}

// targets fills dest with the scan targets of identityQuery's columns, in
// order. The caller owns dest, so on the lookup path it stays on the stack.
func (r *identityRow) targets(dest *[identityColumns]any) []any {
	k := &r.id.Key
	*dest = [identityColumns]any{&k.ID, &r.khash, &k.Type, &k.UserID, &k.OrgID, &k.DisplayName, &k.Display, &r.kmeta, &k.Imported, &k.CreatedAt, &r.exp, &r.arch, &r.used,
		&r.uid, &r.uemail, &r.uenabled, &r.umeta, &r.ulimit, &r.uwin, &r.ucreated, &r.uupdated,
		&r.oid, &r.oname, &r.ometa, &r.olimit, &r.owin, &r.ocreated, &r.oupdated, &r.role,
		&r.kql, &r.kqp, &r.from, &r.to, &r.uql, &r.uqp, &r.oql, &r.oqp}
	return dest[:]
}

// identity builds the Identity of a scanned row.
func (r *identityRow) identity() *keys.Identity {
	id := r.id
	k := &id.Key
	copy(k.Hash[:], r.khash)
	k.Metadata = json.RawMessage(r.kmeta)
	k.ExpiresAt, k.ArchivedAt, k.LastUsedAt = nullPtr(r.exp), nullPtr(r.arch), nullPtr(r.used)
	k.Quota, k.RolledFrom, k.RolledTo = quotaOf(r.kql, r.kqp), nullString(r.from), nullString(r.to)
	if r.uid.Valid {
		id.User = &keys.User{ID: r.uid.String, Email: r.uemail.String, Enabled: r.uenabled.Bool, Metadata: json.RawMessage(r.umeta.String),
			RateLimit: rateLimitOf(r.ulimit, r.uwin), Quota: quotaOf(r.uql, r.uqp), CreatedAt: r.ucreated.Int64, UpdatedAt: r.uupdated.Int64}
	}
	if r.oid.Valid {
		id.Org = &keys.Org{ID: r.oid.String, Name: r.oname.String, Metadata: json.RawMessage(r.ometa.String),
			RateLimit: rateLimitOf(r.olimit, r.owin), Quota: quotaOf(r.oql, r.oqp), CreatedAt: r.ocreated.Int64, UpdatedAt: r.oupdated.Int64}
	}
	id.Role = r.role.String
	return id
}

// CountImported returns how many imported keys exist (archived included).
func (s *Store) CountImported(ctx context.Context) (int64, error) {
	var n int64
	if err := s.rdb.QueryRowContext(ctx, `SELECT COUNT(*) FROM api_keys WHERE imported = 1`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count imported keys: %w", err)
	}
	return n, nil
}

// CountKeys returns how many keys exist per type and status at now.
func (s *Store) CountKeys(ctx context.Context, now int64) (map[keys.Type]map[string]int64, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT type,
		CASE WHEN archived_at IS NOT NULL THEN 'archived' WHEN expires_at IS NOT NULL AND expires_at <= ? THEN 'expired' ELSE 'active' END AS status,
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

// InsertKeys inserts new keys verbatim.
func (t *tx) InsertKeys(ctx context.Context, ks []*keys.Key) error {
	st, err := t.stmt(ctx, `INSERT INTO api_keys (`+keyColumns+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`)
	if err != nil {
		return err
	}
	for _, k := range ks {
		ql, qp := quotaArgs(k.Quota)
		_, err := st.ExecContext(ctx, k.ID, k.Hash[:], k.Type, k.UserID, k.OrgID, k.DisplayName, k.Display, metaText(k.Metadata), k.Imported, k.CreatedAt, ptrNull(k.ExpiresAt), ptrNull(k.ArchivedAt), ptrNull(k.LastUsedAt),
			ql, qp, stringNull(k.RolledFrom), stringNull(k.RolledTo))
		if isUnique(err) {
			return fmt.Errorf("insert key %s: %w", k.ID, keys.ErrConflict)
		}
		if err != nil {
			return fmt.Errorf("insert key: %w", err)
		}
	}
	return nil
}

// UpdateKey stores a key's display name, metadata and expiry.
func (t *tx) UpdateKey(ctx context.Context, k *keys.Key) error {
	ql, qp := quotaArgs(k.Quota)
	res, err := t.tx.ExecContext(ctx, `UPDATE api_keys SET display_name = ?, metadata = ?, expires_at = ?, q_limit = ?, q_period = ?, rolled_to = ? WHERE id = ?`,
		k.DisplayName, metaText(k.Metadata), ptrNull(k.ExpiresAt), ql, qp, stringNull(k.RolledTo), k.ID)
	if err != nil {
		return fmt.Errorf("update key: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("key %s: %w", k.ID, keys.ErrNotFound)
	}
	return nil
}

// ArchiveKeys archives the unarchived keys matching sel.
func (t *tx) ArchiveKeys(ctx context.Context, sel keys.KeySelector, at int64) ([]keys.Key, error) {
	if sel.IsZero() {
		return nil, fmt.Errorf("archive keys: empty selector: %w", errCaller)
	}
	var where []string
	var args []any
	for _, c := range []struct {
		col string
		v   any
		set bool
	}{{"id", sel.ID, sel.ID != ""}, {"type", sel.Type, sel.Type != 0}, {"user_id", sel.UserID, sel.UserID != ""}, {"org_id", sel.OrgID, sel.OrgID != ""}} {
		if c.set {
			where, args = append(where, c.col+" = ?"), append(args, c.v)
		}
	}
	cond := strings.Join(where, " AND ")
	rows, err := t.tx.QueryContext(ctx, `UPDATE api_keys SET archived_at = ? WHERE archived_at IS NULL AND `+cond+` RETURNING seq, `+keyColumns, append([]any{at}, args...)...)
	if err != nil {
		return nil, fmt.Errorf("archive keys: %w", err)
	}
	defer rows.Close()
	type seqKey struct {
		seq int64
		k   keys.Key
	}
	var got []seqKey
	for rows.Next() {
		var sk seqKey
		if err := scanKey(rows, &sk.k, &sk.seq); err != nil {
			return nil, fmt.Errorf("archive keys: %w", err)
		}
		got = append(got, sk)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("archive keys: %w", err)
	}
	// RETURNING has no ORDER BY.
	out := make([]keys.Key, len(got))
	slices.SortFunc(got, func(a, b seqKey) int { return cmp.Compare(a.seq, b.seq) })
	for i := range got {
		out[i] = got[i].k
	}
	return out, nil
}

// DeleteKey removes a key and all its usage.
func (t *tx) DeleteKey(ctx context.Context, id string) error {
	res, err := t.tx.ExecContext(ctx, `DELETE FROM api_keys WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("delete key: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("key %s: %w", id, keys.ErrNotFound)
	}
	for _, table := range []string{"usage_minute", "usage_hour"} {
		if _, err := t.tx.ExecContext(ctx, `DELETE FROM `+table+` WHERE key_id = ?`, id); err != nil {
			return fmt.Errorf("delete key usage: %w", err)
		}
	}
	return nil
}

// DetachCreator clears the creator of every org key userID created.
func (t *tx) DetachCreator(ctx context.Context, userID string) ([]string, error) {
	if userID == "" {
		return nil, fmt.Errorf("detach creator: empty user id: %w", errCaller)
	}
	rows, err := t.tx.QueryContext(ctx, `SELECT id FROM api_keys WHERE type = ? AND user_id = ? ORDER BY seq`, keys.TypeOrg, userID)
	if err != nil {
		return nil, fmt.Errorf("detach creator: %w", err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, fmt.Errorf("detach creator: %w", err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("detach creator: %w", err)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	if _, err := t.tx.ExecContext(ctx, `UPDATE api_keys SET user_id = '' WHERE type = ? AND user_id = ?`, keys.TypeOrg, userID); err != nil {
		return nil, fmt.Errorf("detach creator: %w", err)
	}
	return ids, nil
}
