package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
	"time"
)

func validHello() Hello {
	return Hello{Workload: TCPRR, ReqSize: 64, RespSize: 1024, Warmup: 250 * time.Millisecond,
		Duration: 5 * time.Second, Flows: 2, ServerCPU: CPUAuto}
}

func TestHelloRoundTrip(t *testing.T) {
	for _, h := range []Hello{
		validHello(),
		{Workload: UDPRR, ReqSize: 8, RespSize: 65507, Duration: time.Millisecond, Flows: 1, ServerCPU: 3},
		{Workload: TCPStream, ReqSize: MaxStreamBuffer, RespSize: 1, Duration: time.Hour, Flows: MaxFlows, Reverse: true, ServerCPU: CPUNone},
		{Workload: TCPCRR, ReqSize: 1, RespSize: 1, Duration: time.Second, Flows: 1, ServerCPU: 0},
	} {
		b, _ := h.MarshalBinary()
		if len(b) != HelloLen {
			t.Fatalf("hello is %d bytes, want %d", len(b), HelloLen)
		}
		got, status, err := DecodeHello(b)
		if err != nil || status != StatusOK {
			t.Fatalf("DecodeHello(%+v): status %d, err %v", h, status, err)
		}
		if got != h {
			t.Errorf("round trip: got %+v, want %+v", got, h)
		}
	}
}

// The wire layout is a contract with other latlab builds: pin it.
func TestHelloBytes(t *testing.T) {
	h := validHello()
	b, _ := h.MarshalBinary()
	want := []byte{
		'L', 'L', 'A', 'B', 0, 1, KindHello, 1, // magic, version 1, hello, tcp_rr
		0, 0, 0, 64, 0, 0, 4, 0, // req 64, resp 1024
		0, 0, 0, 250, 0, 0, 0x13, 0x88, // warm-up 250ms, duration 5000ms
		0, 2, 0, 0, 0xff, 0xff, 0xff, 0xff, // 2 flows, no flags, server CPU auto (-1)
	}
	if !bytes.Equal(b, want) {
		t.Errorf("hello bytes\n got %v\nwant %v", b, want)
	}
}

func TestDecodeHelloRefuses(t *testing.T) {
	mut := func(f func(b []byte)) []byte {
		h := validHello()
		b, _ := h.MarshalBinary()
		f(b)
		return b
	}
	cases := []struct {
		name   string
		b      []byte
		status byte
	}{
		{"short", []byte("LLAB"), StatusBadRequest},
		{"garbage", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\nxxxxx"), StatusBadRequest},
		{"bad magic", mut(func(b []byte) { b[0] = 'X' }), StatusBadRequest},
		{"future version", mut(func(b []byte) { b[5] = 9 }), StatusBadVersion},
		{"not a hello", mut(func(b []byte) { b[6] = KindAttach }), StatusBadRequest},
		{"unknown workload", mut(func(b []byte) { b[7] = 99 }), StatusBadRequest},
		{"zero request", mut(func(b []byte) { binary.BigEndian.PutUint32(b[8:], 0) }), StatusBadRequest},
		{"huge response", mut(func(b []byte) { binary.BigEndian.PutUint32(b[12:], MaxMessageSize+1) }), StatusBadRequest},
		{"zero duration", mut(func(b []byte) { binary.BigEndian.PutUint32(b[20:], 0) }), StatusBadRequest},
		{"too long", mut(func(b []byte) { binary.BigEndian.PutUint32(b[20:], uint32(MaxDuration/time.Millisecond)+1) }), StatusBadRequest},
		{"no flows", mut(func(b []byte) { binary.BigEndian.PutUint16(b[24:], 0) }), StatusBadRequest},
		{"too many flows", mut(func(b []byte) { binary.BigEndian.PutUint16(b[24:], MaxFlows+1) }), StatusBadRequest},
		{"unknown flag", mut(func(b []byte) { b[27] |= 0x80 }), StatusBadRequest},
		{"bad cpu", mut(func(b []byte) { binary.BigEndian.PutUint32(b[28:], 0xfffffff0) }), StatusBadRequest},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, status, err := DecodeHello(c.b)
			if err == nil {
				t.Fatal("accepted")
			}
			if !errors.Is(err, ErrProtocol) {
				t.Errorf("error %v does not wrap ErrProtocol", err)
			}
			if status != c.status {
				t.Errorf("status %d (%s), want %d (%s)", status, StatusText(status), c.status, StatusText(c.status))
			}
		})
	}
}

func TestUDPSizes(t *testing.T) {
	h := Hello{Workload: UDPRR, ReqSize: 4, RespSize: 64, Duration: time.Second, Flows: 1}
	if err := h.Validate(); err == nil {
		t.Error("udp_rr with a 4-byte request (no room for the sequence number) accepted")
	}
	h.ReqSize, h.RespSize = 64, 70000
	if err := h.Validate(); err == nil {
		t.Error("udp_rr with a 70000-byte response accepted")
	}
}

func TestAttachRoundTrip(t *testing.T) {
	for _, k := range []byte{KindAttach, KindCRR, KindUDP} {
		a := Attach{Kind: k, Session: 0xdeadbeefcafe, Flow: 7}
		b, _ := a.MarshalBinary()
		got, err := DecodeAttach(b)
		if err != nil || got != a {
			t.Errorf("kind %d: got %+v, %v", k, got, err)
		}
	}
	a := Attach{Kind: KindHello}
	b, _ := a.MarshalBinary()
	if _, err := DecodeAttach(b); err == nil {
		t.Error("hello kind accepted as attach")
	}
	if _, err := DecodeAttach(b[:10]); err == nil {
		t.Error("short attach accepted")
	}
}

func TestRepliesRoundTrip(t *testing.T) {
	r := HelloReply{Status: StatusBadRequest, Session: 42, ServerCPU: 1, Message: "nope"}
	b, _ := r.MarshalBinary()
	got, err := ReadHelloReply(bytes.NewReader(b))
	if err != nil || got != r {
		t.Errorf("hello reply: got %+v, %v", got, err)
	}
	e := EndReply{Status: StatusOK, CPUTime: 1234567 * time.Nanosecond, Bytes: 1 << 40, Txns: 99, FlowsSeen: 3, ServerCPU: CPUNone, ProcessCPU: true}
	b, _ = e.MarshalBinary()
	gotE, err := ReadEndReply(bytes.NewReader(b))
	if err != nil || gotE != e {
		t.Errorf("end reply: got %+v, %v", gotE, err)
	}
}

func FuzzDecodeHello(f *testing.F) {
	for _, h := range []Hello{validHello(), {Workload: UDPRR, ReqSize: 8, RespSize: 8, Duration: time.Second, Flows: 1}} {
		b, _ := h.MarshalBinary()
		f.Add(b)
	}
	f.Add([]byte("LLAB\x00\x01\x01\x09"))
	f.Add(make([]byte, HelloLen))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, status, err := DecodeHello(b)
		if err != nil {
			if status == StatusOK {
				t.Fatalf("error %v with status ok", err)
			}
			return
		}
		if status != StatusOK {
			t.Fatalf("status %d without error", status)
		}
		if err := h.Validate(); err != nil {
			t.Fatalf("decoded hello does not validate: %v", err)
		}
		out, _ := h.MarshalBinary()
		if !bytes.Equal(out, b) {
			t.Fatalf("re-encoding differs:\n in %x\nout %x", b, out)
		}
	})
}
