package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// readmeBlock returns the fenced code block (of language lang) that
// follows marker in README.md.
func readmeBlock(t *testing.T, marker, lang string) string {
	t.Helper()
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), marker)
	if !ok {
		t.Fatalf("README.md has no %q", marker)
	}
	_, rest, _ = strings.Cut(rest, "```"+lang+"\n")
	code, _, ok := strings.Cut(rest, "```\n")
	if !ok {
		t.Fatalf("README.md: no code block after %q", marker)
	}
	return code
}

// TestWebhookNodeSnippet runs the README's Node verification snippet on a
// real keygate delivery, so the snippet stays true: it must accept the
// delivery and refuse it with a changed body or another secret.
func TestWebhookNodeSnippet(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("node is required in CI (CI=true): install nodejs")
		}
		t.Skip("node not installed")
	}
	input := snippetChecks(t)
	script := readmeBlock(t, "<!-- webhook-verify-node", "js") + `
const checks = JSON.parse(require("fs").readFileSync(0, "utf8"));
for (const c of checks) {
  try { console.log("ok " + verifyWebhook(c.secret, c.headers, c.body).type); }
  catch (e) { console.log("refused: " + e.message); }
}
`
	path := filepath.Join(t.TempDir(), "verify.js")
	if err := os.WriteFile(path, []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(node, path)
	cmd.Stdin = strings.NewReader(string(input))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, out)
	}
	if string(out) != snippetWant {
		t.Errorf("node printed\n%s\nwant\n%s", out, snippetWant)
	}
}

// snippetWant is what a snippet's harness prints for snippetChecks.
const snippetWant = "ok user.upserted\nrefused: no valid signature\nrefused: no valid signature\n"

// snippetChecks gets a real delivery from keygate and returns, as JSON,
// three checks for a README snippet: the delivery as sent, with a changed
// body, and with another secret.
func snippetChecks(t *testing.T) []byte {
	t.Helper()
	rcv := newReceiver(t)
	app := startApp(t, filepath.Join(t.TempDir(), "k.db"), echoUpstream(t).URL, webhooksYAML(rcv.URL, ""))
	newClient(t, app).must(200, "PUT", "/v1/users/alice", map[string]any{"email": "alice@example.com"})
	waitHooks(t, rcv, 5*time.Second, "a delivery", func(hs []hook) string {
		if len(hs) == 0 {
			return "none yet"
		}
		return ""
	})
	h := rcv.hooks()[0]
	headers := map[string]string{"webhook-id": h.ID, "webhook-timestamp": h.Timestamp, "webhook-signature": h.Signature}
	type check struct {
		Secret  string            `json:"secret"`
		Headers map[string]string `json:"headers"`
		Body    string            `json:"body"`
	}
	input, _ := json.Marshal([]check{
		{testWebhookSecret, headers, string(h.Body)},
		{testWebhookSecret, headers, strings.Replace(string(h.Body), "alice@", "mallory@", 1)},
		{"whsec_b3RoZXItc2VjcmV0LW90aGVyLXNlY3JldC0wMTIzNDU=", headers, string(h.Body)},
	})
	return input
}

// TestWebhookGoSnippet compiles and runs the README's Go verification
// snippet on a real keygate delivery.
func TestWebhookGoSnippet(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a program")
	}
	input := snippetChecks(t)
	prog := `package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

` + readmeBlock(t, "<!-- webhook-verify-go", "go") + `
func main() {
	var checks []struct {
		Secret  string            ` + "`json:\"secret\"`" + `
		Headers map[string]string ` + "`json:\"headers\"`" + `
		Body    string            ` + "`json:\"body\"`" + `
	}
	json.NewDecoder(os.Stdin).Decode(&checks)
	for _, c := range checks {
		h := http.Header{}
		for k, v := range c.Headers {
			h.Set(k, v)
		}
		if err := verifyWebhook(c.Secret, h, []byte(c.Body)); err != nil {
			fmt.Println("refused: " + err.Error())
			continue
		}
		var ev struct{ Type string }
		json.Unmarshal([]byte(c.Body), &ev)
		fmt.Println("ok " + ev.Type)
	}
}
`
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(prog), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "run", "main.go")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GO111MODULE=off", "GOFLAGS=")
	cmd.Stdin = strings.NewReader(string(input))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go run: %v\n%s", err, out)
	}
	if string(out) != snippetWant {
		t.Errorf("the Go snippet printed\n%s\nwant\n%s", out, snippetWant)
	}
}
