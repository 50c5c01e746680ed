package wire

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

// Fuzz targets for the latlab wire protocol: every message a server reads
// from a client (Attach; Hello has FuzzDecodeHello in proto_test.go) and
// every reply a client reads from a server (HelloReply, EndReply). Run one
// with `go test -run=^$ -fuzz=^FuzzDecodeAttach$ ./internal/wire`;
// .ci/fuzz runs them all for a few seconds each.

func FuzzDecodeAttach(f *testing.F) {
	for _, k := range []byte{KindAttach, KindCRR, KindUDP, KindHello} {
		a := Attach{Kind: k, Session: 0xdeadbeefcafe, Flow: 7}
		b, _ := a.MarshalBinary()
		f.Add(b)
		// tcp_crr sends Attach and request in one write.
		f.Add(append(b, "request bytes"...))
	}
	f.Add([]byte("LLAB\x00\x01\x02"))
	f.Add([]byte("LLAB\x00\x09\x02\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x01\x00\x00\x00\x00"))
	f.Add([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := DecodeAttach(b)
		if err != nil {
			if !errors.Is(err, ErrProtocol) {
				t.Fatalf("error %v does not wrap ErrProtocol", err)
			}
			return
		}
		switch a.Kind {
		case KindAttach, KindCRR, KindUDP:
		default:
			t.Fatalf("accepted kind %d", a.Kind)
		}
		// Bytes 7 and 20..23 are reserved and ignored; everything else
		// must survive re-encoding.
		out, _ := a.MarshalBinary()
		want := bytes.Clone(b[:AttachLen])
		want[7] = 0
		copy(want[20:24], []byte{0, 0, 0, 0})
		if !bytes.Equal(out, want) {
			t.Fatalf("re-encoding differs:\n in %x\nout %x", b[:AttachLen], out)
		}
		if back, err := DecodeAttach(out); err != nil || back != a {
			t.Fatalf("round trip: %+v, %v; want %+v", back, err, a)
		}
	})
}

func FuzzReadHelloReply(f *testing.F) {
	for _, r := range []HelloReply{
		{Status: StatusOK, Session: 42, ServerCPU: 1},
		{Status: StatusBadRequest, Session: 0, ServerCPU: CPUNone, Message: "nope"},
		{Status: StatusBusy, Message: string(bytes.Repeat([]byte("x"), maxReplyMessage))},
	} {
		b, _ := r.MarshalBinary()
		f.Add(b)
	}
	f.Add([]byte("LLAB\x00\x01\x06\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\xff\xff\x00\x00"))
	f.Add([]byte("LLAB\x00\x01\x06\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ReadHelloReply(bytes.NewReader(b))
		if err != nil {
			return
		}
		if len(r.Message) > maxReplyMessage {
			t.Fatalf("message of %d bytes accepted", len(r.Message))
		}
		out, _ := r.MarshalBinary()
		back, err := ReadHelloReply(bytes.NewReader(out))
		if err != nil || back != r {
			t.Fatalf("round trip: %+v, %v; want %+v", back, err, r)
		}
	})
}

func FuzzReadEndReply(f *testing.F) {
	for _, e := range []EndReply{
		{Status: StatusOK, CPUTime: 1234567 * time.Nanosecond, Bytes: 1 << 40, Txns: 99, FlowsSeen: 3, ServerCPU: CPUNone, ProcessCPU: true},
		{Status: StatusNoSession, ServerCPU: 0},
	} {
		b, _ := e.MarshalBinary()
		f.Add(b)
	}
	f.Add(MarshalEnd())
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := ReadEndReply(bytes.NewReader(b))
		if err != nil {
			return
		}
		out, _ := e.MarshalBinary()
		back, err := ReadEndReply(bytes.NewReader(out))
		if err != nil || back != e {
			t.Fatalf("round trip: %+v, %v; want %+v", back, err, e)
		}
	})
}
