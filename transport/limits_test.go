package transport

import (
	"bytes"
	"encoding/binary"
	"errors"
	"sync"
	"testing"
	"time"
)

// pump writes chunks produced by next to the raw client's socket on its own
// goroutine until next returns nil, a write fails, or stop is closed. The
// returned wait blocks until it has stopped.
func pump(rc *rawClient, stop <-chan struct{}, next func(i int) []byte) (wait func()) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			b := next(i)
			if b == nil {
				return
			}
			_ = rc.conn.SetWriteDeadline(time.Now().Add(testTimeout))
			if _, err := rc.conn.Write(b); err != nil {
				return
			}
		}
	}()
	return wg.Wait
}

// readUntilClose reads frames until the server's close frame and returns its
// code, failing on data frames; pongs are allowed.
func readUntilClose(t *testing.T, rc *rawClient) StatusCode {
	t.Helper()
	for {
		f, err := rc.readFrame()
		if err != nil {
			t.Fatalf("reading until the close frame: %v", err)
		}
		switch f.op {
		case opPong:
		case opClose:
			if len(f.payload) < 2 {
				t.Fatalf("close frame without a code")
			}
			return StatusCode(binary.BigEndian.Uint16(f.payload))
		default:
			t.Fatalf("unexpected frame with opcode %d", f.op)
		}
	}
}

// finishFailure answers the server's close (already read, with code) and
// checks that the server's handler was told code with cause, and was given
// no message.
func finishFailure(t *testing.T, rc *rawClient, srv accepted, code StatusCode, cause error) {
	t.Helper()
	rc.finishClose(int(code))
	info := srv.r.waitClose(t)
	if info.Code != code || !errors.Is(info.Err, cause) {
		t.Errorf("HandleClose = %+v, want %d with %v", info, code, cause)
	}
	if n := len(srv.r.msgs); n != 0 {
		t.Errorf("%d messages delivered", n)
	}
}

// TestEndlessFragments: the attack from issue 11 — a message of zero-length
// continuation frames that never ends, with a ping every 2,000 frames to
// stay "alive" — is ended with 1009 once the message has MessageFrames
// frames (the default, 65,536 for the default 1 MiB read limit); nothing is
// delivered, and the server is not holding a core when the attacker stops.
func TestEndlessFragments(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverConfig{})
	rc := rawDial(t, s.addr())
	srv := s.next(t)

	var batch []byte
	for range 2000 {
		batch = append(batch, encodeClientFrame(opContinuation, nil)...)
	}
	batch = append(batch, encodeClientFrame(0x80|opPing, []byte("alive"))...)
	stop := make(chan struct{})
	wait := pump(rc, stop, func(i int) []byte {
		switch {
		case i == 0:
			return encodeClientFrame(byte(MessageText), []byte("a"))
		case i > 100: // 200,000 frames, three times the bound: give up
			return nil
		}
		return batch
	})
	code := readUntilClose(t, rc)
	close(stop)
	wait()
	if code != StatusMessageTooBig {
		t.Fatalf("close code %d, want 1009", code)
	}
	finishFailure(t, rc, srv, StatusMessageTooBig, ErrTooManyFrames)
}

// TestMessageFramesLimit: a message of exactly MessageFrames frames (control
// frames in between counting) is delivered; one more frame is refused.
func TestMessageFramesLimit(t *testing.T) {
	t.Parallel()
	const limit = 10
	for _, tc := range []struct {
		name   string
		frames int // data frames, plus one ping in the middle
		ok     bool
	}{
		{"at the limit", limit - 1, true},
		{"over the limit", limit, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := startServer(t, serverConfig{opts: &AcceptOptions{MessageFrames: limit}})
			rc := rawDial(t, s.addr())
			srv := s.next(t)
			var b []byte
			for i := range tc.frames {
				b0 := byte(opContinuation)
				if i == 0 {
					b0 = byte(MessageText)
				}
				if i == tc.frames-1 {
					b0 |= finBit
				}
				b = append(b, encodeClientFrame(b0, []byte{'a' + byte(i)})...)
				if i == 2 {
					b = append(b, encodeClientFrame(0x80|opPing, nil)...)
				}
			}
			rc.write(b)
			if tc.ok {
				if m := srv.r.next(t); len(m.data) != tc.frames {
					t.Fatalf("got %q", m.data)
				}
				rc.writeFrame(0x80|opClose, closePayloadOf(1000, ""))
				if code := readUntilClose(t, rc); code != StatusNormalClosure {
					t.Fatalf("close %d", code)
				}
				rc.readToEOF()
				srv.r.waitClose(t)
				return
			}
			if code := readUntilClose(t, rc); code != StatusMessageTooBig {
				t.Fatalf("close %d, want 1009", code)
			}
			finishFailure(t, rc, srv, StatusMessageTooBig, ErrTooManyFrames)
		})
	}
}

// TestMessageTimeout: a message kept unfinished by a trickle of fragments and
// pings, or by one frame whose payload trickles in, is ended with 1008 once
// it is older than MessageTimeout, although the peer is never silent.
func TestMessageTimeout(t *testing.T) {
	t.Parallel()
	const timeout = 50 * time.Millisecond
	for _, tc := range []struct {
		name string
		// whole: the writer must finish what it writes (one frame) before
		// the client may send its close frame.
		whole bool
		next  func(i int) []byte
	}{
		{"fragments and pings", false, func(i int) []byte {
			if i == 0 {
				return encodeClientFrame(byte(MessageText), []byte("a"))
			}
			if i > 1000 {
				return nil
			}
			time.Sleep(5 * time.Millisecond)
			return append(encodeClientFrame(0x80|opPing, nil), encodeClientFrame(opContinuation, []byte("b"))...)
		}},
		{"one frame trickled", true, func() func(int) []byte {
			const n = 100
			key := randomKey()
			wire := append(frameHeader(0x80|byte(MessageBinary), n, key), maskedCopy(key, make([]byte, n))...)
			hdr := len(wire) - n
			return func(i int) []byte {
				switch {
				case i == 0:
					return wire[:hdr]
				case i > n:
					return nil
				}
				time.Sleep(5 * time.Millisecond)
				return wire[hdr+i-1 : hdr+i]
			}
		}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := startServer(t, serverConfig{opts: &AcceptOptions{MessageTimeout: timeout}})
			rc := rawDial(t, s.addr())
			srv := s.next(t)
			stop := make(chan struct{})
			wait := pump(rc, stop, tc.next)
			code := readUntilClose(t, rc)
			if code != StatusPolicyViolation {
				t.Fatalf("close %d, want 1008", code)
			}
			if tc.whole {
				wait()
			}
			close(stop)
			wait()
			finishFailure(t, rc, srv, StatusPolicyViolation, ErrMessageTimeout)
		})
	}
}

// TestInvalidUTF8FailsFast: invalid UTF-8 in the first fragment of a text
// message fails the connection with 1007 at once, before the message ends
// (Autobahn 6.4.x "fail fast"); a character split across fragments does not.
func TestInvalidUTF8FailsFast(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		first []byte
	}{
		{"invalid byte", []byte("ok \xff")},
		{"surrogate half", []byte("ok \xed\xa0")},
		{"beyond U+10FFFF", []byte("ok \xf4\x90")},
		{"overlong", []byte("ok \xc0")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := startServer(t, serverConfig{})
			rc := rawDial(t, s.addr())
			srv := s.next(t)
			rc.writeFrame(byte(MessageText), tc.first) // no FIN: the message goes on
			if code := readUntilClose(t, rc); code != StatusInvalidFramePayloadData {
				t.Fatalf("close %d, want 1007", code)
			}
			finishFailure(t, rc, srv, StatusInvalidFramePayloadData, ErrInvalidUTF8)
		})
	}
	t.Run("split character", func(t *testing.T) {
		t.Parallel()
		s := startServer(t, serverConfig{})
		rc := rawDial(t, s.addr())
		srv := s.next(t)
		msg := []byte("κόσμε 𝄞")
		var b []byte
		for i := range msg {
			b0 := byte(opContinuation)
			if i == 0 {
				b0 = byte(MessageText)
			}
			if i == len(msg)-1 {
				b0 |= finBit
			}
			b = append(b, encodeClientFrame(b0, msg[i:i+1])...)
		}
		rc.write(b)
		if m := srv.r.next(t); !bytes.Equal(m.data, msg) {
			t.Fatalf("got %q", m.data)
		}
	})
}

// TestInvalidUTF8InChops: a text frame whose payload arrives in chops fails
// with 1007 as soon as the chop with the invalid byte arrives, before the
// frame is complete (Autobahn 6.4.3, 6.4.4).
func TestInvalidUTF8InChops(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverConfig{})
	rc := rawDial(t, s.addr())
	srv := s.next(t)
	payload := append([]byte("κόσμε \xf4\x90\x80\x80"), bytes.Repeat([]byte("x"), 100)...)
	key := randomKey()
	wire := append(frameHeader(0x80|byte(MessageText), uint64(len(payload)), key), maskedCopy(key, payload)...)
	head := len(wire) - len(payload) + len("κόσμε \xf4\x90")
	rc.write(wire[:head]) // the frame is not complete
	if code := readUntilClose(t, rc); code != StatusInvalidFramePayloadData {
		t.Fatalf("close %d, want 1007", code)
	}
	rc.write(wire[head:])
	finishFailure(t, rc, srv, StatusInvalidFramePayloadData, ErrInvalidUTF8)
}

// TestHugeFrameWithoutReadLimit: with no read limit, a frame header that
// declares 2^62 bytes is refused with 1009 instead of allocating (or
// panicking on) its length; a declared length is never allocated ahead of
// the bytes beyond 64 KiB.
func TestHugeFrameWithoutReadLimit(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverConfig{opts: &AcceptOptions{ReadLimit: -1}})
	rc := rawDial(t, s.addr())
	srv := s.next(t)
	rc.write(frameHeader(0x80|byte(MessageBinary), 1<<62, randomKey()))
	if code := readUntilClose(t, rc); code != StatusMessageTooBig {
		t.Fatalf("close %d, want 1009", code)
	}
	_ = rc.conn.Close()
	if info := srv.r.waitClose(t); !errors.Is(info.Err, ErrMessageTooBig) {
		t.Errorf("HandleClose = %+v, want ErrMessageTooBig", info)
	}
}

// TestAssemblyGrowsWithArrivals: the buffer for a frame is sized by what
// has arrived (at most 64 KiB ahead), not by the length a header declares.
func TestAssemblyGrowsWithArrivals(t *testing.T) {
	var m assembly
	m.grow(100, 1<<20)
	if c := cap(m.buf); c != preallocMax {
		t.Fatalf("first growth for a 1 MiB frame: cap %d, want %d", c, preallocMax)
	}
	m.buf = m.buf[:preallocMax]
	m.grow(preallocMax+readChunk, 1<<20)
	if c := cap(m.buf); c != 2*preallocMax {
		t.Fatalf("second growth: cap %d, want %d", c, 2*preallocMax)
	}
	var small assembly
	small.grow(300, 300)
	if c := cap(small.buf); c != 300 {
		t.Fatalf("a 300-byte frame: cap %d, want exactly 300", c)
	}
}
