//go:build !linux

package main

import "syscall"

// childAttr: labpeers needs Linux (network namespaces, nsenter, taskset);
// elsewhere it only has to compile, and a server gets no special attributes.
func childAttr() *syscall.SysProcAttr { return nil }
