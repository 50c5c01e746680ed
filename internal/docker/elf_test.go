package docker

import (
	"debug/elf"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// dynamicSystemBinary is a dynamically linked executable every Debian
// machine has (coreutils), to resolve without a C compiler.
const dynamicSystemBinary = "/bin/true"

func interpOf(t *testing.T, path string) string {
	t.Helper()
	o, err := readELF(path)
	if err != nil {
		t.Fatal(err)
	}
	if o.interp == "" {
		t.Fatalf("%s is not dynamically linked", path)
	}
	return o.interp
}

// TestRootFilesDynamic resolves a dynamically linked binary: itself at
// BinaryPath, its PT_INTERP interpreter at its own path, libc at the path
// where the loader finds it, every one readable and of the binary's ELF
// machine, none twice.
func TestRootFilesDynamic(t *testing.T) {
	interp := interpOf(t, dynamicSystemBinary)
	files, err := RootFiles(dynamicSystemBinary)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 3 || files[0] != (RootFile{Path: BinaryPath, Source: dynamicSystemBinary, Kind: KindBinary}) ||
		files[1].Kind != KindInterpreter || files[1].Path != filepath.Clean(interp) {
		t.Fatalf("RootFiles(%s) = %+v: want the binary, then the interpreter %s, then libraries", dynamicSystemBinary, files, interp)
	}
	var paths []string
	libc := false
	for _, f := range files {
		if slices.Contains(paths, f.Path) {
			t.Errorf("%s twice in %+v", f.Path, files)
		}
		paths = append(paths, f.Path)
		if !filepath.IsAbs(f.Path) {
			t.Errorf("%s: not an absolute path", f.Path)
		}
		if f.Kind == KindLibrary {
			if f.Source != f.Path {
				t.Errorf("library %s read from %s: want the same path", f.Path, f.Source)
			}
			if strings.HasPrefix(filepath.Base(f.Path), "libc.so") {
				libc = true
			}
		}
		ef, err := elf.Open(f.Source)
		if err != nil {
			t.Errorf("%s: %v", f.Source, err)
			continue
		}
		ef.Close()
	}
	if !libc {
		t.Errorf("no libc among %+v", files)
	}
}

// TestRootFilesStatic: a static binary is the image's only file.
func TestRootFilesStatic(t *testing.T) {
	bin := writeStaticELF(t)
	files, err := RootFiles(bin)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 1 || files[0].Kind != KindBinary || files[0].Path != BinaryPath {
		t.Fatalf("RootFiles(static %s) = %+v, want the binary alone", bin, files)
	}
}

// writeStaticELF writes a 64-bit ELF executable header with no program
// headers: static, as far as RootFiles can tell.
func writeStaticELF(t *testing.T) string {
	t.Helper()
	h := make([]byte, 64)
	copy(h, "\x7fELF")
	h[4], h[5], h[6] = 2, 1, 1 // ELFCLASS64, little-endian, version 1
	h[16] = byte(elf.ET_EXEC)
	h[18] = byte(elf.EM_X86_64)
	h[20] = 1  // e_version
	h[52] = 64 // e_ehsize
	p := filepath.Join(t.TempDir(), "static")
	if err := os.WriteFile(p, h, 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestRootFilesMissingLibrary: a library found nowhere is an error that
// names it and where it was looked for.
func TestRootFilesMissingLibrary(t *testing.T) {
	empty := t.TempDir()
	s := libSearch{defaults: []string{empty}}
	_, err := s.rootFiles(dynamicSystemBinary)
	if err == nil || !strings.Contains(err.Error(), "libc.so") || !strings.Contains(err.Error(), empty) {
		t.Fatalf("rootFiles with no library directories: %v, want an error naming libc and %s", err, empty)
	}
	if _, err := RootFiles(filepath.Join(empty, "none")); err == nil || !strings.Contains(err.Error(), "not an ELF executable") {
		t.Errorf("RootFiles of a missing file: %v", err)
	}
}

// TestRootFilesSearchOrder: $LD_LIBRARY_PATH comes before ld.so.conf's
// directories, and a candidate of another ELF machine is passed over.
func TestRootFilesSearchOrder(t *testing.T) {
	want, err := RootFiles(dynamicSystemBinary)
	if err != nil {
		t.Fatal(err)
	}
	var libc RootFile
	for _, f := range want {
		if strings.HasPrefix(filepath.Base(f.Path), "libc.so") {
			libc = f
		}
	}
	if libc.Path == "" {
		t.Fatalf("no libc in %+v", want)
	}
	b, err := os.ReadFile(libc.Source)
	if err != nil {
		t.Fatal(err)
	}
	first, wrong := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(first, filepath.Base(libc.Path)), b, 0o755); err != nil {
		t.Fatal(err)
	}
	// Another machine's ELF header under the same name, earlier in the path.
	bad := make([]byte, 64)
	copy(bad, b[:64])
	bad[18], bad[19] = byte(elf.EM_S390), 0
	if err := os.WriteFile(filepath.Join(wrong, filepath.Base(libc.Path)), bad, 0o755); err != nil {
		t.Fatal(err)
	}
	s := libSearch{conf: "/etc/ld.so.conf", env: wrong + ":" + first}
	files, err := s.rootFiles(dynamicSystemBinary)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(files, func(f RootFile) bool { return f.Path == filepath.Join(first, filepath.Base(libc.Path)) }) {
		t.Errorf("with LD_LIBRARY_PATH=%s:%s: %+v, want libc from %s", wrong, first, files, first)
	}
}

// TestReadLdConf follows includes (relative ones too) and drops comments.
func TestReadLdConf(t *testing.T) {
	dir := t.TempDir()
	d := filepath.Join(dir, "ld.so.conf.d")
	if err := os.Mkdir(d, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{
		"ld.so.conf":          "/first # a comment\ninclude ld.so.conf.d/*.conf\n\n# /never\n/last\n",
		"ld.so.conf.d/a.conf": "/a1:/a2\n",
		"ld.so.conf.d/b.conf": "hwcap 0 nosegneg\n/b\n",
		"ld.so.conf.d/c.txt":  "/not-a-conf\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := readLdConf(filepath.Join(dir, "ld.so.conf"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"/first", "/a1", "/a2", "/b", "/last"}; !slices.Equal(got, want) {
		t.Errorf("readLdConf = %q, want %q", got, want)
	}
	if got, err := readLdConf(filepath.Join(dir, "missing"), 0); err != nil || len(got) != 0 {
		t.Errorf("missing ld.so.conf: %q %v, want nothing", got, err)
	}
}
