package journal

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// encodeJournal writes what Read returned as a journal again: a header,
// the entries, and the kept mark.
func encodeJournal(t *testing.T, entries []Entry, kept bool) []byte {
	var b bytes.Buffer
	b.WriteString(`{"id":"latlab-fuzz","pid":1,"command":"fuzz","started":"2026-01-01T00:00:00Z"}` + "\n")
	for _, e := range entries {
		line, err := json.Marshal(e)
		if err != nil {
			t.Skipf("entry %+v does not marshal: %v", e, err)
		}
		b.Write(line)
		b.WriteByte('\n')
	}
	if kept {
		b.WriteString(`{"kind":"kept"}` + "\n")
	}
	return b.Bytes()
}

// FuzzRead: a journal is read back after a crash, so it may hold anything
// a dying process or a full disk left. Read returns an error and no
// entries, or entries that survive being written and read again.
func FuzzRead(f *testing.F) {
	ok := `{"kind":"netns","name":"latlab-abc123-a"}` + "\n"
	for _, s := range []string{
		"", header, strings.TrimSuffix(header, "\n"), `{"id":"latlab-ab`,
		header + ok + `{"kind":"netns","na`,
		header + ok + "\x00\x00\x00",
		header + "not json\n" + ok,
		header + "\n" + ok,
		ok + ok,
		`{"id":"x","kind":"netns"}` + "\n" + ok,
		header + `{"kind":"netns"} {"kind":"netns"}` + "\n",
		header + `{"kind":"offload","name":"eth0","ns":"/run/netns/x","data":{"version":1,"dev":"eth0","features":{"rx-gro":{"active":true}}},"time":"2026-01-01T00:00:01Z"}` + "\n" +
			`{"kind":"undone","undoes":"offload","name":"eth0","ns":"/run/netns/x"}` + "\n" +
			`{"kind":"undone","undoes":"netns","name":"latlab-nothing"}` + "\n" + ok + `{"kind":"kept"}` + "\n",
	} {
		f.Add([]byte(s))
	}
	// Read is given the journal's file, as Sweep does.
	path := filepath.Join(f.TempDir(), "fuzz.journal")
	file, err := os.Create(path)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { file.Close() })
	read := func(t *testing.T, b []byte) ([]Entry, bool, error) {
		if err := file.Truncate(0); err != nil {
			t.Fatal(err)
		}
		if _, err := file.WriteAt(b, 0); err != nil {
			t.Fatal(err)
		}
		if _, err := file.Seek(0, 0); err != nil {
			t.Fatal(err)
		}
		return Read(file)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		entries, kept, err := read(t, b)
		if err != nil {
			if entries != nil || kept {
				t.Fatalf("error %v returned with %d entries, kept %v", err, len(entries), kept)
			}
			return
		}
		for _, e := range entries {
			if e.Kind == "" || e.Kind == kindKept || e.Kind == kindUndone {
				t.Fatalf("entry of kind %q returned", e.Kind)
			}
		}
		j1 := encodeJournal(t, entries, kept)
		back, kept2, err := read(t, j1)
		if err != nil || kept2 != kept || len(back) != len(entries) {
			t.Fatalf("re-written journal read as %d entries, kept %v, %v; want %d, %v\n%s", len(back), kept2, err, len(entries), kept, j1)
		}
		if j2 := encodeJournal(t, back, kept2); !bytes.Equal(j1, j2) {
			t.Fatalf("round trip differs:\n%s\n---\n%s", j1, j2)
		}
	})
}
