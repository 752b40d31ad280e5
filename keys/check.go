package keys

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"
)

// Input checks shared by the Service methods. Each returns a problem
// message ("" when fine) or an *Error naming the field.

func prefixFields(err error, prefix string) error {
	var e *Error
	if !errors.As(err, &e) || len(e.Fields) == 0 {
		return err
	}
	f := make(map[string][]string, len(e.Fields))
	for k, v := range e.Fields {
		f[prefix+k] = v
	}
	return &Error{Code: e.Code, Message: e.Message, Fields: f}
}

// hasControl reports whether s holds a control character: values that
// travel upstream in headers (email, org name) must not smuggle CR or LF.
func hasControl(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return true
		}
	}
	return false
}

func checkDisplayName(s string) string {
	if !utf8.ValidString(s) {
		return "must be valid UTF-8"
	}
	if utf8.RuneCountInString(s) > 200 {
		return "must be at most 200 characters"
	}
	return ""
}

// normalizeMetadata checks that b is a JSON object of at most 4 KiB and
// returns it compacted; nil becomes {}.
func normalizeMetadata(b []byte) (json.RawMessage, string) {
	if b == nil {
		return json.RawMessage("{}"), ""
	}
	if len(b) > MaxMetadataBytes*4 {
		return nil, fmt.Sprintf("must be at most %d bytes", MaxMetadataBytes)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return nil, "must be a JSON object"
	}
	if buf.Len() == 0 || buf.Bytes()[0] != '{' {
		return nil, "must be a JSON object"
	}
	if buf.Len() > MaxMetadataBytes {
		return nil, fmt.Sprintf("must be at most %d bytes as compact JSON (got %d)", MaxMetadataBytes, buf.Len())
	}
	if d := jsonDepth(buf.Bytes()); d > MaxMetadataDepth {
		return nil, fmt.Sprintf("must nest at most %d levels deep (got %d)", MaxMetadataDepth, d)
	}
	return json.RawMessage(buf.Bytes()), ""
}

// expiry resolves expires_in or expires_at to a unix time (nil = never).
func (s *Service) expiry(now time.Time, in string, at *int64) (*int64, string, string) {
	if in != "" && at != nil {
		return nil, "expires_at", "give expires_in or expires_at, not both"
	}
	if at != nil {
		if *at <= now.Unix() {
			return nil, "expires_at", "must be in the future"
		}
		v := *at
		return &v, "", ""
	}
	name := in
	if name == "" {
		name = s.opts.DefaultExpiration
	}
	if name == "" || name == "never" && in == "" {
		return nil, "", ""
	}
	for _, e := range s.opts.Expirations {
		if e.Name == name {
			if e.Never {
				return nil, "", ""
			}
			v := e.From(now).Unix()
			return &v, "", ""
		}
	}
	names := make([]string, len(s.opts.Expirations))
	for i, e := range s.opts.Expirations {
		names[i] = e.Name
	}
	return nil, "expires_in", fmt.Sprintf("%q is not one of the configured choices %v", name, names)
}

func checkKeyID(id string) error {
	if !ValidKeyID(id) {
		return FieldError("id", "must be 32 lowercase hex characters")
	}
	return nil
}

func checkOwnerID(field, id string) error {
	if !ValidOwnerID(id) {
		return FieldError(field, "must be 1–128 characters of A-Z a-z 0-9 . _ : @ -")
	}
	return nil
}

func checkRateLimit(fe fieldErrors, r *RateLimit) {
	if r == nil {
		return
	}
	if r.Limit < 0 {
		fe.add("rate_limit.limit", "must be ≥ 0 (0 = unlimited)")
	}
	if r.Window <= 0 {
		fe.add("rate_limit.window", "must be a positive duration like 1m")
	} else if r.Window > MaxRateWindow {
		fe.add("rate_limit.window", fmt.Sprintf("must be at most %s (a year)", MaxRateWindow))
	}
}
