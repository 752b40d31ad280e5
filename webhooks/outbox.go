// Package webhooks sends keygate's events to HTTP endpoints (SPEC §13):
// an outbox written in the transaction of each change (Outbox), senders
// that deliver it at least once with Standard Webhooks signatures and
// growing retry delays (Sender), and a scheduler of the expiry events
// (Expiry).
package webhooks

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/keygate/keygate/keys"
)

// Event types keygate adds to the audit actions.
const (
	EventKeyExpiring    = "api_key.expiring"
	EventKeyExpired     = "api_key.expired"
	EventQuotaExhausted = "quota.exhausted"
)

// Endpoint is one receiver of events.
type Endpoint struct {
	URL    string
	Secret []byte   // the decoded signing key (whsec_ stripped)
	Events []string // event types sent; empty means all
}

// wants reports whether e receives events of type typ.
func (e Endpoint) wants(typ string) bool {
	return len(e.Events) == 0 || slices.Contains(e.Events, typ)
}

// Payload is the body of every delivery (Standard Webhooks).
type Payload struct {
	Type      string          `json:"type"`
	Timestamp time.Time       `json:"timestamp"`
	Data      json.RawMessage `json:"data"`
}

// Outbox turns events into pending deliveries, one per event and endpoint
// that wants it, written through the caller's transaction: an event exists
// if and only if the change that caused it commits. It implements
// keys.EventSink. Safe for concurrent use.
type Outbox struct {
	endpoints []Endpoint
	now       func() time.Time
	// wake, when set, is called (without blocking) after events were
	// enqueued that may change what the expiry scheduler has to do.
	wake func()
	// kick, when set, is called (without blocking) after deliveries were
	// written: a sender looks for due rows then rather than at its next
	// poll. The rows commit after; on SQLite the sender's claim queues
	// behind the commit on the one write connection, so it finds them.
	kick func()
}

// OnEnqueue sets a function called after deliveries were written (such as
// Sender.Kick). Call it before the outbox is in use.
func (o *Outbox) OnEnqueue(f func()) { o.kick = f }

// NewOutbox returns an Outbox for endpoints; now nil means time.Now.
func NewOutbox(endpoints []Endpoint, now func() time.Time) *Outbox {
	if now == nil {
		now = time.Now
	}
	return &Outbox{endpoints: endpoints, now: now}
}

var _ keys.EventSink = (*Outbox)(nil)

// Enqueue writes a delivery for every audit event (SPEC §4.2 actions, and
// any action added later) to every endpoint that wants its type. The data
// is the record the event is about, as it is inside the transaction (after
// the change); a deleted record is named by its ids.
func (o *Outbox) Enqueue(ctx context.Context, tx keys.Tx, events []keys.AuditEvent) error {
	if len(o.endpoints) == 0 {
		return nil
	}
	for _, ev := range events {
		if !o.anyWants(ev.Action) {
			continue
		}
		data, err := eventData(ctx, tx, ev)
		if err != nil {
			return err
		}
		if err := o.publish(ctx, tx, ev.Action, time.Unix(ev.At, 0), data); err != nil {
			return err
		}
		if strings.HasPrefix(ev.Action, "api_key.") && o.wake != nil {
			o.wake() // a new or changed expires_at
		}
	}
	return nil
}

// Publish writes deliveries of an event of type typ about data (marshalled
// to JSON; never put a token in it) through tx, so that the event commits
// with tx. For events that are not audit actions, such as quota.exhausted.
func (o *Outbox) Publish(ctx context.Context, tx keys.Tx, typ string, data any) error {
	if !o.anyWants(typ) {
		return nil
	}
	b, err := json.Marshal(data)
	if err != nil {
		return fmt.Errorf("webhook %s: %w", typ, err)
	}
	return o.publish(ctx, tx, typ, o.now(), b)
}

// Updater runs a transaction: keys.Store or keys.Service.
type Updater interface {
	Update(ctx context.Context, fn func(tx keys.Tx) error) error
}

// Send publishes one event in a transaction of its own on store.
func (o *Outbox) Send(ctx context.Context, store Updater, typ string, data any) error {
	if !o.anyWants(typ) {
		return nil
	}
	return store.Update(ctx, func(tx keys.Tx) error { return o.Publish(ctx, tx, typ, data) })
}

func (o *Outbox) anyWants(typ string) bool {
	for _, e := range o.endpoints {
		if e.wants(typ) {
			return true
		}
	}
	return false
}

func (o *Outbox) publish(ctx context.Context, tx keys.Tx, typ string, at time.Time, data json.RawMessage) error {
	body, err := json.Marshal(Payload{Type: typ, Timestamp: at.UTC(), Data: data})
	if err != nil {
		return fmt.Errorf("webhook %s: %w", typ, err)
	}
	now := o.now()
	var ds []keys.Delivery
	for _, e := range o.endpoints {
		if !e.wants(typ) {
			continue
		}
		ds = append(ds, keys.Delivery{
			ID: NewID(), Endpoint: e.URL, Type: typ, Payload: body,
			CreatedAt: now.Unix(), Status: keys.DeliveryPending, NextAt: now.UnixMilli(),
		})
	}
	if err := tx.InsertDeliveries(ctx, ds); err != nil {
		return err
	}
	if o.kick != nil {
		o.kick()
	}
	return nil
}

var idEncoding = base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)

// NewID returns a new webhook-id: "msg_" and 26 random characters.
func NewID() string {
	var b [16]byte
	rand.Read(b[:])
	return "msg_" + idEncoding.EncodeToString(b[:])
}

// eventData is the data of an audit event: the key, user, org or
// membership it is about, read inside the transaction.
func eventData(ctx context.Context, tx keys.Tx, ev keys.AuditEvent) (json.RawMessage, error) {
	var v any
	var err error
	switch {
	case strings.HasPrefix(ev.Action, "org.member"):
		v, err = tx.GetMember(ctx, ev.OrgID, ev.UserID)
		if isNotFound(err) {
			v, err = map[string]string{"org_id": ev.OrgID, "user_id": ev.UserID}, nil
		}
	case ev.KeyID != "":
		v, err = tx.GetKey(ctx, ev.KeyID)
		if isNotFound(err) {
			v, err = map[string]string{"id": ev.KeyID, "user_id": ev.UserID, "org_id": ev.OrgID}, nil
		}
	case strings.HasPrefix(ev.Action, "user.") && ev.UserID != "":
		v, err = tx.GetUser(ctx, ev.UserID)
		if isNotFound(err) {
			v, err = map[string]string{"user_id": ev.UserID}, nil
		}
	case ev.OrgID != "":
		v, err = tx.GetOrg(ctx, ev.OrgID)
		if isNotFound(err) {
			v, err = map[string]string{"org_id": ev.OrgID}, nil
		}
	case ev.UserID != "":
		v, err = tx.GetUser(ctx, ev.UserID)
		if isNotFound(err) {
			v, err = map[string]string{"user_id": ev.UserID}, nil
		}
	default:
		// An event about no one record, such as a batch import: its
		// audit details ({"count", "skipped", "ids"} for an import).
		if len(ev.Details) == 0 {
			return json.RawMessage(`{}`), nil
		}
		return ev.Details, nil
	}
	if err != nil {
		return nil, fmt.Errorf("webhook %s: %w", ev.Action, err)
	}
	return json.Marshal(v)
}

func isNotFound(err error) bool { return errors.Is(err, keys.ErrNotFound) }
