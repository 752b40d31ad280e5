package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
)

// FuzzImportReaders: whatever the file holds, the readers never panic,
// every entry they queue is one JSON object, and every entry and problem
// names a line of the file, in order.
func FuzzImportReaders(f *testing.F) {
	for _, seed := range []string{
		"token,user_id\nabc,alice\n",
		"token,metadata,expires_at\nx,\"{\"\"a\"\":1}\",2030-01-01T00:00:00Z\ny,[1],soon\n",
		"token\n\"multi\nline\"\nz\n",
		"token,owner\n",
		"{\"token\": \"a\"}\n\nnot json\n{\"token\": \"b\", \"metadata\": {}}\n",
		"\ufefftoken\nx\n",
		"token,token\n",
		"",
	} {
		f.Add(seed, true)
		f.Add(seed, false)
	}
	f.Fuzz(func(t *testing.T, data string, asCSV bool) {
		lines := strings.Count(data, "\n") + 1
		im := &importer{name: "f", batchSize: maxBatchKeys, read: &countingReader{r: strings.NewReader(data)}}
		var err error
		if asCSV {
			err = im.readCSV(context.Background())
		} else {
			err = im.readJSONLines(context.Background())
		}
		_ = err // a fatal error is fine; what was queued must still be sound
		last := 0
		for i, e := range im.entries {
			var obj map[string]json.RawMessage
			if json.Unmarshal(e, &obj) != nil || !bytes.HasPrefix(bytes.TrimSpace(e), []byte("{")) {
				t.Fatalf("entry %d is not a JSON object: %q", i, e)
			}
			if l := im.lines[i]; l <= last || l > lines {
				t.Fatalf("entry %d on line %d (previous %d, file has %d)", i, l, last, lines)
			}
			last = im.lines[i]
		}
		for _, p := range im.localBad {
			if p.line < 1 || p.line > lines || p.msg == "" {
				t.Fatalf("problem %+v in a file of %d lines", p, lines)
			}
		}
	})
}
