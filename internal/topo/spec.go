package topo

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/latlab/latlab/internal/datapath"
)

// Topology is the desired state of a lab: shared objects (the "nodes" and
// the wire between them) and named modes, each a client→server path with
// the objects only it needs. It is plain data, loadable from YAML, so users
// can describe their own; Default returns latlab's built-in one.
//
// Namespace names in a Topology are logical ("a", "c-bridge"); a built lab
// prefixes them with its own unique prefix ("latlab-3fa9c1-a"). Interface
// names are used as given (they live inside the lab's namespaces, so they
// never collide with the host's).
type Topology struct {
	Name        string `yaml:"name"`
	Description string `yaml:"description,omitempty"`
	// Base is built first; a failure there fails the whole lab.
	Base Objects `yaml:"base"`
	// Modes are built after Base, each on its own: a mode whose objects the
	// kernel cannot build is reported as skipped or failed and the others
	// go on.
	Modes []Mode `yaml:"modes"`
}

// Mode is one way of attaching the client: where it runs, where the server
// runs, and the address it dials.
type Mode struct {
	Name        string `yaml:"name"`
	Description string `yaml:"description,omitempty"`
	// Client and Server are logical namespace names.
	Client string `yaml:"client"`
	Server string `yaml:"server"`
	// Target is the IP:PORT the client dials (it may be a DNAT address
	// that differs from where the server listens).
	Target string `yaml:"target"`
	// Listen is the server's listen address inside Server (default :7707).
	Listen string `yaml:"listen,omitempty"`
	// Sidecar, when set, is a service-mesh-like proxy in the client's
	// namespace: the client dials Target, the sidecar's loopback
	// listener, and the sidecar forwards to Sidecar.Upstream.
	Sidecar *Sidecar `yaml:"sidecar,omitempty"`
	// OptIn modes run only when named (--modes, a spec's modes:). The
	// default lab answers one question — what each way a container
	// attaches costs against the host network — and an acceleration
	// (veth-bpf) or a proxy hop (sidecar) is another question: in the
	// default set they would lengthen every round and widen every
	// interval (a larger Bonferroni family) of the comparison it exists
	// for.
	OptIn   bool `yaml:"opt_in,omitempty"`
	Objects `yaml:",inline"`
}

// Sidecar is a TCP proxy (and UDP relay) the lab runs in a mode's client
// namespace, listening on the mode's Target (a loopback address) and
// forwarding to Upstream (internal/sidecar).
type Sidecar struct {
	Upstream string `yaml:"upstream"`
}

// Objects is a set of network objects, created in the order of the fields:
// namespaces, links (in list order), routes, sysctls, NAT rules, eBPF
// programs.
type Objects struct {
	Namespaces []string  `yaml:"namespaces,omitempty"`
	Links      []Link    `yaml:"links,omitempty"`
	Routes     []Route   `yaml:"routes,omitempty"`
	Sysctls    []Sysctl  `yaml:"sysctls,omitempty"`
	NAT        []NAT     `yaml:"nat,omitempty"`
	Programs   []Program `yaml:"programs,omitempty"`
}

// Program attaches one of latlab's built-in eBPF datapath programs
// (internal/datapath: redirect-peer, fib-redirect) at a tc hook of an
// interface, through TCX where the kernel has it and a tc clsact filter
// otherwise. A kernel lacking a helper the program calls, or both hooks,
// skips the mode with the reason. Nothing is pinned: a TCX link is held by
// the latlab process (it detaches when the process exits, and with its
// device) and a tc filter goes with its device, so the journalled
// namespaces are all a dead run leaves to clean up.
//
// Equivalent to: ip netns exec NS bpftool net attach tcx_ingress ... dev
// DEV (or tc filter add dev DEV ingress bpf da ...).
type Program struct {
	NS  string `yaml:"ns"`
	Dev string `yaml:"dev"`
	// Hook is ingress or egress (redirect-peer: ingress only).
	Hook string `yaml:"hook"`
	// Program names the built-in program.
	Program string `yaml:"program"`
	// Endpoints are devices in NS (pods' host-side veths) into whose
	// peers redirect-peer may redirect.
	Endpoints []string `yaml:"endpoints,omitempty"`
	// Method forces tcx or tc; empty tries TCX, then tc clsact.
	Method string `yaml:"method,omitempty"`
	// Port is sockmap's: the loopback TCP port (a sidecar's) whose
	// connections in NS it short-circuits. Sockmap has no dev; its hook is
	// sock_ops (on a cgroup latlab makes for the run and enters).
	Port int `yaml:"port,omitempty"`
}

// Link kinds.
const (
	KindVeth    = "veth"
	KindBridge  = "bridge"
	KindMacvlan = "macvlan"
	KindIPvlan  = "ipvlan"
	KindVXLAN   = "vxlan"
	// KindNetkit is a netkit pair (Linux 6.7+, CONFIG_NETKIT): like a veth
	// pair, but the peer's transmit is a direct call into the primary's
	// receive path (no per-CPU backlog, no second softirq pass), and in L3
	// mode a device with no link layer. The link is the primary (the host
	// side, where Cilium attaches its programs); Peer is the pod side.
	KindNetkit = "netkit"
)

// Link is one interface. Every link is brought up after it is created.
type Link struct {
	Kind  string   `yaml:"kind"`
	NS    string   `yaml:"ns"`
	Name  string   `yaml:"name"`
	Addrs []string `yaml:"addrs,omitempty"` // CIDR, e.g. 10.77.0.1/24
	MTU   int      `yaml:"mtu,omitempty"`
	// Master is a bridge in the same namespace to enslave the link to.
	Master string `yaml:"master,omitempty"`

	// Peer is the other end of a veth or netkit pair (it may be in another
	// namespace).
	Peer *Peer `yaml:"peer,omitempty"`

	// Parent is the lower device of a macvlan or ipvlan (in ParentNS,
	// default NS); the link is created next to it and moved into NS.
	Parent   string `yaml:"parent,omitempty"`
	ParentNS string `yaml:"parent_ns,omitempty"`
	// Mode: macvlan bridge|private|vepa|passthru; ipvlan l2|l3|l3s;
	// netkit l3|l2 (default l3).
	Mode string `yaml:"mode,omitempty"`

	// VXLAN: VNI, local and remote underlay addresses, the underlay device
	// (in NS) and the UDP port (default 4789).
	VNI    int    `yaml:"vni,omitempty"`
	Local  string `yaml:"local,omitempty"`
	Remote string `yaml:"remote,omitempty"`
	Dev    string `yaml:"dev,omitempty"`
	Port   int    `yaml:"port,omitempty"`
}

// Peer is the second end of a veth or netkit pair.
type Peer struct {
	NS     string   `yaml:"ns"`
	Name   string   `yaml:"name"`
	Addrs  []string `yaml:"addrs,omitempty"`
	MTU    int      `yaml:"mtu,omitempty"`
	Master string   `yaml:"master,omitempty"`
}

// Route is one route. Dst is a CIDR or "default"; Via is a gateway; Dev an
// output interface; Scope "link" makes a directly connected route.
type Route struct {
	NS     string `yaml:"ns"`
	Dst    string `yaml:"dst"`
	Via    string `yaml:"via,omitempty"`
	Dev    string `yaml:"dev,omitempty"`
	Scope  string `yaml:"scope,omitempty"`
	OnLink bool   `yaml:"onlink,omitempty"`
}

// Sysctl sets a per-namespace networking sysctl (net.*) inside a lab
// namespace. Host sysctls are never touched.
type Sysctl struct {
	NS    string `yaml:"ns"`
	Key   string `yaml:"key"`
	Value string `yaml:"value"`
}

// NAT kinds.
const (
	NATMasquerade = "masquerade"
	NATDNAT       = "dnat"
)

// NAT is a source-masquerade or destination-NAT rule inside a namespace.
//
// masquerade: packets from Src leaving through OutIf get the outgoing
// address (docker0's MASQUERADE rule).
// dnat: TCP and UDP packets arriving on InIf for Port are sent to To (an
// IP:PORT), as `docker run -p Port:...` does.
type NAT struct {
	NS    string `yaml:"ns"`
	Kind  string `yaml:"kind"`
	Src   string `yaml:"src,omitempty"`
	OutIf string `yaml:"out_if,omitempty"`
	InIf  string `yaml:"in_if,omitempty"`
	Port  int    `yaml:"port,omitempty"`
	To    string `yaml:"to,omitempty"`
}

// LoadTopology reads a YAML topology and validates it.
func LoadTopology(path string) (*Topology, error) {
	b, err := ReadSpecFile(path)
	if err != nil {
		return nil, fmt.Errorf("read topology: %w", err)
	}
	return ParseTopology(b, path)
}

// MaxSpecFileSize bounds a YAML file a user names (a topology, a lab spec,
// a watch config, a spec a watch job points at): the largest real one is a
// few kilobytes.
const MaxSpecFileSize = 1 << 20

// ReadSpecFile reads a YAML file a user named. It refuses anything but a
// regular file (a FIFO, a device such as /dev/zero or /dev/stdin of a
// terminal would block or never end) and a file over MaxSpecFileSize,
// and reads at most that much even if the file grows meanwhile.
func ReadSpecFile(path string) ([]byte, error) {
	// Stat before opening: opening a FIFO blocks until a writer comes.
	if fi, err := os.Stat(path); err != nil {
		return nil, err
	} else if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file (%s)", path, fi.Mode().Type())
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat() // again: the path may have changed since
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file (%s)", path, fi.Mode().Type())
	}
	if fi.Size() > MaxSpecFileSize {
		return nil, fmt.Errorf("%s: %d bytes, more than the %d a spec may have", path, fi.Size(), MaxSpecFileSize)
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxSpecFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > MaxSpecFileSize {
		return nil, fmt.Errorf("%s: grew past the %d bytes a spec may have while being read", path, MaxSpecFileSize)
	}
	return b, nil
}

// Limits on a topology: every namespace, link and rule is a kernel
// object the lab creates, journals and removes, so a topology is refused
// long before it could exhaust anything.
const (
	MaxModes      = 64  // modes in a topology
	MaxNamespaces = 64  // namespaces, base and modes together
	MaxObjects    = 256 // links, routes, sysctls or NAT rules in base or in one mode
	MinMTU        = 68  // IPv4's minimum MTU (RFC 791)
	MaxMTU        = 65535
)

// Error is an invalid topology: what is wrong and, when the topology came
// from YAML, the file and the line of the offending value. Validate's
// errors have neither (the topology is plain data there).
type Error struct {
	File string // "" when not from a file
	Line int    // 0 when unknown
	Msg  string
	// path locates the offending value: mapping keys (string) and
	// sequence indexes (int), for Line.
	path []any
}

func (e *Error) Error() string {
	switch {
	case e.File != "" && e.Line > 0:
		return e.File + ":" + strconv.Itoa(e.Line) + ": " + e.Msg
	case e.File != "":
		return e.File + ": " + e.Msg
	case e.Line > 0:
		return "line " + strconv.Itoa(e.Line) + ": " + e.Msg
	}
	return e.Msg
}

// ParseTopology parses one YAML document; name is used in error messages,
// which are *Error with the line of the offending value.
func ParseTopology(b []byte, name string) (*Topology, error) {
	doc, err := SingleDocument(b)
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			e.File = name
			return nil, e
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if doc == nil {
		return nil, &Error{File: name, Msg: "empty: want a topology (name, base, modes)"}
	}
	return ParseTopologyNode(doc, name)
}

// SingleDocument parses b, which must hold at most one YAML document, and
// returns that document's root node (nil for an empty input). A second
// document is refused with an *Error at the line where it starts: every
// file latlab reads is one document, and a second one would be silently
// ignored. A trailing "---" with nothing after it is not a document.
func SingleDocument(b []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var first *yaml.Node
	for i := 0; ; i++ {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return first, nil
		}
		if err != nil {
			return nil, yamlError(err)
		}
		if len(doc.Content) == 0 || isEmptyDoc(&doc) {
			continue
		}
		if first != nil {
			return nil, &Error{Line: doc.Line, Msg: fmt.Sprintf("multiple YAML documents: a second one starts at line %d ('---'); put everything in one document", doc.Line)}
		}
		first = doc.Content[0]
	}
}

// isEmptyDoc reports whether a document holds nothing but a null (a
// "---" separator followed by comments or nothing).
func isEmptyDoc(doc *yaml.Node) bool {
	if len(doc.Content) != 1 {
		return false
	}
	n := doc.Content[0]
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null" && n.Value == "" && n.Anchor == ""
}

// yamlError turns a go.yaml.in/yaml/v3 error ("yaml: line 3: mapping
// values are not allowed here", or a *yaml.TypeError) into an *Error with
// its line.
func yamlError(err error) error {
	msg := err.Error()
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		msg = te.Errors[0]
	}
	msg = strings.TrimPrefix(msg, "yaml: ")
	line := 0
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if n, after, ok := strings.Cut(rest, ": "); ok {
			if l, err := strconv.Atoi(n); err == nil {
				line, msg = l, after
			}
		}
	}
	return &Error{Line: line, Msg: msg}
}

// ParseTopologyNode decodes and validates a topology from a YAML node: the
// root of a topology file, or a topology inline in a larger file (an
// experiment spec). Unknown fields are refused, and every error is an
// *Error whose Line is the line of n's file, so an inline topology's
// errors point into the file that holds it; file names that file.
func ParseTopologyNode(n *yaml.Node, file string) (*Topology, error) {
	if n.Kind != yaml.MappingNode {
		return nil, &Error{File: file, Line: n.Line, Msg: "a topology is a mapping (name, base, modes)"}
	}
	if err := checkKnownFields(n, reflect.TypeOf(Topology{})); err != nil {
		err.File = file
		return nil, err
	}
	var t Topology
	if err := n.Decode(&t); err != nil {
		e := yamlError(err).(*Error)
		e.File = file
		return nil, e
	}
	if err := t.Validate(); err != nil {
		var e *Error
		if errors.As(err, &e) {
			e.File, e.Line = file, lineAt(n, e.path)
			return nil, e
		}
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return &t, nil
}

// checkKnownFields refuses mapping keys that are not fields of t (as a
// yaml.Decoder with KnownFields does; a yaml.Node's own Decode does not
// check), with the key's line and the allowed names.
func checkKnownFields(n *yaml.Node, t reflect.Type) *Error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return nil // Decode reports the type mismatch with its line
		}
		fields, names := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Tag == "!!merge" {
				if err := checkKnownFields(v, t); err != nil {
					return err
				}
				continue
			}
			ft, ok := fields[k.Value]
			if !ok {
				return &Error{Line: k.Line, Msg: fmt.Sprintf("field %s not found in %s (allowed: %s)", k.Value, yamlTypeName(t), strings.Join(names, ", "))}
			}
			if err := checkKnownFields(v, ft); err != nil {
				return err
			}
		}
	case reflect.Slice:
		if n.Kind == yaml.SequenceNode {
			for _, c := range n.Content {
				if err := checkKnownFields(c, t.Elem()); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// yamlFields lists the YAML keys of struct t (inline structs flattened),
// as go.yaml.in/yaml/v3 names them: the tag's name, else the lower-cased field name.
func yamlFields(t reflect.Type) (map[string]reflect.Type, []string) {
	fields := map[string]reflect.Type{}
	var names []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if slices.Contains(strings.Split(opts, ","), "inline") {
			sub, subNames := yamlFields(f.Type)
			for k, v := range sub {
				fields[k] = v
			}
			names = append(names, subNames...)
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		fields[name] = f.Type
		names = append(names, name)
	}
	return fields, names
}

// yamlTypeName names a topology type as a user knows it.
func yamlTypeName(t reflect.Type) string {
	switch t {
	case reflect.TypeOf(Topology{}):
		return "the topology"
	case reflect.TypeOf(Mode{}):
		return "a mode"
	case reflect.TypeOf(Objects{}):
		return "base"
	}
	return "a " + strings.ToLower(t.Name())
}

// lineAt is the line of the value at path under n; when the path ends
// early (a missing key), the line of the deepest value it reached.
func lineAt(n *yaml.Node, path []any) int {
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	for _, p := range path {
		if n.Kind == yaml.AliasNode && n.Alias != nil {
			n = n.Alias
		}
		var next *yaml.Node
		switch k := p.(type) {
		case string:
			if n.Kind == yaml.MappingNode {
				for i := 0; i+1 < len(n.Content); i += 2 {
					if n.Content[i].Value == k {
						next = n.Content[i+1]
						break
					}
				}
			}
		case int:
			if n.Kind == yaml.SequenceNode && k >= 0 && k < len(n.Content) {
				next = n.Content[k]
			}
		}
		if next == nil {
			break
		}
		n = next
	}
	return n.Line
}

// YAML renders the topology.
func (t *Topology) YAML() ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(t); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// ModeNames lists the modes in order.
func (t *Topology) ModeNames() []string {
	out := make([]string, len(t.Modes))
	for i, m := range t.Modes {
		out[i] = m.Name
	}
	return out
}

// DefaultModeNames lists the modes that run when none are named: every
// mode but the OptIn ones, in topology order.
func (t *Topology) DefaultModeNames() []string {
	var out []string
	for _, m := range t.Modes {
		if !m.OptIn {
			out = append(out, m.Name)
		}
	}
	return out
}

// Mode returns the named mode.
func (t *Topology) Mode(name string) (*Mode, bool) {
	for i := range t.Modes {
		if t.Modes[i].Name == name {
			return &t.Modes[i], true
		}
	}
	return nil, false
}

var (
	nsNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,19}$`)
	ifNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,14}$`)
	keyRE    = regexp.MustCompile(`^net\.[a-z0-9_.-]+$`)
)

// errAt is an *Error at path (copied: callers append to their own prefix).
func errAt(path []any, format string, args ...any) *Error {
	return &Error{Msg: fmt.Sprintf(format, args...), path: slices.Clone(path)}
}

// sub is path extended by more keys, in a fresh slice.
func sub(path []any, more ...any) []any {
	return append(slices.Clone(path), more...)
}

// Validate checks names, addresses, references and the limits (MaxModes,
// MaxNamespaces, MaxObjects, MTUs). It does not touch the kernel. Errors
// are *Error; ParseTopology and ParseTopologyNode add the line.
func (t *Topology) Validate() error {
	if len(t.Modes) == 0 {
		return errAt([]any{"modes"}, "topology %q has no modes", t.Name)
	}
	if len(t.Modes) > MaxModes {
		return errAt([]any{"modes"}, "modes: %d modes, at most %d", len(t.Modes), MaxModes)
	}
	known := map[string]bool{}
	if err := t.Base.validate("base", known, []any{"base"}); err != nil {
		return err
	}
	seen := map[string]bool{}
	total := len(t.Base.Namespaces)
	for i, m := range t.Modes {
		where := "mode " + m.Name
		mp := []any{"modes", i}
		if !nsNameRE.MatchString(m.Name) {
			return errAt(sub(mp, "name"), "%s: mode name must be lower-case letters, digits and '-'", where)
		}
		if seen[m.Name] {
			return errAt(sub(mp, "name"), "%s: defined twice", where)
		}
		seen[m.Name] = true
		if total += len(m.Namespaces); total > MaxNamespaces {
			return errAt(sub(mp, "namespaces"), "%s: namespaces: more than %d in the topology (base and modes together)", where, MaxNamespaces)
		}
		// A mode sees base's namespaces and its own.
		mk := map[string]bool{}
		for k := range known {
			mk[k] = true
		}
		for k, ns := range m.Objects.Namespaces {
			if known[ns] {
				return errAt(sub(mp, "namespaces", k), "%s: namespace %q is already in base", where, ns)
			}
		}
		if err := m.Objects.validate(where, mk, mp); err != nil {
			return err
		}
		if !mk[m.Client] {
			return errAt(sub(mp, "client"), "%s: client namespace %q is not defined", where, m.Client)
		}
		if !mk[m.Server] {
			return errAt(sub(mp, "server"), "%s: server namespace %q is not defined", where, m.Server)
		}
		if _, err := netip.ParseAddrPort(m.Target); err != nil {
			return errAt(sub(mp, "target"), "%s: target %q: want IP:PORT", where, m.Target)
		}
		if m.Listen != "" {
			if _, _, err := net.SplitHostPort(m.Listen); err != nil {
				return errAt(sub(mp, "listen"), "%s: listen %q: want ADDR:PORT", where, m.Listen)
			}
		}
		if m.Sidecar != nil {
			if ap, err := netip.ParseAddrPort(m.Target); err == nil && !ap.Addr().IsLoopback() {
				return errAt(sub(mp, "target"), "%s: target %s: a sidecar listens on a loopback address", where, m.Target)
			}
			if _, err := netip.ParseAddrPort(m.Sidecar.Upstream); err != nil {
				return errAt(sub(mp, "sidecar", "upstream"), "%s: sidecar upstream %q: want IP:PORT", where, m.Sidecar.Upstream)
			}
		}
	}
	// Modes may not define the same namespace twice.
	owner := map[string]string{}
	for i, m := range t.Modes {
		for k, ns := range m.Namespaces {
			if o, ok := owner[ns]; ok {
				return errAt([]any{"modes", i, "namespaces", k}, "mode %s: namespace %q is also defined by mode %s", m.Name, ns, o)
			}
			owner[ns] = m.Name
		}
	}
	return nil
}

// checkMTU refuses an MTU outside MinMTU..MaxMTU (0: the kernel's
// default).
func checkMTU(mtu int) error {
	if mtu != 0 && (mtu < MinMTU || mtu > MaxMTU) {
		return fmt.Errorf("mtu %d outside %d..%d (0 or absent: the default)", mtu, MinMTU, MaxMTU)
	}
	return nil
}

// validate checks one set of objects; path locates it in the topology
// (["base"] or ["modes", i]).
func (o *Objects) validate(where string, known map[string]bool, path []any) error {
	for _, c := range []struct {
		what string
		n    int
	}{{"namespaces", len(o.Namespaces)}, {"links", len(o.Links)}, {"routes", len(o.Routes)}, {"sysctls", len(o.Sysctls)}, {"nat", len(o.NAT)}, {"programs", len(o.Programs)}} {
		limit := MaxObjects
		if c.what == "namespaces" {
			limit = MaxNamespaces
		}
		if c.n > limit {
			return errAt(sub(path, c.what), "%s: %s: %d entries, at most %d", where, c.what, c.n, limit)
		}
	}
	for i, ns := range o.Namespaces {
		if !nsNameRE.MatchString(ns) {
			return errAt(sub(path, "namespaces", i), "%s: namespace %q: want lower-case letters, digits and '-', at most 20", where, ns)
		}
		if known[ns] {
			return errAt(sub(path, "namespaces", i), "%s: namespace %q defined twice", where, ns)
		}
		known[ns] = true
	}
	needNS := func(p []any, what, ns string) error {
		if !known[ns] {
			return errAt(p, "%s: %s: namespace %q is not defined", where, what, ns)
		}
		return nil
	}
	for i, l := range o.Links {
		lp := sub(path, "links", i)
		what := fmt.Sprintf("link %s/%s", l.NS, l.Name)
		if err := needNS(sub(lp, "ns"), what, l.NS); err != nil {
			return err
		}
		if !ifNameRE.MatchString(l.Name) {
			return errAt(sub(lp, "name"), "%s: %s: interface names are 1-15 characters", where, what)
		}
		if err := checkCIDRs(l.Addrs); err != nil {
			return errAt(sub(lp, "addrs"), "%s: %s: %v", where, what, err)
		}
		if err := checkMTU(l.MTU); err != nil {
			return errAt(sub(lp, "mtu"), "%s: %s: %v", where, what, err)
		}
		switch l.Kind {
		case KindVeth, KindNetkit:
			if l.Peer == nil {
				return errAt(lp, "%s: %s: a %s needs a peer", where, what, l.Kind)
			}
			if l.Kind == KindNetkit && !slices.Contains([]string{"", "l3", "l2"}, l.Mode) {
				return errAt(sub(lp, "mode"), "%s: %s: netkit mode %q (want l3 or l2)", where, what, l.Mode)
			}
			pp := sub(lp, "peer")
			if err := needNS(sub(pp, "ns"), what+" peer", l.Peer.NS); err != nil {
				return err
			}
			if !ifNameRE.MatchString(l.Peer.Name) {
				return errAt(sub(pp, "name"), "%s: %s: peer interface names are 1-15 characters", where, what)
			}
			if err := checkCIDRs(l.Peer.Addrs); err != nil {
				return errAt(sub(pp, "addrs"), "%s: %s peer: %v", where, what, err)
			}
			if err := checkMTU(l.Peer.MTU); err != nil {
				return errAt(sub(pp, "mtu"), "%s: %s peer: %v", where, what, err)
			}
		case KindBridge:
		case KindMacvlan, KindIPvlan:
			if l.Parent == "" {
				return errAt(lp, "%s: %s: a %s needs a parent device", where, what, l.Kind)
			}
			if l.ParentNS != "" {
				if err := needNS(sub(lp, "parent_ns"), what+" parent", l.ParentNS); err != nil {
					return err
				}
			}
			allowed := map[string][]string{
				KindMacvlan: {"", "bridge", "private", "vepa", "passthru"},
				KindIPvlan:  {"", "l2", "l3", "l3s"},
			}[l.Kind]
			if !slices.Contains(allowed, l.Mode) {
				return errAt(sub(lp, "mode"), "%s: %s: %s mode %q (want one of %s)", where, what, l.Kind, l.Mode, strings.Join(allowed[1:], ", "))
			}
		case KindVXLAN:
			if l.VNI <= 0 || l.VNI >= 1<<24 {
				return errAt(sub(lp, "vni"), "%s: %s: vni %d outside 1..16777215", where, what, l.VNI)
			}
			if l.Port < 0 || l.Port > 65535 {
				return errAt(sub(lp, "port"), "%s: %s: port %d outside 1..65535 (0 or absent: 4789)", where, what, l.Port)
			}
			for _, a := range []struct{ key, v string }{{"local", l.Local}, {"remote", l.Remote}} {
				if a.v == "" {
					continue
				}
				if _, err := netip.ParseAddr(a.v); err != nil {
					return errAt(sub(lp, a.key), "%s: %s: %q is not an IP address", where, what, a.v)
				}
			}
		default:
			return errAt(sub(lp, "kind"), "%s: %s: kind %q (want veth, netkit, bridge, macvlan, ipvlan or vxlan)", where, what, l.Kind)
		}
	}
	for i, r := range o.Routes {
		rp := sub(path, "routes", i)
		what := fmt.Sprintf("route %s in %s", r.Dst, r.NS)
		if err := needNS(sub(rp, "ns"), what, r.NS); err != nil {
			return err
		}
		if r.Dst != "default" {
			if _, err := netip.ParsePrefix(r.Dst); err != nil {
				if _, err2 := netip.ParseAddr(r.Dst); err2 != nil {
					return errAt(sub(rp, "dst"), "%s: %s: dst is a CIDR, an address or \"default\"", where, what)
				}
			}
		}
		if r.Via != "" {
			if _, err := netip.ParseAddr(r.Via); err != nil {
				return errAt(sub(rp, "via"), "%s: %s: via %q is not an IP address", where, what, r.Via)
			}
		}
		if r.Via == "" && r.Dev == "" {
			return errAt(rp, "%s: %s: needs via or dev", where, what)
		}
		if r.Scope != "" && r.Scope != "link" && r.Scope != "global" {
			return errAt(sub(rp, "scope"), "%s: %s: scope %q (want link or global)", where, what, r.Scope)
		}
	}
	for i, s := range o.Sysctls {
		sp := sub(path, "sysctls", i)
		if err := needNS(sub(sp, "ns"), "sysctl "+s.Key, s.NS); err != nil {
			return err
		}
		if !keyRE.MatchString(s.Key) {
			return errAt(sub(sp, "key"), "%s: sysctl %q: only per-namespace net.* keys can be set", where, s.Key)
		}
	}
	for i, n := range o.NAT {
		np := sub(path, "nat", i)
		what := fmt.Sprintf("nat %s in %s", n.Kind, n.NS)
		if err := needNS(sub(np, "ns"), what, n.NS); err != nil {
			return err
		}
		switch n.Kind {
		case NATMasquerade:
			if _, err := netip.ParsePrefix(n.Src); err != nil {
				return errAt(sub(np, "src"), "%s: %s: src %q is not a CIDR", where, what, n.Src)
			}
		case NATDNAT:
			if n.Port <= 0 || n.Port > 65535 {
				return errAt(sub(np, "port"), "%s: %s: port %d outside 1..65535", where, what, n.Port)
			}
			if _, err := netip.ParseAddrPort(n.To); err != nil {
				return errAt(sub(np, "to"), "%s: %s: to %q: want IPv4:PORT or [IPv6]:PORT", where, what, n.To)
			}
		default:
			return errAt(sub(np, "kind"), "%s: %s: kind %q (want masquerade or dnat)", where, what, n.Kind)
		}
	}
	for i, pr := range o.Programs {
		pp := sub(path, "programs", i)
		what := fmt.Sprintf("program %s at %s/%s", pr.Program, pr.NS, pr.Dev)
		if err := needNS(sub(pp, "ns"), what, pr.NS); err != nil {
			return err
		}
		if pr.Program == datapath.ProgSockmap {
			if pr.Dev != "" || len(pr.Endpoints) > 0 || (pr.Method != "" && pr.Method != datapath.MethodCgroup) || pr.Hook != datapath.HookSockOps {
				return errAt(pp, "%s: %s: sockmap takes hook %s, a port, and no dev, endpoints or method", where, what, datapath.HookSockOps)
			}
			if pr.Port <= 0 || pr.Port > 65535 {
				return errAt(sub(pp, "port"), "%s: %s: port %d outside 1..65535", where, what, pr.Port)
			}
			continue
		}
		if pr.Port != 0 {
			return errAt(sub(pp, "port"), "%s: %s: only sockmap takes a port", where, what)
		}
		if !ifNameRE.MatchString(pr.Dev) {
			return errAt(sub(pp, "dev"), "%s: %s: interface names are 1-15 characters", where, what)
		}
		for k, e := range pr.Endpoints {
			if !ifNameRE.MatchString(e) {
				return errAt(sub(pp, "endpoints", k), "%s: %s: endpoint %q: interface names are 1-15 characters", where, what, e)
			}
		}
		if len(pr.Endpoints) > maxEndpoints {
			return errAt(sub(pp, "endpoints"), "%s: %s: %d endpoints, at most %d", where, what, len(pr.Endpoints), maxEndpoints)
		}
		if err := datapath.CheckMethod(pr.Program, pr.Hook, pr.Method, len(pr.Endpoints)); err != nil {
			return errAt(pp, "%s: %s: %v", where, what, err)
		}
	}
	return nil
}

// maxEndpoints is the size of redirect-peer's endpoint map.
const maxEndpoints = 64

func checkCIDRs(addrs []string) error {
	for _, a := range addrs {
		if _, err := netip.ParsePrefix(a); err != nil {
			return fmt.Errorf("address %q is not a CIDR (e.g. 10.0.0.1/24)", a)
		}
	}
	return nil
}

// DefaultPort is the port servers listen on in the default topology.
const DefaultPort = 7707

// Default returns latlab's built-in topology: two "nodes" (namespaces a and
// b) joined by a veth "wire", the server on node b, and one client
// namespace per container attachment mode on node a.
//
//	host             client in node a itself
//	bridge-nat       docker0-like bridge + veth, masqueraded out of the wire
//	bridge-nat-dnat  client on node a, server in a container behind a
//	                 docker0-like bridge on node b, reached through a
//	                 published port (DNAT, like docker run -p)
//	veth-routed      Calico-like: /32 on the container, host route to the
//	                 cali veth, proxy ARP answering for 169.254.1.1
//	veth-bpf         veth-routed plus Cilium-like eBPF host routing (TCX
//	                 or tc programs: redirect_peer in, fib_lookup out)
//	sidecar          a TCP proxy on loopback between client and server
//	sidecar-sockmap  the same, its loopback hop short-circuited by sockmap
//	macvlan          macvlan (bridge mode) on node a's end of the wire
//	ipvlan-l2/l3     ipvlan on a node a NIC of its own (a second wire)
//	netkit           Cilium-like netkit pair, L3, routed /32 (Linux 6.7+)
//	vxlan            flannel-like: pod namespaces on both nodes, cni0
//	                 bridges, a VXLAN tunnel (VNI 1, UDP 8472) over the wire
func Default() *Topology { return DefaultFamily(Family4) }

// Family is the IP family of the default topology's addresses.
type Family string

// Families of the default topology (`latlab lab --family`).
const (
	// Family4 is IPv4 only: the default, what Default returns.
	Family4 Family = "4"
	// Family6 is IPv6 only: ULA addresses (fd00::/8) on every link, the
	// Calico-like mode's gateway a link-local fe80::1 on the host side
	// (Calico's IPv6 way; no proxy NDP), NAT in nftables' ip6 family.
	Family6 Family = "6"
	// FamilyDual configures both families on every link, as a dual-stack
	// cluster does, and the clients dial IPv6, as dual-stack clients prefer
	// (RFC 6724).
	FamilyDual Family = "dual"
)

// ParseFamily reads 4, 6 or dual (also ipv4, ipv6).
func ParseFamily(s string) (Family, error) {
	switch strings.ToLower(s) {
	case "4", "ipv4", "inet", "":
		return Family4, nil
	case "6", "ipv6", "inet6":
		return Family6, nil
	case "dual", "dual-stack", "46":
		return FamilyDual, nil
	}
	return "", fmt.Errorf("family %q: want 4, 6 or dual", s)
}

// Name is the name of the default topology of that family: "default",
// "default-v6" or "default-dual" (what a spec file's topology: may name).
func (f Family) Name() string {
	switch f {
	case Family6:
		return "default-v6"
	case FamilyDual:
		return "default-dual"
	}
	return "default"
}

// Named returns the built-in topology a spec's `topology:` names
// ("default", "default-v6", "default-dual"); ok is false for any other
// name.
func Named(name string) (t *Topology, ok bool) {
	for _, f := range []Family{Family4, Family6, FamilyDual} {
		if name == f.Name() {
			return DefaultFamily(f), true
		}
	}
	return nil, false
}

// plan picks a link's addresses, a route's or a target's address by family:
// v4 for Family4, v6 for Family6, both (v4 first) for FamilyDual, where
// targets dial v6.
type plan Family

func (p plan) addrs(v4, v6 string) []string { return pick(p, v4, v6) }

// pick is what a place of the plan holds: v4 for Family4, v6 for Family6,
// both (v4 first) for FamilyDual.
func pick[T any](p plan, v4, v6 T) []T {
	switch Family(p) {
	case Family6:
		return []T{v6}
	case FamilyDual:
		return []T{v4, v6}
	}
	return []T{v4}
}

// one is a single address of the family a client dials.
func (p plan) one(v4, v6 string) string {
	if Family(p) == Family4 {
		return v4
	}
	return v6
}

// loopback is the loopback ADDR:PORT of the family a client dials.
func (p plan) loopback(port int) string { return p.target("127.0.0.1", "::1", port) }

// target is ADDR:PORT of the family a client dials.
func (p plan) target(v4, v6 string, port int) string {
	return netip.AddrPortFrom(netip.MustParseAddr(p.one(v4, v6)), uint16(port)).String()
}

// routes gives one route per configured family: v4 and/or v6 with their
// own destinations and gateways.
func (p plan) routes(v4, v6 Route) []Route { return pick(p, v4, v6) }

// nat gives one NAT rule per configured family.
func (p plan) nat(v4, v6 NAT) []NAT { return pick(p, v4, v6) }

// forwarding turns routing on in a node namespace for each family.
func (p plan) forwarding(ns string) []Sysctl {
	return pick(p, Sysctl{NS: ns, Key: "net.ipv4.ip_forward", Value: "1"},
		Sysctl{NS: ns, Key: "net.ipv6.conf.all.forwarding", Value: "1"})
}

// DefaultFamily is Default with the addresses of family f; Default is
// DefaultFamily(Family4). The IPv6 plan mirrors the IPv4 one: 10.77.0.0/24
// is fd00:77::/64, 172.17.0.0/16 is fd00:17::/64, 10.244.1.0/24 is
// fd00:244:1::/64, and so on.
func DefaultFamily(f Family) *Topology {
	a := plan(f)
	p := strconv.Itoa(DefaultPort)
	wireA, wireB := "10.77.0.1", "10.77.0.2"
	wireA6, wireB6 := "fd00:77::1", "fd00:77::2"
	name := f.Name()
	desc := "two nodes joined by a veth wire; the server on node b; one client per container attachment mode on node a"
	switch f {
	case Family6:
		desc += " (IPv6)"
	case FamilyDual:
		desc += " (dual-stack, clients dial IPv6)"
	}
	return &Topology{
		Name:        name,
		Description: desc,
		Base: Objects{
			Namespaces: []string{"a", "b"},
			Links: []Link{{
				Kind: KindVeth, NS: "a", Name: "wire0", Addrs: a.addrs(wireA+"/24", wireA6+"/64"),
				Peer: &Peer{NS: "b", Name: "wire0", Addrs: a.addrs(wireB+"/24", wireB6+"/64")},
			}},
			// Node a's uplink: like any real node it has a default route.
			// Calico's proxy ARP depends on it (the kernel answers ARP for
			// 169.254.1.1 only when the node can route that address).
			Routes:  a.routes(Route{NS: "a", Dst: "default", Via: wireB}, Route{NS: "a", Dst: "::/0", Via: wireB6}),
			Sysctls: append(a.forwarding("a"), a.forwarding("b")...),
		},
		Modes: []Mode{
			{
				Name: "host", Description: "client in node a's own network namespace (no container)",
				Client: "a", Server: "b", Target: a.target(wireB, wireB6, DefaultPort),
			},
			{
				// bridge-nat has a server port of its own: masqueraded to
				// node a's address, its connections would otherwise reach
				// the server on host mode's 4-tuples with other TCP
				// timestamps, and a SYN landing on the server's TIME_WAIT
				// for such a tuple is dropped (PAWS): 1 s stalls in tcp_crr.
				Name: "bridge-nat", Description: "docker0-like: veth into a Linux bridge, masqueraded (SNAT) out of the wire",
				Client: "c-bridge", Server: "b", Target: a.target(wireB, wireB6, 7708), Listen: ":7708",
				Objects: Objects{
					Namespaces: []string{"c-bridge"},
					Links: []Link{
						{Kind: KindBridge, NS: "a", Name: "docker0", Addrs: a.addrs("172.17.0.1/16", "fd00:17::1/64")},
						{Kind: KindVeth, NS: "c-bridge", Name: "eth0", Addrs: a.addrs("172.17.0.2/16", "fd00:17::2/64"),
							Peer: &Peer{NS: "a", Name: "vethbr0", Master: "docker0"}},
					},
					Routes: a.routes(Route{NS: "c-bridge", Dst: "default", Via: "172.17.0.1"},
						Route{NS: "c-bridge", Dst: "::/0", Via: "fd00:17::1"}),
					NAT: a.nat(NAT{NS: "a", Kind: NATMasquerade, Src: "172.17.0.0/16", OutIf: "wire0"},
						NAT{NS: "a", Kind: NATMasquerade, Src: "fd00:17::/64", OutIf: "wire0"}),
				},
			},
			{
				Name: "bridge-nat-dnat", Description: "docker run -p: the server in a container behind a bridge on node b, reached through a published port (DNAT)",
				Client: "a", Server: "s-dnat", Target: a.target(wireB, wireB6, 17707),
				Objects: Objects{
					Namespaces: []string{"s-dnat"},
					Links: []Link{
						{Kind: KindBridge, NS: "b", Name: "docker0", Addrs: a.addrs("172.18.0.1/16", "fd00:18::1/64")},
						{Kind: KindVeth, NS: "s-dnat", Name: "eth0", Addrs: a.addrs("172.18.0.2/16", "fd00:18::2/64"),
							Peer: &Peer{NS: "b", Name: "vethbr0", Master: "docker0"}},
					},
					Routes: a.routes(Route{NS: "s-dnat", Dst: "default", Via: "172.18.0.1"},
						Route{NS: "s-dnat", Dst: "::/0", Via: "fd00:18::1"}),
					NAT: append(
						a.nat(NAT{NS: "b", Kind: NATDNAT, InIf: "wire0", Port: 17707, To: "172.18.0.2:" + p},
							NAT{NS: "b", Kind: NATDNAT, InIf: "wire0", Port: 17707, To: "[fd00:18::2]:" + p}),
						a.nat(NAT{NS: "b", Kind: NATMasquerade, Src: "172.18.0.0/16", OutIf: "wire0"},
							NAT{NS: "b", Kind: NATMasquerade, Src: "fd00:18::/64", OutIf: "wire0"})...),
				},
			},
			{
				// IPv6: Calico gives the host-side veth a link-local
				// address and the pod a default route to it, so no proxy
				// NDP; fe80::1 stands for Calico's fe80::ecee:eeff:feee:eeee.
				Name: "veth-routed", Description: "Calico-like: /32 address, default route to 169.254.1.1 answered by proxy ARP, host route to the cali veth",
				Client: "c-routed", Server: "b", Target: a.target(wireB, wireB6, DefaultPort),
				Objects: Objects{
					Namespaces: []string{"c-routed"},
					Links: []Link{
						{Kind: KindVeth, NS: "c-routed", Name: "eth0", Addrs: a.addrs("10.78.0.2/32", "fd00:78::2/128"),
							Peer: &Peer{NS: "a", Name: "cali0", Addrs: a.v6only("fe80::1/64")}},
					},
					Routes: append(append(append(
						a.v4routes(Route{NS: "c-routed", Dst: "169.254.1.1/32", Dev: "eth0", Scope: "link"}),
						a.routes(Route{NS: "c-routed", Dst: "default", Via: "169.254.1.1", Dev: "eth0"},
							Route{NS: "c-routed", Dst: "::/0", Via: "fe80::1", Dev: "eth0"})...),
						a.routes(Route{NS: "a", Dst: "10.78.0.2/32", Dev: "cali0", Scope: "link"},
							Route{NS: "a", Dst: "fd00:78::2/128", Dev: "cali0"})...),
						a.routes(Route{NS: "b", Dst: "10.78.0.0/24", Via: wireA},
							Route{NS: "b", Dst: "fd00:78::/64", Via: wireA6})...),
					Sysctls: a.v4sysctls(
						Sysctl{NS: "a", Key: "net.ipv4.conf.cali0.proxy_arp", Value: "1"},
						Sysctl{NS: "a", Key: "net.ipv4.neigh.cali0.proxy_delay", Value: "0"}),
				},
			},
			{
				// veth-routed's pod plus Cilium's eBPF host routing. The
				// mode has a wire of its own (the same veth as wire0), so
				// its programs never run on the other modes' packets.
				Name: "veth-bpf", Description: "veth-routed plus Cilium-like eBPF host routing: bpf_redirect_peer into the pod on the wire's ingress, bpf_fib_lookup + bpf_redirect on the pod's host veth (a wire of its own)",
				OptIn:  true,
				Client: "c-bpf", Server: "b", Target: a.target("10.77.4.2", "fd00:77:4::2", DefaultPort),
				Objects: Objects{
					Namespaces: []string{"c-bpf"},
					Links: []Link{
						{Kind: KindVeth, NS: "a", Name: "wire-bpf", Addrs: a.addrs("10.77.4.1/24", "fd00:77:4::1/64"),
							Peer: &Peer{NS: "b", Name: "wire-bpf", Addrs: a.addrs("10.77.4.2/24", "fd00:77:4::2/64")}},
						{Kind: KindVeth, NS: "c-bpf", Name: "eth0", Addrs: a.addrs("10.81.0.2/32", "fd00:81::2/128"),
							Peer: &Peer{NS: "a", Name: "lxc0", Addrs: a.v6only("fe80::1/64")}},
					},
					Routes: append(append(append(
						a.v4routes(Route{NS: "c-bpf", Dst: "169.254.1.1/32", Dev: "eth0", Scope: "link"}),
						a.routes(Route{NS: "c-bpf", Dst: "default", Via: "169.254.1.1", Dev: "eth0"},
							Route{NS: "c-bpf", Dst: "::/0", Via: "fe80::1", Dev: "eth0"})...),
						a.routes(Route{NS: "a", Dst: "10.81.0.2/32", Dev: "lxc0", Scope: "link"},
							Route{NS: "a", Dst: "fd00:81::2/128", Dev: "lxc0"})...),
						a.routes(Route{NS: "b", Dst: "10.81.0.0/24", Via: "10.77.4.1"},
							Route{NS: "b", Dst: "fd00:81::/64", Via: "fd00:77:4::1"})...),
					Sysctls: a.v4sysctls(
						Sysctl{NS: "a", Key: "net.ipv4.conf.lxc0.proxy_arp", Value: "1"},
						Sysctl{NS: "a", Key: "net.ipv4.neigh.lxc0.proxy_delay", Value: "0"}),
					Programs: []Program{
						{NS: "a", Dev: "wire-bpf", Hook: "ingress", Program: "redirect-peer", Endpoints: []string{"lxc0"}},
						{NS: "a", Dev: "lxc0", Hook: "ingress", Program: "fib-redirect"},
					},
				},
			},
			{
				// A pod's sidecar (Envoy, linkerd-proxy) without the pod:
				// the proxy runs next to the client in node a's namespace,
				// so the difference from host is the proxy hop alone.
				Name: "sidecar", Description: "service-mesh sidecar: client -> TCP proxy on loopback -> server (host's path otherwise)",
				OptIn:  true,
				Client: "a", Server: "b", Target: a.loopback(15001),
				Sidecar: &Sidecar{Upstream: a.target(wireB, wireB6, DefaultPort)},
			},
			{
				Name: "sidecar-sockmap", Description: "sidecar plus sockmap: sock_ops + sk_msg (bpf_msg_redirect_hash) short-circuit the loopback hop (bypasses TCP and netfilter: not a network path)",
				OptIn:  true,
				Client: "a", Server: "b", Target: a.loopback(15002),
				Sidecar: &Sidecar{Upstream: a.target(wireB, wireB6, DefaultPort)},
				Objects: Objects{
					Programs: []Program{{NS: "a", Hook: "sock_ops", Program: "sockmap", Port: 15002}},
				},
			},
			{
				Name: "macvlan", Description: "macvlan in bridge mode on node a's end of the wire",
				Client: "c-macvlan", Server: "b", Target: a.target(wireB, wireB6, DefaultPort),
				Objects: Objects{
					Namespaces: []string{"c-macvlan"},
					Links: []Link{{Kind: KindMacvlan, NS: "c-macvlan", Name: "eth0", Parent: "wire0", ParentNS: "a",
						Mode: "bridge", Addrs: a.addrs("10.77.0.10/24", "fd00:77::10/64")}},
				},
			},
			{
				// One parent device carries one kind of slave and one
				// ipvlan mode (the mode is the parent's, shared by all its
				// slaves; a macvlan and an ipvlan cannot share a parent:
				// EBUSY). A node picks one for its NIC; the lab gives each
				// ipvlan mode a NIC of its own, a second wire to node b
				// (the same veth as wire0).
				Name: "ipvlan-l2", Description: "ipvlan L2 mode on a node a NIC of its own (a second wire to node b)",
				Client: "c-ipvl2", Server: "b", Target: a.target("10.77.2.2", "fd00:77:2::2", DefaultPort),
				Objects: Objects{
					Namespaces: []string{"c-ipvl2"},
					Links: []Link{
						{Kind: KindVeth, NS: "a", Name: "wire-ipvl2", Addrs: a.addrs("10.77.2.1/24", "fd00:77:2::1/64"),
							Peer: &Peer{NS: "b", Name: "wire-ipvl2", Addrs: a.addrs("10.77.2.2/24", "fd00:77:2::2/64")}},
						{Kind: KindIPvlan, NS: "c-ipvl2", Name: "eth0", Parent: "wire-ipvl2", ParentNS: "a",
							Mode: "l2", Addrs: a.addrs("10.77.2.11/24", "fd00:77:2::11/64")},
					},
				},
			},
			{
				Name: "ipvlan-l3", Description: "ipvlan L3 mode on a node a NIC of its own, routed /32",
				Client: "c-ipvl3", Server: "b", Target: a.target("10.77.3.2", "fd00:77:3::2", DefaultPort),
				Objects: Objects{
					Namespaces: []string{"c-ipvl3"},
					Links: []Link{
						{Kind: KindVeth, NS: "a", Name: "wire-ipvl3", Addrs: a.addrs("10.77.3.1/24", "fd00:77:3::1/64"),
							Peer: &Peer{NS: "b", Name: "wire-ipvl3", Addrs: a.addrs("10.77.3.2/24", "fd00:77:3::2/64")}},
						{Kind: KindIPvlan, NS: "c-ipvl3", Name: "eth0", Parent: "wire-ipvl3", ParentNS: "a",
							Mode: "l3", Addrs: a.addrs("10.79.0.2/32", "fd00:79::2/128")},
					},
					Routes: append(
						a.routes(Route{NS: "c-ipvl3", Dst: "default", Dev: "eth0"}, Route{NS: "c-ipvl3", Dst: "::/0", Dev: "eth0"}),
						a.routes(Route{NS: "b", Dst: "10.79.0.0/24", Via: "10.77.3.1"}, Route{NS: "b", Dst: "fd00:79::/64", Via: "fd00:77:3::1"})...),
				},
			},
			{
				// Cilium's netkit datapath without its programs: an L3
				// pair (no link layer, so no ARP and no proxy ARP), the
				// pod's default route on the device, the host's /32 route
				// to the primary.
				Name: "netkit", Description: "Cilium-like netkit pair (L3 mode, Linux 6.7+): /32 address, default route on the device, host route to the primary",
				Client: "c-netkit", Server: "b", Target: a.target(wireB, wireB6, DefaultPort),
				Objects: Objects{
					Namespaces: []string{"c-netkit"},
					Links: []Link{
						{Kind: KindNetkit, NS: "a", Name: "nk0", Mode: "l3",
							Peer: &Peer{NS: "c-netkit", Name: "eth0", Addrs: a.addrs("10.80.0.2/32", "fd00:80::2/128")}},
					},
					Routes: append(append(
						a.routes(Route{NS: "c-netkit", Dst: "default", Dev: "eth0"}, Route{NS: "c-netkit", Dst: "::/0", Dev: "eth0"}),
						a.routes(Route{NS: "a", Dst: "10.80.0.2/32", Dev: "nk0"}, Route{NS: "a", Dst: "fd00:80::2/128", Dev: "nk0"})...),
						a.routes(Route{NS: "b", Dst: "10.80.0.0/24", Via: wireA}, Route{NS: "b", Dst: "fd00:80::/64", Via: wireA6})...),
				},
			},
			{
				Name: "vxlan", Description: "flannel-like overlay: pods on both nodes behind cni0 bridges, VXLAN (VNI 1, UDP 8472) over the wire",
				Client: "c-vxlan", Server: "s-vxlan", Target: a.target("10.244.1.2", "fd00:244:1::2", DefaultPort),
				Objects: Objects{
					Namespaces: []string{"c-vxlan", "s-vxlan"},
					// The underlay stays the wire's first family: VXLAN's
					// outer header is IPv4 in the v4 and dual plans.
					Links: []Link{
						{Kind: KindBridge, NS: "a", Name: "cni0", Addrs: a.addrs("10.244.0.1/24", "fd00:244::1/64"), MTU: 1450},
						{Kind: KindVeth, NS: "c-vxlan", Name: "eth0", Addrs: a.addrs("10.244.0.2/24", "fd00:244::2/64"), MTU: 1450,
							Peer: &Peer{NS: "a", Name: "vethvx0", Master: "cni0", MTU: 1450}},
						{Kind: KindVXLAN, NS: "a", Name: "flannel.1", VNI: 1, Local: a.underlay(wireA, wireA6), Remote: a.underlay(wireB, wireB6), Dev: "wire0", Port: 8472,
							MTU: 1450, Addrs: a.addrs("10.245.0.1/24", "fd00:245::1/64")},
						{Kind: KindBridge, NS: "b", Name: "cni0", Addrs: a.addrs("10.244.1.1/24", "fd00:244:1::1/64"), MTU: 1450},
						{Kind: KindVeth, NS: "s-vxlan", Name: "eth0", Addrs: a.addrs("10.244.1.2/24", "fd00:244:1::2/64"), MTU: 1450,
							Peer: &Peer{NS: "b", Name: "vethvx0", Master: "cni0", MTU: 1450}},
						{Kind: KindVXLAN, NS: "b", Name: "flannel.1", VNI: 1, Local: a.underlay(wireB, wireB6), Remote: a.underlay(wireA, wireA6), Dev: "wire0", Port: 8472,
							MTU: 1450, Addrs: a.addrs("10.245.0.2/24", "fd00:245::2/64")},
					},
					Routes: append(append(append(
						a.routes(Route{NS: "c-vxlan", Dst: "default", Via: "10.244.0.1"}, Route{NS: "c-vxlan", Dst: "::/0", Via: "fd00:244::1"}),
						a.routes(Route{NS: "s-vxlan", Dst: "default", Via: "10.244.1.1"}, Route{NS: "s-vxlan", Dst: "::/0", Via: "fd00:244:1::1"})...),
						a.routes(Route{NS: "a", Dst: "10.244.1.0/24", Via: "10.245.0.2"}, Route{NS: "a", Dst: "fd00:244:1::/64", Via: "fd00:245::2"})...),
						a.routes(Route{NS: "b", Dst: "10.244.0.0/24", Via: "10.245.0.1"}, Route{NS: "b", Dst: "fd00:244::/64", Via: "fd00:245::1"})...),
				},
			},
		},
	}
}

// HasIPv6 reports whether any link of the topology (base or mode) has an
// IPv6 address.
func (t *Topology) HasIPv6() bool {
	six := func(addrs []string) bool {
		for _, a := range addrs {
			if p, err := netip.ParsePrefix(a); err == nil && p.Addr().Is6() && !p.Addr().Is4In6() {
				return true
			}
		}
		return false
	}
	objs := []*Objects{&t.Base}
	for i := range t.Modes {
		objs = append(objs, &t.Modes[i].Objects)
	}
	for _, o := range objs {
		for _, l := range o.Links {
			if six(l.Addrs) || (l.Peer != nil && six(l.Peer.Addrs)) {
				return true
			}
		}
	}
	return false
}

// v6only is addrs for IPv6 only (none in the v4 plan).
func (p plan) v6only(v6 string) []string {
	if Family(p) == Family4 {
		return nil
	}
	return []string{v6}
}

// v4routes are routes only the IPv4 plan has (169.254.1.1 for proxy ARP).
func (p plan) v4routes(rs ...Route) []Route {
	if Family(p) == Family6 {
		return nil
	}
	return rs
}

// v4sysctls are sysctls only the IPv4 plan has.
func (p plan) v4sysctls(ss ...Sysctl) []Sysctl {
	if Family(p) == Family6 {
		return nil
	}
	return ss
}

// underlay is VXLAN's outer address: IPv4 unless the plan has no IPv4.
func (p plan) underlay(v4, v6 string) string {
	if Family(p) == Family6 {
		return v6
	}
	return v4
}
