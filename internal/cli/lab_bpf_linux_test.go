package cli

import (
	"encoding/json"
	"errors"
	"io"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/latlab/latlab/internal/datapath"
	"github.com/latlab/latlab/internal/testutil"
	"github.com/latlab/latlab/internal/topo"
)

// datapathProgs lists the ids of loaded programs named as latlab's
// datapath programs are (bpftool prog show | grep -E 'redirect_peer|fib_redirect').
func datapathProgs(t *testing.T) map[ebpf.ProgramID]bool {
	t.Helper()
	out := map[ebpf.ProgramID]bool{}
	var id ebpf.ProgramID
	for {
		next, err := ebpf.ProgramGetNextID(id)
		if err != nil {
			return out
		}
		id = next
		p, err := ebpf.NewProgramFromID(id)
		if err != nil {
			continue // freed meanwhile
		}
		if info, err := p.Info(); err == nil && (info.Name == "redirect_peer" || info.Name == "fib_redirect" ||
			info.Name == "sockmap_ops" || info.Name == "sockmap_msg") {
			out[id] = true
		}
		p.Close()
	}
}

// A lab with eBPF programs killed with SIGKILL leaves no program behind:
// veth-bpf's TCX links and sidecar-sockmap's cgroup link and sock hash
// were held by the dead process (the kernel detaches and frees them), and
// `latlab cleanup` removes the namespaces and the lab's cgroup.
func TestLabVethBPFKill9LeavesNoProgram(t *testing.T) {
	testutil.RequireRoot(t)
	dir := t.TempDir()
	before := datapathProgs(t)
	cmd, errs, _ := startLab(t, dir, "--modes", "host,veth-bpf,sidecar-sockmap", "--workloads", "tcp_rr",
		"-n", "100", "-d", "200ms", "--warmup", "0s")
	line, err := errs.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "lab latlab-") {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("no build line: %q %v", line, err)
	}
	prefix := strings.TrimSuffix(strings.Fields(line)[1], ":")
	if strings.Contains(line, "veth-bpf (skipped)") || strings.Contains(line, "sidecar-sockmap (skipped)") {
		cmd.Process.Kill()
		cmd.Wait()
		testutil.SkipIfUnsupported(t, "veth-bpf skipped on this kernel: %s", line)
	}
	var ours []ebpf.ProgramID
	for id := range datapathProgs(t) {
		if !before[id] {
			ours = append(ours, id)
		}
	}
	if len(ours) < 4 {
		t.Errorf("the running lab has %d datapath programs loaded, want 4 (%q)", len(ours), line)
	}
	cg, err := datapath.CgroupPath(prefix)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(cg); err != nil {
		t.Errorf("the running lab has no cgroup %s: %v", cg, err)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	go io.Copy(io.Discard, errs)
	if len(topo.NetNSNames(prefix)) == 0 {
		t.Fatal("the killed lab had no namespaces up; the test proves nothing")
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		left := 0
		now := datapathProgs(t)
		for _, id := range ours {
			if now[id] {
				left++
			}
		}
		if left == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("%d programs still loaded 5 s after the lab was killed", left)
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code, out, stderr := runCLI(t, "cleanup", "--journal-dir", dir); code != ExitOK {
		t.Fatalf("cleanup exit %d: %s %s", code, out, stderr)
	}
	if left := topo.NetNSNames(prefix); len(left) > 0 {
		t.Errorf("namespaces left after cleanup: %v", left)
	}
	if _, err := os.Stat(cg); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("cgroup %s left after cleanup: %v", cg, err)
	}
}

// `latlab lab --json` says, per mode, which programs attached where and how.
func TestLabVethBPFReportsPrograms(t *testing.T) {
	testutil.RequireRoot(t)
	code, out, stderr := runCLI(t, "lab", "--journal-dir", t.TempDir(), "--modes", "host,veth-bpf", "--workloads", "udp_rr",
		"-n", "2", "-d", "50ms", "--warmup", "0s", "--calibrate=false", "--json")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var r struct {
		Modes []struct {
			Name     string `json:"name"`
			Status   string `json:"status"`
			Reason   string `json:"reason"`
			Programs []struct {
				Program, Dev, Hook, Method string
				ID                         uint32 `json:"prog_id"`
			} `json:"programs"`
		} `json:"modes"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	for _, m := range r.Modes {
		if m.Name != "veth-bpf" {
			continue
		}
		if m.Status == "skipped" {
			testutil.SkipIfUnsupported(t, "veth-bpf skipped: %s", m.Reason)
		}
		if len(m.Programs) != 2 {
			t.Fatalf("programs %+v", m.Programs)
		}
		for _, p := range m.Programs {
			if p.Hook != "ingress" || (p.Method != "tcx" && p.Method != "tc") || p.ID == 0 {
				t.Errorf("program %+v", p)
			}
		}
		return
	}
	t.Fatal(errors.New("no veth-bpf mode in the JSON"))
}
