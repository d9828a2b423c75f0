package api

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"
)

// pipe is a fake connection: reads come from in, writes go to out.
type pipe struct {
	in     *bytes.Reader
	out    bytes.Buffer
	closed bool
}

func (p *pipe) Read(b []byte) (int, error)  { return p.in.Read(b) }
func (p *pipe) Write(b []byte) (int, error) { return p.out.Write(b) }
func (p *pipe) Close() error                { p.closed = true; return nil }

// frame builds a server frame (unmasked).
func frame(fin bool, op byte, payload []byte) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	out := []byte{b0}
	switch n := len(payload); {
	case n < 126:
		out = append(out, byte(n))
	case n < 1<<16:
		out = append(out, 126)
		out = binary.BigEndian.AppendUint16(out, uint16(n))
	default:
		out = append(out, 127)
		out = binary.BigEndian.AppendUint64(out, uint64(n))
	}
	return append(out, payload...)
}

func newTestConn(frames ...[]byte) (*wsConn, *pipe) {
	p := &pipe{in: bytes.NewReader(bytes.Join(frames, nil))}
	return &wsConn{rw: p, br: bufio.NewReader(p), onFrame: func() {}}, p
}

// clientFrames decodes what the client sent: opcode and unmasked
// payload of each frame, checking that each is masked.
func clientFrames(t *testing.T, raw []byte) (ops []byte, payloads [][]byte) {
	t.Helper()
	for len(raw) > 0 {
		if raw[0]&0x80 == 0 || raw[1]&0x80 == 0 {
			t.Fatalf("client frame not final or not masked: % x", raw[:2])
		}
		n := int(raw[1] & 0x7f)
		mask, body := raw[2:6], raw[6:6+n]
		p := make([]byte, n)
		for i := range body {
			p[i] = body[i] ^ mask[i%4]
		}
		ops, payloads = append(ops, raw[0]&0x0f), append(payloads, p)
		raw = raw[6+n:]
	}
	return ops, payloads
}

func TestWSReadMessages(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 70000)
	c, p := newTestConn(
		frame(true, wsText, []byte(`{"a":1}`)),
		frame(true, wsPing, []byte("hi")),
		frame(false, wsText, []byte("frag")),
		frame(true, wsPong, nil), // control frames may come between fragments
		frame(false, wsContinuation, []byte("men")),
		frame(true, wsContinuation, []byte("ted")),
		frame(true, wsText, []byte(long)),
		frame(true, wsClose, append(binary.BigEndian.AppendUint16(nil, 1013), "lost"...)),
	)
	for _, want := range []string{`{"a":1}`, "fragmented", long} {
		msg, err := c.readMessage()
		if err != nil || string(msg) != want {
			t.Fatalf("message %.20q, %v; want %.20q", msg, err, want)
		}
	}
	_, err := c.readMessage()
	var ce *wsCloseError
	if !errors.As(err, &ce) || ce.code != 1013 || ce.reason != "lost" {
		t.Fatalf("close: %v", err)
	}
	ops, payloads := clientFrames(t, p.out.Bytes())
	if string(ops) != string([]byte{wsPong, wsClose}) || string(payloads[0]) != "hi" || binary.BigEndian.Uint16(payloads[1]) != 1013 {
		t.Fatalf("client sent ops %v payloads %q", ops, payloads)
	}
	if !p.closed {
		t.Fatal("the connection was not closed after the close frame")
	}
}

func TestWSProtocolErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		frame []byte
		code  uint16
	}{
		{"masked", append([]byte{0x81, 0x80 | 1, 1, 2, 3, 4}, 'x'), wsCloseProtocol},
		{"reserved bits", []byte{0x81 | 0x40, 0}, wsCloseProtocol},
		{"long control", frame(true, wsPing, make([]byte, 126)), wsCloseProtocol},
		{"fragmented control", frame(false, wsPing, nil), wsCloseProtocol},
		{"continuation first", frame(true, wsContinuation, []byte("x")), wsCloseProtocol},
		{"unknown opcode", frame(true, 0x3, nil), wsCloseProtocol},
		{"not UTF-8", frame(true, wsText, []byte{0xff}), wsCloseProtocol},
		{"too big", frame(true, wsBinary, make([]byte, wsMaxMessage+1)), wsCloseTooBig},
	} {
		c, p := newTestConn(tc.frame)
		_, err := c.readMessage()
		if !errors.Is(err, errWSProtocol) {
			t.Errorf("%s: err = %v", tc.name, err)
			continue
		}
		ops, payloads := clientFrames(t, p.out.Bytes())
		if len(ops) != 1 || ops[0] != wsClose || binary.BigEndian.Uint16(payloads[0]) != tc.code || !p.closed {
			t.Errorf("%s: client sent %v %q, closed %v", tc.name, ops, payloads, p.closed)
		}
	}
	// A connection that ends mid-frame is an I/O error, not a close.
	c, _ := newTestConn([]byte{0x81, 5, 'a'})
	if _, err := c.readMessage(); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("truncated frame: %v", err)
	}
}
