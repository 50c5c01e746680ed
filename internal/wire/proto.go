package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"
)

// Wire protocol.
//
// One TCP port carries everything. Every connection a client opens starts
// with a fixed-size header whose first four bytes are Magic and whose next
// two are the protocol Version, so the server can classify it and refuse a
// peer it cannot understand before reading anything else:
//
//   - a control connection sends a Hello (32 bytes) and gets a HelloReply;
//     at the end it sends an End (8 bytes) and gets an EndReply carrying the
//     server's CPU time for the session;
//   - a data connection (tcp_rr, tcp_stream) sends an Attach (24 bytes)
//     naming the session and flow, then carries payload only;
//   - a tcp_crr transaction connection sends an Attach immediately followed
//     by the request, in the same write, so attaching costs no round trip.
//
// UDP uses the same port number. A flow sends an Attach datagram; the server
// answers from a socket connected to that flow, and from then on every
// datagram is payload whose first 8 bytes are a sequence number.
//
// All integers are big-endian except the UDP sequence number, which is
// opaque to the server (it is echoed back as it arrived).

// Magic opens every latlab message (its first four bytes).
const Magic = "LLAB"

// Version is the protocol version this build speaks. A server refuses other
// versions with StatusBadVersion.
const Version uint16 = 1

// DefaultPort is the TCP and UDP port `latlab serve` listens on by default.
const DefaultPort = 7707

// Limits of the protocol: the server enforces them so one client cannot
// exhaust its memory, and the client checks them before it asks.
const (
	MaxMessageSize  = 1 << 20        // request/response size for rr workloads
	MaxStreamBuffer = 4 << 20        // write/read buffer for tcp_stream
	MaxFlows        = 256            // data flows per session
	MaxDuration     = 24 * time.Hour // warm-up + duration
	MinUDPSize      = 8              // a UDP payload carries an 8-byte sequence number
)

// Message kinds (byte 6 of every header).
const (
	KindHello  byte = 1 // a control connection's Hello
	KindAttach byte = 2 // a data connection's Attach (tcp_rr, tcp_stream)
	KindCRR    byte = 3 // a tcp_crr transaction's Attach
	KindUDP    byte = 4 // a UDP flow's Attach datagram
	KindEnd    byte = 5 // End and EndReply
	kindReply  byte = 6
)

// Status codes in replies.
const (
	StatusOK         byte = 0
	StatusBadVersion byte = 1
	StatusBadRequest byte = 2
	StatusBusy       byte = 3
	StatusNoSession  byte = 4
	StatusInternal   byte = 5
)

// Workload names a measurement. The values are the names used on the
// command line and in JSON.
type Workload string

// The workloads latlab runs.
const (
	TCPRR     Workload = "tcp_rr"
	TCPCRR    Workload = "tcp_crr"
	UDPRR     Workload = "udp_rr"
	TCPStream Workload = "tcp_stream"
)

// HTTP is HTTP/1.1 load against any HTTP server (latlab's own endpoint,
// nginx, an application). It does not speak the latlab protocol: there is
// no control session, so the server's CPU cost is not reported.
const HTTP Workload = "http"

// Workloads lists every workload in a stable order.
var Workloads = []Workload{TCPRR, TCPCRR, UDPRR, TCPStream}

func (w Workload) code() byte {
	switch w {
	case TCPRR:
		return 1
	case TCPCRR:
		return 2
	case UDPRR:
		return 3
	case TCPStream:
		return 4
	}
	return 0
}

func workloadFromCode(c byte) (Workload, bool) {
	for _, w := range Workloads {
		if w.code() == c {
			return w, true
		}
	}
	return "", false
}

// ParseWorkload validates a workload name.
func ParseWorkload(s string) (Workload, error) {
	for _, w := range Workloads {
		if string(w) == s {
			return w, nil
		}
	}
	if s == string(HTTP) {
		return HTTP, nil
	}
	return "", fmt.Errorf("unknown workload %q (want one of tcp_rr, tcp_crr, udp_rr, tcp_stream, http)", s)
}

// CPU placement requests carried in Hello.ServerCPU.
const (
	CPUAuto = -1 // the side picks a CPU from its allowed set
	CPUNone = -2 // no pinning
)

// Hello flags.
const (
	flagReverse uint16 = 1 << 0 // tcp_stream: server sends, client receives
)

// ErrProtocol is wrapped by every decoding error.
var ErrProtocol = errors.New("latlab protocol error")

// Hello opens a control connection and describes the session.
type Hello struct {
	Workload  Workload
	ReqSize   uint32
	RespSize  uint32
	Warmup    time.Duration // millisecond resolution on the wire
	Duration  time.Duration // millisecond resolution on the wire
	Flows     uint16
	Reverse   bool
	ServerCPU int32 // CPUAuto, CPUNone or a CPU number
}

// HelloLen is the size of a Hello on the wire.
const HelloLen = 32

// MarshalBinary encodes h as the 32-byte wire header.
func (h *Hello) MarshalBinary() ([]byte, error) {
	b := make([]byte, HelloLen)
	putHeader(b, KindHello)
	b[7] = h.Workload.code()
	binary.BigEndian.PutUint32(b[8:], h.ReqSize)
	binary.BigEndian.PutUint32(b[12:], h.RespSize)
	binary.BigEndian.PutUint32(b[16:], uint32(h.Warmup/time.Millisecond))
	binary.BigEndian.PutUint32(b[20:], uint32(h.Duration/time.Millisecond))
	binary.BigEndian.PutUint16(b[24:], h.Flows)
	var fl uint16
	if h.Reverse {
		fl |= flagReverse
	}
	binary.BigEndian.PutUint16(b[26:], fl)
	binary.BigEndian.PutUint32(b[28:], uint32(h.ServerCPU))
	return b, nil
}

// DecodeHello parses and validates a Hello. It never panics: every problem
// is an error wrapping ErrProtocol, and the returned status says which reply
// code the server should send.
func DecodeHello(b []byte) (Hello, byte, error) {
	var h Hello
	if err := checkHeader(b, HelloLen, KindHello); err != nil {
		if errors.Is(err, errVersion) {
			return h, StatusBadVersion, err
		}
		return h, StatusBadRequest, err
	}
	w, ok := workloadFromCode(b[7])
	if !ok {
		return h, StatusBadRequest, fmt.Errorf("%w: unknown workload code %d", ErrProtocol, b[7])
	}
	h.Workload = w
	h.ReqSize = binary.BigEndian.Uint32(b[8:])
	h.RespSize = binary.BigEndian.Uint32(b[12:])
	h.Warmup = time.Duration(binary.BigEndian.Uint32(b[16:])) * time.Millisecond
	h.Duration = time.Duration(binary.BigEndian.Uint32(b[20:])) * time.Millisecond
	h.Flows = binary.BigEndian.Uint16(b[24:])
	fl := binary.BigEndian.Uint16(b[26:])
	h.Reverse = fl&flagReverse != 0
	h.ServerCPU = int32(binary.BigEndian.Uint32(b[28:]))
	if fl&^flagReverse != 0 {
		return h, StatusBadRequest, fmt.Errorf("%w: unknown flags %#x", ErrProtocol, fl)
	}
	if err := h.Validate(); err != nil {
		return h, StatusBadRequest, err
	}
	return h, StatusOK, nil
}

// Validate checks the limits a server enforces.
func (h *Hello) Validate() error {
	maxSize := uint32(MaxMessageSize)
	if h.Workload == TCPStream {
		maxSize = MaxStreamBuffer
	}
	minSize := uint32(1)
	if h.Workload == UDPRR {
		minSize = MinUDPSize
	}
	for _, s := range []struct {
		name string
		v    uint32
	}{{"request size", h.ReqSize}, {"response size", h.RespSize}} {
		if s.v < minSize || s.v > maxSize {
			return fmt.Errorf("%w: %s %d outside [%d, %d] for %s", ErrProtocol, s.name, s.v, minSize, maxSize, h.Workload)
		}
	}
	if h.Workload == UDPRR && (h.ReqSize > 65507 || h.RespSize > 65507) {
		return fmt.Errorf("%w: udp_rr sizes must fit one datagram (<= 65507)", ErrProtocol)
	}
	if h.Duration <= 0 || h.Warmup+h.Duration > MaxDuration {
		return fmt.Errorf("%w: warm-up %v + duration %v outside (0, %v]", ErrProtocol, h.Warmup, h.Duration, MaxDuration)
	}
	if h.Flows < 1 || h.Flows > MaxFlows {
		return fmt.Errorf("%w: %d flows outside [1, %d]", ErrProtocol, h.Flows, MaxFlows)
	}
	if h.ServerCPU < CPUNone {
		return fmt.Errorf("%w: server CPU %d invalid", ErrProtocol, h.ServerCPU)
	}
	return nil
}

// HelloReply answers a Hello.
type HelloReply struct {
	Status    byte
	Session   uint64
	ServerCPU int32 // the CPU the first flow will be pinned to, or CPUNone
	Message   string
}

const replyLen = 24
const maxReplyMessage = 512

// MarshalBinary encodes r.
func (r *HelloReply) MarshalBinary() ([]byte, error) {
	msg := r.Message
	if len(msg) > maxReplyMessage {
		msg = msg[:maxReplyMessage]
	}
	b := make([]byte, replyLen+len(msg))
	putHeader(b, kindReply)
	b[7] = r.Status
	binary.BigEndian.PutUint64(b[8:], r.Session)
	binary.BigEndian.PutUint32(b[16:], uint32(r.ServerCPU))
	binary.BigEndian.PutUint16(b[20:], uint16(len(msg)))
	copy(b[replyLen:], msg)
	return b, nil
}

// ReadHelloReply reads a HelloReply from r.
func ReadHelloReply(r io.Reader) (HelloReply, error) {
	var rep HelloReply
	b := make([]byte, replyLen)
	if _, err := io.ReadFull(r, b); err != nil {
		return rep, fmt.Errorf("read hello reply: %w", err)
	}
	if err := checkHeader(b, replyLen, kindReply); err != nil {
		return rep, err
	}
	rep.Status = b[7]
	rep.Session = binary.BigEndian.Uint64(b[8:])
	rep.ServerCPU = int32(binary.BigEndian.Uint32(b[16:]))
	n := int(binary.BigEndian.Uint16(b[20:]))
	if n > maxReplyMessage {
		return rep, fmt.Errorf("%w: reply message of %d bytes", ErrProtocol, n)
	}
	if n > 0 {
		msg := make([]byte, n)
		if _, err := io.ReadFull(r, msg); err != nil {
			return rep, fmt.Errorf("read hello reply message: %w", err)
		}
		rep.Message = string(msg)
	}
	return rep, nil
}

// Attach opens a data connection, a tcp_crr transaction or a UDP flow.
type Attach struct {
	Kind    byte
	Session uint64
	Flow    uint32
}

// AttachLen is the size of an Attach on the wire.
const AttachLen = 24

// Put encodes a into the first AttachLen bytes of b (tcp_crr sends it
// followed by the request, in one buffer).
func (a *Attach) Put(b []byte) {
	putHeader(b, a.Kind)
	binary.BigEndian.PutUint64(b[8:], a.Session)
	binary.BigEndian.PutUint32(b[16:], a.Flow)
}

// MarshalBinary encodes a.
func (a *Attach) MarshalBinary() ([]byte, error) {
	b := make([]byte, AttachLen)
	a.Put(b)
	return b, nil
}

// DecodeAttach parses an Attach header of any attach kind.
func DecodeAttach(b []byte) (Attach, error) {
	var a Attach
	if len(b) < AttachLen {
		return a, fmt.Errorf("%w: attach header of %d bytes, want %d", ErrProtocol, len(b), AttachLen)
	}
	if err := checkHeader(b[:AttachLen], AttachLen, 0); err != nil {
		return a, err
	}
	a.Kind = b[6]
	switch a.Kind {
	case KindAttach, KindCRR, KindUDP:
	default:
		return a, fmt.Errorf("%w: kind %d is not an attach", ErrProtocol, a.Kind)
	}
	a.Session = binary.BigEndian.Uint64(b[8:])
	a.Flow = binary.BigEndian.Uint32(b[16:])
	return a, nil
}

// EndReply closes a session and carries the server's side of the account.
type EndReply struct {
	Status     byte
	CPUTime    time.Duration // CPU time of the session's server threads
	Bytes      uint64        // payload bytes the server received (tcp_stream forward) or sent (reverse)
	Txns       uint64        // transactions the server answered
	FlowsSeen  uint32        // flows that attached
	ServerCPU  int32         // CPU the first flow ran on, or CPUNone
	ProcessCPU bool          // CPUTime is process-wide (tcp_crr), not per-thread
}

// EndLen is the size of an End on the wire.
const EndLen = 8
const endReplyLen = 48

// MarshalEnd encodes the End a client sends to close its session.
func MarshalEnd() []byte {
	b := make([]byte, EndLen)
	putHeader(b, KindEnd)
	return b
}

// DecodeEnd checks that b is an End.
func DecodeEnd(b []byte) error { return checkHeader(b, EndLen, KindEnd) }

// MarshalBinary encodes r.
func (r *EndReply) MarshalBinary() ([]byte, error) {
	b := make([]byte, endReplyLen)
	putHeader(b, KindEnd)
	b[7] = r.Status
	binary.BigEndian.PutUint64(b[8:], uint64(r.CPUTime))
	binary.BigEndian.PutUint64(b[16:], r.Bytes)
	binary.BigEndian.PutUint64(b[24:], r.Txns)
	binary.BigEndian.PutUint32(b[32:], r.FlowsSeen)
	binary.BigEndian.PutUint32(b[36:], uint32(r.ServerCPU))
	if r.ProcessCPU {
		b[40] = 1
	}
	return b, nil
}

// ReadEndReply reads an EndReply from r.
func ReadEndReply(r io.Reader) (EndReply, error) {
	var e EndReply
	b := make([]byte, endReplyLen)
	if _, err := io.ReadFull(r, b); err != nil {
		return e, fmt.Errorf("read end reply: %w", err)
	}
	if err := checkHeader(b, endReplyLen, KindEnd); err != nil {
		return e, err
	}
	e.Status = b[7]
	e.CPUTime = time.Duration(binary.BigEndian.Uint64(b[8:]))
	e.Bytes = binary.BigEndian.Uint64(b[16:])
	e.Txns = binary.BigEndian.Uint64(b[24:])
	e.FlowsSeen = binary.BigEndian.Uint32(b[32:])
	e.ServerCPU = int32(binary.BigEndian.Uint32(b[36:]))
	e.ProcessCPU = b[40] == 1
	return e, nil
}

func putHeader(b []byte, kind byte) {
	copy(b, Magic)
	binary.BigEndian.PutUint16(b[4:], Version)
	b[6] = kind
}

var errVersion = fmt.Errorf("%w: unsupported version", ErrProtocol)

// checkHeader validates magic, version and (if kind != 0) kind.
func checkHeader(b []byte, want int, kind byte) error {
	if len(b) != want {
		return fmt.Errorf("%w: header of %d bytes, want %d", ErrProtocol, len(b), want)
	}
	if string(b[:4]) != Magic {
		return fmt.Errorf("%w: bad magic %q", ErrProtocol, b[:4])
	}
	if v := binary.BigEndian.Uint16(b[4:]); v != Version {
		return fmt.Errorf("%w %d (this build speaks %d)", errVersion, v, Version)
	}
	if kind != 0 && b[6] != kind {
		return fmt.Errorf("%w: message kind %d, want %d", ErrProtocol, b[6], kind)
	}
	return nil
}

// StatusText names a reply status.
func StatusText(s byte) string {
	switch s {
	case StatusOK:
		return "ok"
	case StatusBadVersion:
		return "unsupported protocol version"
	case StatusBadRequest:
		return "bad request"
	case StatusBusy:
		return "server busy"
	case StatusNoSession:
		return "no such session"
	case StatusInternal:
		return "server error"
	}
	return fmt.Sprintf("status %d", s)
}
