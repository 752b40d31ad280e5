// Package keys holds keygate's domain: API keys, their owners, the store that
// keeps them and the validation core that resolves a token to an identity.
package keys

import (
	"encoding/json"
	"fmt"
	"math"
	"time"
)

// Type is the kind of owner a key has.
type Type uint8

// Key types. The zero value is not a valid type.
const (
	TypePersonal Type = iota + 1
	TypeOrg
	TypeGeneric
)

// Types lists every key type, in a fixed order.
var Types = [...]Type{TypePersonal, TypeOrg, TypeGeneric}

func (t Type) String() string {
	switch t {
	case TypePersonal:
		return "personal"
	case TypeOrg:
		return "org"
	case TypeGeneric:
		return "generic"
	}
	return "unknown"
}

// ParseType parses "personal", "org" or "generic".
func ParseType(s string) (Type, error) {
	switch s {
	case "personal":
		return TypePersonal, nil
	case "org":
		return TypeOrg, nil
	case "generic":
		return TypeGeneric, nil
	}
	return 0, fmt.Errorf("unknown key type %q (want personal, org or generic)", s)
}

// MarshalText encodes a Type as its name.
func (t Type) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// UnmarshalText decodes a Type from its name.
func (t *Type) UnmarshalText(b []byte) error {
	v, err := ParseType(string(b))
	if err != nil {
		return err
	}
	*t = v
	return nil
}

// Key is an API key's record. The token itself is never stored: only Hash.
// Times are unix seconds; nil pointers mean never / not yet.
type Key struct {
	ID          string          `json:"id"`
	Type        Type            `json:"type"`
	UserID      string          `json:"user_id"`
	OrgID       string          `json:"org_id"`
	DisplayName string          `json:"display_name"`
	Display     string          `json:"display"`
	Metadata    json.RawMessage `json:"metadata"`
	CreatedAt   int64           `json:"created_at"`
	ExpiresAt   *int64          `json:"expires_at"`
	ArchivedAt  *int64          `json:"archived_at"`
	LastUsedAt  *int64          `json:"last_used_at"`
	Imported    bool            `json:"imported"`
	// Quota is a generic key's own quota; nil for none (and always for
	// personal and org keys, whose quota belongs to their owner).
	Quota *Quota `json:"-"`
	// RolledFrom and RolledTo link a key to the one it was rolled from and
	// the one it was rolled into (SPEC §11); "" for none.
	RolledFrom *string `json:"rolled_from"`
	RolledTo   *string `json:"rolled_to"`

	Hash [32]byte `json:"-"`
}

// Archived reports whether the key has been archived.
func (k *Key) Archived() bool { return k.ArchivedAt != nil }

// Expired reports whether the key has expired at now.
func (k *Key) Expired(now time.Time) bool {
	return k.ExpiresAt != nil && now.Unix() >= *k.ExpiresAt
}

// Status is "active", "expired" or "archived".
func (k *Key) Status(now time.Time) string {
	switch {
	case k.Archived():
		return "archived"
	case k.Expired(now):
		return "expired"
	}
	return "active"
}

// RateLimit is an owner's own limit, overriding its key type's.
// Limit 0 means unlimited.
type RateLimit struct {
	Limit  int64         `json:"limit"`
	Window time.Duration `json:"-"`
}

type rateLimitJSON struct {
	Limit  int64  `json:"limit"`
	Window string `json:"window"`
}

// MarshalJSON writes the window as a Go duration string ("1m").
func (r RateLimit) MarshalJSON() ([]byte, error) {
	return json.Marshal(rateLimitJSON{Limit: r.Limit, Window: FormatDuration(r.Window)})
}

// UnmarshalJSON reads {"limit": N, "window": "1m"}.
func (r *RateLimit) UnmarshalJSON(b []byte) error {
	var v rateLimitJSON
	dec := json.NewDecoder(bytesReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		return err
	}
	if v.Limit < 0 {
		return fmt.Errorf("limit must be ≥ 0")
	}
	d, err := time.ParseDuration(v.Window)
	if err != nil {
		return fmt.Errorf("window: %q is not a duration like 1m or 500ms", v.Window)
	}
	if d <= 0 {
		return fmt.Errorf("window must be > 0")
	}
	r.Limit, r.Window = v.Limit, d
	return nil
}

// User is an end user of the operator's product.
type User struct {
	ID        string          `json:"user_id"`
	Email     string          `json:"email"`
	Enabled   bool            `json:"enabled"`
	Metadata  json.RawMessage `json:"metadata"`
	RateLimit *RateLimit      `json:"rate_limit"`
	Quota     *Quota          `json:"-"`
	CreatedAt int64           `json:"created_at"`
	UpdatedAt int64           `json:"updated_at"`
	Orgs      []UserOrg       `json:"orgs,omitempty"`
}

// UserOrg is one org a user belongs to, as shown on the user.
type UserOrg struct {
	OrgID string `json:"org_id"`
	Name  string `json:"name"`
	Role  string `json:"role"`
}

// Org is an organization of users.
type Org struct {
	ID        string          `json:"org_id"`
	Name      string          `json:"name"`
	Metadata  json.RawMessage `json:"metadata"`
	RateLimit *RateLimit      `json:"rate_limit"`
	Quota     *Quota          `json:"-"`
	CreatedAt int64           `json:"created_at"`
	UpdatedAt int64           `json:"updated_at"`
	Members   []Member        `json:"members,omitempty"`
}

// Member is a user's membership in an org.
type Member struct {
	OrgID     string `json:"org_id"`
	UserID    string `json:"user_id"`
	Role      string `json:"role"`
	CreatedAt int64  `json:"created_at"`
}

// AuditEvent is one entry of the append-only audit log.
type AuditEvent struct {
	ID      int64           `json:"id"`
	At      int64           `json:"at"`
	Action  string          `json:"action"`
	Actor   string          `json:"actor"`
	KeyID   string          `json:"key_id"`
	UserID  string          `json:"user_id"`
	OrgID   string          `json:"org_id"`
	Details json.RawMessage `json:"details"`
}

// Audit actions (SPEC §4.2).
const (
	ActionKeyCreated      = "api_key.created"
	ActionKeyUpdated      = "api_key.updated"
	ActionKeyArchived     = "api_key.archived"
	ActionKeyDeleted      = "api_key.deleted"
	ActionKeyImported     = "api_key.imported"
	ActionKeyRolled       = "api_key.rolled"
	ActionUserUpserted    = "user.upserted"
	ActionUserBlocked     = "user.blocked"
	ActionUserUnblocked   = "user.unblocked"
	ActionUserDeleted     = "user.deleted"
	ActionOrgUpserted     = "org.upserted"
	ActionOrgDeleted      = "org.deleted"
	ActionOrgMemberAdded  = "org.member_added"
	ActionOrgMemberRemove = "org.member_removed"
)

// AuditActions lists every audit action, in a fixed order.
var AuditActions = []string{
	ActionKeyCreated, ActionKeyUpdated, ActionKeyArchived, ActionKeyDeleted, ActionKeyImported,
	ActionUserUpserted, ActionUserBlocked, ActionUserUnblocked, ActionUserDeleted,
	ActionOrgUpserted, ActionOrgDeleted, ActionOrgMemberAdded, ActionOrgMemberRemove,
	ActionKeyRolled,
}

// Identity is what a token resolves to: the key and whoever stands behind it.
// It is immutable once returned; callers may cache and share it.
type Identity struct {
	Key  Key
	User *User  // personal: owner; org: creator (when set); nil otherwise or when deleted
	Org  *Org   // org keys; nil when deleted
	Role string // the creator's role in the org, "" when not a member
}

// Owner returns the rate-limit owner: the user for personal keys, the org for
// org keys and the key itself for generic keys, prefixed so they never collide.
func (id *Identity) Owner() string {
	switch id.Key.Type {
	case TypePersonal:
		return "u:" + id.Key.UserID
	case TypeOrg:
		return "o:" + id.Key.OrgID
	}
	return "k:" + id.Key.ID
}

// OwnerRateLimit returns the owner's own limit, nil when it has none.
func (id *Identity) OwnerRateLimit() *RateLimit {
	switch id.Key.Type {
	case TypePersonal:
		if id.User != nil {
			return id.User.RateLimit
		}
	case TypeOrg:
		if id.Org != nil {
			return id.Org.RateLimit
		}
	}
	return nil
}

// Check applies the automatic-invalidation rules (SPEC §1) at now.
// enabled reports whether a key type is enabled in config; nil means all are.
// It does no I/O, so a cached Identity can be re-checked on every request.
func (id *Identity) Check(now time.Time, enabled func(Type) bool) error {
	p := id.Precheck()
	return p.Check(now, enabled)
}

// Precheck is the part of Identity.Check that depends on the Identity
// alone, worked out once so that a cache holding the Identity re-checks
// only the clock and the enabled key types on each request. An Identity is
// immutable, so its Precheck stays right for as long as it is served.
type Precheck struct {
	typ       Type
	invalid   bool  // archived, or its user blocked or gone, or its org gone
	expiresAt int64 // unix seconds; math.MaxInt64 when it never expires
}

// Precheck returns id's Precheck.
func (id *Identity) Precheck() Precheck {
	k := &id.Key
	p := Precheck{typ: k.Type, invalid: k.Archived(), expiresAt: math.MaxInt64}
	switch k.Type {
	case TypePersonal:
		p.invalid = p.invalid || id.User == nil || !id.User.Enabled
	case TypeOrg:
		p.invalid = p.invalid || id.Org == nil
	}
	if k.ExpiresAt != nil {
		p.expiresAt = *k.ExpiresAt
	}
	return p
}

// Check is Identity.Check of the Identity p was made from.
func (p *Precheck) Check(now time.Time, enabled func(Type) bool) error {
	if p.invalid || enabled != nil && !enabled(p.typ) {
		return ErrInvalidKey
	}
	if now.Unix() >= p.expiresAt { // as Key.Expired
		return ErrExpiredKey
	}
	return nil
}

// Change names what an admin call changed, so a cache in front of the
// validation core can drop what depends on it. Empty fields name nothing.
type Change struct {
	KeyIDs []string
	UserID string
	OrgID  string
	// Hashes are token hashes that now exist (created or imported keys);
	// a negative cache must forget them.
	Hashes [][32]byte
	// Imported is how many imported keys the change added, so that every
	// node knows unprefixed tokens are worth looking up.
	Imported int64
}

// UsageCount is one key's traffic in one minute.
type UsageCount struct {
	KeyID       string
	Minute      int64 // unix seconds, a multiple of 60
	Allowed     int64
	RateLimited int64
}

// UsageQuery selects the keys (exactly one of KeyID, UserID, OrgID) and the
// time range [From, To) of a usage series, in unix seconds.
type UsageQuery struct {
	KeyID    string
	UserID   string // all of the user's personal keys
	OrgID    string // all of the org's org keys
	From, To int64
	Interval string // "minute", "hour" or "day"
}

// UsagePoint is the traffic of one interval starting at T.
type UsagePoint struct {
	T           int64 `json:"t"`
	Allowed     int64 `json:"allowed"`
	RateLimited int64 `json:"rate_limited"`
}
