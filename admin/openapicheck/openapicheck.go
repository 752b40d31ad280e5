// Package openapicheck validates admin API traffic against the OpenAPI
// document (admin/openapi.yaml) with kin-openapi. Tests wrap the admin
// handler in Middleware so that every request and answer they make is
// checked: the document stays true as long as the tests pass. Only tests
// import it, so kin-openapi stays out of the binary.
package openapicheck

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/keygate/keygate/admin"
)

// Load parses and validates the admin API's OpenAPI document.
func Load() (*openapi3.T, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(admin.OpenAPIYAML)
	if err != nil {
		return nil, fmt.Errorf("admin/openapi.yaml: %w", err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		return nil, fmt.Errorf("admin/openapi.yaml is not a valid OpenAPI document: %w", err)
	}
	return doc, nil
}

// Validator checks requests and answers against the document.
type Validator struct {
	doc    *openapi3.T
	router routers.Router
	errRef *openapi3.SchemaRef
}

var (
	shared     *Validator
	sharedErr  error
	sharedOnce sync.Once
)

// Shared returns one Validator for the whole test binary: loading the
// document is the expensive part.
func Shared() (*Validator, error) {
	sharedOnce.Do(func() { shared, sharedErr = New() })
	return shared, sharedErr
}

// New loads the document and builds its router.
func New() (*Validator, error) {
	doc, err := Load()
	if err != nil {
		return nil, err
	}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("admin/openapi.yaml: routes: %w", err)
	}
	errRef := doc.Components.Schemas["Error"]
	if errRef == nil {
		return nil, errors.New("admin/openapi.yaml: no Error schema in components")
	}
	return &Validator{doc: doc, router: router, errRef: errRef}, nil
}

// apiPrefixes are the path trees the document covers entirely: an answer
// under them for a path it does not list must be the JSON Error of the
// catch-alls. Other paths on the admin port (the dashboard's pages) are
// not part of the API and are not checked.
var apiPrefixes = []string{"/v1/", "/api/backend/"}

// Exchange is one request and its answer.
type Exchange struct {
	Request     *http.Request // its Body is ignored; see RequestBody
	RequestBody []byte
	Status      int
	Header      http.Header
	Body        []byte
}

// Check validates one exchange:
//   - every answer must be documented for its route and status, with a
//     body that matches the schema (undocumented paths under the API
//     prefixes must answer the Error schema);
//   - a request the server accepted (status below 400) must match the
//     documented parameters and body: whatever the server takes, the
//     document allows. Refused requests are not checked, since tests send
//     bad input on purpose.
func (v *Validator) Check(ctx context.Context, x Exchange) error {
	req := x.Request.Clone(ctx)
	if req.Header.Get("Content-Type") == "" && len(x.RequestBody) > 0 {
		// The server reads bodies as JSON whatever they are labelled.
		req.Header.Set("Content-Type", "application/json")
	}
	req.Body = io.NopCloser(bytes.NewReader(x.RequestBody))
	route, params, err := v.router.FindRoute(req)
	if err != nil {
		if !underAPI(req.URL.Path) {
			return nil
		}
		switch x.Status {
		case http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusUnauthorized, http.StatusTooManyRequests:
		default:
			return fmt.Errorf("%s %s is not in the document, yet it answered %d: %s", req.Method, req.URL.Path, x.Status, x.Body)
		}
		return v.checkError(x)
	}
	in := &openapi3filter.RequestValidationInput{
		Request:    req,
		PathParams: params,
		Route:      route,
		Options: &openapi3filter.Options{
			AuthenticationFunc: openapi3filter.NoopAuthenticationFunc,
			MultiError:         true,
		},
	}
	if x.Status < 400 {
		if err := openapi3filter.ValidateRequest(ctx, in); err != nil {
			return fmt.Errorf("request %s %s was accepted (%d) but does not match the document: %w", req.Method, req.URL.RequestURI(), x.Status, err)
		}
	}
	if req.Method == http.MethodHead {
		return nil
	}
	opts := &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true}
	if ct := x.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") && len(x.Body) > 0 {
		// Profiles and metrics: the status is checked, not the bytes.
		opts.ExcludeResponseBody = true
	}
	in.Options = opts
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 x.Status,
		Header:                 x.Header,
		Body:                   io.NopCloser(bytes.NewReader(x.Body)),
		Options:                opts,
	}
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		return fmt.Errorf("answer %d to %s %s does not match the document: %w\nbody: %s", x.Status, req.Method, req.URL.RequestURI(), err, x.Body)
	}
	return nil
}

func underAPI(path string) bool {
	for _, p := range apiPrefixes {
		if strings.HasPrefix(path, p) {
			return true
		}
	}
	return false
}

// checkError validates an answer of the catch-alls against the Error schema.
func (v *Validator) checkError(x Exchange) error {
	if ct := x.Header.Get("Content-Type"); ct != "application/json" {
		return fmt.Errorf("%s %s answered %d with Content-Type %q, want the JSON Error", x.Request.Method, x.Request.URL.Path, x.Status, ct)
	}
	var body any
	if err := json.Unmarshal(x.Body, &body); err != nil {
		return fmt.Errorf("%s %s answered %d with a body that is not JSON: %w", x.Request.Method, x.Request.URL.Path, x.Status, err)
	}
	if err := v.errRef.Value.VisitJSON(body, openapi3.EnableJSONSchema2020()); err != nil {
		return fmt.Errorf("%s %s answered %d with a body that is not an Error: %w\nbody: %s", x.Request.Method, x.Request.URL.Path, x.Status, err, x.Body)
	}
	return nil
}

// Middleware returns h wrapped so that every exchange is validated; a
// mismatch fails t, naming the call and what does not match.
func Middleware(t testing.TB, h http.Handler) http.Handler {
	t.Helper()
	v, err := Shared()
	if err != nil {
		t.Fatal(err)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var reqBody []byte
		if r.Body != nil {
			// Read it all: the handler limits sizes itself and the tests
			// send bodies of known size.
			reqBody, _ = io.ReadAll(r.Body)
			r.Body.Close()
			r.Body = io.NopCloser(bytes.NewReader(reqBody))
		}
		orig := r.Clone(r.Context())
		rec := &recorder{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(rec, r)
		err := v.Check(context.Background(), Exchange{
			Request: orig, RequestBody: reqBody, Status: rec.status, Header: w.Header().Clone(), Body: rec.body.Bytes(),
		})
		if err != nil {
			t.Errorf("OpenAPI: %v", err)
		}
	})
}

// recorder passes an answer through and keeps a copy.
type recorder struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
	body        bytes.Buffer
}

func (r *recorder) WriteHeader(status int) {
	if !r.wroteHeader {
		r.status, r.wroteHeader = status, true
	}
	r.ResponseWriter.WriteHeader(status)
}

func (r *recorder) Write(b []byte) (int, error) {
	r.wroteHeader = true
	r.body.Write(b)
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the real writer (flushes,
// deadlines of the profile handlers).
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
