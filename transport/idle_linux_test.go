package transport

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The idle reader on Linux: connections park when the peer is quiet and
// wake for whatever it sends next, whatever the moment and the kind.

// idleServer starts an echo server whose readers park after 5ms.
func idleServer(t *testing.T, opts *AcceptOptions) *server {
	t.Helper()
	if opts == nil {
		opts = &AcceptOptions{}
	}
	opts.IdleReader = 5 * time.Millisecond
	return startServer(t, serverConfig{opts: opts, echo: true})
}

func waitParked(t *testing.T, c *Conn) {
	t.Helper()
	pollUntil(t, "the reader parked", func() bool { return c.readerState.Load() == readerParked })
}

// Echo works across parks: each message finds the reader parked and is
// answered, text and binary, small and larger than the read buffer.
func TestIdleReaderParksAndWakes(t *testing.T) {
	t.Parallel()
	s := idleServer(t, nil)
	rc := rawDial(t, s.addr())
	srv := s.next(t)
	for i := range 20 {
		waitParked(t, srv.c)
		payload := randomBytes(1 + i*500) // up to 9.5 KB: past the 1 KiB buffer
		rc.writeFrame(0x80|byte(MessageBinary), payload)
		f, err := rc.readFrame()
		if err != nil || f.op != byte(MessageBinary) || string(f.payload) != string(payload) {
			t.Fatalf("echo %d: op %d, %d bytes, %v", i, f.op, len(f.payload), err)
		}
		srv.r.next(t)
	}
	srv.c.Close(StatusNormalClosure, "")
	if code, _, _ := rc.readClose(); code != int(StatusNormalClosure) {
		t.Fatalf("close code %d", code)
	}
	rc.finishClose(int(StatusNormalClosure))
	if info := srv.r.waitClose(t); info.Code != StatusNormalClosure || info.Err != nil {
		t.Fatalf("close info %+v", info)
	}
}

// A frame header split across a quiet spell longer than IdleReader, and a
// message whose fragments are, arrive whole: the reader parks only between
// messages.
func TestIdleReaderSplitFrames(t *testing.T) {
	t.Parallel()
	s := idleServer(t, nil)
	rc := rawDial(t, s.addr())
	srv := s.next(t)
	waitParked(t, srv.c)

	frame := encodeClientFrame(0x80|byte(MessageText), []byte("split header"))
	rc.write(frame[:1])
	time.Sleep(30 * time.Millisecond) // 6 idle periods with one byte of header
	rc.write(frame[1:])
	if m := srv.r.next(t); string(m.data) != "split header" {
		t.Fatalf("got %q", m.data)
	}

	rc.writeFrame(byte(MessageText), []byte("frag"))
	time.Sleep(30 * time.Millisecond)
	if st := srv.c.readerState.Load(); st != readerRunning {
		t.Fatal("parked in the middle of a message")
	}
	rc.writeFrame(0x80|opContinuation, []byte("mented"))
	if m := srv.r.next(t); string(m.data) != "fragmented" {
		t.Fatalf("got %q", m.data)
	}
}

// Every way a parked connection can end is reported once, with what
// happened: the peer's close frame, the peer's FIN, our Terminate, our
// close answered, and our close unanswered (the close timeout).
func TestIdleReaderEnds(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		end  func(t *testing.T, rc *rawClient, c *Conn)
		want func(info CloseInfo) bool
	}{
		{"peer close frame", func(t *testing.T, rc *rawClient, c *Conn) {
			rc.writeFrame(0x80|opClose, binary.BigEndian.AppendUint16(nil, 4001))
			rc.readToEOF()
		}, func(i CloseInfo) bool { return i.Code == 4001 && i.ByPeer }},
		{"peer FIN", func(t *testing.T, rc *rawClient, c *Conn) {
			_ = rc.conn.Close()
		}, func(i CloseInfo) bool {
			return i.Code == StatusAbnormalClosure && errors.Is(i.Err, io.ErrUnexpectedEOF)
		}},
		{"terminate", func(t *testing.T, rc *rawClient, c *Conn) {
			c.Terminate(errTestCause)
		}, func(i CloseInfo) bool { return i.Code == StatusAbnormalClosure && errors.Is(i.Err, errTestCause) }},
		{"close answered", func(t *testing.T, rc *rawClient, c *Conn) {
			c.Close(StatusGoingAway, "bye")
			if code, _, _ := rc.readClose(); code != int(StatusGoingAway) {
				t.Errorf("close code %d", code)
			}
			rc.finishClose(int(StatusGoingAway))
		}, func(i CloseInfo) bool { return i.Code == StatusGoingAway && i.Err == nil }},
		{"close unanswered", func(t *testing.T, rc *rawClient, c *Conn) {
			c.Close(StatusGoingAway, "bye") // the raw client never reads
		}, func(i CloseInfo) bool { return i.Code == StatusGoingAway && errors.Is(i.Err, ErrCloseTimeout) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := idleServer(t, &AcceptOptions{CloseTimeout: 50 * time.Millisecond})
			rc := rawDial(t, s.addr())
			srv := s.next(t)
			waitParked(t, srv.c)
			tc.end(t, rc, srv.c)
			if info := srv.r.waitClose(t); !tc.want(info) {
				t.Fatalf("close info %+v", info)
			}
			waitDone(t, srv.c)
		})
	}
}

var errTestCause = errors.New("test cause")

// A ping to a parked connection: the pong wakes the reader, which
// measures the round trip.
func TestIdleReaderPong(t *testing.T) {
	t.Parallel()
	pongs := make(chan time.Duration, 1)
	s := idleServer(t, &AcceptOptions{OnPong: func(d time.Duration) { pongs <- d }})
	c, _ := dialOur(t, s.wsURL(), &DialOptions{IdleReader: 5 * time.Millisecond})
	srv := s.next(t)
	waitParked(t, srv.c)
	waitParked(t, c) // our client parks too
	if err := srv.c.Ping([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if d := recvPong(t, pongs); d <= 0 || srv.c.RTT() != d {
		t.Fatalf("pong %v, RTT %v", d, srv.c.RTT())
	}
}

// A connection starts parked, and a reader woken only by control frames (a
// heartbeat's pong, a peer's ping) parks again at once, without waiting
// IdleReader (an hour here); data keeps the reader for IdleReader.
func TestIdleReaderControlOnlyWakeParksAtOnce(t *testing.T) {
	t.Parallel()
	pongs := make(chan time.Duration, 1)
	s := startServer(t, serverConfig{echo: true, opts: &AcceptOptions{IdleReader: time.Hour, OnPong: func(d time.Duration) { pongs <- d }}})
	rc := rawDial(t, s.addr())
	srv := s.next(t)
	waitParked(t, srv.c) // from the start: nothing came after the handshake
	for i := range 5 {
		if err := srv.c.Ping([]byte("hb")); err != nil {
			t.Fatal(err)
		}
		f, err := rc.readFrame()
		if err != nil || f.op != opPing {
			t.Fatalf("round %d: got op %d, %v; want our ping", i, f.op, err)
		}
		rc.writeFrame(0x80|opPong, f.payload)
		recvPong(t, pongs)
		waitParked(t, srv.c)
		// The peer's own ping: answered, and the reader parks again.
		rc.writeFrame(0x80|opPing, []byte("p"))
		if f, err := rc.readFrame(); err != nil || f.op != opPong || string(f.payload) != "p" {
			t.Fatalf("round %d: pong op %d %q, %v", i, f.op, f.payload, err)
		}
		waitParked(t, srv.c)
	}
	// Data: echoed, and the reader stays for IdleReader.
	rc.writeFrame(0x80|byte(MessageText), []byte("hi"))
	if f, err := rc.readFrame(); err != nil || string(f.payload) != "hi" {
		t.Fatalf("echo %q, %v", f.payload, err)
	}
	srv.r.next(t)
	if st := srv.c.readerState.Load(); st != readerRunning {
		t.Fatalf("reader state %d after data, want running", st)
	}
}

// Many idle connections hold no reader goroutines; all of them still
// answer, and parking stops with IdleReader negative.
func TestIdleReaderNoGoroutines(t *testing.T) {
	const n = 200
	s := idleServer(t, nil)
	clients := make([]*rawClient, n)
	servers := make([]accepted, n)
	for i := range clients {
		clients[i] = rawDial(t, s.addr())
		servers[i] = s.next(t)
	}
	for _, a := range servers {
		waitParked(t, a.c)
	}
	stack := make([]byte, 1<<22)
	k := runtime.Stack(stack, true)
	readers := strings.Count(string(stack[:k]), "transport.(*Conn).readLoop")
	// Other tests' connections may have a reader running at this moment;
	// without parking there would be n more.
	if readers > n/20 {
		t.Fatalf("%d reader goroutines for %d parked connections", readers, n)
	}
	for i, rc := range clients {
		rc.writeFrame(0x80|byte(MessageText), []byte("hi"))
		if f, err := rc.readFrame(); err != nil || string(f.payload) != "hi" {
			t.Fatalf("client %d: %q %v", i, f.payload, err)
		}
	}

	never := startServer(t, serverConfig{opts: &AcceptOptions{IdleReader: -1}, echo: true})
	rawDial(t, never.addr())
	a := never.next(t)
	time.Sleep(20 * time.Millisecond)
	if a.c.poll != nil || a.c.readerState.Load() != readerRunning {
		t.Fatal("IdleReader -1 parked")
	}
}

// deadlineCounter counts a socket's SetReadDeadline calls.
type deadlineCounter struct {
	net.Conn
	sets atomic.Int64
}

func (d *deadlineCounter) SetReadDeadline(t time.Time) error {
	d.sets.Add(1)
	return d.Conn.SetReadDeadline(t)
}

// A busy reader keeps its idle deadline set from message to message
// instead of setting and clearing it around each (two SetReadDeadline per
// message cost echo 4% of its CPU): 500 round trips set it a few times.
func TestIdleDeadlineArmedLazily(t *testing.T) {
	t.Parallel()
	var dc *deadlineCounter
	s := startServer(t, serverConfig{
		opts: &AcceptOptions{IdleReader: time.Second},
		echo: true,
		onAccept: func(c *Conn) {
			dc = &deadlineCounter{Conn: c.nc}
			c.nc = dc
		},
	})
	rc := rawDial(t, s.addr())
	srv := s.next(t)
	for i := range 500 {
		rc.writeFrame(0x80|byte(MessageText), []byte("ping "+strconv.Itoa(i)))
		if f, err := rc.readFrame(); err != nil || string(f.payload) != "ping "+strconv.Itoa(i) {
			t.Fatalf("echo %d: %q, %v", i, f.payload, err)
		}
		srv.r.next(t)
	}
	if n := dc.sets.Load(); n > 50 {
		t.Fatalf("SetReadDeadline called %d times for 500 messages", n)
	}
}

// A frame whose header comes while the idle deadline is set and whose
// payload comes after a pause longer than IdleReader arrives whole: the
// deadline is cleared before a payload read that may wait. Data and ping.
func TestIdleDeadlineClearedForPayload(t *testing.T) {
	t.Parallel()
	const idle = 100 * time.Millisecond
	s := startServer(t, serverConfig{opts: &AcceptOptions{IdleReader: idle}, echo: true})
	rc := rawDial(t, s.addr())
	srv := s.next(t)
	for _, op := range []byte{byte(MessageBinary), opPing} {
		// A message first, so the reader is awake at a boundary with the
		// idle deadline set when the next header comes.
		rc.writeFrame(0x80|byte(MessageText), []byte("wake"))
		if f, err := rc.readFrame(); err != nil || string(f.payload) != "wake" {
			t.Fatalf("wake echo: %q, %v", f.payload, err)
		}
		srv.r.next(t)
		payload := randomBytes(100)
		frame := encodeClientFrame(0x80|op, payload)
		rc.write(frame[:len(frame)-50])
		time.Sleep(3 * idle)
		rc.write(frame[len(frame)-50:])
		f, err := rc.readFrame()
		want := op
		if op == opPing {
			want = opPong
		}
		if err != nil || f.op != want || string(f.payload) != string(payload) {
			t.Fatalf("op %d: got op %d, %d bytes, %v", op, f.op, len(f.payload), err)
		}
		if op != opPing {
			srv.r.next(t)
		}
	}
}
