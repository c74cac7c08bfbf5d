package actors_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/gorilla/websocket"

	"github.com/wsactor/wsactor/actors"
	"github.com/wsactor/wsactor/supervisor"
	"github.com/wsactor/wsactor/transport"
)

// The backlog of issue 11, item 1: 10 connections with 20,000 messages of
// 1 KB queued each, 3 of them slow readers.
const (
	backlogConns = 10
	backlogSlow  = 3
	backlogMsgs  = 20000
	backlogSize  = 1 << 10
	// backlogCloseTimeout is short, so that a close timeout started before
	// the close frame is written would cut the slow readers early in the
	// test; the close timeout that is kept (from the close frame on the
	// wire) is not what the test measures.
	backlogCloseTimeout = 200 * time.Millisecond
	// backlogWait is a safety net for the clients' reads, never an
	// assertion about speed.
	backlogWait = time.Minute
)

// backlogFrames are the messages every connection is sent (shared, as a
// broadcast's are): message #i carries i in its first 4 bytes.
var backlogFrames = sync.OnceValue(func() []*transport.Frame {
	fs := make([]*transport.Frame, backlogMsgs)
	for i := range fs {
		p := make([]byte, backlogSize)
		binary.BigEndian.PutUint32(p, uint32(i))
		fs[i] = transport.NewFrame(transport.MessageBinary, p)
	}
	return fs
})

// backlogSender queues the whole backlog as soon as its connection opens
// and reports how many messages it queued.
type backlogSender struct{ queued chan<- int }

func (b *backlogSender) Receive(ctx actor.Context) {
	if m, ok := ctx.Message().(*actors.Opened); ok {
		n := 0
		for _, f := range backlogFrames() {
			if err := m.Conn.SendFrame(f); err != nil {
				break
			}
			n++
		}
		b.queued <- n
	}
}

// backlogClient reads the backlog: a fast one at once, a slow one (a 4 KB
// receive buffer) nothing until release is closed.
type backlogClient struct {
	slow bool
	done chan backlogResult
}

// backlogResult is what a client read: messages #0 to #msgs-1, whole and in
// order, then err (a *websocket.CloseError when a close frame came; gorilla
// reports a TCP close without one as code 1006).
type backlogResult struct {
	msgs int
	err  error
}

// smallReceiveBuffer dials with the socket's receive buffer set to size
// before connecting.
func smallReceiveBuffer(size int) func(ctx context.Context, network, addr string) (net.Conn, error) {
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		if err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, size)
		}); err != nil {
			return err
		}
		return serr
	}}
	return d.DialContext
}

// startBacklog serves a Handler whose connections each get the backlog,
// connects the clients, and returns once every backlog is queued.
func startBacklog(t *testing.T, release <-chan struct{}) (*actors.Handler, []*backlogClient) {
	t.Helper()
	queued := make(chan int, backlogConns)
	opts := &actors.HandlerOptions{Heartbeat: supervisor.HeartbeatOptions{Interval: -1}}
	opts.QueueMessages, opts.QueueBytes = backlogMsgs, 2*backlogMsgs*backlogSize
	opts.CloseTimeout = backlogCloseTimeout
	// The slow clients read nothing while the fast ones read: each write
	// to them may take that long.
	opts.WriteTimeout = backlogWait
	h, url, _ := testServer(t, func() actor.Actor { return &backlogSender{queued: queued} }, opts)

	clients := make([]*backlogClient, backlogConns)
	for i := range clients {
		c := &backlogClient{slow: i < backlogSlow, done: make(chan backlogResult, 1)}
		clients[i] = c
		d := &websocket.Dialer{HandshakeTimeout: backlogWait}
		if c.slow {
			d.NetDialContext = smallReceiveBuffer(4 << 10)
		}
		ws, _, err := d.Dial(url, nil)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		t.Cleanup(func() { ws.Close() })
		go func() {
			if c.slow {
				<-release
			}
			_ = ws.SetReadDeadline(time.Now().Add(backlogWait))
			n := 0
			for {
				_, p, err := ws.ReadMessage()
				if err != nil {
					c.done <- backlogResult{n, err}
					return
				}
				if len(p) != backlogSize || int(binary.BigEndian.Uint32(p)) != n {
					c.done <- backlogResult{n, fmt.Errorf("message %d: %d bytes carrying #%d", n, len(p), binary.BigEndian.Uint32(p))}
					return
				}
				n++
			}
		}()
	}
	for range clients {
		select {
		case n := <-queued:
			if n != backlogMsgs {
				t.Fatalf("a connection queued %d messages, want %d", n, backlogMsgs)
			}
		case <-time.After(backlogWait):
			t.Fatal("timed out waiting for the backlogs to be queued")
		}
	}
	return h, clients
}

// result waits for what c read.
func (c *backlogClient) result(t *testing.T) backlogResult {
	t.Helper()
	select {
	case r := <-c.done:
		return r
	case <-time.After(backlogWait):
		t.Fatal("timed out waiting for a client")
		return backlogResult{}
	}
}

// closedWith1001 reports whether err is a 1001 close frame.
func closedWith1001(err error) bool {
	var ce *websocket.CloseError
	return errors.As(err, &ce) && ce.Code == websocket.CloseGoingAway
}

// waitUntil polls cond until it holds or backlogWait passes.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(backlogWait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestShutdownDrainsSlowReaders (issue 11, item 1): with a generous
// context, Shutdown lets every connection write its whole backlog, slow
// readers included, before the 1001 close frame, and returns nil once all
// are closed.
func TestShutdownDrainsSlowReaders(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	h, clients := startBacklog(t, release)

	ctx, cancel := context.WithTimeout(context.Background(), backlogWait)
	defer cancel()
	shut := make(chan error, 1)
	go func() { shut <- h.Shutdown(ctx) }()

	for _, c := range clients[backlogSlow:] {
		if r := c.result(t); r.msgs != backlogMsgs || !closedWith1001(r.err) {
			t.Fatalf("fast client read %d messages, then %v; want %d, then close 1001", r.msgs, r.err, backlogMsgs)
		}
	}
	// The slow clients have read nothing: their close frames cannot have
	// been written, so their close timeout has not started and Shutdown
	// cannot be over. A close timeout counted from queuing the close frame
	// would cut them (TCP close, no 1001) and end Shutdown during this wait.
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v while %d clients had their backlog unread", err, backlogSlow)
	case <-time.After(5 * backlogCloseTimeout):
	}
	close(release)
	for _, c := range clients[:backlogSlow] {
		if r := c.result(t); r.msgs != backlogMsgs || !closedWith1001(r.err) {
			t.Errorf("slow client read %d messages, then %v; want %d, then close 1001", r.msgs, r.err, backlogMsgs)
		}
	}
	select {
	case err := <-shut:
		if err != nil {
			t.Errorf("Shutdown = %v, want nil", err)
		}
	case <-time.After(backlogWait):
		t.Fatal("Shutdown did not return")
	}
}

// TestShutdownCutShortReportsCounts (issue 11, item 1): when Shutdown's
// context ends while slow readers still have a backlog, their unwritten
// messages are dropped, the frame in flight is finished and the 1001 close
// frame goes next (not a TCP close), and Shutdown returns a *ShutdownError
// that counts the connections and messages cut.
func TestShutdownCutShortReportsCounts(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	h, clients := startBacklog(t, release)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	shut := make(chan error, 1)
	go func() { shut <- h.Shutdown(ctx) }()
	for _, c := range clients[backlogSlow:] {
		if r := c.result(t); r.msgs != backlogMsgs || !closedWith1001(r.err) {
			t.Fatalf("fast client read %d messages, then %v; want %d, then close 1001", r.msgs, r.err, backlogMsgs)
		}
	}
	waitUntil(t, "the fast connections to end", func() bool { return h.Len() == backlogSlow })
	cancel() // the deadline of Shutdown's caller

	var err error
	select {
	case err = <-shut:
	case <-time.After(backlogWait):
		t.Fatal("Shutdown did not return after its context ended")
	}
	var se *actors.ShutdownError
	if !errors.As(err, &se) || !errors.Is(err, context.Canceled) {
		t.Fatalf("Shutdown = %v, want a *ShutdownError wrapping context.Canceled", err)
	}
	if se.Open != backlogSlow || se.Cut != backlogSlow {
		t.Errorf("Shutdown = %v: want %d connections open and cut", err, backlogSlow)
	}

	close(release)
	unread := 0
	for _, c := range clients[:backlogSlow] {
		r := c.result(t)
		if !closedWith1001(r.err) || r.msgs >= backlogMsgs {
			t.Errorf("slow client read %d messages, then %v; want some of the %d, then close 1001", r.msgs, r.err, backlogMsgs)
		}
		unread += backlogMsgs - r.msgs
	}
	if se.Messages != unread {
		t.Errorf("Shutdown = %v: it counts %d messages cut, the slow clients missed %d", err, se.Messages, unread)
	}
	t.Log(err)

	// Their closing handshakes end after the cut; Shutdown again waits.
	ctx2, cancel2 := context.WithTimeout(context.Background(), backlogWait)
	defer cancel2()
	if err := h.Shutdown(ctx2); err != nil {
		t.Errorf("second Shutdown = %v, want nil", err)
	}
}
