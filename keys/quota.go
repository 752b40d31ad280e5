package keys

import (
	"encoding/json"
	"fmt"
)

// QuotaPeriod is the calendar period after which a quota refills.
// The zero value is not a valid period.
type QuotaPeriod uint8

// Quota periods (SPEC §12): calendar days and months in UTC, or the whole
// life of the owner (never refills).
const (
	PeriodDay QuotaPeriod = iota + 1
	PeriodMonth
	PeriodTotal
)

func (p QuotaPeriod) String() string {
	switch p {
	case PeriodDay:
		return "day"
	case PeriodMonth:
		return "month"
	case PeriodTotal:
		return "total"
	}
	return "unknown"
}

// ParseQuotaPeriod parses "day", "month" or "total".
func ParseQuotaPeriod(s string) (QuotaPeriod, error) {
	switch s {
	case "day":
		return PeriodDay, nil
	case "month":
		return PeriodMonth, nil
	case "total":
		return PeriodTotal, nil
	}
	return 0, fmt.Errorf("unknown quota period %q (want day, month or total)", s)
}

// MarshalText encodes a QuotaPeriod as its name.
func (p QuotaPeriod) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText decodes a QuotaPeriod from its name.
func (p *QuotaPeriod) UnmarshalText(b []byte) error {
	v, err := ParseQuotaPeriod(string(b))
	if err != nil {
		return err
	}
	*p = v
	return nil
}

// Quota is a request allowance per period: an owner may use Limit units per
// Period. Limit 0 means no quota.
type Quota struct {
	Limit  int64       `json:"limit"`
	Period QuotaPeriod `json:"period"`
}

// None reports whether q allows everything.
func (q Quota) None() bool { return q.Limit <= 0 || q.Period == 0 }

type quotaJSON struct {
	Limit  *int64 `json:"limit"`
	Period string `json:"period"`
}

// UnmarshalJSON reads {"limit": N, "period": "day"|"month"|"total"}; the
// period defaults to month.
func (q *Quota) UnmarshalJSON(b []byte) error {
	var v quotaJSON
	dec := json.NewDecoder(bytesReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		return err
	}
	if v.Limit == nil {
		return fmt.Errorf("limit is required")
	}
	if *v.Limit < 0 {
		return fmt.Errorf("limit must be ≥ 0")
	}
	p := PeriodMonth
	if v.Period != "" {
		var err error
		if p, err = ParseQuotaPeriod(v.Period); err != nil {
			return err
		}
	}
	q.Limit, q.Period = *v.Limit, p
	return nil
}

// QuotaCount is use of one owner's quota in one period, identified by the
// period and its start (unix seconds; 0 for PeriodTotal).
type QuotaCount struct {
	Owner  string
	Period QuotaPeriod
	Start  int64
	Used   int64
}

// OwnerQuota returns the owner's own quota (the user's for personal keys,
// the org's for org keys, the key's own for generic keys), nil when it has none.
func (id *Identity) OwnerQuota() *Quota {
	switch id.Key.Type {
	case TypePersonal:
		if id.User != nil {
			return id.User.Quota
		}
	case TypeOrg:
		if id.Org != nil {
			return id.Org.Quota
		}
	case TypeGeneric:
		return id.Key.Quota
	}
	return nil
}

// UserOwner, OrgOwner and KeyOwner name an owner as Identity.Owner does.
func UserOwner(id string) string { return "u:" + id }

// OrgOwner names an org as a rate-limit and quota owner.
func OrgOwner(id string) string { return "o:" + id }

// KeyOwner names a generic key as a rate-limit and quota owner.
func KeyOwner(id string) string { return "k:" + id }
