package keys

import (
	"context"
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// UpsertUser creates or updates a user. A new user is enabled with {}
// metadata; fields left nil in in keep their stored value.
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
	checkQuota(fe, in.Quota)
	if err := fe.err(); err != nil {
		return nil, err
	}
	err := s.update(ctx, func(tx Tx) error {
		now := s.opts.Now().Unix()
		u, err := tx.GetUser(ctx, in.ID)
		if isNotFound(err) {
			u = &User{ID: in.ID, Enabled: true, Metadata: json.RawMessage("{}"), CreatedAt: now}
		} else if err != nil {
			return err
		}
		u.Email = in.Email
		if in.Enabled != nil {
			u.Enabled = *in.Enabled
		}
		if in.Metadata != nil {
			u.Metadata = json.RawMessage(in.Metadata)
		}
		override(&u.RateLimit, in.RateLimit, in.ClearRateLimit)
		override(&u.Quota, in.Quota, in.ClearQuota)
		u.UpdatedAt = now
		if err := tx.PutUser(ctx, u); err != nil {
			return err
		}
		ev := s.audit(ctx, ActionUserUpserted)
		ev.UserID = u.ID
		if err := tx.InsertAudit(ctx, ev); err != nil {
			return err
		}
		tx.Notify(Change{UserID: in.ID})
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s.store.GetUser(ctx, in.ID)
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
	err := s.update(ctx, func(tx Tx) error {
		u, err := tx.GetUser(ctx, id)
		if err != nil {
			return err
		}
		u.Enabled, u.UpdatedAt = enabled, s.opts.Now().Unix()
		if err := tx.PutUser(ctx, u); err != nil {
			return err
		}
		ev := s.audit(ctx, ActionUserBlocked)
		if enabled {
			ev.Action = ActionUserUnblocked
		}
		ev.UserID = id
		if err := tx.InsertAudit(ctx, ev); err != nil {
			return err
		}
		tx.Notify(Change{UserID: id})
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s.store.GetUser(ctx, id)
}

// DeleteUser deletes a user: their personal keys are archived for good,
// their memberships removed (which counts as leaving each org, so with
// InvalidateOnCreatorLeave the org keys they created are archived), and
// they are detached from every org key they created, so that their id
// no longer travels upstream with those keys (and cannot be inherited by
// a new user who gets the same id).
func (s *Service) DeleteUser(ctx context.Context, id string) error {
	if err := checkOwnerID("user_id", id); err != nil {
		return err
	}
	return s.update(ctx, func(tx Tx) error {
		if _, err := tx.GetUser(ctx, id); err != nil {
			return err
		}
		changed, err := s.archive(ctx, tx, KeySelector{Type: TypePersonal, UserID: id}, "owner deleted")
		if err != nil {
			return err
		}
		ms, err := tx.DeleteMemberships(ctx, "", id)
		if err != nil {
			return err
		}
		for _, m := range ms {
			ids, err := s.leave(ctx, tx, m.OrgID, id)
			if err != nil {
				return err
			}
			changed = append(changed, ids...)
		}
		detached, err := tx.DetachCreator(ctx, id)
		if err != nil {
			return err
		}
		if len(detached) > 0 {
			details, _ := json.Marshal(map[string]any{"user_id": nil, "reason": "creator deleted"})
			events := make([]AuditEvent, len(detached))
			for i, kid := range detached {
				events[i] = AuditEvent{At: s.opts.Now().Unix(), Action: ActionKeyUpdated, Actor: "system", KeyID: kid, UserID: id, Details: details}
			}
			if err := tx.InsertAudit(ctx, events...); err != nil {
				return err
			}
			changed = append(changed, detached...)
		}
		if err := tx.DeleteUser(ctx, id); err != nil {
			return err
		}
		ev := s.audit(ctx, ActionUserDeleted)
		ev.UserID = id
		if err := tx.InsertAudit(ctx, ev); err != nil {
			return err
		}
		tx.Notify(Change{UserID: id, KeyIDs: changed})
		return nil
	})
}

// leave audits userID's leaving orgID (the membership is already gone) and,
// with InvalidateOnCreatorLeave, archives the org keys they created.
func (s *Service) leave(ctx context.Context, tx Tx, orgID, userID string) ([]string, error) {
	var ids []string
	if s.opts.InvalidateOnCreatorLeave {
		var err error
		if ids, err = s.archive(ctx, tx, KeySelector{Type: TypeOrg, OrgID: orgID, UserID: userID}, "creator left the org"); err != nil {
			return nil, err
		}
	}
	ev := s.audit(ctx, ActionOrgMemberRemove)
	ev.UserID, ev.OrgID = userID, orgID
	return ids, tx.InsertAudit(ctx, ev)
}

// UpsertOrg creates or updates an org, with the merge rules of UpsertUser.
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
	checkQuota(fe, in.Quota)
	if err := fe.err(); err != nil {
		return nil, err
	}
	err := s.update(ctx, func(tx Tx) error {
		now := s.opts.Now().Unix()
		o, err := tx.GetOrg(ctx, in.ID)
		if isNotFound(err) {
			o = &Org{ID: in.ID, Metadata: json.RawMessage("{}"), CreatedAt: now}
		} else if err != nil {
			return err
		}
		o.Name = in.Name
		if in.Metadata != nil {
			o.Metadata = json.RawMessage(in.Metadata)
		}
		override(&o.RateLimit, in.RateLimit, in.ClearRateLimit)
		override(&o.Quota, in.Quota, in.ClearQuota)
		o.UpdatedAt = now
		if err := tx.PutOrg(ctx, o); err != nil {
			return err
		}
		ev := s.audit(ctx, ActionOrgUpserted)
		ev.OrgID = o.ID
		if err := tx.InsertAudit(ctx, ev); err != nil {
			return err
		}
		tx.Notify(Change{OrgID: in.ID})
		return nil
	})
	if err != nil {
		return nil, err
	}
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

// DeleteOrg deletes an org and its memberships; its keys are archived for
// good.
func (s *Service) DeleteOrg(ctx context.Context, id string) error {
	if err := checkOwnerID("org_id", id); err != nil {
		return err
	}
	return s.update(ctx, func(tx Tx) error {
		if err := tx.DeleteOrg(ctx, id); err != nil {
			return err
		}
		archived, err := s.archive(ctx, tx, KeySelector{Type: TypeOrg, OrgID: id}, "org deleted")
		if err != nil {
			return err
		}
		ev := s.audit(ctx, ActionOrgDeleted)
		ev.OrgID = id
		if err := tx.InsertAudit(ctx, ev); err != nil {
			return err
		}
		tx.Notify(Change{OrgID: id, KeyIDs: archived})
		return nil
	})
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
	var m *Member
	err := s.update(ctx, func(tx Tx) error {
		if _, err := tx.GetOrg(ctx, orgID); isNotFound(err) {
			return Errorf(ENotFound, "org %q not found", orgID)
		} else if err != nil {
			return err
		}
		if _, err := tx.GetUser(ctx, userID); isNotFound(err) {
			return Errorf(ENotFound, "user %q not found", userID)
		} else if err != nil {
			return err
		}
		var err error
		if m, err = tx.PutMember(ctx, Member{OrgID: orgID, UserID: userID, Role: role, CreatedAt: s.opts.Now().Unix()}); err != nil {
			return err
		}
		details, _ := json.Marshal(map[string]string{"role": role})
		ev := s.audit(ctx, ActionOrgMemberAdded)
		ev.UserID, ev.OrgID, ev.Details = userID, orgID, details
		if err := tx.InsertAudit(ctx, ev); err != nil {
			return err
		}
		// The creator's role travels with org keys' identities.
		tx.Notify(Change{UserID: userID, OrgID: orgID})
		return nil
	})
	if err != nil {
		return nil, err
	}
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
	return s.update(ctx, func(tx Tx) error {
		ms, err := tx.DeleteMemberships(ctx, orgID, userID)
		if err != nil {
			return err
		}
		if len(ms) == 0 {
			return fmt.Errorf("member %q of org %q: %w", userID, orgID, ErrNotFound)
		}
		archived, err := s.leave(ctx, tx, orgID, userID)
		if err != nil {
			return err
		}
		tx.Notify(Change{UserID: userID, OrgID: orgID, KeyIDs: archived})
		return nil
	})
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

// override applies an upsert to an owner's optional setting (rate limit,
// quota): a new value replaces it, clear removes it, neither keeps it.
func override[T any](cur **T, set *T, clear bool) {
	if set != nil {
		*cur = set
	} else if clear {
		*cur = nil
	}
}
