package transport

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/wsactor/wsactor/internal/probe"
)

// Direct writes (direct.go): a send that finds the writer idle writes from
// the sender; what the socket does not take, the writer finishes first.

func skipWithoutDirect(t *testing.T) {
	if directWritesOffByEnv {
		t.Skip("WSACTOR_DIRECT_WRITES=off")
	}
}

// A request/response exchange is written by the senders themselves: no
// writer goroutine starts, and every message arrives.
func TestDirectWriteNoWriter(t *testing.T) {
	skipWithoutDirect(t)
	srv := startServer(t, serverConfig{})
	rc := rawDial(t, srv.addr())
	c := srv.next(t).c
	before := probe.DirectWrites.Load()
	for i := range 50 {
		msg := fmt.Appendf(nil, "m%d", i)
		if err := c.Send(NewFrame(MessageText, msg)); err != nil {
			t.Fatal(err)
		}
		if f, err := rc.readFrame(); err != nil || !bytes.Equal(f.payload, msg) {
			t.Fatalf("message %d: %q, %v", i, f.payload, err)
		}
	}
	if n := probe.DirectWrites.Load() - before; n < 50 {
		t.Fatalf("%d of 50 sends were written directly", n)
	}
	if n := c.opts.writers.started.Load(); n != 0 {
		t.Fatalf("%d writer goroutines started for sends that found the writer idle", n)
	}
	if s := c.Stats(); s.MessagesOut != 50 || s.Frames != 50 {
		t.Fatalf("stats %+v: want 50 messages and frames out", s)
	}
}

// A frame larger than the socket takes at once: the sender writes what fits
// and returns; the writer finishes the frame before anything sent after it,
// and a close right behind it (dropping the queue) still lets the peer read
// the whole frame, then the close frame, never a partial frame.
func TestDirectWritePartialThenQueueAndClose(t *testing.T) {
	skipWithoutDirect(t)
	for _, discard := range []bool{false, true} {
		t.Run(fmt.Sprintf("discard=%v", discard), func(t *testing.T) {
			srv := startServer(t, serverConfig{opts: &AcceptOptions{QueueBytes: 64 << 20}})
			rc := rawDial(t, srv.addr())
			a := srv.next(t)
			c := a.c
			big := randomBytes(8 << 20) // far past a loopback socket's buffer
			partials := probe.DirectPartials.Load()
			sent := make(chan error, 1)
			go func() { sent <- c.Send(NewFrame(MessageBinary, big)) }()
			select {
			case err := <-sent:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(testTimeout):
				t.Fatal("Send blocked on a full socket")
			}
			if probe.DirectPartials.Load() == partials {
				t.Fatal("the socket took 8 MiB at once: no partial write to test")
			}
			// Sent while the rest is in flight: queued behind it.
			for i := range 20 {
				if err := c.Send(NewFrame(MessageText, fmt.Appendf(nil, "after%d", i))); err != nil {
					t.Fatal(err)
				}
			}
			want := 20
			if discard {
				c.Close(StatusGoingAway, "bye")
				c.DiscardQueued()
				want = 0
			} else {
				c.Close(StatusGoingAway, "bye")
			}
			code, _, data := rc.readClose()
			if code != int(StatusGoingAway) {
				t.Fatalf("close code %d", code)
			}
			if len(data) == 0 || !bytes.Equal(data[0].payload, big) {
				t.Fatalf("the big frame arrived as %d frames, first %d bytes", len(data), len(data[0].payload))
			}
			rest := data[1:]
			if discard && len(rest) > want {
				t.Fatalf("%d messages after the big one survived DiscardQueued", len(rest))
			}
			if !discard && len(rest) != want {
				t.Fatalf("%d messages after the big one, want %d", len(rest), want)
			}
			for i, f := range rest {
				if string(f.payload) != fmt.Sprintf("after%d", i) {
					t.Fatalf("message %d after the big one: %q", i, f.payload)
				}
			}
			// The big message counts as written once its rest is.
			pollUntil(t, "the stats to count every message written", func() bool {
				return c.Stats().MessagesOut == uint64(1+len(rest))
			})
			rc.finishClose(int(StatusGoingAway))
			if info := a.r.waitClose(t); info.Code != StatusGoingAway {
				t.Fatalf("close info %+v", info)
			}
		})
	}
}

// A direct write to a peer that is gone fails the connection as a writer's
// failed write does: the close is reported once, with the write's error, and
// nothing hangs.
func TestDirectWritePeerGone(t *testing.T) {
	srv := startServer(t, serverConfig{opts: &AcceptOptions{IdleReader: -1}})
	rc := rawDial(t, srv.addr())
	a := srv.next(t)
	tcp := rc.conn.(*net.TCPConn)
	_ = tcp.SetLinger(0)
	_ = tcp.Close() // RST
	deadline := time.Now().Add(testTimeout)
	var err error
	for err == nil && time.Now().Before(deadline) {
		err = a.c.Send(NewFrame(MessageBinary, randomBytes(1024)))
		time.Sleep(time.Millisecond)
	}
	if !errors.Is(err, ErrClosed) {
		t.Fatalf("sends to a reset peer: %v, want ErrClosed eventually", err)
	}
	info := a.r.waitClose(t)
	if info.Code != StatusAbnormalClosure {
		t.Fatalf("close info %+v, want 1006", info)
	}
	select {
	case <-a.c.Done():
	case <-time.After(testTimeout):
		t.Fatal("connection never done")
	}
}

// A broadcast frame (MarkShared), or any frame after its first send, is
// never written by the sender: the connections' writers write it.
func TestDirectWriteOnlyFirstSend(t *testing.T) {
	skipWithoutDirect(t)
	srv := startServer(t, serverConfig{})
	rcs := []*rawClient{rawDial(t, srv.addr()), rawDial(t, srv.addr()), rawDial(t, srv.addr())}
	var cs []*Conn
	for range rcs {
		cs = append(cs, srv.next(t).c)
	}
	check := func(f *Frame, wantDirect int64) {
		t.Helper()
		before := probe.DirectWrites.Load()
		for _, c := range cs {
			if err := c.Send(f); err != nil {
				t.Fatal(err)
			}
		}
		for i, rc := range rcs {
			if got, err := rc.readFrame(); err != nil || !bytes.Equal(got.payload, f.Payload()) {
				t.Fatalf("client %d: %q, %v", i, got.payload, err)
			}
		}
		if n := probe.DirectWrites.Load() - before; n != wantDirect {
			t.Fatalf("%d direct writes, want %d", n, wantDirect)
		}
	}
	check(NewFrame(MessageText, []byte("one frame, three sends")), 1)
	check(NewFrame(MessageText, []byte("broadcast")).MarkShared(), 0)
}

// A write deadline set by an earlier blocking write, and passed since, does
// not stop a direct write: the socket takes the frame from the sender (a
// RawConn.Write would fail at once with the deadline, leaving every later
// send to the writer). The batch writer's first, non-blocking writev is made
// the same way.
func TestDirectWriteAfterWriteDeadlinePassed(t *testing.T) {
	skipWithoutDirect(t)
	// Long enough for the client to read 8 MiB under -race on a loaded
	// machine (100ms was not: the write timed out and closed the
	// connection, once in CI).
	const timeout = time.Second
	srv := startServer(t, serverConfig{opts: &AcceptOptions{WriteTimeout: timeout, QueueBytes: 64 << 20}})
	rc := rawDial(t, srv.addr())
	c := srv.next(t).c
	// A frame larger than the socket takes: its rest is written blocking,
	// under a write deadline, while the client reads.
	big := randomBytes(8 << 20)
	partials := probe.DirectPartials.Load()
	if err := c.Send(NewFrame(MessageBinary, big)); err != nil {
		t.Fatal(err)
	}
	if f, err := rc.readFrame(); err != nil || !bytes.Equal(f.payload, big) {
		t.Fatalf("big frame: %d bytes, %v", len(f.payload), err)
	}
	if probe.DirectPartials.Load() == partials {
		t.Fatal("the socket took 8 MiB at once: no blocking write to test")
	}
	pollUntil(t, "the big frame to count as written", func() bool { return c.Stats().MessagesOut == 1 })
	time.Sleep(timeout + timeout/5) // the deadline the rest was written under (set before it) has passed

	partials = probe.DirectPartials.Load()
	direct := probe.DirectWrites.Load()
	for i := range 10 {
		msg := fmt.Appendf(nil, "m%d", i)
		if err := c.Send(NewFrame(MessageText, msg)); err != nil {
			t.Fatal(err)
		}
		if f, err := rc.readFrame(); err != nil || !bytes.Equal(f.payload, msg) {
			t.Fatalf("message %d: %q, %v", i, f.payload, err)
		}
	}
	if n := probe.DirectWrites.Load() - direct; n != 10 {
		t.Fatalf("%d of 10 sends were written directly", n)
	}
	if n := probe.DirectPartials.Load() - partials; n != 0 {
		t.Fatalf("%d of 10 small direct writes were refused by the passed deadline", n)
	}
	// The writer's batches too: frames with a callback go through it.
	done := make(chan error, 10)
	for i := range 10 {
		if err := c.SendNotify(NewFrame(MessageText, fmt.Appendf(nil, "q%d", i)), func(err error) { done <- err }); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 10 {
		if f, err := rc.readFrame(); err != nil || string(f.payload) != fmt.Sprintf("q%d", i) {
			t.Fatalf("queued message %d: %q, %v", i, f.payload, err)
		}
		if err := <-done; err != nil {
			t.Fatalf("callback %d: %v", i, err)
		}
	}
	if st := c.Stats(); st.MessagesOut != 21 {
		t.Fatalf("stats %+v: want 21 messages out", st)
	}
}

// A direct write, of one buffer or several, allocates nothing.
func TestDirectWriteAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts under the race detector (sync.Pool drops items at random)")
	}
	srv := startServer(t, serverConfig{})
	rc := rawDial(t, srv.addr())
	c := srv.next(t).c
	go func() { // the peer reads everything
		buf := make([]byte, 64<<10)
		for {
			if _, err := rc.conn.Read(buf); err != nil {
				return
			}
		}
	}()
	one := []byte{0x81, 0x01, 'x'}
	bufs := [][]byte{one, one, one}
	for _, tc := range []struct {
		name  string
		write func() (int, error)
	}{
		{"one", func() (int, error) { return directWrite(c.raw, one) }},
		{"several", func() (int, error) { return directWritev(c.raw, bufs) }},
	} {
		var werr error
		allocs := testing.AllocsPerRun(200, func() {
			if _, err := tc.write(); err != nil {
				werr = err
			}
		})
		if werr != nil {
			t.Fatalf("%s: %v", tc.name, werr)
		}
		if allocs > 0 {
			t.Errorf("%s: %.1f allocations per direct write", tc.name, allocs)
		}
	}
}
