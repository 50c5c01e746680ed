package docker

import (
	"bufio"
	"debug/elf"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Kinds of RootFile.
const (
	KindBinary      = "binary"      // latlab, at BinaryPath
	KindInterpreter = "interpreter" // the program interpreter (PT_INTERP), at its own path
	KindLibrary     = "library"     // a shared library (DT_NEEDED), at the path it was found at
)

// RootFile is one file of latlab's image.
type RootFile struct {
	// Path is where the image holds it (absolute).
	Path string
	// Source is the file on this machine it is read from.
	Source string
	Kind   string
}

// RootFiles returns what the image for the ELF executable at bin holds:
// the binary at BinaryPath and, when it is dynamically linked (a cgo
// build: it has a PT_INTERP program header), its program interpreter at
// the path PT_INTERP names and every shared library it needs, transitively
// (DT_NEEDED), at the path where this machine's dynamic loader finds it.
// Libraries are searched in ld.so's order: the needing object's DT_RPATH
// (unless it has a DT_RUNPATH), $LD_LIBRARY_PATH, its DT_RUNPATH
// ($ORIGIN expanded), the directories /etc/ld.so.conf lists (includes
// followed) and the default ones; a candidate of another ELF class or
// machine is passed over. The binary comes first, the interpreter second.
// A library that is not found is an error naming it and where it was
// looked for. Libraries loaded at run time with dlopen (NSS modules, say)
// are not bundled: latlab's commands need none.
func RootFiles(bin string) ([]RootFile, error) {
	s := libSearch{conf: "/etc/ld.so.conf", env: os.Getenv("LD_LIBRARY_PATH")}
	return s.rootFiles(bin)
}

// libSearch resolves shared libraries as the dynamic loader does.
type libSearch struct {
	// conf is ld.so.conf's path ("" for none).
	conf string
	// env is $LD_LIBRARY_PATH.
	env string
	// defaults replace the loader's default directories when non-nil.
	defaults []string
}

// elfObject is what the search needs of one ELF file.
type elfObject struct {
	class   elf.Class
	machine elf.Machine
	interp  string
	soname  string
	needed  []string
	rpath   []string // DT_RPATH, split, tokens not yet expanded
	runpath []string // DT_RUNPATH, likewise
}

// readELF reads path's ELF header, program interpreter and dynamic
// section.
func readELF(path string) (*elfObject, error) {
	f, err := elf.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	o := &elfObject{class: f.Class, machine: f.Machine}
	for _, p := range f.Progs {
		if p.Type != elf.PT_INTERP {
			continue
		}
		b := make([]byte, p.Filesz)
		if _, err := p.ReadAt(b, 0); err != nil {
			return nil, fmt.Errorf("read PT_INTERP: %w", err)
		}
		o.interp = strings.TrimRight(string(b), "\x00")
	}
	if f.Section(".dynamic") == nil && f.Type == elf.ET_EXEC {
		return o, nil // static
	}
	dyn := func(tag elf.DynTag) ([]string, error) {
		v, err := f.DynString(tag)
		if err != nil && !errors.Is(err, elf.ErrNoSymbols) {
			return nil, fmt.Errorf("read %v: %w", tag, err)
		}
		return v, nil
	}
	if o.needed, err = dyn(elf.DT_NEEDED); err != nil {
		return nil, err
	}
	names, err := dyn(elf.DT_SONAME)
	if err != nil {
		return nil, err
	}
	if len(names) > 0 {
		o.soname = names[0]
	}
	for _, x := range []struct {
		tag elf.DynTag
		to  *[]string
	}{{elf.DT_RPATH, &o.rpath}, {elf.DT_RUNPATH, &o.runpath}} {
		v, err := dyn(x.tag)
		if err != nil {
			return nil, err
		}
		for _, s := range v {
			*x.to = append(*x.to, splitPath(s)...)
		}
	}
	return o, nil
}

// splitPath splits a colon-separated search path, dropping empty parts.
func splitPath(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ':' })
}

func (s libSearch) rootFiles(bin string) ([]RootFile, error) {
	exe, err := readELF(bin)
	if err != nil {
		return nil, fmt.Errorf("%s is not an ELF executable: %w", bin, err)
	}
	files := []RootFile{{Path: BinaryPath, Source: bin, Kind: KindBinary}}
	if exe.interp == "" {
		return files, nil // static: latlab alone
	}
	if !filepath.IsAbs(exe.interp) {
		return nil, fmt.Errorf("%s: program interpreter %q is not an absolute path", bin, exe.interp)
	}
	interp, err := readELF(exe.interp)
	if err != nil {
		return nil, fmt.Errorf("%s is dynamically linked and its program interpreter %s cannot be read: %w (or build latlab with CGO_ENABLED=0)", bin, exe.interp, err)
	}
	files = append(files, RootFile{Path: filepath.Clean(exe.interp), Source: exe.interp, Kind: KindInterpreter})
	// The interpreter is loaded already: a DT_NEEDED naming its soname
	// (libc needs ld-linux) is satisfied.
	loaded := map[string]bool{filepath.Base(exe.interp): true}
	if interp.soname != "" {
		loaded[interp.soname] = true
	}
	inImage := map[string]bool{BinaryPath: true, filepath.Clean(exe.interp): true}
	dirs, err := s.systemDirs(exe.class)
	if err != nil {
		return nil, err
	}
	type pending struct {
		name string
		by   *elfObject
		// byPath is the needing object's path here, for $ORIGIN.
		byPath string
	}
	var queue []pending
	for _, n := range exe.needed {
		queue = append(queue, pending{n, exe, bin})
	}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if loaded[p.name] {
			continue
		}
		loaded[p.name] = true
		found, obj, tried, err := s.find(p.name, p.by, p.byPath, exe, dirs)
		if err != nil {
			return nil, err
		}
		if found == "" {
			return nil, fmt.Errorf("%s is dynamically linked and needs %s, not found in %s (or build latlab with CGO_ENABLED=0)",
				bin, p.name, strings.Join(tried, ", "))
		}
		if !inImage[found] {
			inImage[found] = true
			files = append(files, RootFile{Path: found, Source: found, Kind: KindLibrary})
		}
		if obj.soname != "" {
			loaded[obj.soname] = true
		}
		for _, n := range obj.needed {
			queue = append(queue, pending{n, obj, found})
		}
	}
	return files, nil
}

// find looks for the library name needed by the object by (at byPath) and
// returns its cleaned absolute path and contents, or "" and the
// directories tried.
func (s libSearch) find(name string, by *elfObject, byPath string, exe *elfObject, system []string) (string, *elfObject, []string, error) {
	if strings.Contains(name, "/") {
		p, err := filepath.Abs(name)
		if err != nil {
			return "", nil, nil, fmt.Errorf("library %s: %w", name, err)
		}
		if o := matching(p, exe); o != nil {
			return p, o, nil, nil
		}
		return "", nil, []string{p}, nil
	}
	origin := filepath.Dir(byPath)
	if abs, err := filepath.Abs(origin); err == nil {
		origin = abs
	}
	var search []string
	if len(by.runpath) == 0 {
		search = append(search, expand(by.rpath, origin)...)
	}
	search = append(search, expand(splitPath(s.env), origin)...)
	search = append(search, expand(by.runpath, origin)...)
	search = append(search, system...)
	var tried []string
	seen := map[string]bool{}
	for _, d := range search {
		if seen[d] {
			continue
		}
		seen[d] = true
		tried = append(tried, d)
		p := filepath.Join(d, name)
		if !filepath.IsAbs(p) {
			abs, err := filepath.Abs(p)
			if err != nil {
				continue
			}
			p = abs
		}
		if o := matching(p, exe); o != nil {
			return p, o, nil, nil
		}
	}
	return "", nil, tried, nil
}

// matching reads p when it is an ELF file of exe's class and machine.
func matching(p string, exe *elfObject) *elfObject {
	st, err := os.Stat(p)
	if err != nil || !st.Mode().IsRegular() {
		return nil
	}
	o, err := readELF(p)
	if err != nil || o.class != exe.class || o.machine != exe.machine {
		return nil
	}
	return o
}

// expand substitutes $ORIGIN in search directories; a directory with
// another token ($LIB, $PLATFORM) is dropped.
func expand(dirs []string, origin string) []string {
	var out []string
	for _, d := range dirs {
		d = strings.ReplaceAll(strings.ReplaceAll(d, "${ORIGIN}", origin), "$ORIGIN", origin)
		if !strings.Contains(d, "$") {
			out = append(out, d)
		}
	}
	return out
}

// systemDirs are the directories searched after the object's own: those
// ld.so.conf lists, then the loader's defaults.
func (s libSearch) systemDirs(class elf.Class) ([]string, error) {
	var dirs []string
	if s.conf != "" {
		var err error
		if dirs, err = readLdConf(s.conf, 0); err != nil {
			return nil, err
		}
	}
	def := s.defaults
	if def == nil {
		def = []string{"/lib", "/usr/lib"}
		if class == elf.ELFCLASS64 {
			def = []string{"/lib64", "/usr/lib64", "/lib", "/usr/lib"}
		}
	}
	return append(dirs, def...), nil
}

// readLdConf returns the directories an ld.so.conf lists, in order,
// following its "include GLOB" lines (relative globs are relative to the
// file's directory). A missing file lists nothing.
func readLdConf(path string, depth int) ([]string, error) {
	if depth > 8 {
		return nil, fmt.Errorf("read %s: includes nested too deep", path)
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	defer f.Close()
	var dirs []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.FieldsFunc(line, func(r rune) bool { return r == ' ' || r == '\t' || r == ',' || r == ':' })
		if len(fields) == 0 {
			continue
		}
		switch fields[0] {
		case "include":
			for _, g := range fields[1:] {
				if !filepath.IsAbs(g) {
					g = filepath.Join(filepath.Dir(path), g)
				}
				matches, err := filepath.Glob(g)
				if err != nil {
					return nil, fmt.Errorf("read %s: include %s: %w", path, g, err)
				}
				for _, m := range matches {
					d, err := readLdConf(m, depth+1)
					if err != nil {
						return nil, err
					}
					dirs = append(dirs, d...)
				}
			}
		case "hwcap":
			// Obsolete; nothing to search.
		default:
			dirs = append(dirs, fields...)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return dirs, nil
}
