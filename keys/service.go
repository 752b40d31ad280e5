package keys

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// MaxMetadataBytes bounds a metadata object (SPEC §4).
const MaxMetadataBytes = 4096

// Expiration is one expiration choice offered to users, such as "1mo".
type Expiration struct {
	Name  string
	After time.Duration // ignored when Never
	Never bool
}

// Service is keygate's key lifecycle and validation core. It checks input,
// applies the lifecycle rules of SPEC §1 and calls OnChange after every
// change that can affect validation, before returning. Safe for concurrent use.
type Service struct {
	store    Store
	tokens   *Tokens
	opts     Options
	imported atomic.Int64 // count of imported keys, to skip lookups of foreign tokens
}

// Options configure a Service. Zero values mean: every type enabled, no
// expiration choices but "never", time.Now, no change hook.
type Options struct {
	// Disabled key types fail validation and cannot be created.
	Disabled [4]bool
	// InvalidateOnCreatorLeave archives org keys whose creator leaves the org.
	InvalidateOnCreatorLeave bool
	Expirations              []Expiration
	DefaultExpiration        string
	Now                      func() time.Time
	// OnChange, when set, is called synchronously after a change that can
	// affect what a token validates to, so a cache can drop stale entries.
	OnChange func(Change)
}

// NewService returns a Service over store. It counts imported keys once.
func NewService(ctx context.Context, store Store, tokens *Tokens, opts Options) (*Service, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Service{store: store, tokens: tokens, opts: opts}
	n, err := store.CountImported(ctx)
	if err != nil {
		return nil, err
	}
	s.imported.Store(n)
	return s, nil
}

// Tokens returns the token format in use.
func (s *Service) Tokens() *Tokens { return s.tokens }

// Store returns the underlying store.
func (s *Service) Store() Store { return s.store }

// Enabled reports whether keys of type t are enabled in config.
func (s *Service) Enabled(t Type) bool {
	return t >= TypePersonal && t <= TypeGeneric && !s.opts.Disabled[t]
}

// HasImported reports whether any imported key exists, so that tokens
// without a keygate prefix are worth looking up.
func (s *Service) HasImported() bool { return s.imported.Load() > 0 }

// Expirations returns the configured expiration choices.
func (s *Service) Expirations() []Expiration { return s.opts.Expirations }

func (s *Service) changed(c Change) {
	if s.opts.OnChange != nil {
		s.opts.OnChange(c)
	}
}

// Lookup resolves a token hash through the store: ErrNotFound when unknown.
// It applies no rule; callers run Identity.Check (and may cache in between).
func (s *Service) Lookup(ctx context.Context, hash [32]byte) (*Identity, error) {
	return s.store.LookupHash(ctx, hash)
}

// Validate checks a token without any cache: shape, store, then the rules.
// It returns ErrInvalidKey or ErrExpiredKey for a rejected token, or a
// wrapped store error.
func (s *Service) Validate(ctx context.Context, token string) (*Identity, error) {
	switch f, _ := s.tokens.Check(token); f {
	case FormatMalformed:
		return nil, ErrInvalidKey
	case FormatForeign:
		if !s.HasImported() {
			return nil, ErrInvalidKey
		}
	}
	id, err := s.store.LookupHash(ctx, Hash(token))
	if errors.Is(err, ErrNotFound) {
		return nil, ErrInvalidKey
	}
	if err != nil {
		return nil, err
	}
	if err := id.Check(s.opts.Now(), s.Enabled); err != nil {
		return nil, err
	}
	return id, nil
}

// CreateKeyInput describes a key to create or import. Type may be zero to
// infer it from the owner: org_id → org, user_id → personal, else generic.
type CreateKeyInput struct {
	Type        Type
	UserID      string
	OrgID       string
	DisplayName string
	Metadata    []byte // a JSON object; nil = {}
	ExpiresIn   string // one of the configured choices
	ExpiresAt   *int64 // exact unix time; excludes ExpiresIn
	// Import only: the existing token, or its SHA-256 as 64 hex characters.
	Token     string
	TokenHash string
}

// CreateKey creates a key and returns it with its token, shown only now.
func (s *Service) CreateKey(ctx context.Context, in CreateKeyInput) (*Key, string, error) {
	k, err := s.prepareKey(ctx, &in, false)
	if err != nil {
		return nil, "", err
	}
	token, err := s.tokens.New(k.Type)
	if err != nil {
		return nil, "", err
	}
	k.Hash = Hash(token)
	k.Display = s.tokens.Hint(token)
	ev := s.keyEvent(ctx, ActionKeyCreated, k)
	if err := s.store.InsertKeys(ctx, []*Key{k}, []AuditEvent{ev}); err != nil {
		return nil, "", fmt.Errorf("create key: %w", err)
	}
	s.changed(Change{Hashes: [][32]byte{k.Hash}})
	return k, token, nil
}

// ImportKeys imports existing tokens (or their hashes) from another system,
// all or nothing. Imported tokens are stored only as a hash. It is Import
// with the default options.
func (s *Service) ImportKeys(ctx context.Context, ins []CreateKeyInput) ([]*Key, error) {
	res, err := s.Import(ctx, ins, ImportOptions{})
	if err != nil {
		return nil, err
	}
	return res.Keys, nil
}

func (s *Service) keyEvent(ctx context.Context, action string, k *Key) AuditEvent {
	details, _ := json.Marshal(map[string]any{"type": k.Type, "display": k.Display, "display_name": k.DisplayName})
	return AuditEvent{At: s.opts.Now().Unix(), Action: action, Actor: ActorFrom(ctx), KeyID: k.ID, UserID: k.UserID, OrgID: k.OrgID, Details: details}
}

// prepareKey checks a create or import request and builds the record.
func (s *Service) prepareKey(ctx context.Context, in *CreateKeyInput, imported bool) (*Key, error) {
	now := s.opts.Now()
	fe := fieldErrors{}
	typ := in.Type
	if typ == 0 {
		switch {
		case in.OrgID != "":
			typ = TypeOrg
		case in.UserID != "":
			typ = TypePersonal
		default:
			typ = TypeGeneric
		}
	}
	if typ < TypePersonal || typ > TypeGeneric {
		fe.add("type", "must be personal, org or generic")
	} else if !s.Enabled(typ) {
		fe.add("type", typ.String()+" keys are disabled in config (keys."+typ.String()+".enabled)")
	}
	if in.UserID != "" && !ValidOwnerID(in.UserID) {
		fe.add("user_id", "must be 1–128 characters of A-Z a-z 0-9 . _ : @ -")
	}
	if in.OrgID != "" && !ValidOwnerID(in.OrgID) {
		fe.add("org_id", "must be 1–128 characters of A-Z a-z 0-9 . _ : @ -")
	}
	switch typ {
	case TypePersonal:
		if in.UserID == "" {
			fe.add("user_id", "required for a personal key")
		}
		if in.OrgID != "" {
			fe.add("org_id", "must be empty for a personal key")
		}
	case TypeOrg:
		if in.OrgID == "" {
			fe.add("org_id", "required for an org key")
		}
	case TypeGeneric:
		if in.UserID != "" {
			fe.add("user_id", "must be empty for a generic key")
		}
		if in.OrgID != "" {
			fe.add("org_id", "must be empty for a generic key")
		}
	}
	if msg := checkDisplayName(in.DisplayName); msg != "" {
		fe.add("display_name", msg)
	}
	meta, msg := normalizeMetadata(in.Metadata)
	if msg != "" {
		fe.add("metadata", msg)
	}
	var expiresAt *int64
	// Imported keys keep working as they did: the default expiration applies
	// only to keys keygate mints.
	if !imported || in.ExpiresIn != "" || in.ExpiresAt != nil {
		var field, msg string
		if expiresAt, field, msg = s.expiry(now, in.ExpiresIn, in.ExpiresAt); msg != "" {
			fe.add(field, msg)
		}
	}
	k := &Key{ID: NewID(), Type: typ, UserID: in.UserID, OrgID: in.OrgID, DisplayName: in.DisplayName,
		Metadata: meta, CreatedAt: now.Unix(), ExpiresAt: expiresAt, Imported: imported}
	if imported {
		switch {
		case in.Token != "" && in.TokenHash != "":
			fe.add("token", "give token or token_sha256, not both")
		case in.Token != "":
			if f, _ := s.tokens.Check(in.Token); f == FormatMalformed {
				fe.add("token", "must be 1–512 printable ASCII characters without spaces, and a token with a keygate prefix must be well-formed")
			}
			k.Hash = Hash(in.Token)
			k.Display = s.tokens.Hint(in.Token)
		case in.TokenHash != "":
			b, err := hex.DecodeString(in.TokenHash)
			if err != nil || len(b) != 32 {
				fe.add("token_sha256", "must be 64 hex characters")
			}
			copy(k.Hash[:], b)
			k.Display = "sha256:" + in.TokenHash[:min(8, len(in.TokenHash))]
		default:
			fe.add("token", "required: the existing token or token_sha256")
		}
	}
	if err := fe.err(); err != nil {
		return nil, err
	}
	// Owners are checked last: only well-formed requests reach the store.
	switch typ {
	case TypePersonal:
		u, err := s.store.GetUser(ctx, in.UserID)
		if errors.Is(err, ErrNotFound) {
			return nil, FieldError("user_id", fmt.Sprintf("user %q does not exist", in.UserID))
		} else if err != nil {
			return nil, err
		}
		if !u.Enabled {
			return nil, FieldError("user_id", fmt.Sprintf("user %q is blocked", in.UserID))
		}
	case TypeOrg:
		if _, err := s.store.GetOrg(ctx, in.OrgID); errors.Is(err, ErrNotFound) {
			return nil, FieldError("org_id", fmt.Sprintf("org %q does not exist", in.OrgID))
		} else if err != nil {
			return nil, err
		}
		if in.UserID != "" {
			if _, err := s.store.GetMember(ctx, in.OrgID, in.UserID); errors.Is(err, ErrNotFound) {
				return nil, FieldError("user_id", fmt.Sprintf("user %q is not a member of org %q", in.UserID, in.OrgID))
			} else if err != nil {
				return nil, err
			}
		}
	}
	return k, nil
}

// hasControl reports whether s holds a control character: values that
// travel upstream in headers (email, org name) must not smuggle CR or LF.
func hasControl(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return true
		}
	}
	return false
}

func checkDisplayName(s string) string {
	if !utf8.ValidString(s) {
		return "must be valid UTF-8"
	}
	if utf8.RuneCountInString(s) > 200 {
		return "must be at most 200 characters"
	}
	return ""
}

// normalizeMetadata checks that b is a JSON object of at most 4 KiB and
// returns it compacted; nil becomes {}.
func normalizeMetadata(b []byte) (json.RawMessage, string) {
	if b == nil {
		return json.RawMessage("{}"), ""
	}
	if len(b) > MaxMetadataBytes*4 {
		return nil, fmt.Sprintf("must be at most %d bytes", MaxMetadataBytes)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return nil, "must be a JSON object"
	}
	if buf.Len() == 0 || buf.Bytes()[0] != '{' {
		return nil, "must be a JSON object"
	}
	if buf.Len() > MaxMetadataBytes {
		return nil, fmt.Sprintf("must be at most %d bytes as compact JSON (got %d)", MaxMetadataBytes, buf.Len())
	}
	return json.RawMessage(buf.Bytes()), ""
}

// expiry resolves expires_in or expires_at to a unix time (nil = never).
func (s *Service) expiry(now time.Time, in string, at *int64) (*int64, string, string) {
	if in != "" && at != nil {
		return nil, "expires_at", "give expires_in or expires_at, not both"
	}
	if at != nil {
		if *at <= now.Unix() {
			return nil, "expires_at", "must be in the future"
		}
		v := *at
		return &v, "", ""
	}
	name := in
	if name == "" {
		name = s.opts.DefaultExpiration
	}
	if name == "" || name == "never" && in == "" {
		return nil, "", ""
	}
	for _, e := range s.opts.Expirations {
		if e.Name == name {
			if e.Never {
				return nil, "", ""
			}
			v := now.Add(e.After).Unix()
			return &v, "", ""
		}
	}
	names := make([]string, len(s.opts.Expirations))
	for i, e := range s.opts.Expirations {
		names[i] = e.Name
	}
	return nil, "expires_in", fmt.Sprintf("%q is not one of the configured choices %v", name, names)
}

func checkKeyID(id string) error {
	if !ValidKeyID(id) {
		return FieldError("id", "must be 32 lowercase hex characters")
	}
	return nil
}

// GetKey returns a key by id.
func (s *Service) GetKey(ctx context.Context, id string) (*Key, error) {
	if err := checkKeyID(id); err != nil {
		return nil, err
	}
	return s.store.GetKey(ctx, id)
}

// ListKeys returns a page of keys and the next cursor ("" at the end).
func (s *Service) ListKeys(ctx context.Context, f KeyFilter) ([]Key, string, error) {
	fe := fieldErrors{}
	if f.UserID != "" && !ValidOwnerID(f.UserID) {
		fe.add("user_id", "must be 1–128 characters of A-Z a-z 0-9 . _ : @ -")
	}
	if f.OrgID != "" && !ValidOwnerID(f.OrgID) {
		fe.add("org_id", "must be 1–128 characters of A-Z a-z 0-9 . _ : @ -")
	}
	switch f.Status {
	case "", "active", "archived", "expired", "all":
	default:
		fe.add("status", "must be active, archived, expired or all")
	}
	if f.Limit == 0 {
		f.Limit = 100
	}
	if f.Limit < 1 || f.Limit > 1000 {
		fe.add("page_size", "must be 1–1000")
	}
	if err := fe.err(); err != nil {
		return nil, "", err
	}
	return s.store.ListKeys(ctx, f, s.opts.Now().Unix())
}

// KeyPatch changes a key. Nil fields are left alone; Metadata replaces.
type KeyPatch struct {
	DisplayName *string
	Metadata    []byte
	ExpiresAt   *int64
	NeverExpire bool
}

// UpdateKey applies p to a key.
func (s *Service) UpdateKey(ctx context.Context, id string, p KeyPatch) (*Key, error) {
	if err := checkKeyID(id); err != nil {
		return nil, err
	}
	fe := fieldErrors{}
	if p.DisplayName != nil {
		if msg := checkDisplayName(*p.DisplayName); msg != "" {
			fe.add("display_name", msg)
		}
	}
	var meta json.RawMessage
	if p.Metadata != nil {
		var msg string
		if meta, msg = normalizeMetadata(p.Metadata); msg != "" {
			fe.add("metadata", msg)
		}
	}
	if p.ExpiresAt != nil && p.NeverExpire {
		fe.add("never_expire", "cannot be combined with expires_at")
	}
	if p.ExpiresAt != nil && *p.ExpiresAt <= s.opts.Now().Unix() {
		fe.add("expires_at", "must be in the future")
	}
	if err := fe.err(); err != nil {
		return nil, err
	}
	k, err := s.store.GetKey(ctx, id)
	if err != nil {
		return nil, err
	}
	if k.Archived() {
		return nil, Errorf(EConflict, "key %s is archived and cannot be changed", id)
	}
	changed := map[string]any{}
	if p.DisplayName != nil {
		k.DisplayName = *p.DisplayName
		changed["display_name"] = k.DisplayName
	}
	if meta != nil {
		k.Metadata = meta
		changed["metadata"] = true
	}
	if p.ExpiresAt != nil {
		k.ExpiresAt = p.ExpiresAt
		changed["expires_at"] = *p.ExpiresAt
	}
	if p.NeverExpire {
		k.ExpiresAt = nil
		changed["expires_at"] = nil
	}
	details, _ := json.Marshal(changed)
	ev := AuditEvent{At: s.opts.Now().Unix(), Action: ActionKeyUpdated, Actor: ActorFrom(ctx), KeyID: k.ID, UserID: k.UserID, OrgID: k.OrgID, Details: details}
	if err := s.store.UpdateKey(ctx, k, ev); err != nil {
		return nil, err
	}
	s.changed(Change{KeyIDs: []string{id}})
	return k, nil
}

// ArchiveKey archives a key; archiving an archived key changes nothing.
func (s *Service) ArchiveKey(ctx context.Context, id string) (*Key, error) {
	if err := checkKeyID(id); err != nil {
		return nil, err
	}
	now := s.opts.Now().Unix()
	ev := AuditEvent{At: now, Action: ActionKeyArchived, Actor: ActorFrom(ctx), KeyID: id}
	k, err := s.store.GetKey(ctx, id)
	if err != nil {
		return nil, err
	}
	ev.UserID, ev.OrgID = k.UserID, k.OrgID
	k, changed, err := s.store.ArchiveKey(ctx, id, now, ev)
	if err != nil {
		return nil, err
	}
	if changed {
		s.changed(Change{KeyIDs: []string{id}})
	}
	return k, nil
}

// DeleteKey removes a key and its usage for good; its audit events stay.
func (s *Service) DeleteKey(ctx context.Context, id string) error {
	if err := checkKeyID(id); err != nil {
		return err
	}
	k, err := s.store.GetKey(ctx, id)
	if err != nil {
		return err
	}
	ev := s.keyEvent(ctx, ActionKeyDeleted, k)
	if err := s.store.DeleteKey(ctx, id, ev); err != nil {
		return err
	}
	s.changed(Change{KeyIDs: []string{id}})
	return nil
}

func checkOwnerID(field, id string) error {
	if !ValidOwnerID(id) {
		return FieldError(field, "must be 1–128 characters of A-Z a-z 0-9 . _ : @ -")
	}
	return nil
}

func checkRateLimit(fe fieldErrors, r *RateLimit) {
	if r == nil {
		return
	}
	if r.Limit < 0 {
		fe.add("rate_limit.limit", "must be ≥ 0 (0 = unlimited)")
	}
	if r.Window <= 0 {
		fe.add("rate_limit.window", "must be a positive duration like 1m")
	}
}

// UpsertUser creates or updates a user.
func (s *Service) UpsertUser(ctx context.Context, in UserInput) (*User, error) {
	if err := checkOwnerID("user_id", in.ID); err != nil {
		return nil, err
	}
	fe := fieldErrors{}
	if len(in.Email) > 320 || !utf8.ValidString(in.Email) || hasControl(in.Email) {
		fe.add("email", "must be at most 320 characters of UTF-8, without control characters")
	}
	if in.Metadata != nil {
		meta, msg := normalizeMetadata(in.Metadata)
		if msg != "" {
			fe.add("metadata", msg)
		}
		in.Metadata = meta
	}
	checkRateLimit(fe, in.RateLimit)
	if err := fe.err(); err != nil {
		return nil, err
	}
	u, err := s.store.UpsertUser(ctx, in, s.opts.Now().Unix(), ActorFrom(ctx))
	if err != nil {
		return nil, err
	}
	s.changed(Change{UserID: in.ID})
	return s.store.GetUser(ctx, u.ID)
}

// GetUser returns a user with their orgs.
func (s *Service) GetUser(ctx context.Context, id string) (*User, error) {
	if err := checkOwnerID("user_id", id); err != nil {
		return nil, err
	}
	return s.store.GetUser(ctx, id)
}

// ListUsers returns a page of users by id.
func (s *Service) ListUsers(ctx context.Context, cursor string, limit int) ([]User, string, error) {
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	return s.store.ListUsers(ctx, cursor, limit)
}

// SetUserEnabled blocks (false) or unblocks (true) a user; their personal
// keys fail validation while blocked.
func (s *Service) SetUserEnabled(ctx context.Context, id string, enabled bool) (*User, error) {
	if err := checkOwnerID("user_id", id); err != nil {
		return nil, err
	}
	if _, err := s.store.SetUserEnabled(ctx, id, enabled, s.opts.Now().Unix(), ActorFrom(ctx)); err != nil {
		return nil, err
	}
	s.changed(Change{UserID: id})
	return s.store.GetUser(ctx, id)
}

// DeleteUser deletes a user: personal keys archived for good, memberships
// removed (which counts as leaving each org).
func (s *Service) DeleteUser(ctx context.Context, id string) error {
	if err := checkOwnerID("user_id", id); err != nil {
		return err
	}
	archived, err := s.store.DeleteUser(ctx, id, s.opts.Now().Unix(), s.opts.InvalidateOnCreatorLeave, ActorFrom(ctx))
	if err != nil {
		return err
	}
	s.changed(Change{UserID: id, KeyIDs: archived})
	return nil
}

// UpsertOrg creates or updates an org.
func (s *Service) UpsertOrg(ctx context.Context, in OrgInput) (*Org, error) {
	if err := checkOwnerID("org_id", in.ID); err != nil {
		return nil, err
	}
	fe := fieldErrors{}
	if in.Name == "" {
		fe.add("name", "required")
	} else if utf8.RuneCountInString(in.Name) > 200 || !utf8.ValidString(in.Name) || hasControl(in.Name) {
		fe.add("name", "must be at most 200 characters of UTF-8, without control characters")
	}
	if in.Metadata != nil {
		meta, msg := normalizeMetadata(in.Metadata)
		if msg != "" {
			fe.add("metadata", msg)
		}
		in.Metadata = meta
	}
	checkRateLimit(fe, in.RateLimit)
	if err := fe.err(); err != nil {
		return nil, err
	}
	if _, err := s.store.UpsertOrg(ctx, in, s.opts.Now().Unix(), ActorFrom(ctx)); err != nil {
		return nil, err
	}
	s.changed(Change{OrgID: in.ID})
	return s.store.GetOrg(ctx, in.ID)
}

// GetOrg returns an org with its members.
func (s *Service) GetOrg(ctx context.Context, id string) (*Org, error) {
	if err := checkOwnerID("org_id", id); err != nil {
		return nil, err
	}
	return s.store.GetOrg(ctx, id)
}

// ListOrgs returns a page of orgs by id.
func (s *Service) ListOrgs(ctx context.Context, cursor string, limit int) ([]Org, string, error) {
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	return s.store.ListOrgs(ctx, cursor, limit)
}

// DeleteOrg deletes an org; its keys are archived for good.
func (s *Service) DeleteOrg(ctx context.Context, id string) error {
	if err := checkOwnerID("org_id", id); err != nil {
		return err
	}
	archived, err := s.store.DeleteOrg(ctx, id, s.opts.Now().Unix(), ActorFrom(ctx))
	if err != nil {
		return err
	}
	s.changed(Change{OrgID: id, KeyIDs: archived})
	return nil
}

// PutMember adds a user to an org with role, or changes their role.
func (s *Service) PutMember(ctx context.Context, orgID, userID, role string) (*Member, error) {
	fe := fieldErrors{}
	if !ValidOwnerID(orgID) {
		fe.add("org_id", "must be 1–128 characters of A-Z a-z 0-9 . _ : @ -")
	}
	if !ValidOwnerID(userID) {
		fe.add("user_id", "must be 1–128 characters of A-Z a-z 0-9 . _ : @ -")
	}
	if role == "" || utf8.RuneCountInString(role) > 64 || !utf8.ValidString(role) {
		fe.add("role", "required, at most 64 characters")
	}
	if err := fe.err(); err != nil {
		return nil, err
	}
	m, err := s.store.PutMember(ctx, orgID, userID, role, s.opts.Now().Unix(), ActorFrom(ctx))
	if err != nil {
		return nil, err
	}
	// The creator's role travels with org keys' identities.
	s.changed(Change{UserID: userID, OrgID: orgID})
	return m, nil
}

// RemoveMember removes a user from an org; with InvalidateOnCreatorLeave the
// org keys they created are archived for good.
func (s *Service) RemoveMember(ctx context.Context, orgID, userID string) error {
	fe := fieldErrors{}
	if !ValidOwnerID(orgID) {
		fe.add("org_id", "must be 1–128 characters of A-Z a-z 0-9 . _ : @ -")
	}
	if !ValidOwnerID(userID) {
		fe.add("user_id", "must be 1–128 characters of A-Z a-z 0-9 . _ : @ -")
	}
	if err := fe.err(); err != nil {
		return err
	}
	archived, err := s.store.RemoveMember(ctx, orgID, userID, s.opts.Now().Unix(), s.opts.InvalidateOnCreatorLeave, ActorFrom(ctx))
	if err != nil {
		return err
	}
	s.changed(Change{UserID: userID, OrgID: orgID, KeyIDs: archived})
	return nil
}

// ListAudit returns audit events, newest first.
func (s *Service) ListAudit(ctx context.Context, f AuditFilter) ([]AuditEvent, error) {
	if f.Limit == 0 {
		f.Limit = 100
	}
	if f.Limit < 0 || f.Limit > 1000 {
		return nil, FieldError("limit", "must be 1–1000")
	}
	return s.store.ListAudit(ctx, f)
}
