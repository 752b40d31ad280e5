package keys

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

const keyColumns = `id, hash, type, user_id, org_id, display_name, display, metadata, imported, created_at, expires_at, archived_at, last_used_at`

type scanner interface{ Scan(dest ...any) error }

func scanKey(r scanner, k *Key) error {
	var hash []byte
	var meta string
	var exp, arch, used sql.NullInt64
	if err := r.Scan(&k.ID, &hash, &k.Type, &k.UserID, &k.OrgID, &k.DisplayName, &k.Display, &meta, &k.Imported, &k.CreatedAt, &exp, &arch, &used); err != nil {
		return err
	}
	copy(k.Hash[:], hash)
	k.Metadata = json.RawMessage(meta)
	k.ExpiresAt, k.ArchivedAt, k.LastUsedAt = nullPtr(exp), nullPtr(arch), nullPtr(used)
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

func insertEvents(ctx context.Context, tx *sql.Tx, events ...AuditEvent) error {
	if len(events) == 0 {
		return nil
	}
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO audit_events (at, action, actor, key_id, user_id, org_id, details) VALUES (?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return fmt.Errorf("prepare audit: %w", err)
	}
	defer stmt.Close()
	for _, ev := range events {
		details := string(ev.Details)
		if details == "" {
			details = "{}"
		}
		if _, err := stmt.ExecContext(ctx, ev.At, ev.Action, ev.Actor, ev.KeyID, ev.UserID, ev.OrgID, details); err != nil {
			return fmt.Errorf("insert audit event: %w", err)
		}
	}
	return nil
}

// InsertKeys inserts new keys (created or imported) with their audit events.
func (s *SQLite) InsertKeys(ctx context.Context, ks []*Key, events []AuditEvent) error {
	return s.writeTx(ctx, func(tx *sql.Tx) error {
		stmt, err := tx.PrepareContext(ctx, `INSERT INTO api_keys (`+keyColumns+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)`)
		if err != nil {
			return fmt.Errorf("prepare insert key: %w", err)
		}
		defer stmt.Close()
		for _, k := range ks {
			_, err := stmt.ExecContext(ctx, k.ID, k.Hash[:], k.Type, k.UserID, k.OrgID, k.DisplayName, k.Display, string(k.Metadata), k.Imported, k.CreatedAt, ptrNull(k.ExpiresAt), ptrNull(k.ArchivedAt), ptrNull(k.LastUsedAt))
			if err != nil {
				if strings.Contains(err.Error(), "UNIQUE constraint failed: api_keys.hash") {
					return Errorf(EConflict, "a key with this token already exists")
				}
				return fmt.Errorf("insert key: %w", err)
			}
		}
		return insertEvents(ctx, tx, events...)
	})
}

// GetKey returns the key with id, or ErrNotFound.
func (s *SQLite) GetKey(ctx context.Context, id string) (*Key, error) {
	var k Key
	err := scanKey(s.rdb.QueryRowContext(ctx, `SELECT `+keyColumns+` FROM api_keys WHERE id = ?`, id), &k)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("get key: %w", err)
	}
	return &k, nil
}

// ListKeys returns one page of keys, newest first, and the next cursor
// ("" at the end).
func (s *SQLite) ListKeys(ctx context.Context, f KeyFilter, now int64) ([]Key, string, error) {
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
			return nil, "", FieldError("cursor", "not a cursor returned by this API")
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
	out := make([]Key, 0, min(limit, 64))
	var seqs []int64
	for rows.Next() {
		var k Key
		var seq int64
		var hash []byte
		var meta string
		var exp, arch, used sql.NullInt64
		if err := rows.Scan(&seq, &k.ID, &hash, &k.Type, &k.UserID, &k.OrgID, &k.DisplayName, &k.Display, &meta, &k.Imported, &k.CreatedAt, &exp, &arch, &used); err != nil {
			return nil, "", fmt.Errorf("list keys: %w", err)
		}
		copy(k.Hash[:], hash)
		k.Metadata = json.RawMessage(meta)
		k.ExpiresAt, k.ArchivedAt, k.LastUsedAt = nullPtr(exp), nullPtr(arch), nullPtr(used)
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

// UpdateKey stores a key's display name, metadata and expiry.
func (s *SQLite) UpdateKey(ctx context.Context, k *Key, ev AuditEvent) error {
	return s.writeTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE api_keys SET display_name = ?, metadata = ?, expires_at = ? WHERE id = ?`, k.DisplayName, string(k.Metadata), ptrNull(k.ExpiresAt), k.ID)
		if err != nil {
			return fmt.Errorf("update key: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		return insertEvents(ctx, tx, ev)
	})
}

// ArchiveKey archives a key unless it already is.
func (s *SQLite) ArchiveKey(ctx context.Context, id string, at int64, ev AuditEvent) (*Key, bool, error) {
	var k Key
	changed := false
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE api_keys SET archived_at = ? WHERE id = ? AND archived_at IS NULL`, at, id)
		if err != nil {
			return fmt.Errorf("archive key: %w", err)
		}
		if n, _ := res.RowsAffected(); n > 0 {
			changed = true
			if err := insertEvents(ctx, tx, ev); err != nil {
				return err
			}
		}
		err = scanKey(tx.QueryRowContext(ctx, `SELECT `+keyColumns+` FROM api_keys WHERE id = ?`, id), &k)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		return err
	})
	if err != nil {
		return nil, false, err
	}
	return &k, changed, nil
}

// DeleteKey removes a key and all its usage.
func (s *SQLite) DeleteKey(ctx context.Context, id string, ev AuditEvent) error {
	return s.writeTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM api_keys WHERE id = ?`, id)
		if err != nil {
			return fmt.Errorf("delete key: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		for _, t := range []string{"usage_minute", "usage_hour"} {
			if _, err := tx.ExecContext(ctx, `DELETE FROM `+t+` WHERE key_id = ?`, id); err != nil {
				return fmt.Errorf("delete key usage: %w", err)
			}
		}
		return insertEvents(ctx, tx, ev)
	})
}

// lookupQuery resolves a token hash to its key, user, org and the
// creator's role in one query; it is prepared once (see OpenSQLite), since
// planning a four-table join costs more than running it.
const lookupQuery = `SELECT k.id, k.hash, k.type, k.user_id, k.org_id, k.display_name, k.display, k.metadata, k.imported, k.created_at, k.expires_at, k.archived_at, k.last_used_at,
		u.id, u.email, u.enabled, u.metadata, u.rl_limit, u.rl_window_ms, u.created_at, u.updated_at,
		o.id, o.name, o.metadata, o.rl_limit, o.rl_window_ms, o.created_at, o.updated_at,
		m.role
	FROM api_keys k
	LEFT JOIN users u ON u.id = k.user_id AND k.user_id != ''
	LEFT JOIN orgs o ON o.id = k.org_id AND k.org_id != ''
	LEFT JOIN memberships m ON m.org_id = k.org_id AND m.user_id = k.user_id
	WHERE k.hash = ?`

// LookupHash resolves a token hash to its key, user, org and the creator's
// role, in one query.
func (s *SQLite) LookupHash(ctx context.Context, hash [32]byte) (*Identity, error) {
	var id Identity
	k := &id.Key
	var khash []byte
	var kmeta string
	var exp, arch, used sql.NullInt64
	var uid, uemail, umeta sql.NullString
	var uenabled sql.NullBool
	var ulimit, uwin, ucreated, uupdated sql.NullInt64
	var oid, oname, ometa sql.NullString
	var olimit, owin, ocreated, oupdated sql.NullInt64
	var role sql.NullString
	err := s.lookupStmt.QueryRowContext(ctx, hash[:]).Scan(&k.ID, &khash, &k.Type, &k.UserID, &k.OrgID, &k.DisplayName, &k.Display, &kmeta, &k.Imported, &k.CreatedAt, &exp, &arch, &used,
		&uid, &uemail, &uenabled, &umeta, &ulimit, &uwin, &ucreated, &uupdated,
		&oid, &oname, &ometa, &olimit, &owin, &ocreated, &oupdated, &role)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("lookup key: %w", err)
	}
	copy(k.Hash[:], khash)
	k.Metadata = json.RawMessage(kmeta)
	k.ExpiresAt, k.ArchivedAt, k.LastUsedAt = nullPtr(exp), nullPtr(arch), nullPtr(used)
	if uid.Valid {
		id.User = &User{ID: uid.String, Email: uemail.String, Enabled: uenabled.Bool, Metadata: json.RawMessage(umeta.String),
			RateLimit: rateLimitOf(ulimit, uwin), CreatedAt: ucreated.Int64, UpdatedAt: uupdated.Int64}
	}
	if oid.Valid {
		id.Org = &Org{ID: oid.String, Name: oname.String, Metadata: json.RawMessage(ometa.String),
			RateLimit: rateLimitOf(olimit, owin), CreatedAt: ocreated.Int64, UpdatedAt: oupdated.Int64}
	}
	id.Role = role.String
	return &id, nil
}

// CountImported returns how many imported keys exist (archived included).
func (s *SQLite) CountImported(ctx context.Context) (int64, error) {
	var n int64
	if err := s.rdb.QueryRowContext(ctx, `SELECT COUNT(*) FROM api_keys WHERE imported = 1`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count imported keys: %w", err)
	}
	return n, nil
}

// CountKeys returns how many keys exist per type and status at now.
func (s *SQLite) CountKeys(ctx context.Context, now int64) (map[Type]map[string]int64, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT type,
		CASE WHEN archived_at IS NOT NULL THEN 'archived' WHEN expires_at IS NOT NULL AND expires_at <= ? THEN 'expired' ELSE 'active' END AS status,
		COUNT(*) FROM api_keys GROUP BY 1, 2`, now)
	if err != nil {
		return nil, fmt.Errorf("count keys: %w", err)
	}
	defer rows.Close()
	out := map[Type]map[string]int64{}
	for _, t := range Types {
		out[t] = map[string]int64{"active": 0, "expired": 0, "archived": 0}
	}
	for rows.Next() {
		var t Type
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

func rateLimitOf(limit, windowMS sql.NullInt64) *RateLimit {
	if !limit.Valid {
		return nil
	}
	return &RateLimit{Limit: limit.Int64, Window: time.Duration(windowMS.Int64) * time.Millisecond}
}

func rateLimitArgs(r *RateLimit) (sql.NullInt64, sql.NullInt64) {
	if r == nil {
		return sql.NullInt64{}, sql.NullInt64{}
	}
	return sql.NullInt64{Int64: r.Limit, Valid: true}, sql.NullInt64{Int64: r.Window.Milliseconds(), Valid: true}
}

const userColumns = `id, email, enabled, metadata, rl_limit, rl_window_ms, created_at, updated_at`

func scanUser(r scanner) (*User, error) {
	var u User
	var meta string
	var limit, win sql.NullInt64
	if err := r.Scan(&u.ID, &u.Email, &u.Enabled, &meta, &limit, &win, &u.CreatedAt, &u.UpdatedAt); err != nil {
		return nil, err
	}
	u.Metadata = json.RawMessage(meta)
	u.RateLimit = rateLimitOf(limit, win)
	return &u, nil
}

const orgColumns = `id, name, metadata, rl_limit, rl_window_ms, created_at, updated_at`

func scanOrg(r scanner) (*Org, error) {
	var o Org
	var meta string
	var limit, win sql.NullInt64
	if err := r.Scan(&o.ID, &o.Name, &meta, &limit, &win, &o.CreatedAt, &o.UpdatedAt); err != nil {
		return nil, err
	}
	o.Metadata = json.RawMessage(meta)
	o.RateLimit = rateLimitOf(limit, win)
	return &o, nil
}

// UpsertUser creates or updates a user.
func (s *SQLite) UpsertUser(ctx context.Context, in UserInput, now int64, actor string) (*User, error) {
	var out *User
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		u, err := scanUser(tx.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE id = ?`, in.ID))
		if errors.Is(err, sql.ErrNoRows) {
			u = &User{ID: in.ID, Enabled: true, Metadata: json.RawMessage("{}"), CreatedAt: now}
		} else if err != nil {
			return fmt.Errorf("get user: %w", err)
		}
		u.Email = in.Email
		if in.Enabled != nil {
			u.Enabled = *in.Enabled
		}
		if in.Metadata != nil {
			u.Metadata = json.RawMessage(in.Metadata)
		}
		if in.RateLimit != nil {
			u.RateLimit = in.RateLimit
		} else if in.ClearRateLimit {
			u.RateLimit = nil
		}
		u.UpdatedAt = now
		limit, win := rateLimitArgs(u.RateLimit)
		if _, err := tx.ExecContext(ctx, `INSERT INTO users (`+userColumns+`) VALUES (?,?,?,?,?,?,?,?)
			ON CONFLICT(id) DO UPDATE SET email = excluded.email, enabled = excluded.enabled, metadata = excluded.metadata,
			rl_limit = excluded.rl_limit, rl_window_ms = excluded.rl_window_ms, updated_at = excluded.updated_at`,
			u.ID, u.Email, u.Enabled, string(u.Metadata), limit, win, u.CreatedAt, u.UpdatedAt); err != nil {
			return fmt.Errorf("upsert user: %w", err)
		}
		out = u
		return insertEvents(ctx, tx, AuditEvent{At: now, Action: ActionUserUpserted, Actor: actor, UserID: u.ID})
	})
	return out, err
}

// GetUser returns a user with the orgs they belong to.
func (s *SQLite) GetUser(ctx context.Context, id string) (*User, error) {
	u, err := scanUser(s.rdb.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("get user: %w", err)
	}
	rows, err := s.rdb.QueryContext(ctx, `SELECT o.id, o.name, m.role FROM memberships m JOIN orgs o ON o.id = m.org_id WHERE m.user_id = ? ORDER BY o.id`, id)
	if err != nil {
		return nil, fmt.Errorf("get user orgs: %w", err)
	}
	defer rows.Close()
	u.Orgs = []UserOrg{}
	for rows.Next() {
		var o UserOrg
		if err := rows.Scan(&o.OrgID, &o.Name, &o.Role); err != nil {
			return nil, fmt.Errorf("get user orgs: %w", err)
		}
		u.Orgs = append(u.Orgs, o)
	}
	return u, rows.Err()
}

// ListUsers returns a page of users ordered by id.
func (s *SQLite) ListUsers(ctx context.Context, cursor string, limit int) ([]User, string, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT `+userColumns+` FROM users WHERE id > ? ORDER BY id LIMIT ?`, cursor, limit+1)
	if err != nil {
		return nil, "", fmt.Errorf("list users: %w", err)
	}
	defer rows.Close()
	out := []User{}
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, "", fmt.Errorf("list users: %w", err)
		}
		out = append(out, *u)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("list users: %w", err)
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = out[limit-1].ID
	}
	return out, next, nil
}

// SetUserEnabled blocks or unblocks a user.
func (s *SQLite) SetUserEnabled(ctx context.Context, id string, enabled bool, now int64, actor string) (*User, error) {
	action := ActionUserBlocked
	if enabled {
		action = ActionUserUnblocked
	}
	var out *User
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE users SET enabled = ?, updated_at = ? WHERE id = ?`, enabled, now, id)
		if err != nil {
			return fmt.Errorf("set user enabled: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		if out, err = scanUser(tx.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE id = ?`, id)); err != nil {
			return fmt.Errorf("get user: %w", err)
		}
		return insertEvents(ctx, tx, AuditEvent{At: now, Action: action, Actor: actor, UserID: id})
	})
	return out, err
}

// archiveWhere archives every unarchived key matching cond, audits each as
// archived by the system, and returns their ids.
func archiveWhere(ctx context.Context, tx *sql.Tx, now int64, reason string, cond string, args ...any) ([]string, error) {
	rows, err := tx.QueryContext(ctx, `SELECT id, user_id, org_id FROM api_keys WHERE archived_at IS NULL AND `+cond, args...)
	if err != nil {
		return nil, fmt.Errorf("find keys to archive: %w", err)
	}
	var ids []string
	var events []AuditEvent
	details, _ := json.Marshal(map[string]string{"reason": reason})
	for rows.Next() {
		var ev AuditEvent
		if err := rows.Scan(&ev.KeyID, &ev.UserID, &ev.OrgID); err != nil {
			rows.Close()
			return nil, fmt.Errorf("find keys to archive: %w", err)
		}
		ev.At, ev.Action, ev.Actor, ev.Details = now, ActionKeyArchived, "system", details
		ids = append(ids, ev.KeyID)
		events = append(events, ev)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		return nil, nil
	}
	if _, err := tx.ExecContext(ctx, `UPDATE api_keys SET archived_at = ? WHERE archived_at IS NULL AND `+cond, append([]any{now}, args...)...); err != nil {
		return nil, fmt.Errorf("archive keys: %w", err)
	}
	return ids, insertEvents(ctx, tx, events...)
}

// DeleteUser deletes a user; see Store.
func (s *SQLite) DeleteUser(ctx context.Context, id string, now int64, archiveCreated bool, actor string) ([]string, error) {
	var archived []string
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM users WHERE id = ?`, id).Scan(&n); err != nil {
			return fmt.Errorf("get user: %w", err)
		}
		if n == 0 {
			return ErrNotFound
		}
		ids, err := archiveWhere(ctx, tx, now, "owner deleted", `type = ? AND user_id = ?`, TypePersonal, id)
		if err != nil {
			return err
		}
		archived = append(archived, ids...)
		orgs, err := removeMemberships(ctx, tx, `user_id = ?`, id)
		if err != nil {
			return err
		}
		for _, org := range orgs {
			if err := insertEvents(ctx, tx, AuditEvent{At: now, Action: ActionOrgMemberRemove, Actor: actor, UserID: id, OrgID: org}); err != nil {
				return err
			}
			if archiveCreated {
				ids, err := archiveWhere(ctx, tx, now, "creator left the org", `type = ? AND org_id = ? AND user_id = ?`, TypeOrg, org, id)
				if err != nil {
					return err
				}
				archived = append(archived, ids...)
			}
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM users WHERE id = ?`, id); err != nil {
			return fmt.Errorf("delete user: %w", err)
		}
		return insertEvents(ctx, tx, AuditEvent{At: now, Action: ActionUserDeleted, Actor: actor, UserID: id})
	})
	return archived, err
}

// removeMemberships deletes memberships matching cond and returns their org ids.
func removeMemberships(ctx context.Context, tx *sql.Tx, cond string, args ...any) ([]string, error) {
	rows, err := tx.QueryContext(ctx, `SELECT org_id FROM memberships WHERE `+cond+` ORDER BY org_id`, args...)
	if err != nil {
		return nil, fmt.Errorf("find memberships: %w", err)
	}
	var orgs []string
	for rows.Next() {
		var o string
		if err := rows.Scan(&o); err != nil {
			rows.Close()
			return nil, err
		}
		orgs = append(orgs, o)
	}
	rows.Close()
	if _, err := tx.ExecContext(ctx, `DELETE FROM memberships WHERE `+cond, args...); err != nil {
		return nil, fmt.Errorf("remove memberships: %w", err)
	}
	return orgs, nil
}

// UpsertOrg creates or updates an org.
func (s *SQLite) UpsertOrg(ctx context.Context, in OrgInput, now int64, actor string) (*Org, error) {
	var out *Org
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		o, err := scanOrg(tx.QueryRowContext(ctx, `SELECT `+orgColumns+` FROM orgs WHERE id = ?`, in.ID))
		if errors.Is(err, sql.ErrNoRows) {
			o = &Org{ID: in.ID, Metadata: json.RawMessage("{}"), CreatedAt: now}
		} else if err != nil {
			return fmt.Errorf("get org: %w", err)
		}
		o.Name = in.Name
		if in.Metadata != nil {
			o.Metadata = json.RawMessage(in.Metadata)
		}
		if in.RateLimit != nil {
			o.RateLimit = in.RateLimit
		} else if in.ClearRateLimit {
			o.RateLimit = nil
		}
		o.UpdatedAt = now
		limit, win := rateLimitArgs(o.RateLimit)
		if _, err := tx.ExecContext(ctx, `INSERT INTO orgs (`+orgColumns+`) VALUES (?,?,?,?,?,?,?)
			ON CONFLICT(id) DO UPDATE SET name = excluded.name, metadata = excluded.metadata,
			rl_limit = excluded.rl_limit, rl_window_ms = excluded.rl_window_ms, updated_at = excluded.updated_at`,
			o.ID, o.Name, string(o.Metadata), limit, win, o.CreatedAt, o.UpdatedAt); err != nil {
			return fmt.Errorf("upsert org: %w", err)
		}
		out = o
		return insertEvents(ctx, tx, AuditEvent{At: now, Action: ActionOrgUpserted, Actor: actor, OrgID: o.ID})
	})
	return out, err
}

// GetOrg returns an org with its members.
func (s *SQLite) GetOrg(ctx context.Context, id string) (*Org, error) {
	o, err := scanOrg(s.rdb.QueryRowContext(ctx, `SELECT `+orgColumns+` FROM orgs WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("get org: %w", err)
	}
	rows, err := s.rdb.QueryContext(ctx, `SELECT org_id, user_id, role, created_at FROM memberships WHERE org_id = ? ORDER BY user_id`, id)
	if err != nil {
		return nil, fmt.Errorf("get org members: %w", err)
	}
	defer rows.Close()
	o.Members = []Member{}
	for rows.Next() {
		var m Member
		if err := rows.Scan(&m.OrgID, &m.UserID, &m.Role, &m.CreatedAt); err != nil {
			return nil, fmt.Errorf("get org members: %w", err)
		}
		o.Members = append(o.Members, m)
	}
	return o, rows.Err()
}

// ListOrgs returns a page of orgs ordered by id.
func (s *SQLite) ListOrgs(ctx context.Context, cursor string, limit int) ([]Org, string, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT `+orgColumns+` FROM orgs WHERE id > ? ORDER BY id LIMIT ?`, cursor, limit+1)
	if err != nil {
		return nil, "", fmt.Errorf("list orgs: %w", err)
	}
	defer rows.Close()
	out := []Org{}
	for rows.Next() {
		o, err := scanOrg(rows)
		if err != nil {
			return nil, "", fmt.Errorf("list orgs: %w", err)
		}
		out = append(out, *o)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("list orgs: %w", err)
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = out[limit-1].ID
	}
	return out, next, nil
}

// DeleteOrg deletes an org and archives its keys for good.
func (s *SQLite) DeleteOrg(ctx context.Context, id string, now int64, actor string) ([]string, error) {
	var archived []string
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM orgs WHERE id = ?`, id) // memberships cascade
		if err != nil {
			return fmt.Errorf("delete org: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		if archived, err = archiveWhere(ctx, tx, now, "org deleted", `type = ? AND org_id = ?`, TypeOrg, id); err != nil {
			return err
		}
		return insertEvents(ctx, tx, AuditEvent{At: now, Action: ActionOrgDeleted, Actor: actor, OrgID: id})
	})
	return archived, err
}

// PutMember adds a user to an org or changes their role.
func (s *SQLite) PutMember(ctx context.Context, orgID, userID, role string, now int64, actor string) (*Member, error) {
	m := &Member{OrgID: orgID, UserID: userID, Role: role, CreatedAt: now}
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		var orgs, users int
		if err := tx.QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM orgs WHERE id = ?), (SELECT COUNT(*) FROM users WHERE id = ?)`, orgID, userID).Scan(&orgs, &users); err != nil {
			return fmt.Errorf("check member: %w", err)
		}
		if orgs == 0 {
			return Errorf(ENotFound, "org %q not found", orgID)
		}
		if users == 0 {
			return Errorf(ENotFound, "user %q not found", userID)
		}
		if err := tx.QueryRowContext(ctx, `INSERT INTO memberships (org_id, user_id, role, created_at) VALUES (?,?,?,?)
			ON CONFLICT(org_id, user_id) DO UPDATE SET role = excluded.role RETURNING created_at`, orgID, userID, role, now).Scan(&m.CreatedAt); err != nil {
			return fmt.Errorf("put member: %w", err)
		}
		details, _ := json.Marshal(map[string]string{"role": role})
		return insertEvents(ctx, tx, AuditEvent{At: now, Action: ActionOrgMemberAdded, Actor: actor, UserID: userID, OrgID: orgID, Details: details})
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

// GetMember returns a membership, or ErrNotFound.
func (s *SQLite) GetMember(ctx context.Context, orgID, userID string) (*Member, error) {
	m := &Member{}
	err := s.rdb.QueryRowContext(ctx, `SELECT org_id, user_id, role, created_at FROM memberships WHERE org_id = ? AND user_id = ?`, orgID, userID).Scan(&m.OrgID, &m.UserID, &m.Role, &m.CreatedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("get member: %w", err)
	}
	return m, nil
}

// RemoveMember removes a user from an org; see Store.
func (s *SQLite) RemoveMember(ctx context.Context, orgID, userID string, now int64, archiveCreated bool, actor string) ([]string, error) {
	var archived []string
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		orgs, err := removeMemberships(ctx, tx, `org_id = ? AND user_id = ?`, orgID, userID)
		if err != nil {
			return err
		}
		if len(orgs) == 0 {
			return ErrNotFound
		}
		if archiveCreated {
			if archived, err = archiveWhere(ctx, tx, now, "creator left the org", `type = ? AND org_id = ? AND user_id = ?`, TypeOrg, orgID, userID); err != nil {
				return err
			}
		}
		return insertEvents(ctx, tx, AuditEvent{At: now, Action: ActionOrgMemberRemove, Actor: actor, UserID: userID, OrgID: orgID})
	})
	return archived, err
}

// ListAudit returns audit events, newest first.
func (s *SQLite) ListAudit(ctx context.Context, f AuditFilter) ([]AuditEvent, error) {
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
	out := []AuditEvent{}
	for rows.Next() {
		var ev AuditEvent
		var details string
		if err := rows.Scan(&ev.ID, &ev.At, &ev.Action, &ev.Actor, &ev.KeyID, &ev.UserID, &ev.OrgID, &details); err != nil {
			return nil, fmt.Errorf("list audit: %w", err)
		}
		ev.Details = json.RawMessage(details)
		out = append(out, ev)
	}
	return out, rows.Err()
}

var _ legacyStore = (*SQLite)(nil)

// InsertUsers inserts new users in one transaction: the bulk path for
// seeding and migrations, where per-user upserts would be too slow.
func (s *SQLite) InsertUsers(ctx context.Context, us []User, actor string) error {
	return s.writeTx(ctx, func(tx *sql.Tx) error {
		stmt, err := tx.PrepareContext(ctx, `INSERT INTO users (`+userColumns+`) VALUES (?,?,?,?,?,?,?,?)`)
		if err != nil {
			return fmt.Errorf("prepare insert user: %w", err)
		}
		defer stmt.Close()
		events := make([]AuditEvent, 0, len(us))
		for _, u := range us {
			meta := string(u.Metadata)
			if meta == "" {
				meta = "{}"
			}
			limit, win := rateLimitArgs(u.RateLimit)
			if _, err := stmt.ExecContext(ctx, u.ID, u.Email, u.Enabled, meta, limit, win, u.CreatedAt, u.UpdatedAt); err != nil {
				return fmt.Errorf("insert user %q: %w", u.ID, err)
			}
			events = append(events, AuditEvent{At: u.CreatedAt, Action: ActionUserUpserted, Actor: actor, UserID: u.ID})
		}
		return insertEvents(ctx, tx, events...)
	})
}
