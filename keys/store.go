package keys

import (
	"context"
	"errors"
)

// ErrNotFound is returned by a Store when the named record does not exist.
var ErrNotFound = errors.New("not found")

// Store keeps keys, owners, memberships and the audit log. Each method is
// atomic: it and the audit events it writes commit together or not at all.
// SQLite implements it; a Postgres implementation can follow (SPEC §9).
type Store interface {
	InsertKeys(ctx context.Context, ks []*Key, events []AuditEvent) error
	GetKey(ctx context.Context, id string) (*Key, error)
	ListKeys(ctx context.Context, f KeyFilter, now int64) ([]Key, string, error)
	// UpdateKey stores k's display name, metadata and expiry.
	UpdateKey(ctx context.Context, k *Key, ev AuditEvent) error
	// ArchiveKey archives a key at `at` unless already archived; it reports
	// whether it changed anything and returns the key as stored.
	ArchiveKey(ctx context.Context, id string, at int64, ev AuditEvent) (*Key, bool, error)
	// DeleteKey removes a key and its usage; only its audit events stay.
	DeleteKey(ctx context.Context, id string, ev AuditEvent) error
	// LookupHash resolves a token hash to its identity, or ErrNotFound.
	LookupHash(ctx context.Context, hash [32]byte) (*Identity, error)
	CountImported(ctx context.Context) (int64, error)

	UpsertUser(ctx context.Context, in UserInput, now int64, actor string) (*User, error)
	GetUser(ctx context.Context, id string) (*User, error)
	ListUsers(ctx context.Context, cursor string, limit int) ([]User, string, error)
	SetUserEnabled(ctx context.Context, id string, enabled bool, now int64, actor string) (*User, error)
	// DeleteUser deletes a user, archives their personal keys, removes their
	// memberships and, when archiveCreated, archives the org keys they
	// created. It returns the ids of every key it archived.
	DeleteUser(ctx context.Context, id string, now int64, archiveCreated bool, actor string) ([]string, error)

	UpsertOrg(ctx context.Context, in OrgInput, now int64, actor string) (*Org, error)
	GetOrg(ctx context.Context, id string) (*Org, error)
	ListOrgs(ctx context.Context, cursor string, limit int) ([]Org, string, error)
	DeleteOrg(ctx context.Context, id string, now int64, actor string) ([]string, error)
	PutMember(ctx context.Context, orgID, userID, role string, now int64, actor string) (*Member, error)
	RemoveMember(ctx context.Context, orgID, userID string, now int64, archiveCreated bool, actor string) ([]string, error)
	GetMember(ctx context.Context, orgID, userID string) (*Member, error)

	ListAudit(ctx context.Context, f AuditFilter) ([]AuditEvent, error)
}

// KeyFilter selects keys for ListKeys. Zero fields select everything.
type KeyFilter struct {
	UserID string
	OrgID  string
	Type   Type
	Status string // "active" (default), "archived", "expired" or "all"
	Search string // a key id or a display hint or name fragment
	Limit  int    // page size, 1–1000
	Cursor string // from the previous page's next cursor
}

// AuditFilter selects audit events, newest first.
type AuditFilter struct {
	KeyID, UserID, OrgID, Action string
	Before                       int64 // event id; 0 = from the newest
	Limit                        int
}

// UserInput upserts a user. Nil pointers keep the stored value (or the
// default for a new user); ClearRateLimit removes an override.
type UserInput struct {
	ID             string
	Email          string
	Enabled        *bool
	Metadata       []byte
	RateLimit      *RateLimit
	ClearRateLimit bool
}

// OrgInput upserts an org, with the same rules as UserInput.
type OrgInput struct {
	ID             string
	Name           string
	Metadata       []byte
	RateLimit      *RateLimit
	ClearRateLimit bool
}

type actorKey struct{}

// WithActor returns a context whose admin calls are audited as actor
// ("admin", "portal:<user_id>" or "system").
func WithActor(ctx context.Context, actor string) context.Context {
	return context.WithValue(ctx, actorKey{}, actor)
}

// ActorFrom returns the actor of ctx, "admin" when none is set.
func ActorFrom(ctx context.Context) string {
	if a, ok := ctx.Value(actorKey{}).(string); ok && a != "" {
		return a
	}
	return "admin"
}
