package sidecar_test

import (
	"bytes"
	"net"
	"testing"
	"time"

	"github.com/latlab/latlab/internal/netns"
	"github.com/latlab/latlab/internal/sidecar"
	"github.com/latlab/latlab/internal/testutil"
)

// echo starts TCP and UDP echo servers on 127.0.0.1:7999 in the namespace.
func echo(t *testing.T, ns string) {
	t.Helper()
	var ln net.Listener
	var pc net.PacketConn
	err := netns.Do(ns, func() (err error) {
		if ln, err = net.Listen("tcp", "127.0.0.1:7999"); err != nil {
			return err
		}
		pc, err = net.ListenPacket("udp", "127.0.0.1:7999")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close(); pc.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 4096)
				for {
					n, err := c.Read(buf)
					if err != nil {
						return
					}
					c.Write(buf[:n])
				}
			}()
		}
	}()
	go func() {
		buf := make([]byte, 4096)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(buf[:n], from)
		}
	}()
}

// The sidecar forwards TCP both ways (and half-closes) and relays UDP
// answers to the client that asked, all inside its namespace.
func TestSidecarForwardsTCPAndUDP(t *testing.T) {
	_, ns := testutil.NewNetNS(t)
	echo(t, ns)
	p, err := sidecar.Start(sidecar.Config{NetNS: ns, Listen: "127.0.0.1:15001", Upstream: "127.0.0.1:7999"})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	err = netns.Do(ns, func() error {
		for _, network := range []string{"tcp", "udp"} {
			c, err := net.DialTimeout(network, p.Addr(), time.Second)
			if err != nil {
				return err
			}
			c.SetDeadline(time.Now().Add(3 * time.Second))
			for i := range 100 {
				msg := bytes.Repeat([]byte{byte(i)}, 1+i*10)
				if _, err := c.Write(msg); err != nil {
					return err
				}
				got := make([]byte, len(msg))
				if _, err := ioReadFull(c, got, network); err != nil {
					return err
				}
				if !bytes.Equal(got, msg) {
					t.Errorf("%s: message %d came back different", network, i)
				}
			}
			c.Close()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sidecar.Start(sidecar.Config{Listen: "127.0.0.1:15002", Upstream: "127.0.0.1:7999"}); err == nil {
		t.Error("a sidecar in the caller's own namespace was started")
	}
}

// ioReadFull reads a whole TCP message, or one datagram.
func ioReadFull(c net.Conn, b []byte, network string) (int, error) {
	if network == "udp" {
		return c.Read(b)
	}
	n := 0
	for n < len(b) {
		k, err := c.Read(b[n:])
		n += k
		if err != nil {
			return n, err
		}
	}
	return n, nil
}
