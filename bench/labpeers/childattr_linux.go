package main

import "syscall"

// childAttr puts a server in a process group of its own and has the kernel
// kill it if labpeers dies first.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
