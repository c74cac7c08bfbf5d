package transport

// Client-side conformance: our client (Dial + Start) against a raw TCP server
// that completes the handshake by hand and then writes hand-built frames, so
// the test controls every byte the client reads and sees every byte the client
// writes (unmasked here, after checking that it was masked). Each test runs
// with and without permessage-deflate. docs/conformance.md maps the tests to
// the Autobahn TestSuite case groups they stand for.

import (
	"bufio"
	"bytes"
	"compress/flate"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// acceptKey computes Sec-WebSocket-Accept for a Sec-WebSocket-Key (RFC 6455
// section 4.2.2).
func acceptKey(key string) string {
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(h[:])
}

// rawServerConfig says how the raw server answers the upgrade.
type rawServerConfig struct {
	// deflate answers the client's permessage-deflate offer (if it made
	// one) with deflateAnswer.
	deflate bool
	// accept, if set, replaces the correct Sec-WebSocket-Accept.
	accept string
	// header lines added to the 101 response as they are.
	header []string
}

// rawPeer is the server end of one connection from our client, driven by hand.
type rawPeer struct {
	t    *testing.T
	conn net.Conn
	br   *bufio.Reader
	req  *http.Request
}

// rawHandshake reads the client's upgrade request from nc and answers 101.
func rawHandshake(nc net.Conn, cfg rawServerConfig) (*rawPeer, error) {
	_ = nc.SetDeadline(time.Now().Add(testTimeout))
	br := bufio.NewReader(nc)
	req, err := http.ReadRequest(br)
	if err != nil {
		return nil, fmt.Errorf("raw server: reading the upgrade request: %w", err)
	}
	accept := cfg.accept
	if accept == "" {
		accept = acceptKey(req.Header.Get("Sec-WebSocket-Key"))
	}
	var b strings.Builder
	b.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n")
	b.WriteString("Sec-WebSocket-Accept: " + accept + "\r\n")
	if cfg.deflate && hasDeflate(req.Header) {
		b.WriteString("Sec-WebSocket-Extensions: " + deflateAnswer + "\r\n")
	}
	for _, h := range cfg.header {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("\r\n")
	if _, err := io.WriteString(nc, b.String()); err != nil {
		return nil, fmt.Errorf("raw server: writing the 101: %w", err)
	}
	_ = nc.SetDeadline(time.Time{})
	return &rawPeer{conn: nc, br: br, req: req}, nil
}

// tryDialRaw starts a raw server for one connection and dials it with our
// client (not started). The peer is returned even when Dial fails, if the
// handshake got that far; its socket is then already closed.
func tryDialRaw(t *testing.T, cfg rawServerConfig, opts *DialOptions) (*Conn, *rawPeer, error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type accepted struct {
		p   *rawPeer
		err error
	}
	ch := make(chan accepted, 1)
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			ch <- accepted{nil, err}
			return
		}
		p, err := rawHandshake(nc, cfg)
		if err != nil {
			nc.Close()
		}
		ch <- accepted{p, err}
	}()
	var o DialOptions
	if opts != nil {
		o = *opts
	}
	o.Proxy = NoProxy
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	c, _, dialErr := Dial(ctx, "ws://"+ln.Addr().String()+"/", &o)
	var a accepted
	select {
	case a = <-ch:
	case <-time.After(testTimeout):
		t.Fatal("raw server: no connection")
	}
	if a.err != nil {
		if c != nil {
			c.Terminate(nil)
		}
		t.Fatal(a.err)
	}
	a.p.t = t
	if dialErr != nil {
		a.p.conn.Close()
		return nil, a.p, dialErr
	}
	return c, a.p, nil
}

// dialRaw is tryDialRaw that must succeed; it starts the client with a
// recorder. At cleanup the raw socket is closed and the client waited for.
func dialRaw(t *testing.T, cfg rawServerConfig, opts *DialOptions) (*Conn, *recorder, *rawPeer) {
	t.Helper()
	c, p, err := tryDialRaw(t, cfg, opts)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	if want := cfg.deflate && hasDeflate(p.req.Header); c.Compressed() != want {
		t.Fatalf("client Compressed() = %v, want %v", c.Compressed(), want)
	}
	rec := newRecorder(false)
	c.Start(rec)
	t.Cleanup(func() {
		p.conn.Close()
		waitDone(t, c)
	})
	return c, rec, p
}

// serverFrame returns a whole unmasked frame; b0 carries FIN, RSV and opcode.
func serverFrame(b0 byte, payload []byte) []byte {
	return append(frameHeader(b0, uint64(len(payload)), nil), payload...)
}

func closePayloadOf(code int, reason string) []byte {
	return append(binary.BigEndian.AppendUint16(nil, uint16(code)), reason...)
}

// write writes raw bytes to the client.
func (p *rawPeer) write(b ...[]byte) {
	p.t.Helper()
	_ = p.conn.SetWriteDeadline(time.Now().Add(testTimeout))
	if _, err := p.conn.Write(bytes.Join(b, nil)); err != nil {
		p.t.Fatalf("raw server: write: %v", err)
	}
}

// send writes one unmasked frame.
func (p *rawPeer) send(b0 byte, payload []byte) {
	p.t.Helper()
	p.write(serverFrame(b0, payload))
}

// next reads the client's next frame, which must be masked (RFC 6455 5.3),
// final, without RSV2/RSV3, and unmasks it.
func (p *rawPeer) next() wireFrame {
	p.t.Helper()
	_ = p.conn.SetReadDeadline(time.Now().Add(testTimeout))
	f, err := readWireFrame(p.br)
	if err != nil {
		p.t.Fatalf("raw server: reading a frame from the client: %v", err)
	}
	if !f.masked {
		p.t.Errorf("client frame (opcode %d) is not masked", f.op)
	}
	if !f.fin || f.b0&0x30 != 0 {
		p.t.Errorf("client frame b0=%#x: want FIN and no RSV2/RSV3", f.b0)
	}
	if f.rsv1 && f.op >= opClose {
		p.t.Errorf("client control frame (opcode %d) has RSV1 set", f.op)
	}
	return f
}

// expectPong reads the client's next frame, which must be a pong carrying
// payload.
func (p *rawPeer) expectPong(payload []byte) {
	p.t.Helper()
	f := p.next()
	if f.op != opPong || !bytes.Equal(f.payload, payload) {
		p.t.Fatalf("client sent opcode %d with %d bytes (%.20q), want a pong with the ping's %d bytes", f.op, len(f.payload), f.payload, len(payload))
	}
}

// expectClose reads the client's next frame, which must be a close frame with
// code (StatusNoStatusReceived: an empty payload), and returns its reason.
func (p *rawPeer) expectClose(code StatusCode) string {
	p.t.Helper()
	f := p.next()
	if f.op != opClose {
		p.t.Fatalf("client sent opcode %d (%d bytes, %.30q), want a close frame with %d", f.op, len(f.payload), f.payload, code)
	}
	got, reason := StatusNoStatusReceived, ""
	switch {
	case len(f.payload) >= 2:
		got, reason = StatusCode(binary.BigEndian.Uint16(f.payload)), string(f.payload[2:])
	case len(f.payload) == 1:
		p.t.Fatalf("client sent a close frame with a 1-byte payload")
	}
	if got != code {
		p.t.Fatalf("client close code %d (%q), want %d", got, reason, code)
	}
	return reason
}

// finish ends the connection from the server's side of a closing handshake:
// it sends the server's close frame (unless code is 0), half-closes, and
// reads until the client closes the TCP connection. Nothing may follow the
// client's close frame.
func (p *rawPeer) finish(code int) {
	p.t.Helper()
	if code == int(StatusNoStatusReceived) {
		p.send(0x80|opClose, nil)
	} else if code != 0 {
		p.send(0x80|opClose, closePayloadOf(code, ""))
	}
	p.expectEOF()
}

// expectEOF half-closes the socket and reads until the client ends the TCP
// connection; the client must not write anything more.
func (p *rawPeer) expectEOF() {
	p.t.Helper()
	if tc, ok := p.conn.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
	_ = p.conn.SetReadDeadline(time.Now().Add(testTimeout))
	rest, err := io.ReadAll(p.br)
	if err != nil {
		p.t.Errorf("raw server: waiting for the client's FIN: %v", err)
	}
	if len(rest) != 0 {
		p.t.Errorf("client wrote %d bytes after its close frame: %x", len(rest), rest[:min(len(rest), 32)])
	}
	p.conn.Close()
}

// forEachDeflate runs f as two parallel subtests, without and with
// permessage-deflate negotiated.
func forEachDeflate(t *testing.T, f func(t *testing.T, deflate bool)) {
	for _, deflate := range []bool{false, true} {
		t.Run(fmt.Sprintf("deflate=%v", deflate), func(t *testing.T) {
			t.Parallel()
			f(t, deflate)
		})
	}
}

// dataFrames encodes one message as frames: with deflate the whole message is
// compressed and the compressed bytes are split, RSV1 on the first frame only
// (RFC 7692 section 6.1); without, the parts are the fragments.
func dataFrames(t *testing.T, deflate bool, typ MessageType, parts ...[]byte) [][]byte {
	t.Helper()
	if deflate {
		z := deflateMessage(t, bytes.Join(parts, nil))
		n := len(parts)
		parts = nil
		for i := 0; i < n; i++ {
			parts = append(parts, z[i*len(z)/n:(i+1)*len(z)/n])
		}
	}
	var out [][]byte
	for i, part := range parts {
		b0 := byte(opContinuation)
		if i == 0 {
			b0 = byte(typ)
			if deflate {
				b0 |= rsv1Bit
			}
		}
		if i == len(parts)-1 {
			b0 |= finBit
		}
		out = append(out, serverFrame(b0, part))
	}
	return out
}

// TestClientFragmentsAndPings: fragmented messages with pings and an
// unsolicited pong between the fragments. Every ping is answered with a
// masked pong carrying the ping's payload (up to the 125-byte maximum) while
// the message is still incomplete, the pong is ignored, and each message is
// delivered whole. Then our client sends a message, and the server closes.
func TestClientFragmentsAndPings(t *testing.T) {
	t.Parallel()
	forEachDeflate(t, func(t *testing.T, deflate bool) {
		c, rec, p := dialRaw(t, rawServerConfig{deflate: deflate}, nil)

		// Text in four fragments, ö split across two; a ping after each
		// fragment, answered before the next is sent. The first fragment
		// is written one byte per TCP write.
		parts := [][]byte{[]byte("Hello, "), []byte("w\xc3"), []byte("\xb6rld"), []byte("!")}
		frames := dataFrames(t, deflate, MessageText, parts...)
		for i, f := range frames {
			if i == 0 {
				for _, b := range f {
					p.write([]byte{b})
				}
			} else {
				p.write(f)
			}
			if i < len(frames)-1 {
				ping := []byte(fmt.Sprintf("ping %d", i))
				p.send(0x80|opPing, ping)
				p.expectPong(ping)
			}
		}
		if m := rec.next(t); m.typ != MessageText || string(m.data) != "Hello, wörld!" {
			t.Fatalf("fragmented text: got %v %q", m.typ, m.data)
		}

		// Binary with empty fragments, an unsolicited pong and a 125-byte
		// ping in the middle.
		p.write(serverFrame(byte(MessageBinary), nil))
		p.send(0x80|opPong, []byte("unsolicited"))
		max := bytes.Repeat([]byte{0xfe}, maxControlPayload)
		p.send(0x80|opPing, max)
		p.expectPong(max)
		p.write(serverFrame(opContinuation, []byte{1, 2}))
		p.send(0x80|opPing, nil)
		p.expectPong(nil)
		// A ping written one byte per TCP write.
		for _, b := range serverFrame(0x80|opPing, []byte("chopped")) {
			p.write([]byte{b})
		}
		p.expectPong([]byte("chopped"))
		p.write(serverFrame(opContinuation, nil), serverFrame(0x80|opContinuation, []byte{3}))
		if m := rec.next(t); m.typ != MessageBinary || !bytes.Equal(m.data, []byte{1, 2, 3}) {
			t.Fatalf("fragmented binary: got %v %x", m.typ, m.data)
		}
		if deflate {
			// A compressed binary message with the ping between its two
			// compressed halves.
			big := bytes.Repeat([]byte("0123456789abcdef"), 1000)
			fs := dataFrames(t, true, MessageBinary, big[:8000], big[8000:])
			p.write(fs[0])
			p.send(0x80|opPing, []byte("mid"))
			p.expectPong([]byte("mid"))
			p.write(fs[1])
			if m := rec.next(t); m.typ != MessageBinary || !bytes.Equal(m.data, big) {
				t.Fatalf("fragmented compressed binary: got %v, %d bytes", m.typ, len(m.data))
			}
		}

		// A burst of pings: the client may answer only the most recent one
		// it has not answered yet (RFC 6455 5.5.3), but the pongs it sends
		// come in order and the last ping is answered.
		var burst [][]byte
		for i := 0; i < 10; i++ {
			ping := []byte(fmt.Sprintf("burst %d", i))
			burst = append(burst, serverFrame(0x80|opPing, ping))
		}
		p.write(burst...)
		for i := -1; i < 9; {
			f := p.next()
			if f.op != opPong {
				t.Fatalf("client sent opcode %d, want a pong", f.op)
			}
			var j int
			if _, err := fmt.Sscanf(string(f.payload), "burst %d", &j); err != nil || j <= i {
				t.Fatalf("pong %q after the pong for burst %d", f.payload, i)
			}
			i = j
		}

		// Our client's own message: masked, compressed when deflate was
		// negotiated (it is over the 1 KiB threshold).
		out := []byte(strings.Repeat("client says hi ", 100))
		if err := c.Send(NewFrame(MessageText, out)); err != nil {
			t.Fatal(err)
		}
		f := p.next()
		if f.op != byte(MessageText) || f.rsv1 != deflate {
			t.Fatalf("client message: opcode %d rsv1=%v, want text with rsv1=%v", f.op, f.rsv1, deflate)
		}
		got := f.payload
		if f.rsv1 {
			var err error
			if got, err = inflateMessage(f.payload); err != nil {
				t.Fatal(err)
			}
		}
		if !bytes.Equal(got, out) {
			t.Fatal("client message differs on the wire")
		}

		// The server closes; the client echoes the code with a masked
		// close frame and reports a clean close by the peer.
		p.send(0x80|opClose, closePayloadOf(1000, "done"))
		if reason := p.expectClose(StatusNormalClosure); reason != "" {
			t.Errorf("client echoed reason %q", reason)
		}
		p.expectEOF()
		info := rec.waitClose(t)
		if info.Code != StatusNormalClosure || info.Reason != "done" || !info.ByPeer || info.Err != nil {
			t.Errorf("HandleClose = %+v, want 1000 \"done\" by peer", info)
		}
		if n := len(rec.msgs); n != 0 {
			t.Errorf("%d more messages delivered", n)
		}
	})
}

// clientFailure checks how a connection our client failed ended: the close
// frame it sent (read from the raw socket), the server's reply (replyCode,
// or 0 for none: the client is failing the connection and only waits for
// the server's FIN), and HandleClose.
func clientFailure(t *testing.T, rec *recorder, p *rawPeer, code StatusCode, replyCode int, wantErr error) CloseInfo {
	t.Helper()
	p.expectClose(code)
	p.finish(replyCode)
	info := rec.waitClose(t)
	if info.Code != code || info.ByPeer || !errors.Is(info.Err, wantErr) {
		t.Errorf("HandleClose = %+v, want %d (not by peer) with %v", info, code, wantErr)
	}
	return info
}

// TestClientInvalidUTF8: a text message that is not valid UTF-8, whole or
// split across fragments (and compressed, with deflate), closes with 1007;
// valid text split inside a character and invalid bytes in a binary message
// are fine.
func TestClientInvalidUTF8(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		parts []string
	}{
		{"one frame", []string{"ok \xff\xfe"}},
		{"split across fragments", []string{"euro \xe2\x82", "\x28"}},
		{"invalid fragment first", []string{"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80", "edited"}},
		{"truncated at the end", []string{"abc", "\xe2\x82"}},
		{"surrogate", []string{"\xed\xa0\x80"}},
		{"overlong", []string{"\xc0\xaf"}},
		{"above U+10FFFF", []string{"\xf4\x90\x80\x80"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			forEachDeflate(t, func(t *testing.T, deflate bool) {
				_, rec, p := dialRaw(t, rawServerConfig{deflate: deflate}, nil)
				p.write(dataFrames(t, deflate, MessageText, []byte("euro \xe2\x82"), []byte("\xac!"))...)
				if m := rec.next(t); m.typ != MessageText || string(m.data) != "euro €!" {
					t.Fatalf("valid split text: got %v %q", m.typ, m.data)
				}
				p.write(dataFrames(t, deflate, MessageBinary, []byte("\xff"))...)
				if m := rec.next(t); m.typ != MessageBinary || string(m.data) != "\xff" {
					t.Fatalf("binary: got %v %q", m.typ, m.data)
				}
				var parts [][]byte
				for _, s := range tc.parts {
					parts = append(parts, []byte(s))
				}
				p.write(dataFrames(t, deflate, MessageText, parts...)...)
				clientFailure(t, rec, p, StatusInvalidFramePayloadData, int(StatusInvalidFramePayloadData), ErrInvalidUTF8)
				if n := len(rec.msgs); n != 0 {
					t.Errorf("%d more messages delivered", n)
				}
			})
		})
	}
}

// protocolErrorCases are frames our client must fail with 1002. deflate
// tells whether the case applies without (false), with (true) or regardless
// of (nil) negotiated permessage-deflate.
func protocolErrorCases(t *testing.T) []struct {
	name    string
	bytes   []byte
	deflate *bool
} {
	yes, no := true, false
	masked := func(b0 byte, p []byte) []byte { return encodeClientFrame(b0, p) }
	z := deflateMessage(t, []byte("compressed, but not negotiated"))
	cont := dataFrames(t, true, MessageText, []byte("first half "), []byte("second half"))
	cont[1][0] |= rsv1Bit
	rsv1Cont := bytes.Join(cont, nil)
	return []struct {
		name    string
		bytes   []byte
		deflate *bool
	}{
		{"RSV2 set", serverFrame(0x80|0x20|byte(MessageBinary), []byte("x")), nil},
		{"RSV3 set", serverFrame(0x80|0x10|byte(MessageText), []byte("x")), nil},
		{"RSV2 on a ping", serverFrame(0x80|0x20|opPing, nil), nil},
		{"all RSV bits on a close frame", serverFrame(0x80|0x70|opClose, closePayloadOf(1000, "")), nil},
		{"RSV2 on a continuation", append(serverFrame(byte(MessageText), []byte("a")), serverFrame(0x80|0x20|opContinuation, []byte("b"))...), nil},
		{"compressed frame without deflate", serverFrame(0x80|rsv1Bit|byte(MessageText), z), &no},
		{"compressed ping without deflate", serverFrame(0x80|rsv1Bit|opPing, nil), &no},
		{"reserved data opcode 3", serverFrame(0x83, nil), nil},
		{"reserved data opcode 4", serverFrame(0x84, []byte("x")), nil},
		{"reserved data opcode 5", serverFrame(0x85, nil), nil},
		{"reserved data opcode 6", serverFrame(0x86, []byte("x")), nil},
		{"reserved data opcode 7", serverFrame(0x87, nil), nil},
		{"reserved control opcode 11", serverFrame(0x8b, nil), nil},
		{"reserved control opcode 12", serverFrame(0x8c, []byte("x")), nil},
		{"reserved control opcode 13", serverFrame(0x8d, nil), nil},
		{"reserved control opcode 14", serverFrame(0x8e, []byte("x")), nil},
		{"reserved control opcode 15", serverFrame(0x8f, nil), nil},
		{"reserved opcode inside a fragmented message", append(serverFrame(byte(MessageText), []byte("a")), serverFrame(0x83, nil)...), nil},
		{"masked frame from the server", masked(0x80|byte(MessageText), []byte("masked")), nil},
		{"masked compressed frame from the server", masked(0x80|rsv1Bit|byte(MessageText), z), &yes},
		{"masked ping from the server", masked(0x80|opPing, []byte("p")), nil},
		{"ping of 126 bytes", serverFrame(0x80|opPing, make([]byte, 126)), nil},
		{"pong of 126 bytes", serverFrame(0x80|opPong, make([]byte, 126)), nil},
		{"fragmented ping", serverFrame(opPing, []byte("p")), nil},
		{"fragmented pong", append(serverFrame(opPong, []byte("p")), serverFrame(0x80|opContinuation, []byte("q"))...), nil},
		{"continuation without a start", serverFrame(0x80|opContinuation, []byte("x")), nil},
		{"unfinished continuation without a start", serverFrame(opContinuation, []byte("x")), nil},
		// RFC 7692 section 6.1: RSV1 marks a compressed message's first
		// frame only.
		{"RSV1 on a ping with deflate", serverFrame(0x80|rsv1Bit|opPing, []byte("rsv1")), &yes},
		{"RSV1 on a continuation with deflate", rsv1Cont, &yes},
		{"close frame with a 1-byte payload", serverFrame(0x80|opClose, []byte{0x03}), nil},
		{"new message inside a fragmented one", append(serverFrame(byte(MessageText), []byte("a")), serverFrame(0x80|byte(MessageText), []byte("b"))...), nil},
		{"64-bit length with the top bit set", frameHeader(0x80|byte(MessageBinary), 1<<63, nil), nil},
	}
}

// TestClientProtocolErrors: reserved bits and opcodes, masked server frames,
// oversized or fragmented control frames and broken fragmentation fail the
// connection with 1002. Nothing is delivered, and nothing follows the
// client's close frame.
func TestClientProtocolErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range protocolErrorCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			forEachDeflate(t, func(t *testing.T, deflate bool) {
				if tc.deflate != nil && *tc.deflate != deflate {
					t.Skipf("only with deflate=%v", *tc.deflate)
				}
				_, rec, p := dialRaw(t, rawServerConfig{deflate: deflate}, nil)
				// A good message first, so the failure is the frame's.
				p.write(dataFrames(t, deflate, MessageText, []byte("before"))...)
				if m := rec.next(t); string(m.data) != "before" {
					t.Fatalf("got %q", m.data)
				}
				p.write(tc.bytes)
				info := clientFailure(t, rec, p, StatusProtocolError, 0, ErrProtocol)
				t.Logf("HandleClose reason: %q", info.Reason)
				if n := len(rec.msgs); n != 0 {
					t.Errorf("%d more messages delivered", n)
				}
			})
		})
	}
}

// corruptDeflateCases are compressed payloads that do not inflate.
func corruptDeflateCases(t *testing.T) []struct {
	name    string
	payload []byte
} {
	good := deflateMessage(t, []byte(strings.Repeat("corrupt me ", 50)))
	return []struct {
		name    string
		payload []byte
	}{
		{"reserved block type", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}},
		{"truncated stream", good[:len(good)/2]},
		// A stored block announcing 256 bytes and carrying 3: flate reads
		// into the 00 00 ff ff tail and reports io.ErrUnexpectedEOF.
		{"truncated stored block", []byte{0x00, 0x00, 0x01, 0xff, 0xfe, 'a', 'b', 'c'}},
	}
}

// TestClientCorruptCompressedData: a compressed message whose deflate data is
// corrupt or truncated fails the connection with 1007 (as Node's ws does),
// not a silent TCP drop reported as 1006 by the peer. A good message after
// the connection fails is not delivered.
func TestClientCorruptCompressedData(t *testing.T) {
	t.Parallel()
	for _, tc := range corruptDeflateCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, rec, p := dialRaw(t, rawServerConfig{deflate: true}, nil)
			p.send(0x80|rsv1Bit|byte(MessageBinary), tc.payload)
			p.write(dataFrames(t, true, MessageText, []byte("after"))...)
			p.expectClose(StatusInvalidFramePayloadData)
			p.finish(int(StatusInvalidFramePayloadData))
			info := rec.waitClose(t)
			if info.Code != StatusInvalidFramePayloadData || info.ByPeer || info.Err == nil {
				t.Errorf("HandleClose = %+v, want 1007 (not by peer) with the inflate error", info)
			}
			t.Logf("HandleClose error: %v", info.Err)
			if n := len(rec.msgs); n != 0 {
				t.Errorf("%d messages delivered", n)
			}
		})
	}
}

// TestServerCorruptCompressedData is TestClientCorruptCompressedData for our
// server.
func TestServerCorruptCompressedData(t *testing.T) {
	t.Parallel()
	for _, tc := range corruptDeflateCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := startServer(t, serverConfig{opts: &AcceptOptions{Compression: CompressionEnabled}})
			rc := rawDial(t, s.addr(), deflateOfferHeader)
			srv := s.next(t)
			rc.writeFrame(0x80|rsv1Bit|byte(MessageBinary), tc.payload)
			rc.writeFrame(0x80|rsv1Bit|byte(MessageText), deflateMessage(t, []byte("after")))
			code, _, data := rc.readClose()
			if code != int(StatusInvalidFramePayloadData) || len(data) != 0 {
				t.Fatalf("server sent close %d after %d data frames, want 1007", code, len(data))
			}
			rc.finishClose(code)
			info := srv.r.waitClose(t)
			if info.Code != StatusInvalidFramePayloadData || info.ByPeer || info.Err == nil {
				t.Errorf("HandleClose = %+v, want 1007 (not by peer) with the inflate error", info)
			}
			if n := len(srv.r.msgs); n != 0 {
				t.Errorf("%d messages delivered", n)
			}
		})
	}
}

// closePayloadCases are close frame payloads from the peer: valid ones are
// echoed (wantCode is the echoed code, reported in HandleClose), invalid ones
// (fail) fail the connection with 1002. gap marks a case where our parser
// (gorilla/websocket v1.5.3) deviates from RFC 6455; the subtest pins the
// actual behaviour.
type closePayloadCase struct {
	name     string
	payload  []byte
	wantCode StatusCode // the code our endpoint sends back
	fail     bool       // the endpoint fails the connection (wantCode 1002)
	gap      string
}

func closePayloadCases() []closePayloadCase {
	var cases []closePayloadCase
	for _, code := range []int{1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 3000, 3999, 4000, 4999} {
		cases = append(cases, closePayloadCase{name: fmt.Sprintf("valid code %d", code), payload: closePayloadOf(code, "r"), wantCode: StatusCode(code)})
	}
	for _, code := range []int{0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535} {
		cases = append(cases, closePayloadCase{name: fmt.Sprintf("invalid code %d", code), payload: closePayloadOf(code, ""), wantCode: StatusProtocolError, fail: true})
	}
	return append(cases,
		closePayloadCase{name: "empty payload", payload: nil, wantCode: StatusNoStatusReceived},
		closePayloadCase{name: "123-byte reason", payload: closePayloadOf(1000, strings.Repeat("é", 61)+"!"), wantCode: StatusNormalClosure},
		closePayloadCase{name: "payload of 126 bytes", payload: closePayloadOf(1000, strings.Repeat("x", 124)), wantCode: StatusProtocolError, fail: true},
		closePayloadCase{name: "invalid UTF-8 reason", payload: closePayloadOf(1000, "bad \xff"), wantCode: StatusProtocolError, fail: true},
		closePayloadCase{name: "reason with a surrogate", payload: closePayloadOf(1000, "\xed\xa0\x80"), wantCode: StatusProtocolError, fail: true},
		// IANA registers 1014 (bad gateway) and Node's ws accepts it, so
		// we do (our endpoints still send 1011 for it, see validSendCode).
		closePayloadCase{name: "code 1014", payload: closePayloadOf(1014, "r"), wantCode: 1014},
		// RFC 6455 5.5.1: a body must start with a 2-byte code, so a
		// 1-byte payload is a protocol error (Autobahn 7.3.2).
		closePayloadCase{name: "1-byte payload", payload: []byte{0x03}, wantCode: StatusProtocolError, fail: true},
	)
}

// TestClientClosePayloads: the close frame rules (RFC 6455 5.5.1, 7.4) at our
// client: valid codes are echoed and reported, invalid codes, over-long
// payloads and reasons that are not UTF-8 fail the connection with 1002.
func TestClientClosePayloads(t *testing.T) {
	t.Parallel()
	for _, tc := range closePayloadCases() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if tc.gap != "" {
				t.Logf("known gap, pinned: %s", tc.gap)
			}
			forEachDeflate(t, func(t *testing.T, deflate bool) {
				_, rec, p := dialRaw(t, rawServerConfig{deflate: deflate}, nil)
				p.send(0x80|opClose, tc.payload)
				reason := p.expectClose(tc.wantCode)
				info := rec.waitClose(t)
				if tc.fail {
					p.expectEOF()
					if info.Code != StatusProtocolError || info.ByPeer || !errors.Is(info.Err, ErrProtocol) {
						t.Errorf("HandleClose = %+v, want 1002 with ErrProtocol", info)
					}
					return
				}
				// A valid close: the echo carries the code only, and
				// the client waits for the server to end TCP first.
				if reason != "" {
					t.Errorf("echoed reason %q, want none", reason)
				}
				wantReason := ""
				if len(tc.payload) > 2 {
					wantReason = string(tc.payload[2:])
				}
				if info.Code != tc.wantCode || info.Reason != wantReason || !info.ByPeer || info.Err != nil {
					t.Errorf("HandleClose = %+v, want %d %q by peer", info, tc.wantCode, wantReason)
				}
				p.expectEOF()
			})
		})
	}
}

// TestServerClosePayloads is TestClientClosePayloads for our server, driven
// by the raw client of helpers_test.go: the cases TestProtocolErrors does not
// cover.
func TestServerClosePayloads(t *testing.T) {
	t.Parallel()
	for _, tc := range closePayloadCases() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := startServer(t, serverConfig{})
			rc := rawDial(t, s.addr())
			srv := s.next(t)
			rc.writeFrame(0x80|opClose, tc.payload)
			code, reason, data := rc.readClose()
			if StatusCode(code) != tc.wantCode || len(data) != 0 {
				t.Fatalf("server answered close %d after %d data frames, want %d", code, len(data), tc.wantCode)
			}
			rc.readToEOF()
			info := srv.r.waitClose(t)
			if tc.fail {
				if info.Code != StatusProtocolError || !errors.Is(info.Err, ErrProtocol) {
					t.Errorf("HandleClose = %+v, want 1002 with ErrProtocol", info)
				}
				return
			}
			if reason != "" {
				t.Errorf("echoed reason %q, want none", reason)
			}
			if info.Code != tc.wantCode || !info.ByPeer || info.Err != nil {
				t.Errorf("HandleClose = %+v, want %d by peer", info, tc.wantCode)
			}
		})
	}
}

// TestClientReadLimit: a message over our client's ReadLimit, in one frame,
// in fragments, or (with deflate) as a small compressed frame that inflates
// far past it, is refused with 1009; a message exactly at the limit arrives.
func TestClientReadLimit(t *testing.T) {
	t.Parallel()
	const limit = 1024
	for _, tc := range []struct {
		name   string
		frames func(t *testing.T, deflate bool) [][]byte
		onlyZ  bool
	}{
		{"one frame", func(t *testing.T, deflate bool) [][]byte {
			return dataFrames(t, deflate, MessageBinary, randomBytes(limit+1))
		}, false},
		{"fragments", func(t *testing.T, deflate bool) [][]byte {
			return dataFrames(t, deflate, MessageText, bytes.Repeat([]byte("a"), 600), bytes.Repeat([]byte("b"), 425))
		}, false},
		{"compressed bomb", func(t *testing.T, _ bool) [][]byte {
			return dataFrames(t, true, MessageBinary, make([]byte, 1<<20))
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			forEachDeflate(t, func(t *testing.T, deflate bool) {
				if tc.onlyZ && !deflate {
					t.Skip("needs deflate")
				}
				_, rec, p := dialRaw(t, rawServerConfig{deflate: deflate}, &DialOptions{ReadLimit: limit})
				atLimit := randomBytes(limit)
				p.write(dataFrames(t, deflate, MessageBinary, atLimit[:100], atLimit[100:])...)
				if m := rec.next(t); !bytes.Equal(m.data, atLimit) {
					t.Fatalf("message at the limit: got %d bytes", len(m.data))
				}
				p.write(tc.frames(t, deflate)...)
				clientFailure(t, rec, p, StatusMessageTooBig, int(StatusMessageTooBig), ErrMessageTooBig)
				if n := len(rec.msgs); n != 0 {
					t.Errorf("%d more messages delivered", n)
				}
			})
		})
	}
}

// TestClientReadLimitMaxInt64: the largest limit is no limit (readMessage
// used to overflow limit+1 and refuse every message over 512 bytes).
func TestClientReadLimitMaxInt64(t *testing.T) {
	t.Parallel()
	_, rec, p := dialRaw(t, rawServerConfig{}, &DialOptions{ReadLimit: math.MaxInt64})
	big := randomBytes(64 << 10)
	p.send(0x80|byte(MessageBinary), big)
	if m := rec.next(t); !bytes.Equal(m.data, big) {
		t.Fatalf("got %d bytes, want %d", len(m.data), len(big))
	}
	p.send(0x80|opClose, closePayloadOf(1000, ""))
	p.expectClose(StatusNormalClosure)
	p.expectEOF()
	if info := rec.waitClose(t); info.Code != StatusNormalClosure || info.Err != nil {
		t.Errorf("HandleClose = %+v", info)
	}
}

// TestClientDropsAfterClose: once a close frame has been sent, data the peer
// still sends is dropped unread (not delivered, not inflated, not checked as
// UTF-8) and pings are not answered, whichever side closed first.
func TestClientDropsAfterClose(t *testing.T) {
	t.Parallel()
	late := func(t *testing.T, deflate bool) []byte {
		fs := [][]byte{
			serverFrame(0x80|byte(MessageText), []byte("late text")),
			serverFrame(0x80|byte(MessageText), []byte("late \xff invalid")),
			serverFrame(byte(MessageBinary), []byte("late ")),
			serverFrame(0x80|opPing, []byte("late ping")),
			serverFrame(0x80|opContinuation, []byte("fragments")),
		}
		if deflate {
			fs = append(fs,
				serverFrame(0x80|rsv1Bit|byte(MessageBinary), []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}), // not deflate data
				serverFrame(0x80|rsv1Bit|byte(MessageBinary), deflateMessage(t, make([]byte, 2<<20))))     // over the limit inflated
		}
		return bytes.Join(fs, nil)
	}
	t.Run("client closes first", func(t *testing.T) {
		t.Parallel()
		forEachDeflate(t, func(t *testing.T, deflate bool) {
			c, rec, p := dialRaw(t, rawServerConfig{deflate: deflate}, nil)
			c.Close(StatusNormalClosure, "bye")
			if reason := p.expectClose(StatusNormalClosure); reason != "bye" {
				t.Errorf("close reason %q", reason)
			}
			p.write(late(t, deflate))
			p.send(0x80|opClose, closePayloadOf(1000, "ack"))
			p.expectEOF() // no pong for the late ping
			info := rec.waitClose(t)
			if info.Code != StatusNormalClosure || info.Reason != "ack" || info.ByPeer || info.Err != nil {
				t.Errorf("HandleClose = %+v, want a clean 1000 \"ack\", not by peer", info)
			}
			if n := len(rec.msgs); n != 0 {
				t.Errorf("%d messages delivered after the close frame", n)
			}
		})
	})
	t.Run("close between fragments", func(t *testing.T) {
		t.Parallel()
		forEachDeflate(t, func(t *testing.T, deflate bool) {
			_, rec, p := dialRaw(t, rawServerConfig{deflate: deflate}, nil)
			fs := dataFrames(t, deflate, MessageText, []byte("first "), []byte("second"))
			p.write(fs[0], serverFrame(0x80|opClose, closePayloadOf(1000, "mid")), fs[1])
			p.expectClose(StatusNormalClosure)
			p.expectEOF()
			info := rec.waitClose(t)
			if info.Code != StatusNormalClosure || info.Reason != "mid" || !info.ByPeer || info.Err != nil {
				t.Errorf("HandleClose = %+v, want a clean 1000 \"mid\" by peer", info)
			}
			if n := len(rec.msgs); n != 0 {
				t.Errorf("%d messages delivered; the unfinished one must be dropped", n)
			}
		})
	})
	t.Run("server closes first", func(t *testing.T) {
		t.Parallel()
		forEachDeflate(t, func(t *testing.T, deflate bool) {
			_, rec, p := dialRaw(t, rawServerConfig{deflate: deflate}, nil)
			p.write(serverFrame(0x80|opClose, closePayloadOf(1001, "going")), late(t, deflate))
			p.expectClose(StatusGoingAway)
			p.expectEOF()
			info := rec.waitClose(t)
			if info.Code != StatusGoingAway || info.Reason != "going" || !info.ByPeer || info.Err != nil {
				t.Errorf("HandleClose = %+v, want a clean 1001 \"going\" by peer", info)
			}
			if n := len(rec.msgs); n != 0 {
				t.Errorf("%d messages delivered after the close frame", n)
			}
		})
	})
}

// TestClientHandshakeChecks: the client fails the handshake, with
// ErrBadHandshake, when the server's 101 does not match what it asked for
// (RFC 6455 4.1, RFC 7692 5 and 7).
func TestClientHandshakeChecks(t *testing.T) {
	t.Parallel()
	off := &DialOptions{Compression: CompressionDisabled}
	ext := func(v string) rawServerConfig {
		return rawServerConfig{header: []string{"Sec-WebSocket-Extensions: " + v}}
	}
	for _, tc := range []struct {
		name string
		cfg  rawServerConfig
		opts *DialOptions
	}{
		{"wrong Sec-WebSocket-Accept", rawServerConfig{accept: acceptKey("something else")}, nil},
		{"two Sec-WebSocket-Accept", rawServerConfig{header: []string{"Sec-WebSocket-Accept: " + acceptKey("something else")}}, nil},
		{"deflate answered but not offered", ext(deflateAnswer), off},
		// We did not offer client_max_window_bits (RFC 7692 7.1.2.2).
		{"client_max_window_bits answered", ext(deflateAnswer + "; client_max_window_bits=10"), nil},
		{"client_max_window_bits without a value", ext(deflateAnswer + "; client_max_window_bits"), nil},
		{"server_max_window_bits 7", ext(deflateAnswer + "; server_max_window_bits=7"), nil},
		{"server_max_window_bits 16", ext(deflateAnswer + "; server_max_window_bits=16"), nil},
		{"server_max_window_bits 010", ext(deflateAnswer + "; server_max_window_bits=010"), nil},
		{"server_max_window_bits without a value", ext(deflateAnswer + "; server_max_window_bits"), nil},
		{"no-context flag with a value", ext("permessage-deflate; server_no_context_takeover=1"), nil},
		{"unknown deflate parameter", ext(deflateAnswer + "; x"), nil},
		{"repeated deflate parameter", ext(deflateAnswer + "; server_no_context_takeover"), nil},
		{"deflate answered twice", ext(deflateAnswer + ", " + deflateAnswer), nil},
		{"extension not offered", ext("x-unknown"), nil},
		{"deflate and an extension not offered", ext(deflateAnswer + ", x-unknown"), nil},
		{"deflate after a malformed extension", ext("x=y, " + deflateAnswer), nil},
		{"subprotocol not offered", rawServerConfig{header: []string{"Sec-WebSocket-Protocol: chat"}}, nil},
		{"subprotocol not among those offered", rawServerConfig{header: []string{"Sec-WebSocket-Protocol: v3"}}, &DialOptions{Subprotocols: []string{"v1", "v2"}}},
		{"two subprotocols", rawServerConfig{header: []string{"Sec-WebSocket-Protocol: v1, v2"}}, &DialOptions{Subprotocols: []string{"v1", "v2"}}},
		{"two subprotocol headers", rawServerConfig{header: []string{"Sec-WebSocket-Protocol: v1", "Sec-WebSocket-Protocol: v2"}}, &DialOptions{Subprotocols: []string{"v1", "v2"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, _, err := tryDialRaw(t, tc.cfg, tc.opts)
			if err == nil {
				c.Start(newRecorder(false))
				c.Terminate(nil)
				waitDone(t, c)
				t.Fatal("Dial succeeded")
			}
			if !errors.Is(err, ErrBadHandshake) {
				t.Errorf("Dial error %v does not wrap ErrBadHandshake", err)
			}
			if n := strings.Count(err.Error(), "transport:"); n != 1 {
				t.Errorf("Dial error %q has %d \"transport:\" prefixes, want 1", err, n)
			}
			t.Logf("Dial: %v", err)
		})
	}

	// Answers RFC 7692 allows: the server may keep its context (leave out
	// server_no_context_takeover), leave out client_no_context_takeover and
	// limit its own window.
	for _, answer := range []string{
		"permessage-deflate",
		"permessage-deflate; client_no_context_takeover",
		"permessage-deflate; server_max_window_bits=9",
		"permessage-deflate; server_no_context_takeover",
		deflateAnswer + "; server_max_window_bits=8",
		deflateAnswer + "; server_max_window_bits=\"10\"",
		"permessage-deflate;server_no_context_takeover;server_max_window_bits=15",
	} {
		c, p, err := tryDialRaw(t, ext(answer), nil)
		if err != nil {
			t.Errorf("answer %q: %v", answer, err)
			continue
		}
		if !c.Compressed() {
			t.Errorf("answer %q: Compressed() = false", answer)
		}
		c.Start(newRecorder(false))
		c.Terminate(nil)
		waitDone(t, c)
		p.conn.Close()
	}

	// What the client offered is accepted.
	c, _, p := dialRaw(t, rawServerConfig{deflate: true, header: []string{"Sec-WebSocket-Protocol: v2"}}, &DialOptions{Subprotocols: []string{"v1", "v2"}})
	if c.Subprotocol() != "v2" || !c.Compressed() {
		t.Errorf("Subprotocol() = %q, Compressed() = %v; want v2 with deflate", c.Subprotocol(), c.Compressed())
	}
	if got := p.req.Header.Get("Sec-WebSocket-Extensions"); got != deflateOffer {
		t.Errorf("client offered %q", got)
	}
	if got := websocket.Subprotocols(p.req); len(got) != 2 || got[0] != "v1" || got[1] != "v2" {
		t.Errorf("client offered subprotocols %q", got)
	}
}

// TestClientServerContextTakeover: a server that keeps its compression
// context across messages (it answered without server_no_context_takeover)
// sends messages that refer back to earlier ones, across more than the 32
// KiB window, and to a message fragmented over several frames; the client
// inflates each one right, uncompressed messages in between do not count in
// the window, and a server that does not keep its context costs the
// client no window.
func TestClientServerContextTakeover(t *testing.T) {
	t.Parallel()
	c, p, err := tryDialRaw(t, rawServerConfig{header: []string{"Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=15"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder(false)
	c.Start(rec)
	t.Cleanup(func() {
		p.conn.Close()
		waitDone(t, c)
	})
	if !c.Compressed() || c.client.window == nil {
		t.Fatalf("Compressed() %v, window %v: want deflate with context takeover", c.Compressed(), c.client.window != nil)
	}
	var out bytes.Buffer
	fw, err := flate.NewWriter(&out, flate.BestCompression) // one stream for every message
	if err != nil {
		t.Fatal(err)
	}
	// compress continues the server's one deflate stream with msg, as a
	// server with context takeover does, and returns the message's bytes.
	compress := func(msg []byte) []byte {
		out.Reset()
		_, _ = fw.Write(msg)
		_ = fw.Flush()
		b := bytes.Clone(out.Bytes())
		if !bytes.HasSuffix(b, []byte{0, 0, 0xff, 0xff}) {
			t.Fatal("no sync flush marker")
		}
		return b[:len(b)-4]
	}
	big := randomBytes(40 << 10) // more than the window: only its tail may be referred to
	messages := [][]byte{
		[]byte("the quick brown fox jumps over the lazy dog"),
		[]byte("the quick brown fox jumps over the lazy dog, again"), // refers to the first
		big,
		append(bytes.Clone(big[len(big)-1000:]), "and the fox"...), // refers to the big one's tail and to the first
	}
	for i, m := range messages {
		z := compress(m)
		if i == 1 && len(z) >= len(m)/2 {
			t.Fatalf("message %d compressed to %d bytes: not using the context", i, len(z))
		}
		p.send(0x80|0x40|byte(MessageBinary), z)
		p.send(0x80|byte(MessageText), []byte("plain, between")) // not compressed: not in the window
		if got := rec.next(t); !bytes.Equal(got.data, m) {
			t.Fatalf("message %d: got %d bytes, want %d", i, len(got.data), len(m))
		}
		if got := rec.next(t); string(got.data) != "plain, between" {
			t.Fatalf("plain message: %q", got.data)
		}
	}
	// A compressed message in three frames, referring to the first.
	z := compress([]byte("over the lazy dog, in fragments"))
	third := len(z) / 3
	p.send(0x40|byte(MessageText), z[:third])
	p.send(opContinuation, z[third:2*third])
	p.send(0x80|opContinuation, z[2*third:])
	if got := rec.next(t); string(got.data) != "over the lazy dog, in fragments" {
		t.Fatalf("fragmented: %q", got.data)
	}
	if len(c.client.window) != windowSize {
		t.Fatalf("window %d bytes, want %d", len(c.client.window), windowSize)
	}

	// Without context takeover: no window.
	c2, _, _ := dialRaw(t, rawServerConfig{deflate: true}, nil)
	if !c2.Compressed() || c2.client.window != nil {
		t.Fatalf("no-takeover server: Compressed() %v, window %v", c2.Compressed(), c2.client.window != nil)
	}
}

func TestSlideWindow(t *testing.T) {
	t.Parallel()
	w := make([]byte, 0, windowSize)
	var all []byte
	for _, n := range []int{10, windowSize - 20, 15, 3 * windowSize, 1, 0, windowSize} {
		chunk := randomBytes(n)
		all = append(all, chunk...)
		w = slideWindow(w, chunk)
		want := all[max(0, len(all)-windowSize):]
		if !bytes.Equal(w, want) {
			t.Fatalf("after %d bytes: window of %d bytes differs from the last %d", n, len(w), len(want))
		}
		if cap(w) != windowSize {
			t.Fatalf("window reallocated: cap %d", cap(w))
		}
	}
}
