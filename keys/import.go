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
	seen := make(map[[32]byte]bool, len(ins))
	for i := range ins {
		prefix := importPrefix(i)
		k, err := s.prepareKey(&ins[i], true)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Code != EInvalid {
				return nil, err
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
	// Optimistically: a token already stored is rare, and looking each one
	// up first would cost a random index read per key.
	switch err := s.importTx(ctx, ks, idx, bad, !opts.DryRun, 0); {
	case err == nil:
		res.Keys, res.Count = ks, len(ks)
		return res, nil
	case errors.Is(err, errNoWrite), errors.Is(err, ErrConflict):
	default:
		return nil, fmt.Errorf("import keys: %w", err)
	}
	conflicts := fieldErrors{}
	if len(bad) > 0 {
		// Stored tokens are listed too, so that one answer names every bad entry.
		if err := s.markExisting(ctx, ks, idx, nil, conflicts); err != nil {
			return nil, err
		}
		for f, p := range conflicts {
			bad[f] = append(bad[f], p...)
		}
		return nil, invalidImport(bad)
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
	kept, keptIdx := ks[:0], idx[:0]
	for j, k := range ks {
		if skip[idx[j]] {
			res.Skipped = append(res.Skipped, idx[j])
		} else {
			kept, keptIdx = append(kept, k), append(keptIdx, idx[j])
		}
	}
	ks, idx = kept, keptIdx
	res.Count = len(ks)
	if opts.DryRun || len(ks) == 0 {
		return res, nil
	}
	if err := s.importTx(ctx, ks, idx, bad, true, len(res.Skipped)); err != nil {
		if errors.Is(err, errNoWrite) { // an owner changed in between
			return nil, invalidImport(bad)
		}
		return nil, insertError("import keys", err)
	}
	res.Keys = ks
	return res, nil
}

// errNoWrite rolls back an import transaction that found bad entries or
// was only a check.
var errNoWrite = errors.New("import: nothing to write")

func importPrefix(i int) string { return "keys[" + strconv.Itoa(i) + "]." }

func invalidImport(bad fieldErrors) error {
	return &Error{Code: EInvalid, Message: fmt.Sprintf("invalid import: %d bad field(s); nothing was imported", len(bad)), Fields: bad}
}

// importTx checks the owners of ks in one transaction, adding every problem
// to bad, and, when write is set and nothing is bad, inserts ks with one
// audit event for the batch. It returns errNoWrite when it wrote nothing
// on purpose, and the store's ErrConflict when a token is already stored.
func (s *Service) importTx(ctx context.Context, ks []*Key, idx []int, bad fieldErrors, write bool, skipped int) error {
	var ownerBad fieldErrors
	err := s.update(ctx, func(tx Tx) error {
		ownerBad = fieldErrors{} // fn may run again on a retried transaction
		for j, k := range ks {
			err := checkOwners(ctx, tx, k)
			var e *Error
			switch {
			case err == nil:
			case errors.As(err, &e) && e.Code == EInvalid:
				for f, p := range e.Fields {
					ownerBad[importPrefix(idx[j])+f] = append(ownerBad[importPrefix(idx[j])+f], p...)
				}
			default:
				return err
			}
		}
		if len(ownerBad) > 0 || len(bad) > 0 || !write || len(ks) == 0 {
			return errNoWrite
		}
		ids := make([]string, len(ks))
		hashes := make([][32]byte, len(ks))
		for i, k := range ks {
			ids[i], hashes[i] = k.ID, k.Hash
		}
		details, err := json.Marshal(map[string]any{"count": len(ks), "skipped": skipped, "ids": ids})
		if err != nil {
			return err
		}
		if err := tx.InsertKeys(ctx, ks); err != nil {
			return err
		}
		ev := s.audit(ctx, ActionKeyImported)
		ev.Details = details
		if err := tx.InsertAudit(ctx, ev); err != nil {
			return err
		}
		tx.Notify(Change{Hashes: hashes, Imported: int64(len(ks))})
		return nil
	})
	for f, p := range ownerBad {
		bad[f] = append(bad[f], p...)
	}
	return err
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
