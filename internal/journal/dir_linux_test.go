package journal

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Attack (issue 37, 4): a --journal-dir anyone can write into (mode 1777,
// or owned by another user) was swept as normal, so whoever could write
// there made root undo whatever a planted journal named. Sweep and Create
// now refuse such a directory, saying why, and the journals in it stay.
func TestSweepAndCreateRefuseDirOthersCanWrite(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, dir string)
		want  string
	}{
		{"mode 1777", func(t *testing.T, dir string) {
			if err := os.Chmod(dir, 0o1777|os.ModeSticky); err != nil {
				t.Fatal(err)
			}
		}, "writable by group or others"},
		{"mode 0770", func(t *testing.T, dir string) {
			if err := os.Chmod(dir, 0o770); err != nil {
				t.Fatal(err)
			}
		}, "writable by group or others"},
		{"another owner", func(t *testing.T, dir string) {
			if os.Geteuid() != 0 {
				t.Skip("chown needs root")
			}
			if err := os.Chown(dir, 65534, 65534); err != nil {
				t.Fatal(err)
			}
		}, "owned by uid 65534"},
		{"a symlink", func(t *testing.T, dir string) {
			real := dir + ".real"
			if err := os.Rename(dir, real); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(real, dir); err != nil {
				t.Fatal(err)
			}
		}, "not a directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "journals")
			j := create(t, dir, "latlab-aaaaaa")
			if err := j.Record(Entry{Kind: "netns", Name: "latlab-aaaaaa-x"}); err != nil {
				t.Fatal(err)
			}
			j.f.Close() // its owner is gone
			tc.setup(t, dir)
			var r recorder
			res, err := Sweep(dir, SweepOptions{Handlers: r.handlers("netns")})
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "refusing") {
				t.Errorf("Sweep: %v, want a refusal saying %q", err, tc.want)
			}
			if len(r.undone()) != 0 || len(res.Journals) != 0 {
				t.Errorf("Sweep undid %v, removed %v in a refused dir", r.undone(), res.Journals)
			}
			if _, err := os.Stat(j.Path()); err != nil {
				t.Errorf("journal gone after a refused sweep: %v", err)
			}
			if _, err := Create(dir, "latlab-bbbbbb", "test"); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Create: %v, want a refusal saying %q", err, tc.want)
			}
		})
	}
}
