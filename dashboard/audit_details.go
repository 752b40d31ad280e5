package dashboard

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// detailItem is one field of an audit event's details, as shown.
type detailItem struct{ Key, Value string }

// maxListed bounds how many items of a list a details cell shows: an
// import's event carries up to 10,000 key ids, the count says the rest.
const maxListed = 5

// maxDetail bounds one shown value, so no event can make a page huge.
const maxDetail = 200

// auditDetails turns an event's details JSON into readable fields in key
// order: lists as a count and their first few items, integers with
// thousands separators, nested objects as compact JSON, all bounded.
func auditDetails(raw json.RawMessage) []detailItem {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("{}")) || bytes.Equal(raw, []byte("null")) {
		return nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return []detailItem{{"", clip(string(raw))}}
	}
	names := make([]string, 0, len(obj))
	for k := range obj {
		names = append(names, k)
	}
	sort.Strings(names)
	items := make([]detailItem, 0, len(names))
	for _, k := range names {
		items = append(items, detailItem{k, detailValue(obj[k])})
	}
	return items
}

func detailValue(v json.RawMessage) string {
	var list []json.RawMessage
	if json.Unmarshal(v, &list) == nil {
		shown := make([]string, 0, maxListed)
		for _, x := range list[:min(len(list), maxListed)] {
			shown = append(shown, scalar(x))
		}
		s := thousands(int64(len(list))) + ": " + strings.Join(shown, ", ")
		if len(list) == 0 {
			return "none"
		}
		if n := len(list) - maxListed; n > 0 {
			s += fmt.Sprintf(" … and %s more", thousands(int64(n)))
		}
		return clip(s)
	}
	return clip(scalar(v))
}

// scalar shows a JSON value: strings unquoted, integers grouped, the rest compact.
func scalar(v json.RawMessage) string {
	var s string
	if json.Unmarshal(v, &s) == nil {
		return s
	}
	if n, err := strconv.ParseInt(string(bytes.TrimSpace(v)), 10, 64); err == nil {
		return thousands(n)
	}
	var b bytes.Buffer
	if json.Compact(&b, v) == nil {
		return b.String()
	}
	return string(v)
}

func clip(s string) string {
	if len(s) <= maxDetail {
		return s
	}
	cut := maxDetail
	for cut > 0 && (s[cut]&0xC0) == 0x80 { // not inside a UTF-8 sequence
		cut--
	}
	return s[:cut] + "…"
}
