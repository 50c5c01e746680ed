//go:build !unix

package experiment

// kernelRelease is "" where there is no uname(2).
func kernelRelease() string { return "" }
