package config

import (
	"slices"
	"strings"
)

// UnknownEnv returns a problem for every KEYGATE_ variable in environ (in
// os.Environ form) that overrides no configuration key and is not one of
// alsoKnown (such as the CLI's KEYGATE_ADMIN_URL), suggesting the closest
// known name. Load ignores such variables, so a typo like
// KEYGATE_PROXY_UPSTREAM (for KEYGATE_PROXY_UPSTREAMS) would otherwise
// silently do nothing. The problems are sorted by name.
func UnknownEnv(environ []string, alsoKnown ...string) []Problem {
	c := Default()
	fields := fieldsOf(&c)
	known := make(map[string]bool, len(fields)+len(alsoKnown))
	names := make([]string, 0, len(fields)+len(alsoKnown))
	for _, f := range fields {
		known[f.env] = true
		names = append(names, f.env)
	}
	for _, n := range alsoKnown {
		known[n] = true
		names = append(names, n)
	}
	var problems []Problem
	for name := range envMap(environ) {
		if known[name] || endpointEnv.MatchString(name) { // per-endpoint overrides (webhooks.go)
			continue
		}
		msg := "unknown variable: it sets no configuration key"
		if s := suggestEnv(name, names); s != "" {
			msg += " (did you mean " + s + "?)"
		}
		problems = append(problems, Problem{Key: name, Msg: msg})
	}
	slices.SortFunc(problems, func(a, b Problem) int { return strings.Compare(a.Key, b.Key) })
	return problems
}

// suggestEnv returns the known name closest to a mistyped one, or "".
func suggestEnv(name string, names []string) string {
	best, bestDist := "", 4 // farther than 3 edits is a guess, not a typo
	for _, n := range names {
		if d := distance(name, n); d < bestDist {
			best, bestDist = n, d
		}
	}
	return best
}
