package server

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// detach hands back a descriptor the runtime's epoll does not watch.
func TestDetachLeavesEpoll(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	sc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	fd, err := detach(sc.(*net.TCPConn))
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if _, err := unix.Write(fd, []byte("x")); err != nil {
		t.Fatalf("detached descriptor unusable: %v", err)
	}
	links, _ := filepath.Glob("/proc/self/fd/*")
	want := fmt.Sprintf("tfd: %8d ", fd)
	for _, l := range links {
		if dst, _ := os.Readlink(l); dst != "anon_inode:[eventpoll]" {
			continue
		}
		info, err := os.ReadFile("/proc/self/fdinfo/" + filepath.Base(l))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(info), want) {
			t.Fatalf("descriptor %d still registered with epoll:\n%s", fd, info)
		}
	}
}
