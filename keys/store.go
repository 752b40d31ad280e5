package keys

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Sentinel errors of the storage contract. Stores return them (possibly
// wrapped, so callers match with errors.Is, never on error text).
var (
	// ErrNotFound: the named record does not exist (or, for links and
	// sessions, has expired or was used).
	ErrNotFound = errors.New("not found")
	// ErrConflict: a unique constraint would be broken, such as a second key
	// with the same token hash or id.
	ErrConflict = errors.New("conflict")
	// ErrUnavailable: the store cannot be reached (a database server that
	// is down or unreachable); the call may succeed when retried later.
	// Callers answer 503.
	ErrUnavailable = errors.New("store unavailable")

	// ErrLinkUsed and ErrLinkExpired are the ErrNotFound (they match it)
	// that TakePortalLink returns for a link used, or expired, less than
	// LinkMemory ago, so the portal can say which; after that it is
	// plain ErrNotFound.
	ErrLinkUsed    = fmt.Errorf("portal link already used: %w", ErrNotFound)
	ErrLinkExpired = fmt.Errorf("portal link expired: %w", ErrNotFound)
)

// LinkMemory is how long, in seconds after its expiry, a used or expired
// portal link is remembered (as such) before SweepSessions deletes it.
const LinkMemory = 24 * 60 * 60

// Store is keygate's whole storage contract: keys, owners, memberships,
// audit, usage, portal links and the sessions of the dashboard and the
// portal. It is implemented by package sqlite (one node) and package
// postgres (a cluster), and checked by package keys/storetest, which both
// run.
//
// A store only stores. Every lifecycle rule — cascades when an owner is
// deleted or a member removed, upsert merge rules, archiving on creator
// leave, detaching a deleted creator — and every audit event is built by
// Service out of the primitive verbs of Tx, so that implementations cannot
// drift apart.
//
// Reads are plain methods and see committed data only. Writes to keys,
// owners and audit happen in Update; usage, links and sessions have their
// own atomic methods. Times are unix seconds unless stated otherwise. All
// methods are safe for concurrent use, by several goroutines and, for a
// shared database, several nodes.
type Store interface {
	KeyReader
	// Update runs fn in one transaction: everything fn writes commits
	// together, or nothing does when fn returns an error (which Update
	// returns unchanged, so sentinels and *Error survive). Writers are
	// serialised or isolated so that fn's reads through tx see a state no
	// concurrent Update changes before the commit. fn may run more than once
	// when the implementation retries a serialisation failure, so it must
	// have no side effects beyond tx. A commit failure is returned wrapped.
	Update(ctx context.Context, fn func(tx Tx) error) error

	UsageStore
	SessionStore
	QuotaStore
	DeliveryStore

	// Ping reports whether the store can serve: nil when reads work and
	// writes commit. It fails when the database does not answer, or when
	// writes cannot commit (a lock held by another process, a full disk, a
	// read-only file): an implementation probes with a write of its own
	// and/or reports the error of the last failed write until a write
	// succeeds again. It answers within ctx's deadline.
	Ping(ctx context.Context) error
	// Close releases the store; no method may be called after.
	Close() error
}

// KeyReader is the read side of keys, owners and audit. Returned records
// are the caller's to keep and change. Missing records are ErrNotFound.
type KeyReader interface {
	// LookupHash resolves a token hash to its key, the key's user and org as
	// they are now (nil when the key names none or they were deleted) and
	// the user's role in the org ("" when not a member), in one round trip:
	// it is the cache-miss path of every request. ErrNotFound when no key
	// has this hash. It applies no rule (see Identity.Check).
	LookupHash(ctx context.Context, hash [32]byte) (*Identity, error)
	// RecentIdentities returns, in one bulk read, the identities of up to
	// limit keys that are not archived and have been used, each exactly as
	// LookupHash returns it: the keys used most recently first (LastUsedAt
	// descending; equal ones newest first, ListKeys' order). Keys never used
	// are left out: traffic has not asked for them, and a store of a million
	// new keys would otherwise fill a warming cache with guesses. It warms a
	// cache at start. It applies no other rule (expired keys and blocked
	// owners are included). limit ≤ 0 returns none. Never nil.
	RecentIdentities(ctx context.Context, limit int) ([]*Identity, error)
	// GetKey returns the key with id.
	GetKey(ctx context.Context, id string) (*Key, error)
	// ListKeys returns one page of the keys matching f (see KeyFilter;
	// status is judged at now), newest first (creation order, ties broken by
	// insertion order), and the cursor of the next page, "" on the last.
	// Cursors are opaque; a cursor not returned by the store is an *Error
	// with code EInvalid naming field "cursor". Keys created after the first
	// page never appear on later pages of the same walk. f.Limit ≤ 0 means
	// 100.
	ListKeys(ctx context.Context, f KeyFilter, now int64) ([]Key, string, error)
	// CountImported returns how many imported keys exist, archived included.
	CountImported(ctx context.Context) (int64, error)
	// CountKeys returns how many keys exist per type (every Type present)
	// and status at now ("active", "expired", "archived", each present).
	CountKeys(ctx context.Context, now int64) (map[Type]map[string]int64, error)

	// GetUser returns a user with Orgs filled: every membership with the
	// org's name, ordered by org id, never nil.
	GetUser(ctx context.Context, id string) (*User, error)
	// ListUsers returns up to limit users with id > cursor, ordered by id
	// (byte order), without Orgs, and the next cursor ("" on the last page).
	// limit ≤ 0 means 100. Never nil.
	ListUsers(ctx context.Context, cursor string, limit int) ([]User, string, error)
	// GetOrg returns an org with Members filled, ordered by user id, never
	// nil.
	GetOrg(ctx context.Context, id string) (*Org, error)
	// ListOrgs is ListUsers for orgs, without Members.
	ListOrgs(ctx context.Context, cursor string, limit int) ([]Org, string, error)
	// GetMember returns the membership of user in org.
	GetMember(ctx context.Context, orgID, userID string) (*Member, error)

	// ListAudit returns the events matching f, newest first (by id, which
	// grows with every insert), never nil. f.Limit ≤ 0 means 100.
	ListAudit(ctx context.Context, f AuditFilter) ([]AuditEvent, error)
}

// Tx is the write side of one Update. Its methods are primitives: they
// change exactly what they say, enforce no lifecycle rule and write no audit
// event of their own. Reads through a Tx see the transaction's own writes.
// A Tx must not be used after its Update returns.
type Tx interface {
	// GetKey, GetUser (without Orgs), GetOrg (without Members) and
	// GetMember read inside the transaction; ErrNotFound when missing.
	// An implementation with concurrent writers locks what they read
	// (SELECT … FOR UPDATE) so read-modify-write is safe.
	GetKey(ctx context.Context, id string) (*Key, error)
	GetUser(ctx context.Context, id string) (*User, error)
	GetOrg(ctx context.Context, id string) (*Org, error)
	GetMember(ctx context.Context, orgID, userID string) (*Member, error)

	// InsertKeys inserts new keys as given, all fields stored verbatim
	// (Hash included). ErrConflict when an id or hash already exists (in
	// the store or twice in ks).
	InsertKeys(ctx context.Context, ks []*Key) error
	// UpdateKey stores k's DisplayName, Metadata, ExpiresAt, Quota and
	// RolledTo; the other fields are left alone. ErrNotFound when k.ID does not exist.
	UpdateKey(ctx context.Context, k *Key) error
	// ArchiveKeys sets ArchivedAt = at on every key matching sel that is
	// not archived yet, and returns those keys as they now are, in creation
	// order (empty, not an error, when none match). An empty selector is an
	// error: it would archive everything.
	ArchiveKeys(ctx context.Context, sel KeySelector, at int64) ([]Key, error)
	// DeleteKey removes a key and all its usage buckets for good (its audit
	// events stay). ErrNotFound when it does not exist.
	DeleteKey(ctx context.Context, id string) error
	// DetachCreator clears UserID on every org key (TypeOrg) whose creator
	// is userID, archived or not, and returns those keys' ids in creation
	// order, so that a deleted user's id no longer travels with them.
	DetachCreator(ctx context.Context, userID string) ([]string, error)

	// PutUser inserts u, or replaces every field of an existing user with
	// u's except CreatedAt, which the stored row keeps. u is fully resolved
	// (Service applies the merge rules); Metadata nil is stored as {}.
	// Orgs is ignored.
	PutUser(ctx context.Context, u *User) error
	// DeleteUser removes the user row only: ErrNotFound when missing.
	// Memberships must be removed first (DeleteMemberships); keys are not
	// touched.
	DeleteUser(ctx context.Context, id string) error
	// PutOrg is PutUser for orgs; Members is ignored.
	PutOrg(ctx context.Context, o *Org) error
	// DeleteOrg removes the org row and its memberships; keys are not
	// touched. ErrNotFound when missing.
	DeleteOrg(ctx context.Context, id string) error
	// PutMember inserts a membership or changes the role of an existing one,
	// which keeps its CreatedAt; it returns the membership as stored.
	// ErrNotFound when the org or the user does not exist.
	PutMember(ctx context.Context, m Member) (*Member, error)
	// DeleteMemberships removes the memberships matching org and user (an
	// empty argument matches any, both empty is an error) and returns them,
	// ordered by org id then user id (empty when none matched).
	DeleteMemberships(ctx context.Context, orgID, userID string) ([]Member, error)

	// InsertAudit appends events; their ID fields are ignored and assigned
	// by the store in insertion order. Details nil is stored as {}.
	InsertAudit(ctx context.Context, events ...AuditEvent) error

	OutboxTx

	// Notify records that the transaction changes what tokens validate to.
	// A store shared by several nodes delivers every recorded Change to the
	// other nodes if and only if the transaction commits (Postgres: NOTIFY
	// inside the committing transaction); a single-node store may ignore it.
	// The node that made the change invalidates its own cache itself, after
	// Update returns (Service does).
	Notify(c Change)
}

// KeySelector names keys to archive. Non-empty fields must all match; at
// least one must be set.
type KeySelector struct {
	ID     string
	Type   Type
	UserID string
	OrgID  string
}

// IsZero reports whether sel selects nothing in particular (everything).
func (sel KeySelector) IsZero() bool {
	return sel.ID == "" && sel.Type == 0 && sel.UserID == "" && sel.OrgID == ""
}

// UsageStore keeps per-key traffic in minute buckets, rolled up into hour
// buckets, and reports on it.
type UsageStore interface {
	// AddUsage adds counts to the minute buckets (Minute is aligned down to
	// the minute; counts for the same key and minute add up, from any number
	// of nodes) and raises each key's LastUsedAt to the latest minute it had
	// traffic in; it never goes back. One transaction. Counts for keys that
	// do not exist (deleted meanwhile) are dropped; empty counts are skipped.
	AddUsage(ctx context.Context, counts []UsageCount) error
	// CompactUsage rolls the minute buckets of whole hours that ended
	// minuteRetention before now into hour buckets (adding to what is there)
	// and deletes them, then deletes hour buckets older than retention. One
	// transaction, so readers see minutes or hours, never both or neither.
	// Safe to call from several nodes at once (an implementation lets one
	// run at a time).
	CompactUsage(ctx context.Context, now time.Time, minuteRetention, retention time.Duration) error
	// Usage returns the traffic of q's keys per interval, oldest first, and
	// its total (allowed plus rate limited). A point covers [T, T+interval)
	// with T aligned to the interval in UTC; the points returned are those
	// with align(q.From) ≤ T < q.To. Only buckets with traffic are returned
	// (never nil); FillUsage adds the empty ones. Naming more than one of
	// KeyID, UserID, OrgID, or an unknown interval, is an *Error EInvalid;
	// naming none reports every key.
	Usage(ctx context.Context, q UsageQuery) ([]UsagePoint, int64, error)
	// TopKeys returns the n keys with the most traffic (allowed plus rate
	// limited) in buckets starting at or after since, most first, ties by
	// id. Never nil; n ≤ 0 returns none.
	TopKeys(ctx context.Context, since int64, n int) ([]UsageTop, error)
	// TopUsers is TopKeys summed over each user's personal keys.
	TopUsers(ctx context.Context, since int64, n int) ([]UsageTop, error)
	// TopOrgs is TopKeys summed over each org's org keys.
	TopOrgs(ctx context.Context, since int64, n int) ([]UsageTop, error)
}

// SessionStore keeps portal links and the sessions of the dashboard and the
// portal, so that they work on every node. Tokens are never stored, only
// their SHA-256 (see web.TokenHash); a dump of the store yields no usable
// link or session.
type SessionStore interface {
	// CreatePortalLink stores an unused link. ErrConflict when the hash
	// exists.
	CreatePortalLink(ctx context.Context, l PortalLink) error
	// GetPortalLink returns the link of hash without using it up;
	// ErrNotFound when unknown, used or expired at now.
	GetPortalLink(ctx context.Context, hash [32]byte, now int64) (*PortalLink, error)
	// TakePortalLink uses up the link of hash atomically: of any number of
	// concurrent calls, on any node, at most one gets it. A taken link is
	// kept, marked used, until SweepSessions: ErrLinkUsed when it was taken,
	// ErrLinkExpired when it expired at now (ExpiresAt ≤ now), ErrNotFound
	// when unknown.
	TakePortalLink(ctx context.Context, hash [32]byte, now int64) (*PortalLink, error)

	// CreateSession stores a new session. ErrConflict when the hash exists.
	CreateSession(ctx context.Context, s Session) error
	// GetSession returns the session of hash and kind; ErrNotFound when
	// unknown, of another kind, or expired at now.
	GetSession(ctx context.Context, kind string, hash [32]byte, now int64) (*Session, error)
	// SetSessionFlash replaces the session's one-time message ("" clears
	// it). Nil when the session does not exist (it may have just ended).
	SetSessionFlash(ctx context.Context, hash [32]byte, flash string) error
	// DeleteSession ends a session; nil when it does not exist.
	DeleteSession(ctx context.Context, hash [32]byte) error
	// SweepSessions deletes sessions expired at now, and links (used or
	// not) that expired LinkMemory or more before now.
	SweepSessions(ctx context.Context, now int64) error
}

// PortalLink is a single-use link to the self-service pages.
type PortalLink struct {
	Hash      [32]byte // SHA-256 of the link token
	UserID    string
	OrgID     string // "" for a personal link
	ExpiresAt int64
}

// Session kinds.
const (
	SessionDashboard = "dashboard"
	SessionPortal    = "portal"
)

// Session is a signed-in browser of the dashboard or the portal.
type Session struct {
	Hash      [32]byte // SHA-256 of the session cookie's token
	Kind      string   // SessionDashboard or SessionPortal
	UserID    string   // portal only
	OrgID     string   // portal only, "" for personal
	CSRF      string   // the token every form of the session carries
	Flash     string   // one-time message for the next page
	ExpiresAt int64
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
	Quota          *Quota
	ClearQuota     bool
}

// OrgInput upserts an org, with the same rules as UserInput.
type OrgInput struct {
	ID             string
	Name           string
	Metadata       []byte
	RateLimit      *RateLimit
	ClearRateLimit bool
	Quota          *Quota
	ClearQuota     bool
}

// QuotaStore persists quota use (SPEC §12) per owner and period.
type QuotaStore interface {
	// QuotaUsed returns the use stored for owner's period of kind p that
	// starts at start (0 when none).
	QuotaUsed(ctx context.Context, owner string, p QuotaPeriod, start int64) (int64, error)
	// AddQuotaUsage adds counts to what is stored, in one transaction (a
	// failure adds nothing); counts from any number of nodes add up.
	AddQuotaUsage(ctx context.Context, counts []QuotaCount) error
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
