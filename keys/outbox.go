package keys

import (
	"context"
	"encoding/json"
	"time"
)

// Delivery statuses (SPEC §13).
const (
	DeliveryPending   = "pending"
	DeliveryDelivered = "delivered"
	DeliveryFailed    = "failed"
)

// Delivery is one webhook event on its way to one endpoint: a row of the
// transactional outbox, written in the transaction of the change that
// caused it (see EventSink) and sent by package webhooks.
type Delivery struct {
	Seq       int64           `json:"-"`        // insertion order, for ordering per endpoint
	ID        string          `json:"id"`       // the webhook-id header, the same on every attempt
	Endpoint  string          `json:"endpoint"` // the endpoint's URL
	Type      string          `json:"type"`     // event type, such as "api_key.created"
	Payload   json.RawMessage `json:"payload"`  // the body sent, {"type","timestamp","data"}
	CreatedAt int64           `json:"created_at"`
	Status    string          `json:"status"` // DeliveryPending, DeliveryDelivered or DeliveryFailed
	Attempts  int             `json:"attempts"`
	// NextAt is when the next attempt is due, in unix milliseconds
	// (retries in tests are shorter than a second).
	NextAt      int64  `json:"next_attempt_at_ms"`
	LastError   string `json:"last_error"`
	DeliveredAt *int64 `json:"delivered_at"`
}

// DeliveryFilter selects deliveries for ListDeliveries, newest first.
type DeliveryFilter struct {
	Status   string // "" for all
	Endpoint string // "" for all
	Limit    int    // ≤ 0 means 100
	Cursor   string // from the previous page
}

// DeliveryStats summarises the outbox for metrics.
type DeliveryStats struct {
	Count         map[string]int64 // by status, every status present
	OldestPending int64            // CreatedAt of the oldest pending delivery, 0 when none
}

// EventSink receives the audit events of a transaction as they are
// written, inside it, so that it can write webhook deliveries that commit
// (or roll back) with the change: package webhooks' Outbox.
type EventSink interface {
	Enqueue(ctx context.Context, tx Tx, events []AuditEvent) error
}

// DeliveryStore is the outbox side of a Store: the rows Tx.InsertDeliveries
// wrote, claimed by one sender at a time (on every node of a cluster).
type DeliveryStore interface {
	// ClaimDeliveries leases up to limit pending deliveries due at now
	// (NextAt ≤ now) whose lease has run out, oldest first, until now+lease:
	// of concurrent claims on any node, each delivery goes to one. A sender
	// that dies leaves its lease to run out, and the delivery to another.
	ClaimDeliveries(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]Delivery, error)
	// FinishDelivery stores the outcome of an attempt on d (Status,
	// Attempts, NextAt, LastError, DeliveredAt) and releases its lease.
	FinishDelivery(ctx context.Context, d *Delivery) error
	// RetryDelivery makes a delivery pending again, due at now, keeping its
	// id and attempts; ErrNotFound when it does not exist.
	RetryDelivery(ctx context.Context, id string, now time.Time) (*Delivery, error)
	// ListDeliveries returns one page of deliveries, newest first, and the
	// next cursor ("" on the last page). An unknown cursor is an *Error
	// EInvalid naming field "cursor".
	ListDeliveries(ctx context.Context, f DeliveryFilter) ([]Delivery, string, error)
	// DeliveryStats counts deliveries by status.
	DeliveryStats(ctx context.Context) (DeliveryStats, error)
	// NextExpiry returns the smallest expires_at > after of a key not
	// archived, found on the expires_at index; ok is false when none.
	NextExpiry(ctx context.Context, after int64) (at int64, ok bool, err error)
}

// OutboxTx is the outbox side of a Tx.
type OutboxTx interface {
	// InsertDeliveries writes new pending deliveries. ErrConflict when an
	// id exists.
	InsertDeliveries(ctx context.Context, ds []Delivery) error
	// KeysExpiring returns the keys not archived with after < expires_at ≤
	// upTo, by expires_at then id, read on the expires_at index.
	KeysExpiring(ctx context.Context, after, upTo int64) ([]Key, error)
	// Mark returns the value stored under name (0 when none), and SetMark
	// stores it: durable progress of the expiry scheduler.
	Mark(ctx context.Context, name string) (int64, error)
	SetMark(ctx context.Context, name string, v int64) error
}
