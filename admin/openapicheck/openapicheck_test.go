package openapicheck

import (
	"context"
	"net/http"
	"strings"
	"testing"
)

const keyJSON = `{"id":"0123456789abcdef0123456789abcdef","type":"generic","user_id":"","org_id":"","display_name":"ci",
"display":"kg_…abcd","metadata":{},"created_at":1800000000,"expires_at":null,"archived_at":null,"last_used_at":null,"imported":false,"rolled_from":null,"rolled_to":null,"quota":null}`

// TestCheck shows the validator catches each kind of drift the middleware
// exists for, and lets a true exchange and non-API pages pass.
func TestCheck(t *testing.T) {
	v, err := Shared()
	if err != nil {
		t.Fatal(err)
	}
	jsonHeader := http.Header{"Content-Type": {"application/json"}}
	tests := []struct {
		name, method, path, reqBody string
		status                      int
		header                      http.Header
		body                        string
		wantErr                     string // "" for valid
	}{
		{"valid key", "GET", "/v1/keys/0123456789abcdef0123456789abcdef", "", 200, jsonHeader, keyJSON, ""},
		{"undocumented field", "GET", "/v1/keys/0123456789abcdef0123456789abcdef", "", 200, jsonHeader,
			strings.Replace(keyJSON, `"imported":false`, `"imported":false,"shiny":true`, 1), "shiny"},
		{"missing field", "GET", "/v1/keys/0123456789abcdef0123456789abcdef", "", 200, jsonHeader,
			strings.Replace(keyJSON, `,"imported":false`, ``, 1), "imported"},
		{"undocumented status", "GET", "/v1/keys/0123456789abcdef0123456789abcdef", "", 418, jsonHeader, `{}`, "status"},
		{"error shape", "GET", "/v1/keys/0123456789abcdef0123456789abcdef", "", 404, jsonHeader, `{"error":"not_found"}`, "message"},
		{"accepted bad request", "PUT", "/v1/orgs/acme/members/alice", `{"role":"Admin","extra":1}`, 200, jsonHeader,
			`{"org_id":"acme","user_id":"alice","role":"Admin","created_at":1}`, "extra"},
		{"refused bad request", "PUT", "/v1/orgs/acme/members/alice", `{"role":7}`, 400, jsonHeader,
			`{"error":"invalid_request","message":"invalid role","fields":{"role":["must be a string"]}}`, ""},
		{"unknown API path", "GET", "/v1/nothing", "", 404, jsonHeader,
			`{"error":"not_found","message":"no API call GET /v1/nothing","fields":{}}`, ""},
		{"unknown API path answering 200", "GET", "/v1/nothing", "", 200, jsonHeader, `{}`, "not in the document"},
		{"dashboard page", "GET", "/keys", "", 200, http.Header{"Content-Type": {"text/html"}}, `<html>`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, "http://127.0.0.1:8081"+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			err = v.Check(context.Background(), Exchange{Request: req, RequestBody: []byte(tt.reqBody), Status: tt.status, Header: tt.header, Body: []byte(tt.body)})
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("want valid, got %v", err)
			case tt.wantErr != "" && err == nil:
				t.Fatalf("want an error naming %q, got none", tt.wantErr)
			case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
				t.Fatalf("error does not name %q: %v", tt.wantErr, err)
			}
		})
	}
}
