package microvm

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Kernel is a Debian kernel package to boot.
type Kernel struct {
	// Name labels the kernel in logs and test names: "debian-6.1".
	Name string
	// Package is the image package, or a metapackage whose chain of
	// linux-image-* dependencies ends at one (linux-image-amd64).
	Package string
}

// Debian61 is Debian 12's own kernel, 6.1 (ipvlan a module; no netkit).
func Debian61() Kernel { return Kernel{Name: "debian-6.1", Package: "linux-image-amd64"} }

// Debian612 is the 6.12 kernel Debian 12 ships beside it (netkit built in).
func Debian612() Kernel { return Kernel{Name: "debian-6.12", Package: "linux-image-6.12-amd64"} }

// Kernels is every kernel the kernel matrix boots.
func Kernels() []Kernel { return []Kernel{Debian61(), Debian612()} }

// unpacked is a kernel package unpacked in the cache.
type unpacked struct {
	pkg, version string
	root         string // the package's tree (boot/, lib/modules/)
	release      string // uname -r
}

func (u unpacked) vmlinuz() string { return filepath.Join(u.root, "boot", "vmlinuz-"+u.release) }
func (u unpacked) modules() string { return filepath.Join(u.root, "lib", "modules", u.release) }

// resolve follows pkg's linux-image-* dependencies to the image package
// and returns it with its candidate version.
//
// Equivalent to: apt-cache depends linux-image-amd64; apt-cache show
func resolve(pkg string) (name, version string, err error) {
	name = pkg
	for range 4 {
		out, err := exec.Command("apt-cache", "depends", "--no-recommends", "--no-suggests", "--no-conflicts",
			"--no-breaks", "--no-replaces", "--no-enhances", name).Output()
		if err != nil {
			return "", "", fmt.Errorf("resolve kernel package %s: apt-cache depends %s: %w (run apt-get update first)", pkg, name, exitErr(err))
		}
		next := ""
		sc := bufio.NewScanner(bytes.NewReader(out))
		for sc.Scan() {
			if dep, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "Depends: "); ok && strings.HasPrefix(dep, "linux-image-") {
				next = strings.Trim(dep, "<>")
				break
			}
		}
		if next == "" {
			break
		}
		name = next
	}
	out, err := exec.Command("apt-cache", "show", "--no-all-versions", name).Output()
	if err != nil {
		return "", "", fmt.Errorf("resolve kernel package %s: apt-cache show %s: %w", pkg, name, exitErr(err))
	}
	for _, l := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(l, "Version: "); ok {
			return name, strings.TrimSpace(v), nil
		}
	}
	return "", "", fmt.Errorf("resolve kernel package %s: apt-cache show %s has no Version", pkg, name)
}

// fetchKernel returns the kernel package unpacked in the cache, fetching
// and unpacking it first if it is not there.
//
// Equivalent to: apt-get download PKG; dpkg-deb -x PKG.deb DIR; depmod -b DIR RELEASE
func fetchKernel(cache string, k Kernel, logf func(string, ...any)) (unpacked, error) {
	name, version, err := resolve(k.Package)
	if err != nil {
		return unpacked{}, err
	}
	u := unpacked{pkg: name, version: version, root: filepath.Join(cache, "kernels", name+"_"+safe(version))}
	done := filepath.Join(u.root, ".done")
	if _, err := os.Stat(done); err != nil {
		logf("%s: fetching and unpacking %s %s (cached for the next run in %s)", k.Name, name, version, u.root)
		if err := unpackKernel(cache, name, u.root); err != nil {
			return unpacked{}, fmt.Errorf("fetch kernel %s (%s %s): %w", k.Name, name, version, err)
		}
	}
	rels, err := os.ReadDir(filepath.Join(u.root, "lib", "modules"))
	if err != nil || len(rels) != 1 {
		return unpacked{}, fmt.Errorf("kernel %s: want one release under %s/lib/modules (%v)", k.Name, u.root, err)
	}
	u.release = rels[0].Name()
	if _, err := os.Stat(u.vmlinuz()); err != nil {
		return unpacked{}, fmt.Errorf("kernel %s: %w", k.Name, err)
	}
	return u, nil
}

func unpackKernel(cache, name, root string) error {
	tmp, err := os.MkdirTemp(filepath.Join(cache, "kernels"), ".fetch-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	// apt drops privileges to _apt for the download; a directory _apt can
	// write keeps it from warning.
	os.Chmod(tmp, 0o777)
	dl := exec.Command("apt-get", "download", "-q", name)
	dl.Dir = tmp
	if out, err := dl.CombinedOutput(); err != nil {
		return fmt.Errorf("apt-get download %s: %w: %s", name, err, lastLines(out, 3))
	}
	debs, _ := filepath.Glob(filepath.Join(tmp, "*.deb"))
	if len(debs) != 1 {
		return fmt.Errorf("apt-get download %s: want one .deb, got %v", name, debs)
	}
	tree := filepath.Join(tmp, "tree")
	if out, err := exec.Command("dpkg-deb", "-x", debs[0], tree).CombinedOutput(); err != nil {
		return fmt.Errorf("dpkg-deb -x %s: %w: %s", filepath.Base(debs[0]), err, lastLines(out, 3))
	}
	rels, err := os.ReadDir(filepath.Join(tree, "lib", "modules"))
	if err != nil || len(rels) != 1 {
		return fmt.Errorf("%s: want one release under lib/modules (%v)", name, err)
	}
	if out, err := exec.Command("depmod", "-b", tree, rels[0].Name()).CombinedOutput(); err != nil {
		return fmt.Errorf("depmod -b %s %s: %w: %s", tree, rels[0].Name(), err, lastLines(out, 3))
	}
	if err := os.WriteFile(filepath.Join(tree, ".done"), nil, 0o644); err != nil {
		return err
	}
	os.RemoveAll(root)
	return os.Rename(tree, root)
}

// safe makes a version usable in a file name (1:2.3+deb12 -> 1_2.3+deb12).
func safe(s string) string { return strings.NewReplacer(":", "_", "/", "_", "~", "_").Replace(s) }

func exitErr(err error) error {
	if ee, ok := err.(*exec.ExitError); ok && len(ee.Stderr) > 0 {
		return fmt.Errorf("%w: %s", err, lastLines(ee.Stderr, 3))
	}
	return err
}

func lastLines(b []byte, n int) string {
	ls := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(ls) > n {
		ls = ls[len(ls)-n:]
	}
	return strings.Join(ls, "; ")
}
