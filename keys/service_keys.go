package keys

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
)

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
	// Quota is a generic key's own quota; nil means its type's.
	Quota *Quota
}

// CreateKey creates a key and returns it with its token, shown only now.
func (s *Service) CreateKey(ctx context.Context, in CreateKeyInput) (*Key, string, error) {
	k, err := s.prepareKey(&in, false)
	if err != nil {
		return nil, "", err
	}
	token, err := s.tokens.New(k.Type)
	if err != nil {
		return nil, "", err
	}
	k.Hash = Hash(token)
	k.Display = s.tokens.Hint(token)
	err = s.update(ctx, func(tx Tx) error {
		if err := checkOwners(ctx, tx, k); err != nil {
			return err
		}
		if err := tx.InsertKeys(ctx, []*Key{k}); err != nil {
			return err
		}
		if err := tx.InsertAudit(ctx, s.keyEvent(ctx, ActionKeyCreated, k)); err != nil {
			return err
		}
		tx.Notify(Change{Hashes: [][32]byte{k.Hash}})
		return nil
	})
	if err != nil {
		return nil, "", insertError("create key", err)
	}
	return k, token, nil
}

// insertError turns the store's conflict on a token hash into the error
// callers see; domain errors (bad owner) pass as they are, others get what
// the call was about.
func insertError(what string, err error) error {
	switch {
	case errors.Is(err, ErrConflict):
		return Errorf(EConflict, "a key with this token already exists")
	case ErrorCode(err) != "":
		return err
	}
	return fmt.Errorf("%s: %w", what, err)
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
	ev := s.audit(ctx, action)
	ev.KeyID, ev.UserID, ev.OrgID, ev.Details = k.ID, k.UserID, k.OrgID, details
	return ev
}

// archived audits keys the system archived for reason.
func (s *Service) archivedEvents(ks []Key, reason string) []AuditEvent {
	details, _ := json.Marshal(map[string]string{"reason": reason})
	out := make([]AuditEvent, len(ks))
	for i, k := range ks {
		out[i] = AuditEvent{At: s.opts.Now().Unix(), Action: ActionKeyArchived, Actor: "system", KeyID: k.ID, UserID: k.UserID, OrgID: k.OrgID, Details: details}
	}
	return out
}

// archive archives the keys sel names for reason, audits each and returns
// their ids.
func (s *Service) archive(ctx context.Context, tx Tx, sel KeySelector, reason string) ([]string, error) {
	ks, err := tx.ArchiveKeys(ctx, sel, s.opts.Now().Unix())
	if err != nil || len(ks) == 0 {
		return nil, err
	}
	if err := tx.InsertAudit(ctx, s.archivedEvents(ks, reason)...); err != nil {
		return nil, err
	}
	ids := make([]string, len(ks))
	for i, k := range ks {
		ids[i] = k.ID
	}
	return ids, nil
}

// prepareKey checks a create or import request and builds the record.
// Owners are checked later, in the transaction that inserts it.
func (s *Service) prepareKey(in *CreateKeyInput, imported bool) (*Key, error) {
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
	if in.Quota != nil && typ != TypeGeneric {
		fe.add("quota", "only generic keys carry a quota of their own; set it on the key's user or org")
	}
	checkQuota(fe, in.Quota)
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
		Metadata: meta, CreatedAt: now.Unix(), ExpiresAt: expiresAt, Imported: imported, Quota: in.Quota}
	if imported {
		switch {
		case in.Token != "" && in.TokenHash != "":
			fe.add("token", "give token or token_sha256, not both")
		case in.Token != "":
			if f, _ := s.tokens.Check(in.Token); f == FormatMalformed {
				fe.add("token", "must be 1–512 printable ASCII characters without spaces, and a token with a keygate prefix must be well-formed")
			} else if len(in.Token) < MinImportedTokenLength {
				fe.add("token", fmt.Sprintf("must be at least %d characters: a shorter token can be guessed", MinImportedTokenLength))
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
	return k, nil
}

// checkOwners checks, inside the transaction that inserts k, that its
// owners exist: the user (enabled) of a personal key, the org of an org
// key and its creator's membership.
func checkOwners(ctx context.Context, tx Tx, k *Key) error {
	switch k.Type {
	case TypePersonal:
		u, err := tx.GetUser(ctx, k.UserID)
		if errors.Is(err, ErrNotFound) {
			return FieldError("user_id", fmt.Sprintf("user %q does not exist", k.UserID))
		} else if err != nil {
			return err
		}
		if !u.Enabled {
			return FieldError("user_id", fmt.Sprintf("user %q is blocked", k.UserID))
		}
	case TypeOrg:
		if _, err := tx.GetOrg(ctx, k.OrgID); errors.Is(err, ErrNotFound) {
			return FieldError("org_id", fmt.Sprintf("org %q does not exist", k.OrgID))
		} else if err != nil {
			return err
		}
		if k.UserID != "" {
			if _, err := tx.GetMember(ctx, k.OrgID, k.UserID); errors.Is(err, ErrNotFound) {
				return FieldError("user_id", fmt.Sprintf("user %q is not a member of org %q", k.UserID, k.OrgID))
			} else if err != nil {
				return err
			}
		}
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
	// Quota sets a generic key's own quota; ClearQuota removes it.
	Quota      *Quota
	ClearQuota bool
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
	checkQuota(fe, p.Quota)
	if err := fe.err(); err != nil {
		return nil, err
	}
	var k *Key
	err := s.update(ctx, func(tx Tx) error {
		var err error
		if k, err = tx.GetKey(ctx, id); err != nil {
			return err
		}
		if k.Archived() {
			return Errorf(EConflict, "key %s is archived and cannot be changed", id)
		}
		if (p.Quota != nil || p.ClearQuota) && k.Type != TypeGeneric {
			return FieldError("quota", "only generic keys carry a quota of their own; set it on the key's user or org")
		}
		changed := map[string]any{}
		if p.Quota != nil {
			k.Quota = p.Quota
			changed["quota"] = p.Quota
		} else if p.ClearQuota {
			k.Quota = nil
			changed["quota"] = nil
		}
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
		if err := tx.UpdateKey(ctx, k); err != nil {
			return err
		}
		ev := s.audit(ctx, ActionKeyUpdated)
		ev.KeyID, ev.UserID, ev.OrgID = k.ID, k.UserID, k.OrgID
		ev.Details, _ = json.Marshal(changed)
		if err := tx.InsertAudit(ctx, ev); err != nil {
			return err
		}
		tx.Notify(Change{KeyIDs: []string{id}})
		return nil
	})
	if err != nil {
		return nil, err
	}
	return k, nil
}

// ArchiveKey archives a key; archiving an archived key changes nothing.
func (s *Service) ArchiveKey(ctx context.Context, id string) (*Key, error) {
	if err := checkKeyID(id); err != nil {
		return nil, err
	}
	var k *Key
	err := s.update(ctx, func(tx Tx) error {
		var err error
		if k, err = tx.GetKey(ctx, id); err != nil {
			return err
		}
		ks, err := tx.ArchiveKeys(ctx, KeySelector{ID: id}, s.opts.Now().Unix())
		if err != nil || len(ks) == 0 {
			return err // already archived: nothing to do
		}
		k = &ks[0]
		ev := s.audit(ctx, ActionKeyArchived)
		ev.KeyID, ev.UserID, ev.OrgID = k.ID, k.UserID, k.OrgID
		if err := tx.InsertAudit(ctx, ev); err != nil {
			return err
		}
		tx.Notify(Change{KeyIDs: []string{id}})
		return nil
	})
	if err != nil {
		return nil, err
	}
	return k, nil
}

// DeleteKey removes a key and its usage for good; its audit events stay.
func (s *Service) DeleteKey(ctx context.Context, id string) error {
	if err := checkKeyID(id); err != nil {
		return err
	}
	return s.update(ctx, func(tx Tx) error {
		k, err := tx.GetKey(ctx, id)
		if err != nil {
			return err
		}
		if err := tx.DeleteKey(ctx, id); err != nil {
			return err
		}
		if err := tx.InsertAudit(ctx, s.keyEvent(ctx, ActionKeyDeleted, k)); err != nil {
			return err
		}
		tx.Notify(Change{KeyIDs: []string{id}})
		return nil
	})
}
