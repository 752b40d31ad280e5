package keys

import "context"

// legacyStore is the store interface Service used before the Store/Tx
// contract of store.go; it goes away once Service is built on Update.
type legacyStore interface {
	InsertKeys(ctx context.Context, ks []*Key, events []AuditEvent) error
	GetKey(ctx context.Context, id string) (*Key, error)
	ListKeys(ctx context.Context, f KeyFilter, now int64) ([]Key, string, error)
	UpdateKey(ctx context.Context, k *Key, ev AuditEvent) error
	ArchiveKey(ctx context.Context, id string, at int64, ev AuditEvent) (*Key, bool, error)
	DeleteKey(ctx context.Context, id string, ev AuditEvent) error
	LookupHash(ctx context.Context, hash [32]byte) (*Identity, error)
	CountImported(ctx context.Context) (int64, error)
	UpsertUser(ctx context.Context, in UserInput, now int64, actor string) (*User, error)
	GetUser(ctx context.Context, id string) (*User, error)
	ListUsers(ctx context.Context, cursor string, limit int) ([]User, string, error)
	SetUserEnabled(ctx context.Context, id string, enabled bool, now int64, actor string) (*User, error)
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
