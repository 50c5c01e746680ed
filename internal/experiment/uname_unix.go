//go:build unix

package experiment

import "golang.org/x/sys/unix"

// kernelRelease is the running kernel's release, "" when uname fails.
//
// Equivalent to: uname -r
func kernelRelease() string {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return ""
	}
	return unix.ByteSliceToString(u.Release[:])
}
