package microvm

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/latlab/latlab/internal/testutil"
)

// Config is one guest run.
type Config struct {
	Kernel Kernel
	// Modules are loaded (with their dependencies) before the script
	// runs; ones the kernel builds in or lacks are left out (logged).
	Modules []string
	// Files are copied into the guest: guest path -> host path.
	Files map[string]string
	// Script is run by the guest's busybox sh as /script, in /tmp.
	Script string
	// Timeout bounds the whole run, boot included (default 10 minutes).
	Timeout time.Duration
	// CPUs and MemoryMiB size the guest (default 2 and 2048).
	CPUs      int
	MemoryMiB int
}

// Result is what a guest run returned.
type Result struct {
	// Exit is the script's exit status.
	Exit int
	// Console is everything the guest's console printed (kernel messages
	// and the script's standard output and error), \r removed.
	Console string
	// Data is what the script wrote to /dev/ttyS1.
	Data []byte
	// Accel is the accelerator the guest ran on: "kvm" or "tcg".
	Accel string
	// Release is the guest kernel's uname -r.
	Release string
	// Elapsed is the run's wall time, boot included.
	Elapsed time.Duration
}

// Rig boots kernels; one per test binary is enough (it caches).
type Rig struct {
	cache string
	logf  func(string, ...any)
}

// RequireRig returns a rig, or skips (fails under CI=true) when a tool it
// needs is missing or the test is not root.
func RequireRig(t testing.TB) *Rig {
	t.Helper()
	testutil.RequireRoot(t)
	for _, tool := range []string{"qemu-system-x86_64", "busybox", "depmod", "dpkg-deb", "apt-get", "apt-cache", "xz"} {
		testutil.RequireTool(t, tool)
	}
	cache := os.Getenv("LATLAB_MICROVM_CACHE")
	if cache == "" {
		cache = "/var/cache/latlab/microvm"
	}
	if err := os.MkdirAll(filepath.Join(cache, "kernels"), 0o755); err != nil {
		t.Fatalf("microvm cache: %v", err)
	}
	return &Rig{cache: cache, logf: t.Logf}
}

// Run boots cfg.Kernel with cfg's files and script and waits for the
// script to end, streaming the console into the test log. An error means
// the guest did not get to report the script's exit status.
func (r *Rig) Run(t testing.TB, cfg Config) (Result, error) {
	t.Helper()
	logf := func(f string, a ...any) { t.Logf("[%s] "+f, append([]any{cfg.Kernel.Name}, a...)...) }
	unlock, err := r.lock()
	if err != nil {
		return Result{}, err
	}
	u, err := fetchKernel(r.cache, cfg.Kernel, logf)
	if err == nil {
		var base string
		base, err = baseInitramfs(r.cache, u, cfg.Modules, logf)
		if err == nil {
			var accel string
			accel, err = r.accel(u, base, logf)
			unlock()
			if err != nil {
				return Result{}, err
			}
			return r.boot(t, cfg, u, base, accel, logf)
		}
	}
	unlock()
	return Result{}, err
}

// lock serialises cache updates between test processes.
func (r *Rig) lock() (func(), error) {
	f, err := os.OpenFile(filepath.Join(r.cache, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock microvm cache: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock microvm cache: %w", err)
	}
	return func() { f.Close() }, nil
}

// kvmProbeTimeout bounds the KVM probe: a guest that works under KVM
// boots to its script in a few seconds; a nested guest that cannot run
// under it hangs with no output.
const kvmProbeTimeout = 20 * time.Second

// accel picks kvm when /dev/kvm boots this kernel to its script within
// kvmProbeTimeout, tcg otherwise; the verdict is cached per host boot.
func (r *Rig) accel(u unpacked, base string, logf func(string, ...any)) (string, error) {
	if os.Getenv("LATLAB_MICROVM_ACCEL") != "" {
		return os.Getenv("LATLAB_MICROVM_ACCEL"), nil
	}
	if _, err := os.Stat("/dev/kvm"); err != nil {
		logf("no /dev/kvm: the guest runs under TCG (software emulation: functional, not timing)")
		return "tcg", nil
	}
	bootID, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
	verdict := filepath.Join(r.cache, "accel-"+strings.TrimSpace(string(bootID)))
	if b, err := os.ReadFile(verdict); err == nil {
		a := strings.TrimSpace(string(b))
		logf("accelerator %s (probed earlier this host boot; %s)", a, verdict)
		return a, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), kvmProbeTimeout)
	defer cancel()
	initrd, cleanup, err := r.initrd(base, Config{Script: "exit 0\n"})
	if err != nil {
		return "", err
	}
	defer cleanup()
	var console bytes.Buffer
	cmd := qemuCmd(ctx, "kvm", Config{CPUs: 1, MemoryMiB: 512}, u, initrd, os.DevNull)
	cmd.Stdout = &console
	start := time.Now()
	err = cmd.Run()
	accel := "tcg"
	if strings.Contains(console.String(), exitMarker+"0") {
		accel = "kvm"
		logf("KVM works here: the guest booted in %v", time.Since(start).Round(time.Millisecond))
	} else {
		logf("KVM did not boot a guest within %v (%v; %d bytes of console): the guest runs under TCG (software emulation: functional, not timing)",
			kvmProbeTimeout, err, console.Len())
	}
	os.WriteFile(verdict, []byte(accel+"\n"), 0o644)
	return accel, nil
}

// initrd writes base + a part holding cfg's files and script into a temp
// file.
func (r *Rig) initrd(base string, cfg Config) (string, func(), error) {
	f, err := os.CreateTemp("", "latlab-microvm-*.cpio")
	if err != nil {
		return "", nil, err
	}
	cleanup := func() { os.Remove(f.Name()) }
	fail := func(err error) (string, func(), error) {
		f.Close()
		cleanup()
		return "", nil, fmt.Errorf("write initramfs: %w", err)
	}
	b, err := os.Open(base)
	if err != nil {
		return fail(err)
	}
	_, err = io.Copy(f, b)
	b.Close()
	if err != nil {
		return fail(err)
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	cw := &cpioWriter{w: bw}
	dirs := map[string]bool{}
	for guest := range cfg.Files {
		guest = strings.TrimPrefix(filepath.Clean(guest), "/")
		for d := filepath.Dir(guest); d != "." && d != "/"; d = filepath.Dir(d) {
			dirs[d] = true
		}
	}
	var ds []string
	for d := range dirs {
		ds = append(ds, d)
	}
	// Parents before children: the kernel creates what it unpacks in
	// order.
	slices.SortFunc(ds, func(a, b string) int {
		return cmp.Or(cmp.Compare(strings.Count(a, "/"), strings.Count(b, "/")), cmp.Compare(a, b))
	})
	for _, d := range ds {
		cw.dir(d)
	}
	for guest, host := range cfg.Files {
		data, err := os.ReadFile(host)
		if err != nil {
			return fail(err)
		}
		cw.file(strings.TrimPrefix(filepath.Clean(guest), "/"), data)
	}
	cw.file("script", []byte(cfg.Script))
	if err := cw.close(); err != nil {
		return fail(err)
	}
	if err := bw.Flush(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		cleanup()
		return "", nil, err
	}
	return f.Name(), cleanup, nil
}

// qemuCmd is the guest's command line: the kernel booted directly, the
// console on ttyS0 (standard output), ttyS1 into dataFile, no devices
// beyond them, no reboot.
func qemuCmd(ctx context.Context, accel string, cfg Config, u unpacked, initrd, dataFile string) *exec.Cmd {
	cpu := "max"
	accelArg := "tcg,thread=multi"
	if accel == "kvm" {
		cpu, accelArg = "host", "kvm"
	}
	cpus, mem := cfg.CPUs, cfg.MemoryMiB
	if cpus == 0 {
		cpus = 2
	}
	if mem == 0 {
		mem = 2048
	}
	args := []string{
		"-accel", accelArg, "-cpu", cpu, "-smp", strconv.Itoa(cpus), "-m", strconv.Itoa(mem),
		"-kernel", u.vmlinuz(), "-initrd", initrd,
		"-append", "console=ttyS0 loglevel=4 panic=-1 rdinit=/init",
		"-display", "none", "-nodefaults", "-no-reboot",
		"-serial", "stdio", "-serial", "file:" + dataFile,
	}
	cmd := exec.CommandContext(ctx, "qemu-system-x86_64", args...)
	cmd.Stdin = nil
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

func (r *Rig) boot(t testing.TB, cfg Config, u unpacked, base, accel string, logf func(string, ...any)) (Result, error) {
	timeout := cfg.Timeout
	if timeout == 0 {
		timeout = 10 * time.Minute
	}
	initrd, cleanup, err := r.initrd(base, cfg)
	if err != nil {
		return Result{}, err
	}
	defer cleanup()
	data, err := os.CreateTemp("", "latlab-microvm-data-*")
	if err != nil {
		return Result{}, err
	}
	data.Close()
	defer os.Remove(data.Name())
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := qemuCmd(ctx, accel, cfg, u, initrd, data.Name())
	out, err := cmd.StdoutPipe()
	if err != nil {
		return Result{}, err
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	res := Result{Accel: accel, Release: u.release, Exit: -1}
	logf("booting %s (%s) under %s, %d CPUs", u.release, u.pkg, accel, max(cfg.CPUs, 2))
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return res, fmt.Errorf("start qemu: %w", err)
	}
	var console strings.Builder
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		console.WriteString(line + "\n")
		logf("%s", line)
		if v, ok := strings.CutPrefix(line, exitMarker); ok {
			if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
				res.Exit = n
			}
		}
	}
	werr := cmd.Wait()
	res.Elapsed = time.Since(start)
	res.Console = console.String()
	res.Data, _ = os.ReadFile(data.Name())
	if res.Exit < 0 {
		why := "the guest ended"
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			why = fmt.Sprintf("timed out after %v", timeout)
		}
		if sc.Err() != nil {
			why += fmt.Sprintf(" (reading the console: %v)", sc.Err())
		}
		return res, fmt.Errorf("boot %s: %s before the script reported its exit status (qemu: %v; %s); the console's last lines:\n%s",
			cfg.Kernel.Name, why, werr, lastLines(stderr.Bytes(), 3), lastLines([]byte(res.Console), 15))
	}
	logf("script exited %d after %v (boot included)", res.Exit, res.Elapsed.Round(time.Millisecond))
	return res, nil
}
