package offload

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// Part of Linux 6.18's ETH_SS_FEATURES, in kernel order, with a hole.
var kernelNames = []string{
	"tx-scatter-gather", "tx-checksum-ipv4", "tx-checksum-ip-generic", "tx-checksum-ipv6",
	"highdma", "tx-scatter-gather-fraglist", "tx-vlan-hw-insert", "rx-vlan-hw-parse",
	"", "tx-generic-segmentation", "rx-gro", "rx-lro",
	"tx-tcp-segmentation", "tx-tcp-ecn-segmentation", "tx-tcp-mangleid-segmentation", "tx-tcp6-segmentation",
	"tx-udp-segmentation", "tx-tcp-accecn-segmentation", "tx-checksum-fcoe-crc", "tx-checksum-sctp",
	"rx-ntuple-filter", "rx-hashing", "rx-checksum", "rx-gro-hw", "rx-gro-list",
}

func namesOf(idx []int) []string {
	var out []string
	for _, i := range idx {
		out = append(out, kernelNames[i])
	}
	return out
}

func TestOffloadAliasExpansion(t *testing.T) {
	tests := []struct {
		name string
		want []string
	}{
		{"tso", []string{"tx-tcp-segmentation", "tx-tcp-ecn-segmentation", "tx-tcp-mangleid-segmentation", "tx-tcp6-segmentation", "tx-tcp-accecn-segmentation"}},
		{"tcp-segmentation-offload", []string{"tx-tcp-segmentation", "tx-tcp-ecn-segmentation", "tx-tcp-mangleid-segmentation", "tx-tcp6-segmentation", "tx-tcp-accecn-segmentation"}},
		{"gso", []string{"tx-generic-segmentation"}},
		{"generic-segmentation-offload", []string{"tx-generic-segmentation"}},
		{"gro", []string{"rx-gro"}},
		{"generic-receive-offload", []string{"rx-gro"}},
		{"lro", []string{"rx-lro"}},
		{"rx", []string{"rx-checksum"}},
		{"tx", []string{"tx-checksum-ipv4", "tx-checksum-ip-generic", "tx-checksum-ipv6", "tx-checksum-fcoe-crc", "tx-checksum-sctp"}},
		{"tx-checksumming", []string{"tx-checksum-ipv4", "tx-checksum-ip-generic", "tx-checksum-ipv6", "tx-checksum-fcoe-crc", "tx-checksum-sctp"}},
		{"sg", []string{"tx-scatter-gather", "tx-scatter-gather-fraglist"}},
		{"rxvlan", []string{"rx-vlan-hw-parse"}},
		{"txvlan", []string{"tx-vlan-hw-insert"}},
		{"ntuple", []string{"rx-ntuple-filter"}},
		{"rxhash", []string{"rx-hashing"}},
		// Kernel names are taken as they are, even where an alias matches.
		{"rx-gro-hw", []string{"rx-gro-hw"}},
		{"tx-checksum-ip-generic", []string{"tx-checksum-ip-generic"}},
		{"tx-tcp6-segmentation", []string{"tx-tcp6-segmentation"}},
	}
	for _, tt := range tests {
		idx, err := expand(kernelNames, tt.name)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if got := namesOf(idx); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
	// ufo: the kernel dropped UDP fragmentation offload.
	if _, err := expand(kernelNames, "ufo"); !errors.Is(err, ErrNotSupported) {
		t.Errorf("ufo: %v, want ErrNotSupported", err)
	}
	// The empty name of a hole is no feature.
	if _, err := expand(kernelNames, ""); !errors.Is(err, ErrUnknownFeature) {
		t.Errorf("empty name: %v", err)
	}
}

func TestOffloadDisplayNames(t *testing.T) {
	d := displayNames(kernelNames)
	for kernel, want := range map[string]string{
		"rx-gro":                  "generic-receive-offload",
		"rx-lro":                  "large-receive-offload",
		"tx-generic-segmentation": "generic-segmentation-offload",
		"rx-checksum":             "rx-checksumming",
		"rx-vlan-hw-parse":        "rx-vlan-offload",
		"rx-hashing":              "receive-hashing",
		// Members of multi-feature aliases keep the kernel's name.
		"tx-tcp-segmentation":    "tx-tcp-segmentation",
		"tx-checksum-ip-generic": "tx-checksum-ip-generic",
		"tx-scatter-gather":      "tx-scatter-gather",
		"rx-gro-hw":              "rx-gro-hw",
	} {
		i := (&rawFeatures{names: kernelNames}).index(kernel)
		if d[i] != want {
			t.Errorf("%s shown as %q, want %q", kernel, d[i], want)
		}
	}
	// ethtool -k's layout: legacy names first, groups with their members.
	var gs []string
	for _, g := range (&rawFeatures{names: kernelNames, hw: newBitmap(len(kernelNames)), wanted: newBitmap(len(kernelNames)), active: newBitmap(len(kernelNames)), nochange: newBitmap(len(kernelNames))}).features().Layout() {
		if !g.Single() {
			gs = append(gs, g.Name+":"+strings.Join(func() []string {
				var m []string
				for _, f := range g.Members {
					m = append(m, f.Name)
				}
				return m
			}(), ","))
		} else {
			gs = append(gs, g.Name)
		}
	}
	want := []string{
		"rx-checksumming",
		"tx-checksumming:tx-checksum-ipv4,tx-checksum-ip-generic,tx-checksum-ipv6,tx-checksum-fcoe-crc,tx-checksum-sctp",
		"scatter-gather:tx-scatter-gather,tx-scatter-gather-fraglist",
		"tcp-segmentation-offload:tx-tcp-segmentation,tx-tcp-ecn-segmentation,tx-tcp-mangleid-segmentation,tx-tcp6-segmentation,tx-tcp-accecn-segmentation",
		"generic-segmentation-offload", "generic-receive-offload", "large-receive-offload",
		"rx-vlan-offload", "tx-vlan-offload", "ntuple-filters", "receive-hashing",
		"highdma", "tx-udp-segmentation", "rx-gro-hw", "rx-gro-list",
	}
	if !reflect.DeepEqual(gs, want) {
		t.Errorf("layout\n got %q\nwant %q", gs, want)
	}
}

func TestOffloadSuggestions(t *testing.T) {
	tests := []struct {
		name string
		want string // first suggestion
	}{
		{"tos", "tso"},
		{"gor", "gro"},
		{"tx-tcp-segmentaton", "tx-tcp-segmentation"},
		{"generic-recieve-offload", "generic-receive-offload"},
		{"rx-gro-hardware", "rx-gro-hw"},
		{"lr0", "lro"},
	}
	for _, tt := range tests {
		_, err := expand(kernelNames, tt.name)
		if !errors.Is(err, ErrUnknownFeature) {
			t.Errorf("%s: %v, want ErrUnknownFeature", tt.name, err)
			continue
		}
		s := Suggest(tt.name, validNames(kernelNames))
		if len(s) == 0 || s[0] != tt.want {
			t.Errorf("%s: suggestions %v, want %s first", tt.name, s, tt.want)
		}
		if !strings.Contains(err.Error(), "did you mean "+tt.want) {
			t.Errorf("%s: error %q lacks the suggestion", tt.name, err)
		}
	}
	if s := Suggest("frobnicate", validNames(kernelNames)); len(s) != 0 {
		t.Errorf("frobnicate: suggestions %v, want none", s)
	}
	if d := editDistance("kitten", "sitting"); d != 3 {
		t.Errorf("editDistance(kitten, sitting) = %d", d)
	}
}

func TestOffloadParseSettings(t *testing.T) {
	got, err := ParseSettings([]string{"tso=off", "gro=on", "lro", "off", "rx-gro-hw=1"})
	want := []Setting{{"tso", false}, {"gro", true}, {"lro", false}, {"rx-gro-hw", true}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("got %v %v, want %v", got, err, want)
	}
	for _, bad := range [][]string{{"tso"}, {"tso=maybe"}, {"=on"}} {
		if _, err := ParseSettings(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestOffloadClassify(t *testing.T) {
	names := []string{"tx-checksum-ip-generic", "tx-tcp-segmentation", "rx-gro", "rx-lro", "tx-udp-segmentation"}
	before := &rawFeatures{names: names, hw: bitmap{0x17}, wanted: bitmap{0x13}, active: bitmap{0x13}, nochange: bitmap{0}}
	after := &rawFeatures{names: names, hw: bitmap{0x17}, wanted: bitmap{0x06}, active: bitmap{0x04}, nochange: bitmap{0}}
	// Requested: checksum off, TSO on, GRO on, LRO on. Each is its alias's
	// only member here, so ethtool shows the alias's long name.
	res := classify(before, after, map[int]bool{0: false, 1: true, 2: true, 3: true})
	want := &SetResult{
		Changed:   []Change{{"tx-checksumming", true, false}, {"generic-receive-offload", false, true}},
		Unchanged: []string{},
		Refused: []Refusal{
			{"tcp-segmentation-offload", true, false, "requested on, held off by a feature it depends on"},
			{"large-receive-offload", true, false, "fixed: the device cannot change it"},
		},
		Dependent: []Change{{"tx-udp-segmentation", true, false}},
	}
	if !reflect.DeepEqual(res, want) {
		t.Errorf("got  %+v\nwant %+v", res, want)
	}
}

func TestOffloadSnapshotJSON(t *testing.T) {
	s := &Snapshot{
		Version:  SnapshotVersion,
		NetNS:    "/var/run/netns/latlab-x",
		Dev:      "veth0",
		Taken:    time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
		Features: map[string]State{"rx-gro": {Active: true, Requested: true}, "rx-lro": {Fixed: true}},
		Coalesce: Coalesce{"rx-usecs": 8},
	}
	b, err := s.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"netns": "/var/run/netns/latlab-x"`, `"rx-gro": {`, `"fixed": true`, `"rx-usecs": 8`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("snapshot JSON lacks %s:\n%s", want, b)
		}
	}
	got, err := UnmarshalSnapshot(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, s) {
		t.Errorf("round trip: %+v, want %+v", got, s)
	}
	if _, err := UnmarshalSnapshot([]byte(`{"version":99,"dev":"x"}`)); err == nil {
		t.Errorf("unknown version accepted")
	}
}
