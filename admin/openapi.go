package admin

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync"

	"go.yaml.in/yaml/v4"
)

// OpenAPIYAML is the OpenAPI 3.1 document of the admin API, as kept in the
// repository (admin/openapi.yaml: YAML is what people edit and review).
// GET /openapi.json serves it as JSON. openapi_test.go keeps it true.
//
//go:embed openapi.yaml
var OpenAPIYAML []byte

// OpenAPIJSON returns the OpenAPI document as JSON.
var OpenAPIJSON = sync.OnceValues(func() ([]byte, error) {
	var doc any
	if err := yaml.Unmarshal(OpenAPIYAML, &doc); err != nil {
		return nil, fmt.Errorf("admin/openapi.yaml: %w", err)
	}
	doc, err := jsonValue(doc)
	if err != nil {
		return nil, fmt.Errorf("admin/openapi.yaml: %w", err)
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("admin/openapi.yaml: %w", err)
	}
	return append(b, '\n'), nil
})

// jsonValue turns a decoded YAML value into one encoding/json can write:
// YAML maps may have non-string keys (a response code like 200).
func jsonValue(v any) (any, error) {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			var err error
			if v[k], err = jsonValue(e); err != nil {
				return nil, err
			}
		}
		return v, nil
	case map[any]any:
		m := make(map[string]any, len(v))
		for k, e := range v {
			var err error
			if m[fmt.Sprint(k)], err = jsonValue(e); err != nil {
				return nil, err
			}
		}
		return m, nil
	case []any:
		for i, e := range v {
			var err error
			if v[i], err = jsonValue(e); err != nil {
				return nil, err
			}
		}
		return v, nil
	}
	return v, nil
}

// serveOpenAPI answers the document. It holds no data, so it needs no
// token: tools and client generators can fetch it directly.
func (s *Server) serveOpenAPI(w http.ResponseWriter, r *http.Request) {
	b, err := OpenAPIJSON()
	if err != nil {
		// Only a broken build can get here; the tests parse the document.
		s.writeError(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Access-Control-Allow-Origin", "*") // for browser-based viewers
	w.Write(b)
}

// routeMux is the admin mux, remembering the patterns the admin package
// registers so that Routes can list them (the OpenAPI test checks the
// document against them). Patterns added through Mux (the dashboard's
// pages) are not API routes and are not listed.
type routeMux struct {
	*http.ServeMux
	patterns  []string
	fallbacks []string
}

func (m *routeMux) Handle(pattern string, h http.Handler) {
	m.patterns = append(m.patterns, pattern)
	m.ServeMux.Handle(pattern, h)
}

func (m *routeMux) HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request)) {
	m.Handle(pattern, http.HandlerFunc(h))
}

// fallback registers a catch-all that answers 404 or 405 for paths that
// match no route: it is not a route of its own.
func (m *routeMux) fallback(pattern string, h http.Handler) {
	m.fallbacks = append(m.fallbacks, pattern)
	m.ServeMux.Handle(pattern, h)
}

// Routes returns the patterns ("METHOD /path/{wildcard}") of every route the
// admin package serves, in registration order: the API, PropelAuth's calls,
// health, metrics, profiles and the OpenAPI document. Catch-alls that only
// answer 404 or 405 are left out; see Fallbacks.
func (s *Server) Routes() []string { return slices.Clone(s.mux.patterns) }

// Fallbacks returns the patterns of the catch-alls that answer 404 or 405
// for unknown calls under /v1/ and /api/backend/.
func (s *Server) Fallbacks() []string { return slices.Clone(s.mux.fallbacks) }
