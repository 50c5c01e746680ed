// Package buildinfo says which latlab this is: the version `latlab
// --version` prints and the latlab_build_info metric carries, the VCS
// revision and the Go version, from what the linker and the Go toolchain
// recorded in the binary (runtime/debug.ReadBuildInfo). It imports
// nothing of latlab.
package buildinfo

import (
	"runtime"
	"runtime/debug"
)

// Info describes a build.
type Info struct {
	// Version is the linker-set version when there is one, else the main
	// module's version, else "devel-" and the first 12 digits of the VCS
	// revision ("-dirty" after it when the tree was modified), else
	// "devel".
	Version string
	// Revision is the full VCS revision ("" when not recorded, as with
	// -buildvcs=false or `go test`); Modified whether the tree had
	// uncommitted changes.
	Revision string
	Modified bool
	// GoVersion is the Go release that built the binary.
	GoVersion string
}

// Read returns the build's Info; linked is the version set with
// -ldflags -X ("" when none).
func Read(linked string) Info {
	in := Info{GoVersion: runtime.Version()}
	bi, ok := debug.ReadBuildInfo()
	if ok {
		if bi.GoVersion != "" {
			in.GoVersion = bi.GoVersion
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				in.Revision = s.Value
			case "vcs.modified":
				in.Modified = s.Value == "true"
			}
		}
	}
	in.Version = version(linked, bi, ok, in.Revision, in.Modified)
	return in
}

// version picks Info.Version (see there).
func version(linked string, bi *debug.BuildInfo, ok bool, rev string, dirty bool) string {
	if linked != "" {
		return linked
	}
	if !ok {
		return "devel"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	if rev == "" {
		return "devel"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if dirty {
		rev += "-dirty"
	}
	return "devel-" + rev
}
