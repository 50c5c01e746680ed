package sockio

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"runtime"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/latlab/latlab/internal/netns"
)

// LockThread wires the calling goroutine to its OS thread for the rest of
// the goroutine's life (the caller never unlocks it, so the runtime discards
// the thread when the goroutine returns), moves the thread into the network
// namespace at nsPath (if any) and pins it to cpu (if cpu >= 0).
func LockThread(nsPath string, cpu int) error {
	runtime.LockOSThread()
	if nsPath != "" {
		if err := netns.Enter(nsPath); err != nil {
			return err
		}
	}
	if cpu >= 0 {
		var set unix.CPUSet
		set.Set(cpu)
		if err := unix.SchedSetaffinity(0, &set); err != nil {
			return fmt.Errorf("pin thread to CPU %d: %w", cpu, err)
		}
	}
	return nil
}

// AllowedCPUs returns the CPUs this process may run on: the mask inherited
// from taskset, cgroup cpusets or the parent. latlab only ever pins inside it.
func AllowedCPUs() ([]int, error) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return nil, fmt.Errorf("read CPU affinity: %w", err)
	}
	var cpus []int
	for i := 0; i < len(set)*64; i++ {
		if set.IsSet(i) {
			cpus = append(cpus, i)
		}
	}
	if len(cpus) == 0 {
		return nil, errors.New("read CPU affinity: empty mask")
	}
	return cpus, nil
}

// ThreadCPU returns the CPU time consumed by the calling thread.
func ThreadCPU() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}

// Sockaddr converts an address to the socket address for a socket of the
// given family (unix.AF_INET or unix.AF_INET6; IPv4 addresses are mapped for
// AF_INET6 sockets).
func Sockaddr(ap netip.AddrPort, family int) unix.Sockaddr {
	a := ap.Addr()
	if family == unix.AF_INET {
		return &unix.SockaddrInet4{Port: int(ap.Port()), Addr: a.Unmap().As4()}
	}
	sa := &unix.SockaddrInet6{Port: int(ap.Port()), Addr: a.As16()}
	if a.Is6() && a.Zone() != "" {
		if ifi, err := net.InterfaceByName(a.Zone()); err == nil {
			sa.ZoneId = uint32(ifi.Index)
		}
	}
	return sa
}

// Socket creates a blocking socket with close-on-exec set.
func Socket(family, typ int) (int, error) {
	fd, err := unix.Socket(family, typ|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("create socket: %w", err)
	}
	return fd, nil
}

// SetTimeouts sets the socket's receive and send timeouts (SO_RCVTIMEO,
// SO_SNDTIMEO); zero leaves one unset.
func SetTimeouts(fd int, rcv, snd time.Duration) error {
	if rcv > 0 {
		tv := unix.NsecToTimeval(rcv.Nanoseconds())
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			return fmt.Errorf("set SO_RCVTIMEO: %w", err)
		}
	}
	if snd > 0 {
		tv := unix.NsecToTimeval(snd.Nanoseconds())
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv); err != nil {
			return fmt.Errorf("set SO_SNDTIMEO: %w", err)
		}
	}
	return nil
}

// ErrTimeout is returned by the blocking I/O helpers when SO_RCVTIMEO or
// SO_SNDTIMEO expired before any byte moved.
var ErrTimeout = errors.New("i/o timeout")

// ReadFull fills buf from the blocking socket fd. A timeout before the first
// byte returns ErrTimeout; a timeout mid-message keeps reading, up to
// maxStalls times, so a message is never torn. io.EOF means the peer closed
// before the first byte; io.ErrUnexpectedEOF after it.
//
// raw > 0 makes the reads skip the runtime's syscall bookkeeping (RawRead),
// only for a thread that may keep its P while it waits; raw is then the
// socket's receive timeout. A signal (the runtime preempting a goroutine
// that has run for 10ms) interrupts a raw read with EINTR, and a read
// restarted after it would wait a whole timeout again: signals every 10ms
// would keep it from ever timing out, so EINTRs later than raw after the
// first read count as its timeout. On a socket in a sockmap (tcp_bpf's
// recvmsg) the same signal ends the wait with EAGAIN instead of EINTR, so
// an EAGAIN earlier than raw is taken as the EINTR it stands for.
func ReadFull(fd int, buf []byte, maxStalls int, raw time.Duration) error {
	got, stalls := 0, 0
	var since int64
	for got < len(buf) {
		var n int
		var err error
		if raw > 0 {
			if since == 0 {
				since = Nanotime()
			}
			n, err = RawRead(fd, buf[got:])
		} else {
			n, err = unix.Read(fd, buf[got:])
		}
		if n > 0 {
			got += n
			since = 0
			continue
		}
		if err == unix.EINTR && raw > 0 && Nanotime()-since > int64(raw) {
			err = unix.EAGAIN
		}
		if err == unix.EAGAIN && raw > 0 && Nanotime()-since < int64(raw) {
			err = unix.EINTR // tcp_bpf woken by a signal (above)
		}
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			since = 0
			if got == 0 {
				return ErrTimeout
			}
			if stalls++; stalls > maxStalls {
				return fmt.Errorf("read stalled mid-message after %d of %d bytes: %w", got, len(buf), ErrTimeout)
			}
			continue
		case err != nil:
			return err
		case got == 0:
			return io.EOF
		default:
			return io.ErrUnexpectedEOF
		}
	}
	return nil
}

// ReadDiscard reads size bytes from the blocking socket fd into buf,
// len(buf) at a time, keeping none: ReadFull's contract for a message
// larger than the buffer.
func ReadDiscard(fd int, buf []byte, size, maxStalls int) error {
	if size <= len(buf) {
		return ReadFull(fd, buf[:size], maxStalls, 0)
	}
	for got := 0; got < size; {
		k := min(len(buf), size-got)
		err := ReadFull(fd, buf[:k], maxStalls, 0)
		if got > 0 && (err == ErrTimeout || err == io.EOF) {
			if err == io.EOF {
				return io.ErrUnexpectedEOF
			}
			// Mid-message: keep waiting, within the stall bound.
			stalled := 1
			for err == ErrTimeout && stalled <= maxStalls {
				err = ReadFull(fd, buf[:k], maxStalls, 0)
				stalled++
			}
			if err == ErrTimeout {
				return fmt.Errorf("read stalled mid-message after %d of %d bytes: %w", got, size, ErrTimeout)
			}
		}
		if err != nil {
			return err
		}
		got += k
	}
	return nil
}

// WriteFull writes all of buf to the blocking socket fd. A write to a peer
// that has gone returns EPIPE: the Go runtime ignores SIGPIPE for every file
// descriptor but stdout and stderr. raw: RawWrite instead (a signal's EINTR
// is retried: a blocked write of a small message waits only for buffer
// space, which the peer's reading frees).
func WriteFull(fd int, buf []byte, maxStalls int, raw bool) error {
	put, stalls := 0, 0
	for put < len(buf) {
		var n int
		var err error
		if raw {
			n, err = RawWrite(fd, buf[put:])
		} else {
			n, err = unix.Write(fd, buf[put:])
		}
		if n > 0 {
			put += n
			continue
		}
		switch err {
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			if stalls++; stalls > maxStalls {
				return fmt.Errorf("write stalled after %d of %d bytes: %w", put, len(buf), ErrTimeout)
			}
			continue
		case nil:
			return io.ErrShortWrite
		default:
			return err
		}
	}
	return nil
}

// RawRead and RawWrite are read(2) and write(2) without the runtime's
// entersyscall/exitsyscall bookkeeping. With GOMAXPROCS=1 (a process under
// `taskset -c N`) that bookkeeping, and sysmon handing the P away each time
// a write blocks on a full socket buffer, cost tcp_stream ~15% of its
// throughput. The price: while the call blocks, this thread keeps its P, so
// other goroutines wait up to the socket timeout (async preemption lets them
// in between calls). The client's timed loops use them (stream, HTTP, and
// tcp_rr/udp_rr, whose Run gives every flow thread a P of its own), where
// each call returns within microseconds while data flows; the server never
// blocks in them.
func RawRead(fd int, buf []byte) (int, error) {
	r, _, e := unix.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(buf))), uintptr(len(buf)))
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

func RawWrite(fd int, buf []byte) (int, error) {
	r, _, e := unix.RawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(buf))), uintptr(len(buf)))
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

// RecvBurst receives stream data the way iperf3 does: it waits in ppoll(2)
// up to timeout for the non-blocking socket fd to become readable, then
// reads until buf is full or the socket is drained (EAGAIN). It returns the
// bytes read, 0 if the wait timed out or a signal interrupted it, and io.EOF
// once the peer has closed.
//
// Why not one blocking read per call: on a veth pair that receiver woke
// more often per byte, and its earlier ACKs and window updates came from
// the receiver's CPU while the sender's transmissions ran on the other one;
// with BBR (cwnd bound to a few µs of min RTT) the stream settled ~4-7%
// below iperf3's on both veth and loopback. With this structure it matches
// iperf3 (docs/design.md, "tcp_stream receive loop").
//
// With yield set the wait, when the socket is not readable at once, goes
// through the runtime (entersyscall), so a blocked wait releases its P:
// the server uses it, where one idle client's flow must not hold up the
// goroutines serving the others.
func RecvBurst(fd int, buf []byte, timeout time.Duration, yield bool) (int, error) {
	if err := PollFor(fd, unix.POLLIN, timeout, yield); err != nil {
		return 0, err
	}
	got := 0
	for got < len(buf) {
		n, err := RawRead(fd, buf[got:])
		switch {
		case n > 0:
			got += n
		case err == nil:
			return got, io.EOF
		case err == unix.EAGAIN:
			return got, nil
		case err == unix.EINTR:
		default:
			return got, err
		}
	}
	return got, nil
}

// PollFor waits up to timeout for fd to report events. Without yield the
// wait is a raw ppoll(2) that keeps the thread's P (see RawRead); with it a
// socket that is not ready at once is waited for through the runtime, so
// the P is free for other goroutines meanwhile. A timeout or a signal is
// not an error.
func PollFor(fd int, events int16, timeout time.Duration, yield bool) error {
	pfd := unix.PollFd{Fd: int32(fd), Events: events}
	var ts unix.Timespec
	if !yield {
		ts = unix.NsecToTimespec(timeout.Nanoseconds())
	}
	n, _, e := unix.RawSyscall6(unix.SYS_PPOLL, uintptr(unsafe.Pointer(&pfd)), 1, uintptr(unsafe.Pointer(&ts)), 0, 0, 0)
	if e != 0 && e != unix.EINTR {
		return fmt.Errorf("poll: %w", e)
	}
	if !yield || n > 0 {
		return nil
	}
	ts = unix.NsecToTimespec(timeout.Nanoseconds())
	if _, err := unix.Ppoll([]unix.PollFd{pfd}, &ts, nil); err != nil && err != unix.EINTR {
		return fmt.Errorf("poll: %w", err)
	}
	return nil
}
