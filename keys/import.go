package keys

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// ImportOptions tune Import. The zero value writes, and fails on a token
// that is already stored.
type ImportOptions struct {
	// DryRun runs every check, the store's included, and writes nothing.
	DryRun bool
	// SkipExisting skips entries whose token is already stored instead of
	// failing the whole import on them.
	SkipExisting bool
}

// ImportResult is what Import did (or, with DryRun, would do).
type ImportResult struct {
	Keys    []*Key // the keys imported, in input order; nil on a dry run
	Count   int    // how many keys were (or would be) imported
	Skipped []int  // indexes of entries skipped because their token exists
}

// Import imports existing tokens (or their hashes) from another system, all
// or nothing: when any entry is bad, the returned *Error names every bad
// entry's fields as keys[i].field. Tokens already stored are a conflict
// (EConflict, naming each) unless opts.SkipExisting. The whole batch is one
// audit event, api_key.imported, with the count and the ids, so that an
// import of a million keys does not write a million events.
func (s *Service) Import(ctx context.Context, ins []CreateKeyInput, opts ImportOptions) (*ImportResult, error) {
	ks := make([]*Key, 0, len(ins))
	idx := make([]int, 0, len(ins)) // ks[j] is entry idx[j]
	res := &ImportResult{Skipped: []int{}}
	bad := fieldErrors{}
	conflicts := fieldErrors{}
	seen := make(map[[32]byte]bool, len(ins))
	for i := range ins {
		prefix := "keys[" + strconv.Itoa(i) + "]."
		k, err := s.prepareKey(ctx, &ins[i], true)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Code != EInvalid {
				return nil, err // the store failed: nothing to report per entry
			}
			for f, problems := range e.Fields {
				bad[prefix+f] = append(bad[prefix+f], problems...)
			}
			continue
		}
		if seen[k.Hash] {
			bad.add(prefix+"token", "duplicate of an earlier key in this request")
			continue
		}
		seen[k.Hash] = true
		ks = append(ks, k)
		idx = append(idx, i)
	}
	if len(bad) > 0 {
		// Stored tokens are listed too, so that one answer names every bad entry.
		if err := s.markExisting(ctx, ks, idx, nil, conflicts); err != nil {
			return nil, err
		}
		for f, p := range conflicts {
			bad[f] = append(bad[f], p...)
		}
		return nil, &Error{Code: EInvalid, Message: fmt.Sprintf("invalid import: %d bad field(s); nothing was imported", len(bad)), Fields: bad}
	}
	if !opts.DryRun {
		// Optimistically: a token already stored is rare, and looking each
		// one up first would cost a random index read per key.
		err := s.insertImported(ctx, ks, len(res.Skipped))
		if err == nil {
			res.Keys, res.Count = ks, len(ks)
			return res, nil
		}
		if ErrorCode(err) != EConflict {
			return nil, err
		}
	}
	var skip map[int]bool
	if opts.SkipExisting {
		skip = map[int]bool{}
	}
	if err := s.markExisting(ctx, ks, idx, skip, conflicts); err != nil {
		return nil, err
	}
	if len(conflicts) > 0 {
		return nil, &Error{Code: EConflict, Message: fmt.Sprintf("%d key(s) with these tokens already exist; nothing was imported (on_conflict: skip skips them)", len(conflicts)), Fields: conflicts}
	}
	kept := ks[:0]
	for j, k := range ks {
		if skip[idx[j]] {
			res.Skipped = append(res.Skipped, idx[j])
		} else {
			kept = append(kept, k)
		}
	}
	ks = kept
	res.Count = len(ks)
	if opts.DryRun || len(ks) == 0 {
		return res, nil
	}
	if err := s.insertImported(ctx, ks, len(res.Skipped)); err != nil {
		return nil, err
	}
	res.Keys = ks
	return res, nil
}

// markExisting looks up each key's token: a stored one goes into skip (its
// input index) when skip is non-nil, else into conflicts.
func (s *Service) markExisting(ctx context.Context, ks []*Key, idx []int, skip map[int]bool, conflicts fieldErrors) error {
	for j, k := range ks {
		switch _, err := s.store.LookupHash(ctx, k.Hash); {
		case errors.Is(err, ErrNotFound):
		case err != nil:
			return fmt.Errorf("import keys: look up token: %w", err)
		case skip != nil:
			skip[idx[j]] = true
		default:
			conflicts.add("keys["+strconv.Itoa(idx[j])+"].token", "a key with this token already exists")
		}
	}
	return nil
}

// insertImported stores ks with one audit event for the batch.
func (s *Service) insertImported(ctx context.Context, ks []*Key, skipped int) error {
	ids := make([]string, len(ks))
	hashes := make([][32]byte, len(ks))
	for i, k := range ks {
		ids[i], hashes[i] = k.ID, k.Hash
	}
	details, err := json.Marshal(map[string]any{"count": len(ks), "skipped": skipped, "ids": ids})
	if err != nil {
		return fmt.Errorf("import keys: %w", err)
	}
	ev := AuditEvent{At: s.opts.Now().Unix(), Action: ActionKeyImported, Actor: ActorFrom(ctx), Details: details}
	if err := s.store.InsertKeys(ctx, ks, []AuditEvent{ev}); err != nil {
		return fmt.Errorf("import keys: %w", err)
	}
	s.imported.Add(int64(len(ks)))
	s.changed(Change{Hashes: hashes})
	return nil
}
