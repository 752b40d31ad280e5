package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// sdkDir holds the PropelAuth SDK tests: package.json, the lock file pinning
// @propelauth/node-apis, the fetch wrapper and test/*.test.mjs.
var sdkDir = filepath.Join("sdk", "propelauth")

// TestPropelAuthSDK runs PropelAuth's real Node SDK against a whole keygate
// (SPEC §14, shared/PROPELAUTH.md): node --test in sdk/propelauth, with the
// admin and proxy URLs and the admin token in its environment. It needs Node
// 20+ and `npm ci` in sdk/propelauth (.ci/run does both): it fails without
// them when CI=true and skips otherwise.
func TestPropelAuthSDK(t *testing.T) {
	need := func(format string, args ...any) {
		t.Helper()
		if os.Getenv("CI") == "true" {
			t.Fatalf(format, args...)
		}
		t.Skipf(format+"; skipping", args...)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		need("the PropelAuth SDK tests need Node 20+ (apt-get install nodejs npm): %v", err)
	}
	if _, err := os.Stat(filepath.Join(sdkDir, "node_modules", "@propelauth", "node-apis", "package.json")); err != nil {
		need("the PropelAuth SDK is not installed: run `npm ci` in %s (%v)", sdkDir, err)
	}

	up := echoUpstream(t)
	app := startApp(t, filepath.Join(t.TempDir(), "keygate.db"), up.URL, "")

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "--test", "--test-reporter=spec", filepath.Join("test", "sdk.test.mjs"))
	cmd.Dir = sdkDir
	cmd.Env = append(os.Environ(),
		"KEYGATE_ADMIN_URL=http://"+app.AdminAddr(),
		"KEYGATE_ADMIN_TOKEN="+testAdminToken,
		"KEYGATE_PROXY_URL=http://"+app.ProxyAddr(),
		"NO_COLOR=1",
	)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	if err != nil || testing.Verbose() {
		t.Logf("node --test output:\n%s", out.String())
	}
	if err != nil {
		t.Fatalf("the PropelAuth SDK tests failed: %v", err)
	}
}

// A key whose type is disabled in config fails PropelAuth's validate with
// the SDK's 400 {"api_key_token": [...]}, and works again once re-enabled.
// (The SDK suite cannot restart the gateway with another config.)
func TestPropelAuthTypeDisabled(t *testing.T) {
	up := echoUpstream(t)
	db := filepath.Join(t.TempDir(), "keygate.db")
	app := startApp(t, db, up.URL, "")
	c := newClient(t, app)
	token := c.must(200, "POST", propelPath, map[string]any{"metadata": map[string]any{"a": 1}})["api_key_token"].(string)
	validate := map[string]any{"api_key_token": token}
	c.must(200, "POST", propelPath+"/validate", validate)
	app.Close()

	app = startApp(t, db, up.URL, "keys:\n  generic:\n    enabled: false\n")
	c = newClient(t, app)
	for _, path := range []string{"/validate", "/validate_imported"} {
		code, out := c.call("POST", propelPath+path, validate)
		msgs, _ := out["api_key_token"].([]any)
		if code != 400 || len(out) != 1 || len(msgs) != 1 {
			t.Fatalf("%s with the type disabled: %d %v, want 400 {\"api_key_token\": [...]}", path, code, out)
		}
	}
	app.Close()

	app = startApp(t, db, up.URL, "")
	newClient(t, app).must(200, "POST", propelPath+"/validate", validate)
}

const propelPath = "/api/backend/v1/end_user_api_keys"
