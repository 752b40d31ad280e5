package keys

import (
	"context"
	"encoding/json"
	"time"
)

// MaxGracePeriod bounds the grace period of a roll (SPEC §11).
const MaxGracePeriod = 720 * time.Hour

func checkQuota(fe fieldErrors, q *Quota) {
	if q == nil {
		return
	}
	if q.Limit < 0 {
		fe.add("quota.limit", "must be ≥ 0 (0 = no quota)")
	}
	if q.Period < PeriodDay || q.Period > PeriodTotal {
		fe.add("quota.period", "must be day, month or total")
	}
}

// RollKey replaces key id with a new key (SPEC §11) and returns the new key
// with its token, shown only now. The new key inherits the old one's type,
// owner, creator, display name, metadata, expiry and (generic keys) quota;
// an imported key rolls into a keygate token. The old key keeps validating
// for grace (0 to 720h) and then expires; with grace 0 it is archived at
// once. Rolling an archived or expired key is an EConflict error.
func (s *Service) RollKey(ctx context.Context, id string, grace time.Duration) (*Key, string, error) {
	if err := checkKeyID(id); err != nil {
		return nil, "", err
	}
	if grace < 0 || grace > MaxGracePeriod {
		return nil, "", FieldError("grace_period", "must be a duration from 0s to 720h")
	}
	var next *Key
	var token string
	err := s.update(ctx, func(tx Tx) error {
		old, err := tx.GetKey(ctx, id)
		if err != nil {
			return err
		}
		now := s.opts.Now()
		switch {
		case old.Archived():
			return Errorf(EConflict, "key %s is archived and cannot be rolled", id)
		case old.Expired(now):
			return Errorf(EConflict, "key %s has expired and cannot be rolled", id)
		}
		if token, err = s.tokens.New(old.Type); err != nil {
			return err
		}
		from := old.ID
		next = &Key{ID: NewID(), Type: old.Type, UserID: old.UserID, OrgID: old.OrgID, DisplayName: old.DisplayName,
			Metadata: old.Metadata, CreatedAt: now.Unix(), ExpiresAt: old.ExpiresAt, Quota: old.Quota,
			RolledFrom: &from, Hash: Hash(token), Display: s.tokens.Hint(token)}
		to := next.ID
		old.RolledTo = &to
		if grace > 0 {
			if end := now.Add(grace).Unix(); old.ExpiresAt == nil || *old.ExpiresAt > end {
				old.ExpiresAt = &end
			}
		}
		if err := tx.InsertKeys(ctx, []*Key{next}); err != nil {
			return err
		}
		if err := tx.UpdateKey(ctx, old); err != nil {
			return err
		}
		if grace == 0 {
			if _, err := tx.ArchiveKeys(ctx, KeySelector{ID: old.ID}, now.Unix()); err != nil {
				return err
			}
		}
		ev := s.audit(ctx, ActionKeyRolled)
		ev.KeyID, ev.UserID, ev.OrgID = old.ID, old.UserID, old.OrgID
		ev.Details, _ = json.Marshal(map[string]any{"rolled_from": old.ID, "rolled_to": next.ID,
			"grace_period": grace.String(), "old_expires_at": old.ExpiresAt})
		if err := tx.InsertAudit(ctx, ev); err != nil {
			return err
		}
		tx.Notify(Change{KeyIDs: []string{old.ID}, Hashes: [][32]byte{next.Hash}})
		return nil
	})
	if err != nil {
		return nil, "", insertError("roll key", err)
	}
	return next, token, nil
}
