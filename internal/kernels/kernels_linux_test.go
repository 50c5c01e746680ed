package kernels

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/latlab/latlab/internal/testutil/microvm"
)

// labModules are what a lab needs of a distribution kernel that builds it
// as modules; the guest loads them (and their dependencies) before the
// script, and the kernel autoloads the rest through modprobe.
var labModules = []string{
	"veth", "bridge", "macvlan", "ipvlan", "vxlan", "netkit",
	"nf_tables", "nft_chain_nat", "nft_masq", "nft_nat", "nf_nat", "nf_conntrack", "nfnetlink",
	"xfrm_user", "libcrc32c", "tcp_bbr", "sch_fq",
}

// buildLatlab builds a static latlab for the guest (the go build cache
// makes a second build quick).
func buildLatlab(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "latlab")
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	cmd := exec.Command(gobin, "build", "-trimpath", "-o", out, "../../cmd/latlab")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build latlab for the guest: %v\n%s", err, b)
	}
	return out
}

// labJSON is the part of `latlab show -o json` the matrix checks.
type labJSON struct {
	EBPFTier        string   `json:"ebpf_tier"`
	EBPFUnavailable []string `json:"ebpf_unavailable"`
	Modes           []struct {
		Name, Status, Reason string
	} `json:"modes"`
	Results []struct {
		Mode, Workload, Status, Reason string
		Trials                         int `json:"trials"`
		FailedTrials                   int `json:"failed_trials"`
		RatePerSec                     struct {
			Median float64 `json:"median"`
		} `json:"rate_per_sec"`
		Attribution *struct {
			NetRXPerTxn float64 `json:"net_rx_softirqs_per_txn"`
		} `json:"attribution"`
	} `json:"results"`
}

var leftRE = regexp.MustCompile(`(?m)^left: netns=\[(.*)\] journals=\[(.*)\] links=\[(.*)\]$`)

// TestKernelsEveryMode runs the default lab — every mode, all four
// workloads — on each distribution kernel: every mode must build, carry
// every workload and be torn down, leaving no namespace, journal or link;
// netkit only where the kernel has it, skipped with the reason elsewhere.
func TestKernelsEveryMode(t *testing.T) {
	rig := microvm.RequireRig(t)
	latlab := buildLatlab(t)
	workloads := []string{"tcp_rr", "udp_rr", "tcp_crr", "tcp_stream"}
	for _, k := range microvm.Kernels() {
		t.Run(k.Name, func(t *testing.T) {
			script := `
latlab lab --db /tmp/lab.db --workloads ` + strings.Join(workloads, ",") + ` --trials 2 -d 100ms --warmup 30ms --calibrate=false -q
echo "lab exit $?"
latlab show --db /tmp/lab.db -o json > /dev/ttyS1
latlab lab --no-store --attribute --modes ipvlan-l2 --workloads tcp_rr --trials 2 -d 100ms --warmup 30ms --calibrate=false -q -o json >> /dev/ttyS1
echo "alone exit $?"
echo "left: netns=[$(ls /run/netns 2>/dev/null | tr '\n' ' ')] journals=[$(ls /run/latlab 2>/dev/null | tr '\n' ' ')] links=[$(ip -o link | grep -v ': lo:' | cut -d: -f2 | tr '\n' ' ')]"
`
			res, err := rig.Run(t, microvm.Config{Kernel: k, Modules: labModules,
				Files: map[string]string{"/bin/latlab": latlab}, Script: script, Timeout: 8 * time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(res.Console, "lab exit 0") {
				t.Errorf("latlab lab did not exit 0 on %s (console above)", res.Release)
			}
			var lab, alone labJSON
			dec := json.NewDecoder(bytes.NewReader(res.Data))
			if err := dec.Decode(&lab); err != nil {
				t.Fatalf("latlab show -o json from the guest: %v (%d bytes)", err, len(res.Data))
			}
			if err := dec.Decode(&alone); err != nil {
				t.Fatalf("latlab lab --attribute -o json from the guest: %v", err)
			}
			checkAlone(t, res.Release, res.Console, alone)
			modes := map[string]string{}
			for _, m := range lab.Modes {
				modes[m.Name] = m.Status
				switch {
				case m.Name == "netkit" && !hasNetkit(res.Release):
					if m.Status != "skipped" || !strings.Contains(m.Reason, "CONFIG_NETKIT") {
						t.Errorf("%s: netkit on a kernel without it: %s (%s), want skipped naming CONFIG_NETKIT", res.Release, m.Status, m.Reason)
					}
				case m.Status != "ok":
					t.Errorf("%s: mode %s %s: %s", res.Release, m.Name, m.Status, m.Reason)
				}
			}
			for _, want := range []string{"host", "bridge-nat", "bridge-nat-dnat", "veth-routed", "macvlan", "ipvlan-l2", "ipvlan-l3", "vxlan", "netkit"} {
				if _, ok := modes[want]; !ok {
					t.Errorf("%s: the lab has no mode %s (modes %v)", res.Release, want, modes)
				}
			}
			got := map[string]bool{}
			for _, r := range lab.Results {
				if modes[r.Mode] != "ok" {
					continue
				}
				got[r.Mode+"/"+r.Workload] = true
				if r.Status != "ok" || r.Trials != 2 || r.FailedTrials != 0 || r.RatePerSec.Median <= 0 {
					t.Errorf("%s: %s/%s: status %s (%s), %d trials, %d failed, rate %.0f/s",
						res.Release, r.Mode, r.Workload, r.Status, r.Reason, r.Trials, r.FailedTrials, r.RatePerSec.Median)
				}
			}
			for m, st := range modes {
				for _, w := range workloads {
					if st == "ok" && !got[m+"/"+w] {
						t.Errorf("%s: no result for %s/%s", res.Release, m, w)
					}
				}
			}
			left := leftRE.FindStringSubmatch(res.Console)
			if left == nil {
				t.Fatalf("%s: the guest did not report what was left", res.Release)
			}
			if strings.TrimSpace(left[1]) != "" || strings.TrimSpace(left[2]) != "" || strings.TrimSpace(left[3]) != "" {
				t.Errorf("%s: left behind: namespaces [%s], journals [%s], links [%s]", res.Release, left[1], left[2], left[3])
			}
		})
	}
}

// hasNetkit: netkit came in 6.7 (Debian builds it in from 6.12).
func hasNetkit(release string) bool {
	var maj, min int
	if _, err := fmt.Sscanf(release, "%d.%d", &maj, &min); err != nil {
		return false
	}
	return maj > 6 || maj == 6 && min >= 7
}

// checkAlone checks the second guest lab: ipvlan-l2 alone (beside its
// baseline), with --attribute, whose probes must load as eBPF on a
// distribution kernel (BTF, tracepoints).
func checkAlone(t *testing.T, release, console string, lab labJSON) {
	t.Helper()
	if !strings.Contains(console, "alone exit 0") {
		t.Errorf("%s: latlab lab --modes ipvlan-l2 --attribute did not exit 0", release)
	}
	for _, m := range lab.Modes {
		if m.Status != "ok" {
			t.Errorf("%s: ipvlan-l2 alone: mode %s %s: %s", release, m.Name, m.Status, m.Reason)
		}
	}
	if len(lab.Modes) != 2 {
		t.Errorf("%s: ipvlan-l2 alone ran modes %v, want host and ipvlan-l2", release, lab.Modes)
	}
	t.Logf("%s: attribution tier %s; unavailable hooks: %v", release, lab.EBPFTier, lab.EBPFUnavailable)
	if !slices.Contains([]string{"tp_btf", "raw_tracepoint", "tracepoint"}, lab.EBPFTier) {
		t.Errorf("%s: --attribute ran at tier %q, want an eBPF tier (unavailable: %v)", release, lab.EBPFTier, lab.EBPFUnavailable)
	}
	for _, r := range lab.Results {
		if r.Status != "ok" || r.Attribution == nil || r.Attribution.NetRXPerTxn <= 0 {
			t.Errorf("%s: %s/%s with --attribute: status %s (%s), attribution %+v", release, r.Mode, r.Workload, r.Status, r.Reason, r.Attribution)
		}
	}
}
