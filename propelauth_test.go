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
	cmd := exec.CommandContext(ctx, node, "--test", "--test-reporter=spec", "--test-concurrency=1", "test/")
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
