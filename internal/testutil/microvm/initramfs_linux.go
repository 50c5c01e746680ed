package microvm

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// initScript is the guest's /init: mount what latlab needs, load the
// modules, run /script, report its exit status on the console and power
// off. /dev/ttyS1 is made raw so Data comes back byte for byte.
const initScript = `#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /dev /tmp /run /sbin /usr/bin /usr/sbin /var
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin HOME=/root
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
ln -sfn /run /var/run
mkdir -p /root /var/lib /sys/fs/bpf /sys/kernel/tracing /sys/fs/cgroup
mount -t bpf bpf /sys/fs/bpf
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
mount -t cgroup2 cgroup2 /sys/fs/cgroup
ip link set lo up
stty -F /dev/ttyS1 raw -echo 2>/dev/null
for m in $(cat /etc/microvm/modules); do
  modprobe "$m" || echo "microvm: modprobe $m failed"
done
echo "microvm: kernel $(uname -r), $(nproc) CPUs: running the script"
cd /tmp
sh /script
rc=$?
sync
echo "` + exitMarker + `$rc"
poweroff -f
`

const exitMarker = "LATLAB-MICROVM-EXIT="

// baseFormat changes whenever what goes into the base changes in a way
// its cache key does not see (how modules are picked, say).
const baseFormat = 2

// baseInitramfs returns the cached initramfs base for kernel u with
// modules (and their dependencies): busybox, /init, the modules and their
// index. It is built once per kernel, module list and busybox binary.
func baseInitramfs(cache string, u unpacked, modules []string, logf func(string, ...any)) (string, error) {
	busybox, err := exec.LookPath("busybox")
	if err != nil {
		return "", fmt.Errorf("busybox (busybox-static) is not installed: %w", err)
	}
	bi, err := os.Stat(busybox)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	fmt.Fprintf(h, "%d\n%s\n%s\n%s\n%d %d\n%s", baseFormat, u.pkg, u.version, strings.Join(modules, ","), bi.Size(), bi.ModTime().UnixNano(), initScript)
	path := filepath.Join(cache, "initrd", u.pkg+"_"+safe(u.version)+"-"+hex.EncodeToString(h.Sum(nil))[:12]+".cpio")
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	logf("building the initramfs base for %s (cached in %s)", u.release, path)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", err
	}
	stage, err := os.MkdirTemp(filepath.Dir(path), ".stage-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(stage)
	load, err := stageModules(u, modules, filepath.Join(stage, "lib", "modules", u.release), logf)
	if err != nil {
		return "", err
	}
	for _, d := range []string{"bin", "etc/microvm"} {
		if err := os.MkdirAll(filepath.Join(stage, d), 0o755); err != nil {
			return "", err
		}
	}
	if err := copyFile(busybox, filepath.Join(stage, "bin", "busybox")); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(stage, "init"), []byte(initScript), 0o755); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(stage, "etc", "microvm", "modules"), []byte(strings.Join(load, "\n")+"\n"), 0o644); err != nil {
		return "", err
	}
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return "", err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	cw := &cpioWriter{w: bw}
	err = cw.tree(stage, "")
	if err == nil {
		err = cw.close()
	}
	if err == nil {
		err = bw.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("write initramfs %s: %w", tmp, err)
	}
	return path, os.Rename(tmp, path)
}

// stageModules copies modules and everything they depend on (per the
// kernel's modules.dep) into dir decompressed, with the kernel's
// modules.builtin*, then indexes them (depmod -b) so the guest's modprobe
// and the kernel's autoloading find them. It returns the names to load:
// the modules asked for that are modules (built-in ones need no loading;
// ones the kernel lacks are logged and left out, so the test finds the
// gap and says so).
func stageModules(u unpacked, modules []string, dir string, logf func(string, ...any)) ([]string, error) {
	depFile := filepath.Join(u.modules(), "modules.dep")
	b, err := os.ReadFile(depFile)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", depFile, err)
	}
	deps := map[string][]string{} // relative path -> its dependencies' paths
	byName := map[string]string{} // module name -> relative path
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		mod, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		deps[mod] = strings.Fields(rest)
		byName[modName(mod)] = mod
	}
	builtin, _ := os.ReadFile(filepath.Join(u.modules(), "modules.builtin"))
	isBuiltin := map[string]bool{}
	for _, l := range strings.Fields(string(builtin)) {
		isBuiltin[modName(l)] = true
	}
	aliases := map[string][]string{} // alias -> module names
	if b, err := os.ReadFile(filepath.Join(u.modules(), "modules.alias")); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) == 3 && f[0] == "alias" {
				aliases[f[1]] = append(aliases[f[1]], strings.ReplaceAll(f[2], "-", "_"))
			}
		}
	}
	// Soft dependencies ("softdep libcrc32c pre: crc32c") are not in
	// modules.dep and busybox's modprobe ignores them: load them first.
	softPre := map[string][]string{}
	if b, err := os.ReadFile(filepath.Join(u.modules(), "modules.softdep")); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			f := strings.Fields(l)
			if len(f) < 3 || f[0] != "softdep" {
				continue
			}
			pre := false
			for _, w := range f[2:] {
				switch w {
				case "pre:":
					pre = true
				case "post:":
					pre = false
				default:
					if pre {
						softPre[strings.ReplaceAll(f[1], "-", "_")] = append(softPre[strings.ReplaceAll(f[1], "-", "_")], w)
					}
				}
			}
		}
	}
	var load []string
	loading := map[string]bool{}
	want := map[string]bool{}
	var add func(string)
	add = func(p string) {
		if want[p] {
			return
		}
		want[p] = true
		for _, d := range deps[p] {
			add(d)
		}
	}
	// need adds module n (a name or an alias), its soft and hard
	// dependencies, and returns whether the kernel has it at all.
	var need func(n string) bool
	need = func(n string) bool {
		n = strings.ReplaceAll(n, "-", "_")
		if loading[n] || isBuiltin[n] {
			return true
		}
		p, ok := byName[n]
		if !ok {
			found := false
			for _, m := range aliases[n] {
				found = need(m) || found
			}
			return found
		}
		loading[n] = true
		for _, d := range deps[p] { // modules.dep's lists are transitive
			for _, s := range softPre[modName(d)] {
				need(s)
			}
		}
		for _, s := range softPre[n] {
			need(s)
		}
		add(p)
		load = append(load, n)
		return true
	}
	for _, m := range modules {
		if !need(m) {
			logf("kernel %s has no module %s (neither built in nor shipped)", u.release, m)
		}
	}
	paths := make([]string, 0, len(want))
	for p := range want {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	for _, p := range paths {
		dst := filepath.Join(dir, strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(p, ".xz"), ".zst"), ".gz"))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return nil, err
		}
		if err := decompress(filepath.Join(u.modules(), p), dst); err != nil {
			return nil, err
		}
	}
	for _, f := range []string{"modules.builtin", "modules.builtin.modinfo", "modules.order"} {
		if _, err := os.Stat(filepath.Join(u.modules(), f)); err == nil {
			if err := copyFile(filepath.Join(u.modules(), f), filepath.Join(dir, f)); err != nil {
				return nil, err
			}
		}
	}
	root := strings.TrimSuffix(dir, filepath.Join("lib", "modules", u.release))
	if out, err := exec.Command("depmod", "-b", root, u.release).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("depmod -b %s %s: %w: %s", root, u.release, err, lastLines(out, 3))
	}
	return load, nil
}

// modName is a module's name from its path: kernel/net/a-b.ko.xz -> a_b.
func modName(p string) string {
	n := filepath.Base(p)
	if i := strings.Index(n, ".ko"); i >= 0 {
		n = n[:i]
	}
	return strings.ReplaceAll(n, "-", "_")
}

// decompress copies a module, decompressing .xz, .zst and .gz (busybox's
// insmod loads plain ELF).
func decompress(src, dst string) error {
	var tool string
	switch filepath.Ext(src) {
	case ".xz":
		tool = "xz"
	case ".zst":
		tool = "zstd"
	case ".gz":
		tool = "gzip"
	default:
		return copyFile(src, dst)
	}
	out, err := exec.Command(tool, "-dc", src).Output()
	if err != nil {
		return fmt.Errorf("decompress %s with %s: %w", src, tool, exitErr(err))
	}
	return os.WriteFile(dst, out, 0o644)
}

func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	fi, err := os.Stat(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, fi.Mode().Perm())
}
