package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/keygate/keygate/keys"
)

// Update runs fn in one immediate transaction on the write connection.
// Writers queue on that one connection, so fn's reads are never stale.
// Tx.Notify is a no-op: one node has no one else to tell.
func (s *Store) Update(ctx context.Context, fn func(tx keys.Tx) error) error {
	return s.writeTx(ctx, func(stx *sql.Tx) error {
		t := &tx{ctx: ctx, tx: stx}
		defer t.close()
		return fn(t)
	})
}

// tx is keys.Tx on one *sql.Tx. It prepares each statement once per
// transaction, so bulk writes (imports, seeding) do not re-plan per row.
type tx struct {
	ctx   context.Context
	tx    *sql.Tx
	stmts map[string]*sql.Stmt
}

var _ keys.Tx = (*tx)(nil)

func (t *tx) stmt(ctx context.Context, q string) (*sql.Stmt, error) {
	if st, ok := t.stmts[q]; ok {
		return st, nil
	}
	st, err := t.tx.PrepareContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("prepare: %w", err)
	}
	if t.stmts == nil {
		t.stmts = map[string]*sql.Stmt{}
	}
	t.stmts[q] = st
	return st, nil
}

func (t *tx) close() {
	for _, st := range t.stmts {
		st.Close()
	}
}

// Notify does nothing: a single node's own cache is invalidated by the
// service after the commit.
func (t *tx) Notify(keys.Change) {}
