package transport

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/gorilla/websocket"
)

func TestReadLimit(t *testing.T) {
	t.Parallel()
	const limit = 64 << 10
	s := startServer(t, serverConfig{echo: true, opts: &AcceptOptions{ReadLimit: limit}})
	bystander := mustDialGorilla(t, s.wsURL(), nil, nil)
	bsrv := s.next(t)
	big := mustDialGorilla(t, s.wsURL(), nil, nil)
	srv := s.next(t)

	// Exactly at the limit is fine.
	atLimit := randomBytes(limit)
	if err := big.WriteMessage(websocket.BinaryMessage, atLimit); err != nil {
		t.Fatal(err)
	}
	if _, got, err := gorillaRead(t, big); err != nil || !bytes.Equal(got, atLimit) {
		t.Fatalf("message at the limit: %v", err)
	}

	if err := big.WriteMessage(websocket.BinaryMessage, randomBytes(limit+1)); err != nil {
		t.Fatal(err)
	}
	_, err := gorillaReadUntilErr(big)
	if !websocket.IsCloseError(err, websocket.CloseMessageTooBig) {
		t.Fatalf("client read %v, want close 1009", err)
	}
	big.Close()
	info := srv.r.waitClose(t)
	if info.Code != StatusMessageTooBig || !errors.Is(info.Err, ErrMessageTooBig) || info.ByPeer {
		t.Errorf("HandleClose = %+v, want 1009 with ErrMessageTooBig", info)
	}
	if n := len(srv.r.msgs); n != 1 {
		t.Errorf("%d messages delivered, want only the one at the limit", n)
	}

	// The other connection is unaffected.
	if err := bystander.WriteMessage(websocket.TextMessage, []byte("still here")); err != nil {
		t.Fatal(err)
	}
	if _, got, err := gorillaRead(t, bystander); err != nil || string(got) != "still here" {
		t.Fatalf("bystander: %q, %v", got, err)
	}
	gorillaClose(t, bystander, websocket.CloseNormalClosure, "")
	bsrv.r.waitClose(t)
}

func TestReadLimitDisabled(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverConfig{echo: true, opts: &AcceptOptions{ReadLimit: -1}})
	c, rec := dialOur(t, s.wsURL(), &DialOptions{ReadLimit: -1})
	s.next(t)
	big := randomBytes(3 << 20) // over the 1 MiB default
	if err := c.Send(NewFrame(MessageBinary, big)); err != nil {
		t.Fatal(err)
	}
	if m := rec.next(t); !bytes.Equal(m.data, big) {
		t.Fatal("echo differs")
	}
}

// TestReadLimitPeerStillSending: the peer is still streaming a huge message
// when the server refuses it. It must see the 1009 close frame and be able to
// finish writing, not be reset.
func TestReadLimitPeerStillSending(t *testing.T) {
	t.Parallel()
	const limit = 64 << 10
	const total = 4 << 20
	const chunk = 16 << 10
	for _, fragmented := range []bool{false, true} {
		name := "one frame"
		if fragmented {
			name = "many fragments"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := startServer(t, serverConfig{opts: &AcceptOptions{ReadLimit: limit}})
			rc := rawDial(t, s.addr())
			srv := s.next(t)

			sent := make(chan error, 1)
			go func() {
				key := []byte{0, 0, 0, 0} // a zero key leaves the payload as is
				buf := make([]byte, chunk)
				write := func(b []byte) error {
					_, err := rc.conn.Write(b)
					return err
				}
				if !fragmented {
					if err := write(frameHeader(0x80|byte(MessageBinary), total, key)); err != nil {
						sent <- err
						return
					}
					for n := 0; n < total; n += chunk {
						if err := write(buf); err != nil {
							sent <- err
							return
						}
					}
					sent <- nil
					return
				}
				for n := 0; n < total; n += chunk {
					b0 := byte(opContinuation)
					if n == 0 {
						b0 = byte(MessageBinary)
					}
					if n+chunk >= total {
						b0 |= 0x80
					}
					if err := write(append(frameHeader(b0, chunk, key), buf...)); err != nil {
						sent <- err
						return
					}
				}
				sent <- nil
			}()

			code, _, data := rc.readClose()
			if code != int(StatusMessageTooBig) || len(data) != 0 {
				t.Fatalf("got close %d after %d data frames, want 1009", code, len(data))
			}
			if err := <-sent; err != nil {
				t.Fatalf("the peer could not finish sending: %v", err)
			}
			rc.finishClose(code)
			info := srv.r.waitClose(t)
			if info.Code != StatusMessageTooBig || !errors.Is(info.Err, ErrMessageTooBig) {
				t.Errorf("HandleClose = %+v, want 1009 with ErrMessageTooBig", info)
			}
		})
	}
}

func TestInvalidUTF8(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		frames [][2][]byte // b0, payload
	}{
		{"one frame", [][2][]byte{{{0x81}, []byte("ok \xff\xfe")}}},
		{"split across fragments", [][2][]byte{
			{{0x01}, []byte("euro \xe2\x82")},
			{{0x80}, []byte("\x28")},
		}},
		{"truncated at the end", [][2][]byte{
			{{0x01}, []byte("abc")},
			{{0x80}, []byte("\xe2\x82")},
		}},
		{"surrogate", [][2][]byte{{{0x81}, []byte("\xed\xa0\x80")}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := startServer(t, serverConfig{})
			rc := rawDial(t, s.addr())
			srv := s.next(t)
			// A valid character split across fragments is fine.
			rc.writeFrame(0x01, []byte("euro \xe2\x82"))
			rc.writeFrame(0x00, []byte("\xac"))
			rc.writeFrame(0x80, []byte("!"))
			if m := srv.r.next(t); m.typ != MessageText || string(m.data) != "euro €!" {
				t.Fatalf("valid split text: got %v %q", m.typ, m.data)
			}
			// Invalid UTF-8 in a binary message is fine.
			rc.writeFrame(0x82, []byte("\xff"))
			if m := srv.r.next(t); m.typ != MessageBinary || string(m.data) != "\xff" {
				t.Fatalf("binary: got %v %q", m.typ, m.data)
			}
			for _, f := range tc.frames {
				rc.writeFrame(f[0][0], f[1])
			}
			code, _, _ := rc.readClose()
			if code != int(StatusInvalidFramePayloadData) {
				t.Fatalf("close code %d, want 1007", code)
			}
			rc.finishClose(code)
			info := srv.r.waitClose(t)
			if info.Code != StatusInvalidFramePayloadData || !errors.Is(info.Err, ErrInvalidUTF8) {
				t.Errorf("HandleClose = %+v, want 1007 with ErrInvalidUTF8", info)
			}
			if n := len(srv.r.msgs); n != 0 {
				t.Errorf("%d more messages delivered", n)
			}
		})
	}
}

func TestProtocolErrors(t *testing.T) {
	t.Parallel()
	masked := func(b0 byte, p []byte) []byte { return encodeClientFrame(b0, p) }
	for _, tc := range []struct {
		name  string
		bytes []byte
	}{
		{"RSV2 set", masked(0x80|0x20|0x2, []byte("x"))},
		{"RSV3 set", masked(0x80|0x10|0x2, []byte("x"))},
		{"RSV1 without deflate", masked(0x80|0x40|0x2, []byte("x"))},
		{"reserved data opcode", masked(0x83, []byte("x"))},
		{"reserved control opcode", masked(0x8b, nil)},
		{"unmasked client frame", append(frameHeader(0x82, 1, nil), 'x')},
		{"control frame over 125 bytes", masked(0x89, make([]byte, 126))},
		{"fragmented control frame", masked(0x09, []byte("ping"))},
		{"continuation without a start", masked(0x80, []byte("x"))},
		{"new message inside a fragmented one", append(masked(0x01, []byte("a")), masked(0x81, []byte("b"))...)},
		{"close code 1005 on the wire", masked(0x88, binary.BigEndian.AppendUint16(nil, 1005))},
		{"close code out of range", masked(0x88, binary.BigEndian.AppendUint16(nil, 5000))},
		{"invalid UTF-8 close reason", masked(0x88, append(binary.BigEndian.AppendUint16(nil, 1000), 0xff))},
		{"64-bit length with the top bit set", frameHeader(0x82, 1<<63, []byte{1, 2, 3, 4})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := startServer(t, serverConfig{})
			rc := rawDial(t, s.addr())
			srv := s.next(t)
			rc.write(tc.bytes)
			code, _, data := rc.readClose()
			if code != int(StatusProtocolError) || len(data) != 0 {
				t.Fatalf("got close %d after %d data frames, want 1002", code, len(data))
			}
			rc.readToEOF()
			info := srv.r.waitClose(t)
			if info.Code != StatusProtocolError || !errors.Is(info.Err, ErrProtocol) {
				t.Errorf("HandleClose = %+v, want 1002 with ErrProtocol", info)
			}
			if n := len(srv.r.msgs); n != 0 {
				t.Errorf("%d messages delivered", n)
			}
		})
	}
}

// TestDrainAfterClose: after the server's close frame, messages the peer still
// sends are dropped unread: not delivered, not inflated (a corrupt compressed
// frame does not matter), and the handshake still ends cleanly.
func TestDrainAfterClose(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverConfig{opts: &AcceptOptions{Compression: CompressionEnabled}})
	rc := rawDial(t, s.addr(), deflateOfferHeader)
	srv := s.next(t)
	srv.c.Close(StatusGoingAway, "draining")
	if code, _, _ := rc.readClose(); code != int(StatusGoingAway) {
		t.Fatalf("close code %d", code)
	}
	rc.writeFrame(0x81, []byte("late text"))
	rc.writeFrame(0x81, []byte("late \xff invalid"))
	rc.writeFrame(0x80|rsv1Bit|byte(MessageBinary), []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}) // not deflate data
	rc.writeFrame(0x80|rsv1Bit|byte(MessageBinary), deflateMessage(t, make([]byte, 1<<20)))
	rc.finishClose(int(StatusGoingAway))
	info := srv.r.waitClose(t)
	if info.Code != StatusGoingAway || info.ByPeer || info.Err != nil {
		t.Errorf("HandleClose = %+v, want a clean 1001", info)
	}
	if n := len(srv.r.msgs); n != 0 {
		t.Errorf("%d messages delivered after the close frame", n)
	}
}
