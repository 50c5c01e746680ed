package offload

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
)

// Fuzz targets for what users and journals hand the offload package:
// `latlab offload set` arguments, preset strings (flags and specs) and
// snapshots read back from a journal.

func FuzzParseSettings(f *testing.F) {
	for _, s := range []string{"tso=off gro=on lro off rx-gro-hw=1", "tso", "tso=maybe", "=on", "tx on rx OFF sg=Yes", "a=b=c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		set, err := ParseSettings(strings.Fields(s))
		if err != nil {
			return
		}
		var args []string
		for _, st := range set {
			if st.Name == "" {
				t.Fatalf("%q: setting without a name", s)
			}
			args = append(args, st.String())
		}
		back, err := ParseSettings(args)
		if err != nil || !reflect.DeepEqual(back, set) {
			t.Fatalf("%q: %v re-parsed as %v, %v", s, set, back, err)
		}
	})
}

func FuzzParsePreset(f *testing.F) {
	for _, s := range []string{"default", "all-on", "seg-off", "mine:tso=off,gro=on", "tx-checksum-ip-generic=off",
		"x:tos=off", "x:tso=maybe", "nosuch", " gro-off ", "a:b:tso=on", ":tso=on", "default;mine:tso=off,gro=on"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePreset(s)
		if err == nil {
			// A preset renders as NAME:settings (RenderSpec does), which
			// must parse back to the same preset.
			if len(p.Settings) > 0 {
				var parts []string
				for _, st := range p.Settings {
					parts = append(parts, st.String())
				}
				back, err := ParsePreset(p.Name + ":" + strings.Join(parts, ","))
				if err != nil || !reflect.DeepEqual(back, p) {
					t.Fatalf("%q: %+v rendered and re-parsed as %+v, %v", s, p, back, err)
				}
			}
		}
		ps, err := ParsePresets(s)
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, p := range ps {
			if seen[p.Name] {
				t.Fatalf("%q: preset %q twice", s, p.Name)
			}
			seen[p.Name] = true
		}
	})
}

func FuzzUnmarshalSnapshot(f *testing.F) {
	f.Add([]byte(`{"version":1,"netns":"/var/run/netns/latlab-x","dev":"veth0","taken":"2025-01-02T03:04:05Z",` +
		`"features":{"rx-gro":{"active":true,"fixed":false,"requested":true},"rx-lro":{"active":false,"fixed":true,"requested":false}},` +
		`"coalesce":{"rx-usecs":8}}`))
	f.Add([]byte(`{"version":99,"dev":"x"}`))
	f.Add([]byte(`{"version":1,"dev":"x","taken":"2025-01-02T03:04:05+14:00","features":null,"coalesce":{}}`))
	f.Add([]byte(`{"version":1}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := UnmarshalSnapshot(b)
		if err != nil {
			return
		}
		if s.Dev == "" || s.Version != SnapshotVersion {
			t.Fatalf("accepted %+v", s)
		}
		// A journal writes Marshal's bytes and reads them back later.
		m1, err := s.Marshal()
		if err != nil {
			t.Fatalf("accepted snapshot does not marshal: %v", err)
		}
		s2, err := UnmarshalSnapshot(m1)
		if err != nil {
			t.Fatalf("marshalled snapshot refused: %v\n%s", err, m1)
		}
		m2, err := s2.Marshal()
		if err != nil || !bytes.Equal(m1, m2) {
			t.Fatalf("round trip differs (%v):\n%s\n%s", err, m1, m2)
		}
	})
}
