package keys

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Validation errors returned for a token.
var (
	ErrInvalidKey = errors.New("invalid_api_key")
	ErrExpiredKey = errors.New("expired_api_key")
	// ErrStoreUnavailable is wrapped into the error of a key lookup that
	// failed for another reason than an unknown key.
	ErrStoreUnavailable = errors.New("store_unavailable")
)

// Error codes of Error, mapped to HTTP statuses once, at the edge.
const (
	EInvalid  = "invalid_request" // bad input: 400
	ENotFound = "not_found"       // 404
	EConflict = "conflict"        // 409
)

// Error is a domain error with a code, a human message and, for bad input,
// the problems per field.
type Error struct {
	Code    string
	Message string
	Fields  map[string][]string
}

func (e *Error) Error() string {
	if len(e.Fields) == 0 {
		return e.Message
	}
	names := make([]string, 0, len(e.Fields))
	for n := range e.Fields {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString(e.Message)
	for _, n := range names {
		fmt.Fprintf(&b, "; %s: %s", n, strings.Join(e.Fields[n], ", "))
	}
	return b.String()
}

// Errorf returns an *Error with code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// FieldError returns a bad-input error naming one field.
func FieldError(field, problem string) *Error {
	return &Error{Code: EInvalid, Message: "invalid " + field + ": " + problem, Fields: map[string][]string{field: {problem}}}
}

// fieldErrors collects problems per field; err returns nil when there are none.
type fieldErrors map[string][]string

func (f fieldErrors) add(field, problem string) { f[field] = append(f[field], problem) }

func (f fieldErrors) err() error {
	if len(f) == 0 {
		return nil
	}
	return &Error{Code: EInvalid, Message: "invalid input", Fields: f}
}

// ErrorCode returns the code of err: an *Error's code, or "" otherwise.
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }
