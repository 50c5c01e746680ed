package dockertest

import (
	"bufio"
	"context"
	"debug/elf"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/latlab/latlab/internal/docker"
	"github.com/latlab/latlab/internal/testutil"
)

// Daemon is a running private dockerd.
type Daemon struct {
	// Host is the daemon's address, unix://DIR/d.sock.
	Host string
	// NetNS and NetNSPath name the daemon's network namespace.
	NetNS, NetNSPath string
	// Bridge is docker0's address (--bip).
	Bridge string
	// Dir holds the data root, exec root, socket and log.
	Dir string
}

// Start starts a private dockerd in a fresh network namespace, waits for
// its socket to answer, and registers its stop (SIGTERM, then SIGKILL of
// its process group), the removal of its directory and of the namespace in
// t.Cleanup. It skips (fails under CI=true) without root or dockerd.
func Start(t testing.TB) *Daemon {
	t.Helper()
	testutil.RequireRoot(t)
	dockerd := testutil.RequireTool(t, "dockerd")
	testutil.RequireTool(t, "containerd")
	testutil.RequireTool(t, "runc")
	nsenter := testutil.RequireTool(t, "nsenter")

	name, nsPath := testutil.NewNetNS(t) // removed last (cleanups run LIFO)
	dir, err := os.MkdirTemp("", "lldk-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeDir(t, dir) })
	if err := os.WriteFile(filepath.Join(dir, "daemon.json"), []byte("{}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d := &Daemon{Host: "unix://" + filepath.Join(dir, "d.sock"), NetNS: name, NetNSPath: nsPath, Dir: dir,
		Bridge: fmt.Sprintf("10.%d.%d.1", 200+rand.IntN(50), rand.IntN(256))}
	logf, err := os.Create(filepath.Join(dir, "dockerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(nsenter, "--net="+nsPath, dockerd,
		"--config-file", filepath.Join(dir, "daemon.json"),
		"--data-root", filepath.Join(dir, "data"), "--exec-root", filepath.Join(dir, "exec"),
		"-H", d.Host, "--pidfile", filepath.Join(dir, "d.pid"),
		"--bip", d.Bridge+"/24", "--iptables=true", "--ip-masq=true")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = ownProcessGroup()
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("start dockerd: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait(); logf.Close() }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			t.Errorf("dockerd did not stop within 30s; killing its process group")
			killProcessGroup(cmd.Process)
			<-exited
		}
	})

	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		e, err := docker.Open(ctx, d.Host)
		cancel()
		if err == nil {
			e.Close()
			break
		}
		select {
		case werr := <-exited:
			exited <- werr
			t.Fatalf("dockerd exited (%v): %s", werr, tailFile(filepath.Join(dir, "dockerd.log")))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("dockerd did not answer within 60s: %v\n%s", err, tailFile(filepath.Join(dir, "dockerd.log")))
		}
		time.Sleep(100 * time.Millisecond)
	}
	return d
}

// Log returns the end of the daemon's log.
func (d *Daemon) Log() string { return tailFile(filepath.Join(d.Dir, "dockerd.log")) }

// Veth creates a veth pair a–b inside the daemon's namespace and sets both
// ends up: a parent for a macvlan network that is not a real NIC.
func (d *Daemon) Veth(t testing.TB, a, b string) {
	t.Helper()
	testutil.NewVeth(t, d.NetNSPath, a, b)
	h, err := netns.GetFromPath(d.NetNSPath)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	nh, err := netlink.NewHandleAt(h)
	if err != nil {
		t.Fatal(err)
	}
	defer nh.Close()
	for _, n := range []string{a, b} {
		l, err := nh.LinkByName(n)
		if err == nil {
			err = nh.LinkSetUp(l)
		}
		if err != nil {
			t.Fatalf("set %s up: %v", n, err)
		}
	}
}

// Latlab builds a static latlab (CGO_ENABLED=0) into the test's temporary
// directory and returns its path: the binary the image is made of (a test
// binary is not latlab). The build cache makes repeated builds quick.
func Latlab(t testing.TB) string {
	t.Helper()
	return buildLatlab(t, goTool(), "CGO_ENABLED=0")
}

// LatlabCgo builds latlab with CGO_ENABLED=1, as a plain `go build` does
// on a machine with a C compiler, and returns its path: a dynamically
// linked binary (it fails the test if the result has no program
// interpreter). It skips (fails under CI=true) without the C compiler
// `go env CC` names.
func LatlabCgo(t testing.TB) string {
	t.Helper()
	goBin := goTool()
	out, err := exec.Command(goBin, "env", "CC").Output()
	if err != nil {
		t.Fatalf("go env CC: %v", err)
	}
	cc := strings.Fields(strings.TrimSpace(string(out)))
	if len(cc) == 0 {
		cc = []string{"gcc"}
	}
	testutil.RequireTool(t, cc[0])
	path := buildLatlab(t, goBin, "CGO_ENABLED=1")
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return path
		}
	}
	t.Fatalf("go build with CGO_ENABLED=1 gave a static binary: no dynamically linked latlab to test with")
	return ""
}

// goTool is the go command of the toolchain running the test.
func goTool() string {
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goBin); err != nil {
		return "go"
	}
	return goBin
}

// buildLatlab builds cmd/latlab into the test's temporary directory with
// the extra environment variables.
func buildLatlab(t testing.TB, goBin string, env ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "latlab")
	cmd := exec.Command(goBin, "build", "-o", path, "github.com/latlab/latlab/cmd/latlab")
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build latlab (%s): %v\n%s", strings.Join(env, " "), err, out)
	}
	return path
}

// removeDir unmounts whatever dockerd left mounted under dir (overlays,
// the netns bind mounts) and removes it.
func removeDir(t testing.TB, dir string) {
	var mounts []string
	if f, err := os.Open("/proc/self/mountinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if fs := strings.Fields(sc.Text()); len(fs) > 4 && strings.HasPrefix(fs[4], dir+"/") {
				mounts = append(mounts, fs[4])
			}
		}
		f.Close()
	}
	// Deepest first.
	slices.SortFunc(mounts, func(a, b string) int { return len(b) - len(a) })
	for _, m := range mounts {
		unmountDetach(m)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Errorf("remove dockerd dir: %v", err)
	}
}

func tailFile(p string) string {
	b, _ := os.ReadFile(p)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 15 {
		lines = lines[len(lines)-15:]
	}
	return strings.Join(lines, "\n")
}
