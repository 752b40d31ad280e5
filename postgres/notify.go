package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/keygate/keygate/keys"
)

// Channel is the LISTEN/NOTIFY channel that carries keys.Change between
// nodes.
const Channel = "keygate_changes"

// maxPayload keeps each notification under Postgres's 8000-byte limit.
const maxPayload = 7000

// message is one notification: a keys.Change (or part of one) and the node
// that made it, which already applied it to its own cache.
type message struct {
	Node     string   `json:"n"`
	KeyIDs   []string `json:"k,omitempty"`
	UserID   string   `json:"u,omitempty"`
	OrgID    string   `json:"o,omitempty"`
	Hashes   []string `json:"h,omitempty"` // hex
	Imported int64    `json:"i,omitempty"`
}

// newNodeID names this process in the notifications it sends.
func newNodeID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// payloads splits c into notifications of at most maxPayload bytes: a bulk
// import or an org deletion can name thousands of keys.
func payloads(node string, c keys.Change) []string {
	var out []string
	m := message{Node: node, UserID: c.UserID, OrgID: c.OrgID, Imported: c.Imported}
	u, _ := json.Marshal(c.UserID)
	o, _ := json.Marshal(c.OrgID)
	size := 64 + len(node) + len(u) + len(o)
	flush := func() {
		b, _ := json.Marshal(m)
		out = append(out, string(b))
		m = message{Node: node}
		size = 64 + len(node)
	}
	for _, id := range c.KeyIDs {
		enc, _ := json.Marshal(id) // as escaped in the payload
		if size+len(enc)+1 > maxPayload {
			flush()
		}
		m.KeyIDs = append(m.KeyIDs, id)
		size += len(enc) + 1
	}
	for _, h := range c.Hashes {
		if size+67 > maxPayload {
			flush()
		}
		m.Hashes = append(m.Hashes, hex.EncodeToString(h[:]))
		size += 67
	}
	flush()
	return out
}

// decode turns a notification back into a change; ok is false for one of
// node's own or one it cannot read.
func decode(node, payload string) (c keys.Change, ok bool, err error) {
	var m message
	if err := json.Unmarshal([]byte(payload), &m); err != nil {
		return c, false, fmt.Errorf("decode change notification: %w", err)
	}
	if m.Node == node {
		return c, false, nil
	}
	c = keys.Change{KeyIDs: m.KeyIDs, UserID: m.UserID, OrgID: m.OrgID, Imported: m.Imported}
	for _, h := range m.Hashes {
		var hash [32]byte
		if n, err := hex.Decode(hash[:], []byte(h)); err != nil || n != 32 {
			return c, false, fmt.Errorf("decode change notification: bad token hash")
		}
		c.Hashes = append(c.Hashes, hash)
	}
	return c, true, nil
}

// notify sends the transaction's recorded changes, inside it: Postgres
// delivers them when, and only when, the transaction commits.
func (t *tx) notify(ctx context.Context) error {
	if len(t.changes) == 0 {
		return nil
	}
	b := &pgx.Batch{}
	for _, c := range t.changes {
		for _, p := range payloads(t.node, c) {
			b.Queue(`SELECT pg_notify($1, $2)`, Channel, p)
		}
	}
	if err := t.tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("notify change: %w", err)
	}
	return nil
}

// ListenOptions are the hooks of Listen.
type ListenOptions struct {
	// Apply receives each change made by another node, in commit order.
	Apply func(keys.Change)
	// Reset is called after the channel was lost and is back: changes may
	// have been missed, so everything cached must go.
	Reset func()
	// Logger reports losing and regaining the channel; nil discards.
	Logger *slog.Logger
}

// Listener receives other nodes' changes on a connection of its own.
// Create it with Listen; it stops with Close or with the DB's Close.
type Listener struct {
	db        *DB
	o         ListenOptions
	conn      *pgx.Conn
	connected atomic.Bool
	cancel    context.CancelFunc
	done      chan struct{}
}

// Listen opens a dedicated connection, LISTENs on Channel and delivers
// other nodes' changes to o.Apply until Close. It returns once listening,
// so that no change committed afterwards is missed; a lost connection is
// re-established with backoff, and o.Reset called once it is back.
func (db *DB) Listen(ctx context.Context, o ListenOptions) (*Listener, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	l := &Listener{db: db, o: o, done: make(chan struct{})}
	conn, err := l.connect(ctx)
	if err != nil {
		return nil, err
	}
	l.conn = conn
	l.connected.Store(true)
	lctx, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	go l.run(lctx)
	db.mu.Lock()
	db.listeners = append(db.listeners, l)
	db.mu.Unlock()
	return l, nil
}

// Connected reports whether the channel is up.
func (l *Listener) Connected() bool { return l.connected.Load() }

// Close stops listening and closes the connection. The DB's Close calls
// it too; more than once is fine.
func (l *Listener) Close() error {
	l.cancel()
	<-l.done
	return nil
}

func (l *Listener) connect(ctx context.Context) (*pgx.Conn, error) {
	cfg := l.db.pool.Config().ConnConfig.Copy()
	cctx, cancel := context.WithTimeout(ctx, cfg.ConnectTimeout+time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(cctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("listen for changes: %w", err)
	}
	if _, err := conn.Exec(cctx, `LISTEN `+Channel); err != nil {
		conn.Close(context.Background())
		return nil, fmt.Errorf("listen for changes: %w", err)
	}
	return conn, nil
}

func (l *Listener) run(ctx context.Context) {
	defer close(l.done)
	defer func() {
		if l.conn != nil {
			l.conn.Close(context.Background())
		}
	}()
	backoff := 100 * time.Millisecond
	for {
		n, err := l.conn.WaitForNotification(ctx)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			c, ok, err := decode(l.db.node, n.Payload)
			if err != nil {
				l.o.Logger.Warn("ignoring a change notification", "err", err)
			} else if ok && l.o.Apply != nil {
				l.o.Apply(c)
			}
			continue
		}
		// The channel is gone: whatever was sent meanwhile is lost.
		l.connected.Store(false)
		l.o.Logger.Warn("invalidation channel lost; cached keys are served for at most cache.ttl until it is back", "err", err)
		l.conn.Close(context.Background())
		l.conn = nil
		for l.conn == nil {
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			conn, err := l.connect(ctx)
			if err != nil {
				backoff = min(2*backoff, 2*time.Second)
				continue
			}
			l.conn = conn
		}
		backoff = 100 * time.Millisecond
		l.connected.Store(true)
		if l.o.Reset != nil {
			l.o.Reset()
		}
		l.o.Logger.Info("invalidation channel back; dropped the whole key cache")
	}
}
