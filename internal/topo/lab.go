package topo

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/latlab/latlab/internal/datapath"
	"github.com/latlab/latlab/internal/journal"
)

// Prefix is the start of every namespace name latlab creates.
const Prefix = "latlab-"

// KindNetNS is the journal entry kind for a named network namespace.
const KindNetNS = "netns"

// KindCgroup is the journal entry kind for a lab's cgroup (Name: its
// path), which sockmap programs attach to.
const KindCgroup = "cgroup"

// NAT backends.
const (
	NATAuto     = "auto"
	NATNftables = "nftables"
	NATIptables = "iptables"
)

// ModeStatus says whether a mode could be built.
type ModeStatus string

// Mode statuses.
const (
	StatusOK      ModeStatus = "ok"
	StatusSkipped ModeStatus = "skipped" // the kernel lacks something (ErrNotSupported)
	StatusFailed  ModeStatus = "failed"
)

// ModeState is the runtime state of one mode of a built lab.
type ModeState struct {
	Mode   Mode
	Status ModeStatus
	Reason string // why it was skipped or failed
	// ClientNS and ServerNS are the real namespace names (under NetNSDir).
	ClientNS, ServerNS string
	// Programs are the mode's eBPF programs as attached: which, where, at
	// which hook and how (TCX or tc).
	Programs []datapath.Info
}

// BuildOptions configure Build.
type BuildOptions struct {
	// Prefix names this lab's namespaces (Prefix+"-"+logical name). Empty
	// picks "latlab-" plus 6 random hex digits.
	Prefix string
	// Modes selects modes by name; nil builds every mode.
	Modes []string
	// Journal receives every namespace before it is created. Required.
	Journal *journal.Journal
	// NAT is the NAT backend: NATAuto (nftables over netlink, falling back
	// to the iptables command), NATNftables or NATIptables.
	NAT string
}

// Lab is a built topology: the runtime state that Build returns.
type Lab struct {
	Topology *Topology
	Prefix   string
	// Modes in topology order (only the selected ones).
	Modes []*ModeState
	// NATBackend is the backend that installed the NAT rules (empty when
	// the lab has none).
	NATBackend string
	// BuildTime is how long Build took.
	BuildTime time.Duration

	journal    *journal.Journal
	namespaces []string // real names, in creation order
	// programs are the attached eBPF programs (base's and the modes'),
	// closed at Teardown.
	programs []*datapath.Attached
	// cgroup is the lab's own cgroup (sockmap programs), this process's
	// while the lab is up; prevCgroup is where the process was before.
	cgroup, prevCgroup string
}

// Programs lists the lab's attached eBPF programs (their counters:
// Counts).
func (l *Lab) Programs() []*datapath.Attached { return slices.Clone(l.programs) }

// Iface is one interface of a built lab.
type Iface struct {
	NS   string // real namespace name
	Name string
	Kind string // netlink type: veth, bridge, macvlan, vxlan...
}

// NewPrefix returns "latlab-" plus 6 random hex digits.
func NewPrefix() string {
	var b [3]byte
	rand.Read(b[:])
	return Prefix + hex.EncodeToString(b[:])
}

// NSName returns the real name of a logical namespace.
func (l *Lab) NSName(logical string) string { return l.Prefix + "-" + logical }

// NSPath returns the path of a logical namespace.
func (l *Lab) NSPath(logical string) string { return NetNSPath(l.NSName(logical)) }

// Namespaces lists the real names of the namespaces created, in order.
func (l *Lab) Namespaces() []string { return append([]string(nil), l.namespaces...) }

// Mode returns the named mode's state.
func (l *Lab) Mode(name string) *ModeState {
	for _, m := range l.Modes {
		if m.Mode.Name == name {
			return m
		}
	}
	return nil
}

// UndoHandlers returns the journal undo handlers for what topo creates.
func UndoHandlers() map[string]journal.Undo {
	return map[string]journal.Undo{
		KindNetNS: func(e journal.Entry) error { return DeleteNetNS(e.Name) },
		KindCgroup: func(e journal.Entry) error {
			if !strings.HasPrefix(filepath.Base(e.Name), Prefix) {
				return fmt.Errorf("remove cgroup %s: not a latlab cgroup (refused)", e.Name)
			}
			return datapath.RemoveCgroup(e.Name)
		},
	}
}
