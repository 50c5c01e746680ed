package datapath

import (
	"fmt"
	"slices"
	"strings"

	"github.com/latlab/latlab/internal/netns"
)

// ErrNotSupported is returned when the kernel lacks a program's helper or
// every hook it could attach at (netns.ErrNotSupported, so errors.Is works
// across packages).
var ErrNotSupported = netns.ErrNotSupported

// Built-in programs.
const (
	// RedirectPeer, on a node's wire ingress: a packet whose FIB route
	// leaves through one of the program's endpoints (a pod's host-side
	// veth) gets its MACs rewritten and its TTL decremented and is sent
	// into the endpoint's peer (the pod's end) with bpf_redirect_peer.
	// Only on ingress: bpf_redirect_peer from egress drops the packet.
	RedirectPeer = "redirect-peer"
	// FIBRedirect, on a pod's host-side veth ingress (the pod's egress):
	// bpf_fib_lookup (tot_len 0, so GSO packets pass the MTU check), MAC
	// rewrite, TTL decrement and bpf_redirect to the output device; with
	// no neighbour entry yet, bpf_redirect_neigh resolves it.
	FIBRedirect = "fib-redirect"
	// ProgSockmap short-circuits a namespace's loopback TCP connections on a
	// port (a sidecar's): sock_ops on latlab's cgroup fills a sock hash,
	// sk_msg redirects each message to the peer socket's receive queue.
	// Not a network path: it bypasses TCP, netfilter and the device.
	ProgSockmap = "sockmap"
)

// Hooks: the tc direction a program runs in.
const (
	HookIngress = "ingress"
	HookEgress  = "egress"
	// HookSockOps is ProgSockmap's: sock_ops on a cgroup, sk_msg on its hash.
	HookSockOps = "sock_ops"
)

// Attach methods.
const (
	// MethodTCX is a TCX link (bpf_link on the device, Linux 6.6+).
	MethodTCX = "tcx"
	// MethodTC is a direct-action bpf filter on a clsact qdisc.
	MethodTC = "tc"
	// MethodCgroup is a cgroup bpf_link (ProgSockmap's sock_ops).
	MethodCgroup = "cgroup"
)

// builtin is a built-in tc program: its ELF function and the hooks it may
// run at.
type builtin struct {
	elf   string
	hooks []string
}

// programs maps each built-in tc program to its builtin (a fresh map: no
// package state to mutate).
func programs() map[string]builtin {
	return map[string]builtin{
		RedirectPeer: {"redirect_peer", []string{HookIngress}},
		FIBRedirect:  {"fib_redirect", []string{HookIngress, HookEgress}},
	}
}

// Programs lists the built-in programs' names, sorted.
func Programs() []string {
	var out []string
	for k := range programs() {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// Check reports whether program is a built-in program that may run at
// hook, and whether endpoints make sense for it.
func Check(program, hook string, endpoints int) error {
	return CheckMethod(program, hook, "", endpoints)
}

// CheckMethod is Check with an attach method ("", MethodTCX, MethodTC).
func CheckMethod(program, hook, method string, endpoints int) error {
	if method != "" && method != MethodTCX && method != MethodTC {
		return fmt.Errorf("program %s: method %q (want %s, %s or none: TCX where the kernel has it, else tc)", program, method, MethodTCX, MethodTC)
	}
	p, ok := programs()[program]
	if !ok {
		return fmt.Errorf("program %q (want one of %s)", program, strings.Join(Programs(), ", "))
	}
	if !slices.Contains(p.hooks, hook) {
		return fmt.Errorf("program %s: hook %q (want %s)", program, hook, strings.Join(p.hooks, " or "))
	}
	if program == RedirectPeer && endpoints == 0 {
		return fmt.Errorf("program %s: needs endpoints (the host-side veths whose peers it may redirect into)", program)
	}
	if program != RedirectPeer && endpoints > 0 {
		return fmt.Errorf("program %s: takes no endpoints", program)
	}
	return nil
}

// Spec is one program to attach.
type Spec struct {
	// NSPath is the network namespace (a path) of Dev; never "" (the
	// caller's own).
	NSPath string
	// NS names the namespace in reports (its real name).
	NS      string
	Dev     string
	Hook    string
	Program string
	// Endpoints are devices in NSPath whose peers RedirectPeer may send
	// into.
	Endpoints []string
	// Method forces MethodTCX or MethodTC; "" tries TCX, then tc.
	Method string
}

// Info says where a program attached and how (ModeInfo, JSON, the
// table's note).
type Info struct {
	Program string `json:"program"`
	NS      string `json:"netns"`
	Dev     string `json:"dev"`
	Hook    string `json:"hook"`
	// Method is MethodTCX or MethodTC.
	Method string `json:"method"`
	// ID is the kernel's program id (bpftool prog show id ID).
	ID uint32 `json:"prog_id,omitempty"`
}

// String is "redirect-peer at wire-bpf ingress (tcx)".
func (i Info) String() string {
	if i.Program == ProgSockmap {
		return fmt.Sprintf("%s at %s %s + sk_msg (bypasses TCP and netfilter: not a network path)", i.Program, i.Dev, i.Hook)
	}
	return fmt.Sprintf("%s at %s %s (%s)", i.Program, i.Dev, i.Hook, i.Method)
}

// SockmapSpec says which connections a Sockmap short-circuits.
type SockmapSpec struct {
	// NSPath is the namespace (a path; never "") and NS its name.
	NSPath, NS string
	// Port at either end of a loopback TCP connection.
	Port int
	// Cgroup is the cgroup v2 directory the sock_ops program attaches to
	// (EnterCgroup's).
	Cgroup string
}

// Counts are a program's packet counters, summed over CPUs.
type Counts struct {
	Seen uint64 `json:"seen"`
	// Redirected went out through bpf_redirect or bpf_redirect_peer.
	Redirected uint64 `json:"redirected"`
	// Neigh went out through bpf_redirect_neigh.
	Neigh uint64 `json:"redirected_neigh"`
	// Passed were left to the stack (ARP/NDP, local destinations, TTL 1,
	// no route the FIB forwards, no endpoint).
	Passed uint64 `json:"passed"`
	// NotEndpoint is RedirectPeer's share of Passed whose route was not
	// through an endpoint.
	NotEndpoint uint64 `json:"not_endpoint"`
}
