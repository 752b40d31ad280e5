package config

import (
	"strings"
	"testing"
)

func TestUnknownEnv(t *testing.T) {
	env := []string{
		"PATH=/bin",
		"KEYGATE_PROXY_UPSTREAMS=http://a", // a key
		"KEYGATE_PROXY_UPSTREAM=http://b",  // singular: a typo
		"KEYGATE_ADMIN_URL=http://x",       // the CLI's, known through alsoKnown
		"KEYGATE_LOG_LEVLE=debug",
		"KEYGATE_SOMETHING_ELSE_ENTIRELY=1",
		"KEYGATE_ADMIN_TOKEN=t",
	}
	got := UnknownEnv(env, "KEYGATE_ADMIN_URL")
	want := []Problem{
		{"KEYGATE_LOG_LEVLE", "unknown variable: it sets no configuration key (did you mean KEYGATE_LOG_LEVEL?)"},
		{"KEYGATE_PROXY_UPSTREAM", "unknown variable: it sets no configuration key (did you mean KEYGATE_PROXY_UPSTREAMS?)"},
		{"KEYGATE_SOMETHING_ELSE_ENTIRELY", "unknown variable: it sets no configuration key"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("problem %d = %v, want %v", i, got[i], want[i])
		}
	}
	if p := UnknownEnv([]string{"KEYGATE_ADMIN_URL=x"}); len(p) != 1 {
		t.Errorf("without alsoKnown, KEYGATE_ADMIN_URL: %v", p)
	}
	// Every key's own override is known.
	c := Default()
	var all []string
	for _, f := range fieldsOf(&c) {
		all = append(all, f.env+"=")
	}
	if p := UnknownEnv(all); len(p) != 0 {
		t.Errorf("config keys reported unknown: %v", p)
	}
}

// TestYAMLSyntaxErrorLine: a syntax error names the line where it is, not
// the line where the enclosing block starts (yaml.v3's habit).
func TestYAMLSyntaxErrorLine(t *testing.T) {
	for _, tt := range []struct {
		name, yaml, want string
	}{
		{"unclosed flow list", "proxy:\n  listen: \":8080\"\n  upstreams: [\"http://a\"\nadmin:\n  token: x\n", "line 4:"},
		{"over-indented key", "proxy:\n  listen: \":8080\"\n    upstreams: x\n", "line 3:"},
		{"tab", "proxy:\n  listen: \":8080\"\n\tadmin: x\n", "line 3:"},
		{"under-indented item", "proxy:\n  upstreams:\n  - a\n - b\n", "line 4:"},
		{"unclosed quote", "log:\n  level: info\nproxy:\n  listen: \"abc\n", "line 5:"},
		{"duplicate key", "log:\n  level: info\n  level: warn\n", "line 3:"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.yaml, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "parse yaml: ") {
				t.Fatalf("error %v, want %q in it", err, tt.want)
			}
		})
	}
}
