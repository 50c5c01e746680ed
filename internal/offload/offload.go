package offload

import (
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/latlab/latlab/internal/netns"
)

// Sentinel errors, wrapped with %w: test them with errors.Is.
var (
	// ErrNotSupported: the platform, kernel or driver lacks the operation
	// (netns.ErrNotSupported, so errors.Is works across packages).
	ErrNotSupported = netns.ErrNotSupported
	// ErrNoDevice: the device does not exist in the namespace.
	ErrNoDevice = errors.New("no such device")
	// ErrUnknownFeature: a feature name neither the kernel nor ethtool knows.
	ErrUnknownFeature = errors.New("unknown feature")
)

// State is one feature's state as ethtool -k shows it.
type State struct {
	// Active: the feature is on now.
	Active bool `json:"active"`
	// Fixed: it cannot be changed on this device ("[fixed]").
	Fixed bool `json:"fixed"`
	// Requested: the wanted state. It differs from Active when the kernel
	// holds the feature back, e.g. TSO requested on while tx checksumming
	// is off ("[requested on]").
	Requested bool `json:"requested"`
}

// Feature is one device feature.
type Feature struct {
	// Name is ethtool's name: the legacy long name where ethtool -k shows
	// one (generic-receive-offload for rx-gro), otherwise the kernel's.
	Name string `json:"name"`
	// Kernel is the kernel's name (the ETH_SS_FEATURES string).
	Kernel string `json:"kernel"`
	State
}

// Features lists a device's features in the kernel's order.
type Features []Feature

// Get returns the feature by ethtool or kernel name.
func (fs Features) Get(name string) (Feature, bool) {
	for _, f := range fs {
		if f.Name == name || f.Kernel == name {
			return f, true
		}
	}
	return Feature{}, false
}

// Map returns the features keyed by ethtool's name.
func (fs Features) Map() map[string]State {
	m := make(map[string]State, len(fs))
	for _, f := range fs {
		m[f.Name] = f.State
	}
	return m
}

// Group is one line of ethtool -k: a single feature (Members has one
// element named Name) or one of ethtool's multi-feature aliases
// (tx-checksumming, scatter-gather, tcp-segmentation-offload) with the
// features it covers, shown indented.
type Group struct {
	Name    string
	Members []Feature
}

// Single reports whether the group is one feature shown on its own line.
func (g Group) Single() bool { return len(g.Members) == 1 && g.Members[0].Name == g.Name }

// Active reports whether any member is on (ethtool's group state).
func (g Group) Active() bool {
	for _, f := range g.Members {
		if f.Active {
			return true
		}
	}
	return false
}

// Layout returns the features in ethtool -k's order: its legacy names
// first (grouped where one covers several features), then the rest in
// kernel order.
func (fs Features) Layout() []Group {
	used := make([]bool, len(fs))
	var out []Group
	for _, a := range aliases {
		var g Group
		for i, f := range fs {
			if !used[i] && a.matches(f.Kernel) {
				g.Members = append(g.Members, f)
				used[i] = true
			}
		}
		switch len(g.Members) {
		case 0:
			continue
		case 1:
			g.Name = g.Members[0].Name
		default:
			g.Name = a.long
		}
		out = append(out, g)
	}
	for i, f := range fs {
		if !used[i] {
			out = append(out, Group{Name: f.Name, Members: []Feature{f}})
		}
	}
	return out
}

// String formats a state as ethtool -k does: "on", "off [fixed]",
// "off [requested on]".
func (s State) String() string { return stateString(s) }

// Params holds numeric ethtool settings keyed by ethtool's parameter names
// (ethtool -C/-G/-L spelling: rx-usecs, adaptive-rx, rx, tx-max, combined).
// Booleans are 0 or 1. Only what the driver reports is present.
type Params map[string]uint32

// Coalesce is interrupt coalescing (ethtool -c): rx-usecs, rx-frames,
// adaptive-rx, tx-usecs...
type Coalesce = Params

// Rings is ring sizes (ethtool -g): rx, tx, rx-max, tx-max...
type Rings = Params

// Channels is queue counts (ethtool -l): rx, tx, combined, and their -max.
type Channels = Params

// Info is everything Show reports about a device. A nil map means the
// driver does not support that query.
type Info struct {
	NetNS    string   `json:"netns,omitempty"`
	Dev      string   `json:"dev"`
	Backend  string   `json:"backend"` // "netlink" or "ioctl"
	Features Features `json:"features"`
	Coalesce Coalesce `json:"coalesce"`
	Rings    Rings    `json:"rings"`
	Channels Channels `json:"channels"`
}

// Setting is one requested change: a feature name or alias, on or off.
type Setting struct {
	Name string
	On   bool
}

func (s Setting) String() string { return s.Name + "=" + onOff(s.On) }

// ParseSettings parses "tso=off gro=on" style arguments. "tso off" pairs
// (ethtool -K syntax) are accepted too.
func ParseSettings(args []string) ([]Setting, error) {
	var out []Setting
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, val, ok := strings.Cut(a, "=")
		if !ok {
			if i+1 >= len(args) {
				return nil, fmt.Errorf("%q: want NAME=on or NAME=off", a)
			}
			i++
			val = args[i]
		}
		on, err := parseOnOff(val)
		if err != nil || name == "" {
			return nil, fmt.Errorf("%q: want NAME=on or NAME=off", a)
		}
		out = append(out, Setting{Name: name, On: on})
	}
	return out, nil
}

func parseOnOff(s string) (bool, error) {
	switch strings.ToLower(s) {
	case "on", "1", "true", "yes":
		return true, nil
	case "off", "0", "false", "no":
		return false, nil
	}
	return false, fmt.Errorf("%q is not on or off", s)
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// Change is one feature that moved.
type Change struct {
	Name string `json:"name"`
	From bool   `json:"from"`
	To   bool   `json:"to"`
}

// Refusal is one requested feature the device did not take.
type Refusal struct {
	Name   string `json:"name"`
	Want   bool   `json:"want"`
	Active bool   `json:"active"`
	Reason string `json:"reason"`
}

// SetResult reports what a Set did, from a re-read of the device.
type SetResult struct {
	NetNS string `json:"netns,omitempty"`
	Dev   string `json:"dev"`
	// Changed: requested, and now in the requested state.
	Changed []Change `json:"changed"`
	// Unchanged: requested, and already in the requested state.
	Unchanged []string `json:"unchanged"`
	// Refused: requested, but not in the requested state afterwards.
	Refused []Refusal `json:"refused"`
	// Dependent: not requested, but moved with the request (turning off
	// tx checksumming drops TSO, for instance).
	Dependent []Change `json:"dependent"`
}

// SnapshotVersion is the version of the Snapshot JSON layout.
const SnapshotVersion = 1

// Snapshot is a device's restorable state. It is plain JSON so a journal
// can write it to disk before any change and a later process can restore
// it after the changer was killed.
type Snapshot struct {
	Version int       `json:"version"`
	NetNS   string    `json:"netns,omitempty"` // path; "" is the caller's namespace
	Dev     string    `json:"dev"`
	Taken   time.Time `json:"taken"`
	// Features keyed by the kernel's feature name (stable across ethtool
	// versions' display names).
	Features map[string]State `json:"features"`
	// Coalesce is nil when the driver has no coalescing settings.
	Coalesce Coalesce `json:"coalesce,omitempty"`
}

// Marshal returns the snapshot as indented JSON.
func (s *Snapshot) Marshal() ([]byte, error) { return json.MarshalIndent(s, "", "  ") }

// UnmarshalSnapshot parses a snapshot written by Marshal.
func UnmarshalSnapshot(b []byte) (*Snapshot, error) {
	var s Snapshot
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("parse offload snapshot: %w", err)
	}
	if s.Version != SnapshotVersion {
		return nil, fmt.Errorf("parse offload snapshot: version %d, want %d", s.Version, SnapshotVersion)
	}
	if s.Dev == "" {
		return nil, errors.New("parse offload snapshot: no device")
	}
	return &s, nil
}

// Mismatch is one setting Restore could not bring back.
type Mismatch struct {
	What string `json:"what"` // feature (kernel name) or coalesce parameter
	Want string `json:"want"`
	Got  string `json:"got"`
}

func (m Mismatch) String() string { return fmt.Sprintf("%s: want %s, got %s", m.What, m.Want, m.Got) }

// RestoreResult reports a Restore.
type RestoreResult struct {
	// Restored lists what was set back.
	Restored []string `json:"restored"`
	// Failed lists what still differs from the snapshot.
	Failed []Mismatch `json:"failed"`
}

// ---------------------------------------------------------------------------
// Feature names.

// alias is one of ethtool's legacy feature names: a short and a long name
// for the kernel features matching a glob (ethtool.c off_flag_def).
type alias struct{ short, long, pattern string }

var aliases = []alias{
	{"rx", "rx-checksumming", "rx-checksum"},
	{"tx", "tx-checksumming", "tx-checksum-*"},
	{"sg", "scatter-gather", "tx-scatter-gather*"},
	{"tso", "tcp-segmentation-offload", "tx-tcp*-segmentation"},
	{"ufo", "udp-fragmentation-offload", "tx-udp-fragmentation"},
	{"gso", "generic-segmentation-offload", "tx-generic-segmentation"},
	{"gro", "generic-receive-offload", "rx-gro"},
	{"lro", "large-receive-offload", "rx-lro"},
	{"rxvlan", "rx-vlan-offload", "rx-vlan-hw-parse"},
	{"txvlan", "tx-vlan-offload", "tx-vlan-hw-insert"},
	{"ntuple", "ntuple-filters", "rx-ntuple-filter"},
	{"rxhash", "receive-hashing", "rx-hashing"},
}

func (a alias) matches(kernel string) bool {
	ok, _ := path.Match(a.pattern, kernel)
	return ok
}

// displayNames returns ethtool -k's name for each kernel feature: an
// alias's long name when the alias covers exactly that one feature.
func displayNames(kernel []string) []string {
	out := make([]string, len(kernel))
	copy(out, kernel)
	for _, a := range aliases {
		idx := -1
		n := 0
		for i, k := range kernel {
			if k != "" && a.matches(k) {
				idx = i
				n++
			}
		}
		if n == 1 {
			out[idx] = a.long
		}
	}
	return out
}

// expand resolves one name against the kernel's feature names and returns
// the indexes it covers: a kernel name, ethtool's display name, or an alias
// (short or long) expanding to every kernel feature its glob matches.
func expand(kernel []string, name string) ([]int, error) {
	for i, k := range kernel {
		if k != "" && k == name {
			return []int{i}, nil
		}
	}
	for _, a := range aliases {
		if name != a.short && name != a.long {
			continue
		}
		var idx []int
		for i, k := range kernel {
			if k != "" && a.matches(k) {
				idx = append(idx, i)
			}
		}
		if len(idx) == 0 {
			return nil, fmt.Errorf("%s (%s): this kernel has no feature matching %s: %w", name, a.long, a.pattern, ErrNotSupported)
		}
		return idx, nil
	}
	msg := fmt.Sprintf("%q: %v", name, ErrUnknownFeature)
	if s := Suggest(name, validNames(kernel)); len(s) > 0 {
		msg += "; did you mean " + strings.Join(s, ", ") + "?"
	}
	return nil, &unknownError{msg}
}

type unknownError struct{ msg string }

func (e *unknownError) Error() string { return e.msg }
func (e *unknownError) Unwrap() error { return ErrUnknownFeature }

// validNames lists every name expand accepts.
func validNames(kernel []string) []string {
	seen := map[string]bool{}
	var out []string
	add := func(s string) {
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	for _, k := range kernel {
		add(k)
	}
	for _, a := range aliases {
		for _, k := range kernel {
			if k != "" && a.matches(k) {
				add(a.short)
				add(a.long)
				break
			}
		}
	}
	return out
}

// resolve expands settings into requested states by feature index. Later
// settings override earlier ones. Every unknown name is reported at once.
func resolve(kernel []string, settings []Setting) (map[int]bool, error) {
	req := map[int]bool{}
	var errs []error
	for _, s := range settings {
		idx, err := expand(kernel, s.Name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, i := range idx {
			req[i] = s.On
		}
	}
	return req, errors.Join(errs...)
}

// Suggest returns up to three of candidates closest to name, or none when
// nothing is close. Closeness is the edit distance less the length of the
// common prefix (people mistype the end of a name more than its start); a
// candidate counts when it is within a third of name's length in edits,
// shares a prefix of four or more, or contains name.
func Suggest(name string, candidates []string) []string {
	type scored struct {
		s     string
		score int
	}
	limit := max(2, len(name)/3)
	var best []scored
	for _, c := range candidates {
		d := editDistance(name, c)
		p := commonPrefix(name, c)
		if d > limit && p < 4 && !(len(name) >= 3 && strings.Contains(c, name)) {
			continue
		}
		best = append(best, scored{c, d - p})
	}
	sort.SliceStable(best, func(i, j int) bool { return best[i].score < best[j].score })
	var out []string
	for i := 0; i < len(best) && i < 3; i++ {
		out = append(out, best[i].s)
	}
	return out
}

func commonPrefix(a, b string) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

// editDistance is the optimal string alignment distance between a and b:
// Levenshtein plus adjacent transpositions ("tos" is one edit from "tso").
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}

// ---------------------------------------------------------------------------
// Raw feature bitmaps, as both backends return them.

// bitmap is a kernel bitset in 32-bit words, bit i in word i/32.
type bitmap []uint32

func newBitmap(n int) bitmap { return make(bitmap, (n+31)/32) }

func (b bitmap) get(i int) bool {
	return i >= 0 && i/32 < len(b) && b[i/32]&(1<<(uint(i)%32)) != 0
}

func (b bitmap) set(i int, v bool) {
	if v {
		b[i/32] |= 1 << (uint(i) % 32)
	} else {
		b[i/32] &^= 1 << (uint(i) % 32)
	}
}

// rawFeatures is what the kernel reports: names by bit index and the
// hw (changeable), wanted, active and nochange (never changeable) sets.
type rawFeatures struct {
	names                        []string
	hw, wanted, active, nochange bitmap
}

func (r *rawFeatures) fixed(i int) bool { return !r.hw.get(i) || r.nochange.get(i) }

func (r *rawFeatures) state(i int) State {
	return State{Active: r.active.get(i), Fixed: r.fixed(i), Requested: r.wanted.get(i)}
}

// features converts to the public form, skipping unnamed bits.
func (r *rawFeatures) features() Features {
	disp := displayNames(r.names)
	out := make(Features, 0, len(r.names))
	for i, k := range r.names {
		if k == "" {
			continue
		}
		out = append(out, Feature{Name: disp[i], Kernel: k, State: r.state(i)})
	}
	return out
}

func (r *rawFeatures) index(kernel string) int {
	for i, k := range r.names {
		if k == kernel {
			return i
		}
	}
	return -1
}

// classify compares the device before and after a set of requested states.
func classify(before, after *rawFeatures, req map[int]bool) *SetResult {
	res := &SetResult{Changed: []Change{}, Unchanged: []string{}, Refused: []Refusal{}, Dependent: []Change{}}
	disp := displayNames(after.names)
	idx := make([]int, 0, len(req))
	for i := range req {
		idx = append(idx, i)
	}
	sort.Ints(idx)
	for _, i := range idx {
		want := req[i]
		was, now := before.active.get(i), after.active.get(i)
		switch {
		case now == want && was == want:
			res.Unchanged = append(res.Unchanged, disp[i])
		case now == want:
			res.Changed = append(res.Changed, Change{Name: disp[i], From: was, To: now})
		default:
			reason := "the kernel did not change it"
			switch {
			case after.fixed(i):
				reason = "fixed: the device cannot change it"
			case after.wanted.get(i) == want:
				reason = "requested " + onOff(want) + ", held " + onOff(now) + " by a feature it depends on"
			}
			res.Refused = append(res.Refused, Refusal{Name: disp[i], Want: want, Active: now, Reason: reason})
		}
	}
	for i := range after.names {
		if _, ok := req[i]; ok || after.names[i] == "" {
			continue
		}
		if was, now := before.active.get(i), after.active.get(i); was != now {
			res.Dependent = append(res.Dependent, Change{Name: disp[i], From: was, To: now})
		}
	}
	return res
}

// ---------------------------------------------------------------------------
// Numeric parameters.

// param describes one ethtool netlink numeric attribute.
type param struct {
	name string
	attr uint16
	u8   bool // NLA_U8 (a boolean or small enum); otherwise NLA_U32
}

// coalesceParams are the coalescing parameters, ETHTOOL_A_COALESCE_*, in
// ethtool -c order.
var coalesceParams = []param{
	{"adaptive-rx", 11, true},
	{"adaptive-tx", 12, true},
	{"stats-block-usecs", 10, false},
	{"sample-interval", 23, false},
	{"pkt-rate-low", 13, false},
	{"pkt-rate-high", 18, false},
	{"rx-usecs", 2, false},
	{"rx-frames", 3, false},
	{"rx-usecs-irq", 4, false},
	{"rx-frames-irq", 5, false},
	{"tx-usecs", 6, false},
	{"tx-frames", 7, false},
	{"tx-usecs-irq", 8, false},
	{"tx-frames-irq", 9, false},
	{"rx-usecs-low", 14, false},
	{"rx-frames-low", 15, false},
	{"tx-usecs-low", 16, false},
	{"tx-frames-low", 17, false},
	{"rx-usecs-high", 19, false},
	{"rx-frames-high", 20, false},
	{"tx-usecs-high", 21, false},
	{"tx-frames-high", 22, false},
	{"cqe-mode-tx", 24, true},
	{"cqe-mode-rx", 25, true},
	{"tx-aggr-max-bytes", 26, false},
	{"tx-aggr-max-frames", 27, false},
	{"tx-aggr-time-usecs", 28, false},
}

// ringParams are the ring parameters, ETHTOOL_A_RINGS_*.
var ringParams = []param{
	{"rx-max", 2, false},
	{"rx-mini-max", 3, false},
	{"rx-jumbo-max", 4, false},
	{"tx-max", 5, false},
	{"rx", 6, false},
	{"rx-mini", 7, false},
	{"rx-jumbo", 8, false},
	{"tx", 9, false},
	{"rx-buf-len", 10, false},
	{"tcp-data-split", 11, true},
	{"cqe-size", 12, false},
	{"tx-push", 13, true},
	{"rx-push", 14, true},
	{"tx-push-buf-len", 15, false},
	{"tx-push-buf-len-max", 16, false},
	{"hds-thresh", 17, false},
	{"hds-thresh-max", 18, false},
}

// channelParams are the channel parameters, ETHTOOL_A_CHANNELS_*.
var channelParams = []param{
	{"rx-max", 2, false},
	{"tx-max", 3, false},
	{"other-max", 4, false},
	{"combined-max", 5, false},
	{"rx", 6, false},
	{"tx", 7, false},
	{"other", 8, false},
	{"combined", 9, false},
}

// CoalesceParamNames lists the coalescing parameters in ethtool -c order.
func CoalesceParamNames() []string { return paramNames(coalesceParams) }

// RingParamNames lists the ring parameters in ethtool -g order.
func RingParamNames() []string { return paramNames(ringParams) }

// ChannelParamNames lists the channel parameters in ethtool -l order.
func ChannelParamNames() []string { return paramNames(channelParams) }

func paramNames(ps []param) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.name
	}
	return out
}

func lookupParam(ps []param, name string) (param, bool) {
	for _, p := range ps {
		if p.name == name {
			return p, true
		}
	}
	return param{}, false
}

// checkCoalesce refuses unknown coalescing parameter names.
func checkCoalesce(c Coalesce) error {
	var errs []error
	for name := range c {
		if _, ok := lookupParam(coalesceParams, name); !ok {
			msg := fmt.Sprintf("%q: unknown coalescing parameter", name)
			if s := Suggest(name, CoalesceParamNames()); len(s) > 0 {
				msg += "; did you mean " + strings.Join(s, ", ") + "?"
			}
			errs = append(errs, errors.New(msg))
		}
	}
	return errors.Join(errs...)
}

// where formats the location for error messages: "eth0 in netns /x".
func where(netns, dev string) string {
	if netns == "" {
		return dev
	}
	return dev + " in netns " + netns
}
