package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"github.com/keygate/keygate/keys"
)

// Body size limits. Imports get more room: 10,000 keys with metadata do
// not fit in 1 MiB.
const (
	maxBodyBytes       = 1 << 20
	maxImportBodyBytes = 32 << 20
)

// readBody reads r's body, at most limit bytes.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return nil, badField("body", fmt.Sprintf("must be at most %d bytes", limit))
	case err != nil:
		return nil, badField("body", "could not be read: "+err.Error())
	}
	return b, nil
}

// decodeBody decodes r's body, a JSON object of at most 1 MiB, into dst
// (see decodeObject).
func decodeBody(w http.ResponseWriter, r *http.Request, dst any) error {
	b, err := readBody(w, r, maxBodyBytes)
	if err != nil {
		return err
	}
	return decodeObject(b, dst, "body")
}

// decodeObject decodes the JSON object b into dst strictly: unknown fields,
// wrong types, anything but one object and trailing data are bad input
// naming the field. name is what the object is called in errors ("body",
// or "keys[3]" for one element of a list); its fields are named plainly at
// the top level and as name.field below it.
func decodeObject(b []byte, dst any, name string) error {
	field := func(f string) string {
		if name == "body" {
			return f
		}
		return name + "." + f
	}
	trimmed := bytes.TrimLeft(b, " \t\r\n")
	if len(trimmed) == 0 {
		return badField(name, "required: a JSON object")
	}
	if trimmed[0] != '{' {
		return badField(name, "must be a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		var (
			syn *json.SyntaxError
			typ *json.UnmarshalTypeError
		)
		switch {
		case errors.As(err, &syn):
			return badField(name, fmt.Sprintf("malformed JSON at byte %d: %s", syn.Offset, syn.Error()))
		case errors.Is(err, io.ErrUnexpectedEOF):
			return badField(name, "malformed JSON: unexpected end")
		case errors.As(err, &typ):
			if typ.Field == "" {
				return badField(name, "must be "+jsonKind(typ.Type))
			}
			return badField(field(typ.Field), "must be "+jsonKind(typ.Type)+", not "+typ.Value)
		}
		if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			if u, uerr := strconv.Unquote(f); uerr == nil {
				f = u
			}
			return badField(field(f), "unknown field")
		}
		return badField(name, err.Error())
	}
	if rest := bytes.Trim(b[dec.InputOffset():], " \t\r\n"); len(rest) > 0 {
		return badField(name, "unexpected data after the JSON object")
	}
	return nil
}

// jsonKind names the JSON shape a Go type decodes from, for error messages.
func jsonKind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a non-negative integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "a JSON object"
	}
	return "a " + t.String()
}

// isNull reports whether a raw JSON field is absent or null.
func isNull(raw json.RawMessage) bool { return raw == nil || string(raw) == "null" }

// metadataOf returns a raw metadata field for keys: nil (absent or null)
// means "none given"; keys checks that it is an object of at most 4 KiB.
func metadataOf(raw json.RawMessage) []byte {
	if isNull(raw) {
		return nil
	}
	return raw
}

// rateLimitOf parses a rate_limit field: absent keeps the stored override,
// null clears it, an object sets it.
func rateLimitOf(raw json.RawMessage) (rl *keys.RateLimit, clear bool, err error) {
	if raw == nil {
		return nil, false, nil
	}
	if string(raw) == "null" {
		return nil, true, nil
	}
	var v keys.RateLimit
	if err := json.Unmarshal(raw, &v); err != nil {
		var typ *json.UnmarshalTypeError
		if errors.As(err, &typ) && typ.Field != "" {
			return nil, false, badField("rate_limit."+typ.Field, "must be "+jsonKind(typ.Type)+", not "+typ.Value)
		}
		if errors.As(err, &typ) {
			return nil, false, badField("rate_limit", `must be null or an object like {"limit": 100, "window": "1m"}`)
		}
		return nil, false, badField("rate_limit", strings.TrimPrefix(err.Error(), "json: "))
	}
	return &v, false, nil
}

// query reads URL query parameters strictly: unknown or repeated parameters
// and malformed values are collected as field problems.
type query struct {
	v        url.Values
	problems map[string][]string
}

// newQuery checks that r's query names only the allowed parameters, each
// at most once.
func newQuery(r *http.Request, allowed ...string) *query {
	q := &query{v: r.URL.Query(), problems: map[string][]string{}}
	names := make([]string, 0, len(q.v))
	for n := range q.v {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		switch {
		case !contains(allowed, n):
			q.add(n, "unknown query parameter (known: "+strings.Join(allowed, ", ")+")")
		case len(q.v[n]) > 1:
			q.add(n, "given more than once")
		}
	}
	return q
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func (q *query) add(field, problem string) { q.problems[field] = append(q.problems[field], problem) }

// str returns a parameter's value, "" when absent.
func (q *query) str(name string) string { return q.v.Get(name) }

// integer returns an integer parameter within [lo, hi], def when absent.
func (q *query) integer(name string, def, lo, hi int64) int64 {
	s := q.v.Get(name)
	if s == "" {
		return def
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < lo || n > hi {
		q.add(name, fmt.Sprintf("must be an integer from %d to %d", lo, hi))
		return def
	}
	return n
}

// ownerID checks an optional user or org id parameter.
func (q *query) ownerID(name string) string {
	s := q.v.Get(name)
	if s != "" && !keys.ValidOwnerID(s) {
		q.add(name, "must be 1–128 characters of A-Z a-z 0-9 . _ : @ -")
	}
	return s
}

// keyID checks an optional key id parameter.
func (q *query) keyID(name string) string {
	s := q.v.Get(name)
	if s != "" && !keys.ValidKeyID(s) {
		q.add(name, "must be 32 lowercase hex characters")
	}
	return s
}

// err returns the collected problems as one bad-input error, nil if none.
func (q *query) err() error {
	if len(q.problems) == 0 {
		return nil
	}
	return &keys.Error{Code: keys.EInvalid, Message: "invalid query parameters", Fields: q.problems}
}
