package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/keygate/keygate/bench/loadgen"
	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/postgres"
)

// defaultPostgres is the server -million-store postgres creates its
// database on (and drops it from afterwards, unless -keep).
const defaultPostgres = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// createBenchDatabase creates an empty database on the server at serverDSN
// and returns its DSN and a function that drops it.
func createBenchDatabase(ctx context.Context, serverDSN string) (string, func(), error) {
	conn, err := pgx.Connect(ctx, serverDSN)
	if err != nil {
		return "", nil, fmt.Errorf("-postgres: %w", err)
	}
	defer conn.Close(ctx)
	var b [6]byte
	rand.Read(b[:])
	name := "keygate_bench_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, `CREATE DATABASE `+name); err != nil {
		return "", nil, fmt.Errorf("create bench database: %w", err)
	}
	drop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if conn, err := pgx.Connect(ctx, serverDSN); err == nil {
			conn.Exec(ctx, `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`)
			conn.Close(ctx)
		}
	}
	u, err := url.Parse(serverDSN)
	if err != nil {
		drop()
		return "", nil, fmt.Errorf("-postgres must be a URL: %w", err)
	}
	u.Path = "/" + name
	return u.String(), drop, nil
}

// seedPostgres is seed for the Postgres store: the schema comes from
// postgres.Open (its migrations), the rows from COPY, the bulk path
// Postgres offers, as seed uses SQLite's bulk transactions.
func seedPostgres(ctx context.Context, dsn string, n int, tokensPath string) (int64, error) {
	st, err := postgres.Open(ctx, postgres.Options{DSN: dsn})
	if err != nil {
		return 0, err
	}
	st.Close()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return 0, err
	}
	defer conn.Close(ctx)
	tokens, err := keys.NewTokens("kg")
	if err != nil {
		return 0, err
	}
	f, err := os.Create(tokensPath)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 1<<20)
	now := time.Now().Unix()
	type seeded struct {
		id, uid, hint string
		hash          [32]byte
	}
	all := make([]seeded, n)
	for i := range all {
		tok, err := tokens.New(keys.TypePersonal)
		if err != nil {
			return 0, err
		}
		w.WriteString(tok)
		w.WriteByte('\n')
		all[i] = seeded{id: keys.NewID(), uid: fmt.Sprintf("bench-m-%07d", i), hint: tokens.Hint(tok), hash: keys.Hash(tok)}
	}
	// Rows are made as COPY asks for them: a million []any at once would
	// take more memory than the gateway under test.
	rows := func(row func(s *seeded) []any) pgx.CopyFromSource {
		i := 0
		return pgx.CopyFromFunc(func() ([]any, error) {
			if i == len(all) {
				return nil, nil
			}
			i++
			return row(&all[i-1]), nil
		})
	}
	users := rows(func(s *seeded) []any { return []any{s.uid, s.uid + "@example.com", true, "{}", now, now} })
	ks := rows(func(s *seeded) []any {
		return []any{s.id, s.hash[:], int16(keys.TypePersonal), s.uid, "", "", s.hint, "{}", false, now}
	})
	events := rows(func(s *seeded) []any { return []any{now, keys.ActionKeyCreated, "system", s.id, s.uid, "", "{}"} })
	if err := w.Flush(); err != nil {
		return 0, err
	}
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"users"}, []string{"id", "email", "enabled", "metadata", "created_at", "updated_at"}, users); err != nil {
			return fmt.Errorf("copy users: %w", err)
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"api_keys"}, []string{"id", "hash", "type", "user_id", "org_id", "display_name", "display", "metadata", "imported", "created_at"}, ks); err != nil {
			return fmt.Errorf("copy keys: %w", err)
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"audit_events"}, []string{"at", "action", "actor", "key_id", "user_id", "org_id", "details"}, events); err != nil {
			return fmt.Errorf("copy audit events: %w", err)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	if _, err := conn.Exec(ctx, `VACUUM ANALYZE`); err != nil {
		return 0, err
	}
	var size int64
	err = conn.QueryRow(ctx, `SELECT pg_database_size(current_database())`).Scan(&size)
	return size, err
}

// lookupLatencyPostgres is lookupLatency for the Postgres store: LookupHash
// in process, one at a time, over loopback.
func lookupLatencyPostgres(ctx context.Context, dsn string, tokens []string) (*storeLatency, error) {
	st, err := postgres.Open(ctx, postgres.Options{DSN: dsn})
	if err != nil {
		return nil, err
	}
	defer st.Close()
	var h loadgen.Histogram
	for _, tok := range tokens {
		t0 := time.Now()
		if _, err := st.LookupHash(ctx, keys.Hash(tok)); err != nil {
			return nil, fmt.Errorf("look up a seeded key: %w", err)
		}
		h.Record(time.Since(t0))
	}
	return &storeLatency{Histogram: &h, P50: h.Quantile(0.5), P99: h.Quantile(0.99)}, nil
}
