//go:build !linux

package testutil

import "testing"

// HostNetNSAlias skips (fails under CI): named network namespaces are
// Linux-only.
func HostNetNSAlias(t testing.TB) (name, path string) {
	t.Helper()
	SkipIfUnsupported(t, "network namespaces need Linux")
	return "", ""
}
