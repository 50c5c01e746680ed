package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	vnl "github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/latlab/latlab/internal/offload"
	"github.com/latlab/latlab/internal/testutil"
)

// runOffload executes newOffloadCmd on its own, mapping the error to an
// exit code as Run does.
func runOffload(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := newOffloadCmd(&env{stdout: &out, stderr: &errb})
	cmd.SetArgs(args)
	cmd.SetOut(&out)
	cmd.SetErr(&errb)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	err := cmd.Execute()
	var ue usageError
	switch {
	case err == nil:
		code = ExitOK
	case errors.As(err, &ue):
		code = ExitUsage
	default:
		code = ExitFailed
	}
	if err != nil {
		errb.WriteString(err.Error())
	}
	return code, out.String(), errb.String()
}

func TestOffloadHelp(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"show", "--help"}, {"set", "--help"}} {
		code, out, _ := runOffload(t, args...)
		if code != ExitOK {
			t.Errorf("%v: code %d", args, code)
		}
		for _, want := range []string{"Examples:", "--netns"} {
			if !strings.Contains(out, want) {
				t.Errorf("%v: help lacks %q:\n%s", args, want, out)
			}
		}
	}
	_, out, _ := runOffload(t, "--help")
	for _, want := range []string{"tso, gso", "gro, lro", "rx-usecs", "ethtool -K"} {
		if !strings.Contains(out, want) {
			t.Errorf("offload --help lacks %q", want)
		}
	}
	_, out, _ = runOffload(t, "set", "--help")
	for _, want := range []string{"--allow-host-nic", "refused", "dependent"} {
		if !strings.Contains(out, want) {
			t.Errorf("offload set --help lacks %q", want)
		}
	}
}

func TestOffloadUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"frob"}, "unknown offload command"},
		{[]string{"show"}, "accepts 1 arg"},
		{[]string{"show", "a", "b"}, "accepts 1 arg"},
		{[]string{"show", "--bogus", "x"}, "unknown flag"},
		{[]string{"set", "--netns", "x", "veth0"}, "requires at least 2"},
		{[]string{"set", "--netns", "x", "veth0", "tso=maybe"}, "NAME=on or NAME=off"},
		{[]string{"set", "--netns", "x", "veth0", "tso"}, "NAME=on or NAME=off"},
		{[]string{"set", "eth0", "tso=off"}, "--allow-host-nic"},
	} {
		code, _, stderr := runOffload(t, tc.args...)
		if code != ExitUsage || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: code %d, stderr %q; want usage error with %q", tc.args, code, stderr, tc.want)
		}
	}
}

// fakeOffload is an offloadClient with canned answers.
type fakeOffload struct {
	coalesce offload.Coalesce
	netns    string
	set      []offload.Setting
}

func (f *fakeOffload) Show(dev string) (*offload.Info, error) {
	if dev != "veth0" {
		return nil, errors.New("read features of " + dev + ": " + offload.ErrNoDevice.Error())
	}
	return &offload.Info{
		NetNS: f.netns, Dev: dev, Backend: "netlink",
		Features: offload.Features{
			{Name: "tx-checksum-ipv4", Kernel: "tx-checksum-ipv4", State: offload.State{Fixed: true}},
			{Name: "tx-checksum-ip-generic", Kernel: "tx-checksum-ip-generic", State: offload.State{Active: true, Requested: true}},
			{Name: "generic-receive-offload", Kernel: "rx-gro", State: offload.State{}},
			{Name: "tx-tcp-segmentation", Kernel: "tx-tcp-segmentation", State: offload.State{Requested: true}},
			{Name: "tx-tcp6-segmentation", Kernel: "tx-tcp6-segmentation", State: offload.State{Active: true, Requested: true}},
			{Name: "highdma", Kernel: "highdma", State: offload.State{Active: true, Requested: true}},
		},
		Channels: offload.Channels{"rx": 1, "tx": 1, "rx-max": 2, "tx-max": 2},
	}, nil
}

func (f *fakeOffload) Set(dev string, s []offload.Setting) (*offload.SetResult, error) {
	f.set = s
	for _, x := range s {
		if x.Name == "tos" {
			return nil, errors.Join(errors.New(`"tos": unknown feature; did you mean tso?`), offload.ErrUnknownFeature)
		}
	}
	res := &offload.SetResult{
		NetNS: f.netns, Dev: dev,
		Changed:   []offload.Change{{Name: "generic-receive-offload", From: false, To: true}},
		Unchanged: []string{},
		Refused:   []offload.Refusal{},
		Dependent: []offload.Change{{Name: "tx-udp-segmentation", From: true, To: false}},
	}
	for _, x := range s {
		if x.Name == "lro" {
			res.Refused = append(res.Refused, offload.Refusal{Name: "large-receive-offload", Want: true, Reason: "fixed: the device cannot change it"})
		}
	}
	return res, nil
}

func (f *fakeOffload) Close() error { return nil }

func (f *fakeOffload) Coalesce(dev string) (offload.Coalesce, error) {
	if f.coalesce == nil {
		f.coalesce = offload.Coalesce{"rx-usecs": 3, "adaptive-rx": 0}
	}
	out := offload.Coalesce{} // a fresh reading, as the kernel gives
	for k, v := range f.coalesce {
		out[k] = v
	}
	return out, nil
}

// SetCoalesce takes everything but rx-frames, which this fake driver keeps.
func (f *fakeOffload) SetCoalesce(dev string, p offload.Coalesce) error {
	for k, v := range p {
		if k == "nosuch" {
			return fmt.Errorf("%w: %s; did you mean rx-usecs?", offload.ErrUnknownFeature, k)
		}
		if k != "rx-frames" {
			f.coalesce[k] = v
		}
	}
	return nil
}

// offload coalesce reports before -> after from a re-read, flags what the
// driver did not take, and refuses bad input and the host's namespace.
func TestOffloadCoalesceCommand(t *testing.T) {
	f := &fakeOffload{}
	old := offloadOpen
	offloadOpen = func(string) (offloadClient, error) { return f, nil }
	defer func() { offloadOpen = old }()
	code, out, stderr := runCLI(t, "offload", "coalesce", "--netns", "x", "eth0", "rx-usecs=50", "adaptive-rx=on")
	if code != ExitOK || !strings.Contains(out, "rx-usecs: 3 -> 50") || !strings.Contains(out, "adaptive-rx: 0 -> 1") {
		t.Errorf("exit %d: %s %s", code, out, stderr)
	}
	code, out, _ = runCLI(t, "offload", "coalesce", "--netns", "x", "eth0", "rx-frames=1")
	if code != ExitFailed || !strings.Contains(out, "kept its own value") {
		t.Errorf("a parameter the driver keeps: exit %d: %s", code, out)
	}
	for _, args := range [][]string{
		{"offload", "coalesce", "--netns", "x", "eth0", "rx-usecs"},
		{"offload", "coalesce", "--netns", "x", "eth0", "rx-usecs=-1"},
		{"offload", "coalesce", "--netns", "x", "eth0", "nosuch=1"},
		{"offload", "coalesce", "eth0", "rx-usecs=1"},
	} {
		if code, _, _ := runCLI(t, args...); code != ExitUsage {
			t.Errorf("%v: exit %d, want usage", args, code)
		}
	}
}

func withFakeOffload(t *testing.T) *fakeOffload {
	f := &fakeOffload{}
	old := offloadOpen
	offloadOpen = func(ns string) (offloadClient, error) { f.netns = ns; return f, nil }
	t.Cleanup(func() { offloadOpen = old })
	return f
}

func TestOffloadShowFake(t *testing.T) {
	f := withFakeOffload(t)
	code, out, stderr := runOffload(t, "show", "--netns", "lab1", "veth0")
	if code != ExitOK {
		t.Fatalf("code %d: %s", code, stderr)
	}
	if f.netns != "/var/run/netns/lab1" {
		t.Errorf("netns %q", f.netns)
	}
	for _, want := range []string{
		"Features for veth0 in netns /var/run/netns/lab1 (ethtool netlink):\n",
		"tx-checksumming: on\n\ttx-checksum-ipv4: off [fixed]\n\ttx-checksum-ip-generic: on\n",
		"tcp-segmentation-offload: on\n\ttx-tcp-segmentation: off [requested on]\n\ttx-tcp6-segmentation: on\n",
		"generic-receive-offload: off\n",
		"highdma: on\n",
		"Coalescing (ethtool -c): not supported by the driver",
		"Channels (ethtool -l):\nrx-max: 2\ntx-max: 2\nrx: 1\ntx: 1\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("show lacks %q:\n%s", want, out)
		}
	}

	_, out, _ = runOffload(t, "show", "--netns", "lab1", "veth0", "--json")
	var got struct {
		Features map[string]map[string]bool `json:"features"`
		Coalesce map[string]uint32          `json:"coalesce"`
		Rings    map[string]uint32          `json:"rings"`
		Channels map[string]uint32          `json:"channels"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if s := got.Features["tx-tcp-segmentation"]; len(s) != 3 || s["active"] || !s["requested"] || s["fixed"] {
		t.Errorf("tx-tcp-segmentation: %v", s)
	}
	if !got.Features["tx-checksum-ipv4"]["fixed"] || len(got.Features) != 6 {
		t.Errorf("features: %v", got.Features)
	}
	if got.Coalesce != nil || got.Rings != nil || got.Channels["combined"] != 0 || got.Channels["rx"] != 1 {
		t.Errorf("params: %s", out)
	}
	if !strings.Contains(out, `"coalesce": null`) {
		t.Errorf("unsupported coalescing not null:\n%s", out)
	}
}

func TestOffloadSetFake(t *testing.T) {
	f := withFakeOffload(t)
	code, out, stderr := runOffload(t, "set", "--netns", "/run/netns/lab1", "veth0", "gro=on", "tso", "off")
	if code != ExitOK {
		t.Fatalf("code %d: %s", code, stderr)
	}
	if f.netns != "/run/netns/lab1" || len(f.set) != 2 || f.set[1] != (offload.Setting{Name: "tso", On: false}) {
		t.Errorf("client got netns %q settings %v", f.netns, f.set)
	}
	for _, want := range []string{"changed:\n  generic-receive-offload  off -> on\n", "dependent (moved with the request):\n  tx-udp-segmentation", "on -> off"} {
		if !strings.Contains(out, want) {
			t.Errorf("set output lacks %q:\n%s", want, out)
		}
	}
	code, out, stderr = runOffload(t, "set", "--netns", "lab1", "veth0", "lro=on", "--json")
	if code != ExitFailed || !strings.Contains(stderr, "1 refused: large-receive-offload") {
		t.Errorf("refused: code %d stderr %q", code, stderr)
	}
	var res offload.SetResult
	if err := json.Unmarshal([]byte(out), &res); err != nil || len(res.Refused) != 1 {
		t.Errorf("json %v: %s", err, out)
	}
	code, _, stderr = runOffload(t, "set", "--netns", "lab1", "veth0", "tos=off")
	if code != ExitUsage || !strings.Contains(stderr, "did you mean tso") {
		t.Errorf("unknown feature: code %d stderr %q", code, stderr)
	}
	// --allow-host-nic lets a device in latlab's own namespace through.
	code, _, stderr = runOffload(t, "set", "--allow-host-nic", "veth0", "gro=on")
	if code != ExitOK || f.netns != "" {
		t.Errorf("--allow-host-nic: code %d netns %q %s", code, f.netns, stderr)
	}
}

// newOffloadVeth creates a veth pair inside a fresh namespace (through a
// netlink handle at that namespace, never in ours) and returns the
// namespace name and one end.
func newOffloadVeth(t *testing.T) (nsName, dev string) {
	t.Helper()
	nsName, nsPath := testutil.NewNetNS(t)
	ns, err := netns.GetFromPath(nsPath)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	h, err := vnl.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if err := h.LinkAdd(&vnl.Veth{LinkAttrs: vnl.LinkAttrs{Name: "llc0"}, PeerName: "llc1"}); err != nil {
		t.Fatal(err)
	}
	return nsName, "llc0"
}

func TestIntegrationOffloadCLI(t *testing.T) {
	ns, dev := newOffloadVeth(t)
	showJSON := func() map[string]offload.State {
		t.Helper()
		code, out, stderr := runOffload(t, "show", "--netns", ns, dev, "--json")
		if code != ExitOK {
			t.Fatalf("show: code %d: %s", code, stderr)
		}
		var got struct {
			Features map[string]offload.State `json:"features"`
			Channels map[string]uint32        `json:"channels"`
		}
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatal(err)
		}
		if got.Channels["rx"] < 1 {
			t.Errorf("channels: %v", got.Channels)
		}
		return got.Features
	}
	fs := showJSON()
	if !fs["tx-tcp-segmentation"].Active || !fs["large-receive-offload"].Fixed {
		t.Fatalf("veth features: %v", fs)
	}
	code, out, stderr := runOffload(t, "show", "--netns", ns, dev)
	if code != ExitOK || !strings.Contains(out, "tcp-segmentation-offload: on\n\ttx-tcp-segmentation: on") || !strings.Contains(out, "large-receive-offload: off [fixed]") {
		t.Errorf("show: code %d %s\n%s", code, stderr, out)
	}

	code, out, stderr = runOffload(t, "set", "--netns", ns, dev, "tso=off", "gro=on")
	if code != ExitOK || !hasLine(out, "tx-tcp-segmentation", "on -> off") || !hasLine(out, "generic-receive-offload", "off -> on") {
		t.Errorf("set: code %d %s\n%s", code, stderr, out)
	}
	fs = showJSON()
	if fs["tx-tcp-segmentation"].Active || !fs["generic-receive-offload"].Active {
		t.Errorf("after set: tso %+v gro %+v", fs["tx-tcp-segmentation"], fs["generic-receive-offload"])
	}

	code, _, stderr = runOffload(t, "set", "--netns", ns, dev, "lro=on")
	if code != ExitFailed || !strings.Contains(stderr, "refused") {
		t.Errorf("lro=on: code %d %s", code, stderr)
	}
	code, _, stderr = runOffload(t, "set", "--netns", ns, dev, "generic-recieve-offload=off")
	if code != ExitUsage || !strings.Contains(stderr, "generic-receive-offload") {
		t.Errorf("typo: code %d %s", code, stderr)
	}
	code, _, stderr = runOffload(t, "show", "--netns", ns, "nosuch0")
	if code != ExitFailed || !strings.Contains(stderr, "read features of nosuch0 in netns /var/run/netns/"+ns) {
		t.Errorf("missing device: code %d %s", code, stderr)
	}
	code, _, stderr = runOffload(t, "show", "--netns", "latlab-no-such-ns", dev)
	if code != ExitFailed || !strings.Contains(stderr, "latlab-no-such-ns") {
		t.Errorf("missing netns: code %d %s", code, stderr)
	}
}

// hasLine reports whether some line of out contains every part.
func hasLine(out string, parts ...string) bool {
	for _, l := range strings.Split(out, "\n") {
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(l, p)
		}
		if ok {
			return true
		}
	}
	return false
}
