package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/viper"
	yaml4 "go.yaml.in/yaml/v4"
)

// EnvPrefix starts the name of every environment override.
const EnvPrefix = "KEYGATE_"

// Load reads the YAML file at path, applies environment overrides from
// environ (in os.Environ form) and validates the result.
//
// An empty path means DefaultPath if that file exists and Default otherwise,
// so that `keygate serve` starts without a config file; a path given
// explicitly must exist. Every key can be overridden by env
// KEYGATE_<KEY>, the dotted key upper-cased with dots as underscores
// (rate_limits.personal.limit → KEYGATE_RATE_LIMITS_PERSONAL_LIMIT); lists
// are comma-separated; an empty value counts as set. Other KEYGATE_ variables
// are ignored, since the CLI has its own. A key given with no value in YAML
// keeps its default.
//
// Invalid values, unknown keys and failed checks come back together as an
// *Error; an unreadable or malformed file as a plain error.
func Load(path string, environ []string) (*Config, error) {
	explicit := path != ""
	if !explicit {
		path = DefaultPath
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) && !explicit {
		return parse(nil, environ)
	}
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	defer f.Close()
	c, err := parse(f, environ)
	if e := (*Error)(nil); errors.As(err, &e) {
		e.File = path
		return nil, e
	}
	if err != nil {
		return nil, fmt.Errorf("read config %s: %w", path, err)
	}
	c.File = path
	return c, nil
}

// Parse is Load for a YAML document held in memory (no file is read).
func Parse(yaml string, environ []string) (*Config, error) {
	return parse(strings.NewReader(yaml), environ)
}

// parse reads YAML from r (nil: none) with a fresh viper instance, layers the
// env overrides on top with viper.Set, then decodes key by key onto Default,
// so each problem names its key and absent keys keep their defaults.
func parse(r io.Reader, environ []string) (*Config, error) {
	v := viper.New()
	v.SetConfigType("yaml")
	if r != nil {
		b, err := io.ReadAll(r)
		if err != nil {
			return nil, err
		}
		// yaml.v3, which viper uses, reports where the enclosing block
		// starts rather than where the syntax breaks; v4's parser names the
		// right line, so it checks the syntax first.
		var doc any
		if err := yaml4.Unmarshal(b, &doc); err != nil {
			return nil, fmt.Errorf("parse yaml: %s", strings.TrimPrefix(err.Error(), "yaml: "))
		}
		if err := v.ReadConfig(bytes.NewReader(b)); err != nil {
			return nil, fmt.Errorf("parse yaml: %w", err)
		}
	}
	c := Default()
	fields := fieldsOf(&c)
	problems := unknownKeys(v, fields)

	env := envMap(environ)
	fromEnv := map[string]string{}
	for _, f := range fields {
		if val, ok := env[f.env]; ok {
			v.Set(f.key, val)
			fromEnv[f.key] = f.env
		}
	}
	for _, f := range fields {
		if !v.IsSet(f.key) {
			continue
		}
		if p := decode(f, v.Get(f.key)); p != nil {
			if name, ok := fromEnv[f.key]; ok {
				p.Msg += " (from env " + name + ")"
			}
			problems = append(problems, *p)
		}
	}
	problems = append(problems, applyEndpointEnv(&c, env)...)
	problems = append(problems, c.problems()...)
	if len(problems) > 0 {
		return nil, &Error{Problems: problems}
	}
	return &c, nil
}

// field is one configuration key and the Config field it sets.
type field struct {
	key string        // dotted key, like "rate_limits.personal.limit"
	env string        // its env override, like "KEYGATE_RATE_LIMITS_PERSONAL_LIMIT"
	v   reflect.Value // the addressable field
}

// fieldsOf lists every key of c in declaration order, which is SPEC §8's.
func fieldsOf(c *Config) []field {
	var fields []field
	var walk func(v reflect.Value, prefix string)
	walk = func(v reflect.Value, prefix string) {
		t := v.Type()
		for i := range t.NumField() {
			name := t.Field(i).Tag.Get("config")
			if name == "" || name == "-" {
				continue
			}
			key := prefix + name
			if fv := v.Field(i); fv.Kind() == reflect.Struct {
				walk(fv, key+".")
			} else {
				fields = append(fields, field{key: key, env: envName(key), v: fv})
			}
		}
	}
	walk(reflect.ValueOf(c).Elem(), "")
	return fields
}

func envName(key string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// envMap indexes environ; the first of duplicate names wins, as in os.Getenv.
func envMap(environ []string) map[string]string {
	m := make(map[string]string, len(environ))
	for _, kv := range environ {
		name, val, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, EnvPrefix) {
			continue
		}
		if _, seen := m[name]; !seen {
			m[name] = val
		}
	}
	return m
}

// unknownKeys reports YAML keys that are not configuration keys (typo
// protection) and sections given a value instead of keys. A key below a
// known leaf (a mapping where a value belongs) is left to decode, which
// reports it as a wrong type.
func unknownKeys(v *viper.Viper, fields []field) []Problem {
	known := make(map[string]bool, len(fields))
	sections := map[string]bool{}
	for _, f := range fields {
		known[f.key] = true
		for i := range len(f.key) {
			if f.key[i] == '.' {
				sections[f.key[:i]] = true
			}
		}
	}
	all := v.AllKeys()
	slices.Sort(all)
	var problems []Problem
	for _, k := range all {
		switch {
		case known[k] || underLeaf(k, known):
		case sections[k]:
			// A section with no value ("proxy:") is an empty section.
			if raw := v.Get(k); raw != nil {
				problems = append(problems, Problem{k, "expected a section of keys, got " + describe(raw)})
			}
		default:
			msg := "unknown key"
			if s := suggest(k, fields); s != "" {
				msg += " (did you mean " + s + "?)"
			}
			problems = append(problems, Problem{k, msg})
		}
	}
	return problems
}

func underLeaf(k string, known map[string]bool) bool {
	for i := range len(k) {
		if k[i] == '.' && known[k[:i]] {
			return true
		}
	}
	return false
}

// suggest returns the known key closest to a mistyped one, or "".
func suggest(k string, fields []field) string {
	best, bestDist := "", 4 // farther than 3 edits is a guess, not a typo
	for _, f := range fields {
		if d := distance(k, f.key); d < bestDist {
			best, bestDist = f.key, d
		}
	}
	if best != "" {
		return best
	}
	// The right key in the wrong section, like admin.redis_addr.
	leaf := k[strings.LastIndexByte(k, '.')+1:]
	for _, f := range fields {
		if f.key[strings.LastIndexByte(f.key, '.')+1:] == leaf {
			return f.key
		}
	}
	return ""
}

// distance is the Levenshtein distance between a and b, bytewise.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// decode sets f from raw, a YAML value or an env string, and reports a
// value of the wrong type or form.
func decode(f field, raw any) *Problem {
	var val any
	var msg string
	switch f.v.Addr().Interface().(type) {
	case *string:
		val, msg = toString(raw)
	case *bool:
		val, msg = toBool(raw)
	case *int64:
		val, msg = toInt(raw)
	case *int:
		var n int64
		n, msg = toInt(raw)
		val = int(n)
	case *time.Duration:
		val, msg = toDuration(raw)
	case *[]string:
		list, i, m := toStrings(raw)
		if m != "" && i >= 0 {
			return &Problem{fmt.Sprintf("%s[%d]", f.key, i), m}
		}
		val, msg = list, m
	case *[]time.Duration:
		list, i, m := toDurations(raw)
		if m != "" && i >= 0 {
			return &Problem{fmt.Sprintf("%s[%d]", f.key, i), m}
		}
		val, msg = list, m
	case *[]WebhookEndpoint:
		val, msg = toEndpoints(raw)
	default:
		panic("config: no decoder for " + f.v.Type().String()) // a field type added without one
	}
	if msg != "" {
		return &Problem{f.key, msg} // the field keeps its default
	}
	f.v.Set(reflect.ValueOf(val))
	return nil
}

// toString accepts only strings: a YAML number or bool where text belongs is
// rejected rather than reformatted, because 0123 or 1e3 would silently turn
// into another token or password.
func toString(raw any) (string, string) {
	if s, ok := raw.(string); ok {
		return s, ""
	}
	if isScalar(raw) {
		return "", fmt.Sprintf("expected text, got %s; quote it (\"%v\")", describe(raw), raw)
	}
	return "", "expected text, got " + describe(raw)
}

func toBool(raw any) (bool, string) {
	switch x := raw.(type) {
	case bool:
		return x, ""
	case string:
		if b, err := strconv.ParseBool(x); err == nil {
			return b, ""
		}
	}
	return false, describe(raw) + " is not true or false"
}

func toInt(raw any) (int64, string) {
	switch x := raw.(type) {
	case int:
		return int64(x), ""
	case int64:
		return x, ""
	case uint64:
		if x <= math.MaxInt64 {
			return int64(x), ""
		}
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<63 {
			return int64(x), ""
		}
	case string:
		if n, err := strconv.ParseInt(strings.TrimSpace(x), 10, 64); err == nil {
			return n, ""
		}
	}
	return 0, describe(raw) + " is not a whole number"
}

func toDuration(raw any) (time.Duration, string) {
	switch x := raw.(type) {
	case string:
		if d, err := time.ParseDuration(strings.TrimSpace(x)); err == nil {
			return d, ""
		}
	case int:
		if x == 0 {
			return 0, ""
		}
		// A bare number would be nanoseconds, never what was meant.
		return 0, fmt.Sprintf("%d is not a duration (add a unit, like %ds or %dms)", x, x, x)
	}
	return 0, describe(raw) + " is not a duration (like 1m or 500ms)"
}

// toStrings accepts a YAML list of text, or one string of comma-separated
// items (how env gives lists); items are trimmed and empty ones dropped. On
// failure it returns the bad item's index, or -1 when raw is not a list.
func toStrings(raw any) ([]string, int, string) {
	switch x := raw.(type) {
	case string:
		list := []string{}
		for item := range strings.SplitSeq(x, ",") {
			if item = strings.TrimSpace(item); item != "" {
				list = append(list, item)
			}
		}
		return list, -1, ""
	case []any:
		list := make([]string, 0, len(x))
		for i, item := range x {
			s, msg := toString(item)
			if msg != "" {
				return nil, i, msg
			}
			list = append(list, s)
		}
		return list, -1, ""
	}
	return nil, -1, "expected a list, got " + describe(raw)
}

func isScalar(raw any) bool {
	switch raw.(type) {
	case string, bool, int, int64, uint64, float64:
		return true
	}
	return false
}

// describe renders raw for an error message: text quoted, structure named.
func describe(raw any) string {
	switch x := raw.(type) {
	case string:
		return strconv.Quote(x)
	case map[string]any, map[any]any:
		return "a section of keys"
	case []any:
		return "a list"
	case nil:
		return "nothing"
	}
	return fmt.Sprint(raw)
}
