package main

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// The hardening of issue 10 as wired by the real App: keygate's own
// cookies, routing overrides and forwarding headers never reach the
// upstream, and /v1/validate speaks the proxy's error codes.
func TestEndToEndHardening(t *testing.T) {
	up := echoUpstream(t)
	app := startApp(t, filepath.Join(t.TempDir(), "kg.db"), up.URL, "")
	c := newClient(t, app)
	key := c.must(201, "POST", "/v1/keys", map[string]any{"type": "generic", "display_name": "e2e"})
	tok, _ := key["token"].(string)

	req, _ := http.NewRequest("GET", c.proxy+"/x", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Cookie", "keygate_admin=DASHSESSION; theme=dark; keygate_portal=PORTALSESSION; keygate_portal_hop=1")
	req.Header.Set("X-Original-URL", "/admin")
	req.Header.Set("Forwarded", "for=1.2.3.4")
	req.Header.Set("X-Real-IP", "1.2.3.4")
	req.Header.Set("X.Keygate.User.Id", "mallory")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var echo map[string]any
	if err := jsonDecode(resp, &echo); err != nil || resp.StatusCode != 200 {
		t.Fatalf("status %d: %v", resp.StatusCode, err)
	}
	if got := header(echo, "Cookie"); got != "theme=dark" {
		t.Errorf("upstream Cookie = %q, want theme=dark", got)
	}
	for _, h := range []string{"X-Original-Url", "Forwarded", "X-Real-Ip", "X.keygate.user.id"} {
		if v := header(echo, h); v != "" {
			t.Errorf("%s = %q reached the upstream", h, v)
		}
	}
	for name := range echo["headers"].(map[string]any) {
		if strings.Contains(strings.ToLower(name), "keygate.") {
			t.Errorf("look-alike %s reached the upstream", name)
		}
	}

	// A dashboard session cookie is not an admin credential on the proxy
	// port either: the key check is unchanged.
	if code, _ := c.get("", "/x"); code != 401 {
		t.Errorf("no key: %d", code)
	}
}

func jsonDecode(resp *http.Response, v any) error { return json.NewDecoder(resp.Body).Decode(v) }
