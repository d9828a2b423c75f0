package api

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha1" //nolint:gosec // RFC 6455 fixes SHA-1 for the handshake's accept value; nothing secret depends on it
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"unicode/utf8"
)

// The client end of a WebSocket (RFC 6455), with the standard library
// only: the api package takes no dependencies. It is as much of the
// protocol as the events endpoint needs: the server sends text (or
// binary) messages and control frames; the client sends only control
// frames (pong, close), masked as clients must. No extension (no
// compression) is offered, so none can be negotiated.

// wsAcceptGUID is the handshake's fixed GUID (RFC 6455 §1.3).
const wsAcceptGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// wsMaxMessage bounds a message the client accepts (an event is a few
// hundred bytes).
const wsMaxMessage = 1 << 20

// Opcodes (RFC 6455 §5.2).
const (
	wsContinuation = 0x0
	wsText         = 0x1
	wsBinary       = 0x2
	wsClose        = 0x8
	wsPing         = 0x9
	wsPong         = 0xA
)

// Close codes the client sends.
const (
	wsCloseNormal      = 1000
	wsCloseProtocol    = 1002
	wsCloseTooBig      = 1009
	wsCloseNoStatusRcv = 1005
)

// errWSProtocol marks a frame the client cannot accept.
var errWSProtocol = errors.New("api: websocket protocol error")

// wsConn is an open WebSocket.
type wsConn struct {
	rw io.ReadWriteCloser
	br *bufio.Reader
	// onFrame is called for every frame read (the idle watchdog).
	onFrame func()

	wmu    sync.Mutex // serializes writes
	closed bool       // a close frame was sent (wmu)
}

// wsDial opens a WebSocket with a GET of rawURL (http or https) carrying
// hdr. On a refusal (any status but 101) it returns the *ResponseError of
// the answer.
func wsDial(ctx context.Context, hc *http.Client, rawURL, logicalPath string, hdr http.Header) (*wsConn, error) {
	var nonce [16]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return nil, fmt.Errorf("api: websocket key: %w", err)
	}
	key := base64.StdEncoding.EncodeToString(nonce[:])
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, fmt.Errorf("api: build request: %w", err)
	}
	req.Header = hdr.Clone()
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Key", key)
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err // *url.Error: names the method and URL, wraps the cause
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		defer resp.Body.Close()
		data, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
		// Any answer but 101 is a refusal, a 2xx as much as a 403.
		r := &Response{StatusCode: resp.StatusCode, Header: resp.Header, Body: data}
		return nil, newResponseError(http.MethodGet, logicalPath, req.URL.Redacted(), r)
	}
	rw, ok := resp.Body.(io.ReadWriteCloser)
	if !ok {
		resp.Body.Close()
		return nil, errors.New("api: the HTTP transport cannot carry a websocket")
	}
	sum := sha1.Sum([]byte(key + wsAcceptGUID)) //nolint:gosec // see the import
	if !strings.EqualFold(resp.Header.Get("Upgrade"), "websocket") ||
		resp.Header.Get("Sec-WebSocket-Accept") != base64.StdEncoding.EncodeToString(sum[:]) {
		rw.Close()
		return nil, fmt.Errorf("%w: the server's handshake answer is not a websocket's", errWSProtocol)
	}
	if ext := resp.Header.Get("Sec-WebSocket-Extensions"); ext != "" {
		rw.Close()
		return nil, fmt.Errorf("%w: the server chose an extension the client did not offer (%s)", errWSProtocol, ext)
	}
	return &wsConn{rw: rw, br: bufio.NewReader(rw), onFrame: func() {}}, nil
}

// wsCloseError is a close frame the server sent.
type wsCloseError struct {
	code   int
	reason string
}

func (e *wsCloseError) Error() string {
	return fmt.Sprintf("websocket closed by the server: code %d: %s", e.code, e.reason)
}

// readMessage returns the next data message, answering pings on the way.
// A close frame from the server is answered and returned as a
// *wsCloseError.
func (c *wsConn) readMessage() ([]byte, error) {
	var msg []byte
	inMsg := false
	for {
		fin, op, payload, err := c.readFrame(wsMaxMessage - len(msg))
		if err != nil {
			return nil, err
		}
		switch op {
		case wsPing:
			if err := c.writeFrame(wsPong, payload); err != nil {
				return nil, err
			}
		case wsPong:
		case wsClose:
			ce := &wsCloseError{code: wsCloseNoStatusRcv}
			echo := []byte(nil)
			if len(payload) >= 2 {
				ce.code = int(binary.BigEndian.Uint16(payload))
				ce.reason = string(payload[2:])
				echo = payload[:2]
			}
			_ = c.writeFrame(wsClose, echo)
			c.rw.Close()
			return nil, ce
		case wsText, wsBinary:
			if inMsg {
				return nil, c.fail(wsCloseProtocol, "a new message inside a fragmented one")
			}
			if fin {
				if op == wsText && !utf8.Valid(payload) {
					return nil, c.fail(wsCloseProtocol, "a text message that is not UTF-8")
				}
				return payload, nil
			}
			msg, inMsg = append(msg[:0], payload...), true
		case wsContinuation:
			if !inMsg {
				return nil, c.fail(wsCloseProtocol, "a continuation outside a message")
			}
			msg = append(msg, payload...)
			if fin {
				return msg, nil
			}
		default:
			return nil, c.fail(wsCloseProtocol, fmt.Sprintf("unknown opcode %#x", op))
		}
	}
}

// readFrame reads one frame whose payload may not exceed room bytes
// (control frames: 125).
func (c *wsConn) readFrame(room int) (fin bool, op byte, payload []byte, err error) {
	var hdr [2]byte
	if _, err := io.ReadFull(c.br, hdr[:]); err != nil {
		return false, 0, nil, err
	}
	c.onFrame()
	fin, op = hdr[0]&0x80 != 0, hdr[0]&0x0f
	if hdr[0]&0x70 != 0 {
		return false, 0, nil, c.fail(wsCloseProtocol, "reserved bits set")
	}
	if hdr[1]&0x80 != 0 {
		return false, 0, nil, c.fail(wsCloseProtocol, "a masked frame from the server")
	}
	n := uint64(hdr[1] & 0x7f)
	switch n {
	case 126:
		var ext [2]byte
		if _, err := io.ReadFull(c.br, ext[:]); err != nil {
			return false, 0, nil, err
		}
		n = uint64(binary.BigEndian.Uint16(ext[:]))
	case 127:
		var ext [8]byte
		if _, err := io.ReadFull(c.br, ext[:]); err != nil {
			return false, 0, nil, err
		}
		n = binary.BigEndian.Uint64(ext[:])
	}
	if op >= wsClose {
		if !fin || n > 125 {
			return false, 0, nil, c.fail(wsCloseProtocol, "a fragmented or long control frame")
		}
	} else if n > uint64(room) {
		return false, 0, nil, c.fail(wsCloseTooBig, "message too big")
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(c.br, payload); err != nil {
		return false, 0, nil, err
	}
	return fin, op, payload, nil
}

// writeFrame sends one final frame, masked. Nothing is sent after a close
// frame.
func (c *wsConn) writeFrame(op byte, payload []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closed {
		return nil
	}
	if op == wsClose {
		c.closed = true
	}
	var mask [4]byte
	if _, err := rand.Read(mask[:]); err != nil {
		return err
	}
	// Only control frames are sent: the payload fits in 125 bytes.
	frame := make([]byte, 0, 6+len(payload))
	frame = append(frame, 0x80|op, 0x80|byte(len(payload)))
	frame = append(frame, mask[:]...)
	for i, b := range payload {
		frame = append(frame, b^mask[i%4])
	}
	_, err := c.rw.Write(frame)
	return err
}

// fail sends a close frame with code (best effort), closes the
// connection and returns the protocol error.
func (c *wsConn) fail(code int, why string) error {
	c.close(code, why)
	return fmt.Errorf("%w: %s", errWSProtocol, why)
}

// close sends a close frame with code and reason (best effort) and closes
// the connection. The reason is cut to fit a control frame.
func (c *wsConn) close(code int, reason string) {
	if len(reason) > 123 {
		reason = reason[:123]
	}
	payload := binary.BigEndian.AppendUint16(nil, uint16(code))
	_ = c.writeFrame(wsClose, append(payload, reason...))
	c.rw.Close()
}
