package journal

import (
	"errors"
	"strings"
	"testing"
)

const header = `{"id":"latlab-abc123","pid":1,"command":"test","started":"2026-01-01T00:00:00Z"}` + "\n"

func names(es []Entry) string {
	var out []string
	for _, e := range es {
		out = append(out, e.Kind+":"+e.Name)
	}
	return strings.Join(out, ",")
}

// A torn last line (no newline: a crash mid-write) is skipped; the lines
// before it count.
func TestReadSkipsTornLastLine(t *testing.T) {
	for _, c := range []struct {
		name, text, want string
	}{
		{"empty file", "", ""},
		{"torn header", `{"id":"latlab-ab`, ""},
		{"header only", header, ""},
		{"header without newline", strings.TrimSuffix(header, "\n"), ""},
		{"torn entry", header + `{"kind":"netns","name":"latlab-abc123-a"}` + "\n" + `{"kind":"netns","na`, "netns:latlab-abc123-a"},
		{"complete last entry without newline", header + `{"kind":"netns","name":"latlab-abc123-a"}`, "netns:latlab-abc123-a"},
		{"torn garbage", header + `{"kind":"netns","name":"latlab-abc123-a"}` + "\n\x00\x00\x00", "netns:latlab-abc123-a"},
	} {
		es, kept, err := Read(strings.NewReader(c.text))
		if err != nil || kept || names(es) != c.want {
			t.Errorf("%s: entries %q kept %v err %v; want %q", c.name, names(es), kept, err, c.want)
		}
	}
}

// Every bad line other than a torn last one is an error, so a damaged
// journal is never half undone.
func TestReadRefusesBadLines(t *testing.T) {
	ok := `{"kind":"netns","name":"latlab-abc123-a"}` + "\n"
	for _, c := range []struct {
		name, text, line string
	}{
		{"bad line in the middle", header + "not json\n" + ok, "line 2"},
		{"bad complete last line", header + ok + "{\"kind\":\n", "line 3"},
		{"blank line", header + "\n" + ok, "line 2"},
		{"no header", ok + ok, "line 1"},
		{"header is an entry", `{"id":"x","kind":"netns"}` + "\n" + ok, "line 1"},
		{"entry without a kind", header + `{"name":"latlab-abc123-a"}` + "\n", "line 2"},
		{"tombstone without undoes", header + ok + `{"kind":"undone","name":"latlab-abc123-a"}` + "\n", "line 3"},
		{"undoes on an object entry", header + `{"kind":"netns","undoes":"netns"}` + "\n", "line 2"},
		{"trailing data", header + `{"kind":"netns"} {"kind":"netns"}` + "\n", "line 2"},
		{"a JSON array", header + `[{"kind":"netns"}]` + "\n", "line 2"},
	} {
		es, _, err := Read(strings.NewReader(c.text))
		if err == nil || !strings.Contains(err.Error(), c.line) {
			t.Errorf("%s: entries %q err %v; want an error about %s", c.name, names(es), err, c.line)
		}
		if es != nil {
			t.Errorf("%s: entries %q returned with the error", c.name, names(es))
		}
	}
	long := header + `{"kind":"netns","name":"` + strings.Repeat("x", maxLine) + `"}` + "\n"
	if _, _, err := Read(strings.NewReader(long)); err == nil || !strings.Contains(err.Error(), "longer than") {
		t.Errorf("a line over %d bytes: %v", maxLine, err)
	}
}

// Tombstones drop the newest earlier entry of the same kind, name and
// namespace, and nothing else; "kept" is reported.
func TestReadFoldsTombstones(t *testing.T) {
	text := header +
		`{"kind":"offload","name":"eth0","ns":"/run/netns/x"}` + "\n" +
		`{"kind":"offload","name":"eth0","ns":"/run/netns/y"}` + "\n" +
		`{"kind":"netns","name":"latlab-abc123-a"}` + "\n" +
		`{"kind":"offload","name":"eth1"}` + "\n" +
		`{"kind":"offload","name":"eth1"}` + "\n" +
		`{"kind":"undone","undoes":"offload","name":"eth0","ns":"/run/netns/x"}` + "\n" +
		`{"kind":"undone","undoes":"offload","name":"eth1"}` + "\n" +
		`{"kind":"undone","undoes":"netns","name":"latlab-nothing"}` + "\n" + // names nothing: ignored
		`{"kind":"kept"}` + "\n"
	es, kept, err := Read(strings.NewReader(text))
	if err != nil || !kept {
		t.Fatalf("kept %v err %v", kept, err)
	}
	if got, want := names(es), "offload:eth0,netns:latlab-abc123-a,offload:eth1"; got != want {
		t.Fatalf("entries %q, want %q", got, want)
	}
	if es[0].NS != "/run/netns/y" {
		t.Errorf("the wrong eth0 was dropped: left %+v", es[0])
	}
}

// RequirePrefix refuses anything that is not a plain name latlab gives,
// before the handler runs.
func TestRequirePrefix(t *testing.T) {
	called := 0
	u := RequirePrefix("latlab-", func(Entry) error { called++; return nil })
	if err := u(Entry{Kind: "netns", Name: "latlab-abc123-a"}); err != nil || called != 1 {
		t.Fatalf("a latlab name: %v (called %d)", err, called)
	}
	for _, n := range []string{"", "eth0", "latlab-", "Latlab-abc", "xlatlab-abc", "latlab-../etc", "latlab-a/b", "latlab-..", `latlab-a\b`} {
		err := u(Entry{Kind: "netns", Name: n})
		if err == nil || !strings.Contains(err.Error(), "refusing") {
			t.Errorf("%q: %v, want a refusal", n, err)
		}
	}
	if called != 1 {
		t.Errorf("the handler ran %d times for refused names", called-1)
	}
	boom := errors.New("boom")
	if err := RequirePrefix("latlab-", func(Entry) error { return boom })(Entry{Name: "latlab-x"}); !errors.Is(err, boom) {
		t.Errorf("the handler's own error is lost: %v", err)
	}
}
