package transport

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// rawDialRcvBuf is rawDial with the client's receive buffer set to rcvbuf
// bytes before it connects (a buffer shrunk after connecting stalls reads
// on Linux). With a small buffer and a client that reads nothing, the
// server's writes block soon: a slow consumer.
func rawDialRcvBuf(t *testing.T, addr string, rcvbuf int) *rawClient {
	t.Helper()
	d := net.Dialer{Timeout: testTimeout, Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		if err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvbuf)
		}); err != nil {
			return err
		}
		return serr
	}}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	req := fmt.Sprintf("GET / HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", addr)
	_ = conn.SetDeadline(time.Now().Add(testTimeout))
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("raw handshake: %v", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("raw handshake: status %d", resp.StatusCode)
	}
	_ = conn.SetDeadline(time.Time{})
	return &rawClient{t: t, conn: conn, br: br, resp: resp}
}

// outcomes counts what SendNotify reported, per message.
type outcomes struct {
	mu      sync.Mutex
	written int
	closed  int
	other   []error
	calls   map[int]int
}

func newOutcomes() *outcomes { return &outcomes{calls: map[int]int{}} }

func (o *outcomes) done(seq int) func(error) {
	return func(err error) {
		o.mu.Lock()
		defer o.mu.Unlock()
		o.calls[seq]++
		switch {
		case err == nil:
			o.written++
		case errors.Is(err, ErrClosed):
			o.closed++
		default:
			o.other = append(o.other, err)
		}
	}
}

// check waits until all n callbacks ran and checks that each ran once, that
// written messages are exactly those the client read, and that the others
// were dropped with ErrClosed.
func (o *outcomes) check(t *testing.T, n, read int) (dropped int) {
	t.Helper()
	pollUntil(t, "every send callback", func() bool {
		o.mu.Lock()
		defer o.mu.Unlock()
		return len(o.calls) == n
	})
	o.mu.Lock()
	defer o.mu.Unlock()
	for seq, k := range o.calls {
		if k != 1 {
			t.Errorf("message %d: callback called %d times", seq, k)
		}
	}
	if len(o.other) > 0 {
		t.Errorf("callbacks reported %v", o.other)
	}
	if o.written != read {
		t.Errorf("callbacks report %d messages written; the client read %d", o.written, read)
	}
	if o.written+o.closed != n {
		t.Errorf("%d written + %d dropped with ErrClosed, want %d in all", o.written, o.closed, n)
	}
	return o.closed
}

// readSeqFrames reads whole data frames until the close frame and checks
// that they are the messages 0, 1, 2, ... of size bytes each (seqFrame), so
// a frame cut short or a message skipped fails. It returns how many came
// and the close frame's code and reason.
func readSeqFrames(t *testing.T, rc *rawClient, size int) (n, code int, reason string) {
	t.Helper()
	code, reason, frames := rc.readClose()
	for _, f := range frames {
		if !f.fin || f.op != byte(MessageBinary) || len(f.payload) != size {
			t.Fatalf("frame %d: fin %v, opcode %d, %d bytes; want a whole %d-byte binary message", n, f.fin, f.op, len(f.payload), size)
		}
		if got := int(binary.BigEndian.Uint32(f.payload)); got != n {
			t.Fatalf("frame %d carries message #%d", n, got)
		}
		n++
	}
	return n, code, reason
}

// giveCloseTimeoutAChance waits several close timeouts while the client
// reads nothing, and fails if the connection ended before our close frame
// was written. Behind a backlog the client does not read, the close frame
// cannot be written, so the close timeout must not have started; one that
// started when the close was queued would end the connection during this
// wait (with a TCP close and no close frame). The wait asserts nothing
// about speed: with the fix the connection may end only once its close
// frame is in the socket (when the kernel buffers had room for it).
func giveCloseTimeoutAChance(t *testing.T, c *Conn, r *recorder, closeTimeout time.Duration) {
	t.Helper()
	select {
	case <-r.closed:
		if c.closeWrittenAt.Load() == 0 {
			t.Fatalf("the connection ended (%+v) before its close frame was written", r.info)
		}
	case <-time.After(5 * closeTimeout):
	}
}

// answerClose answers the server's close frame with code and reads until
// the server ends TCP. The server may already have given up waiting (its
// close timeout counts from writing the close frame, and this client read
// it late), so errors are expected and ignored.
func (rc *rawClient) answerClose(code int) {
	_ = rc.conn.SetDeadline(time.Now().Add(testTimeout))
	_, _ = rc.conn.Write(encodeClientFrame(0x80|opClose, binary.BigEndian.AppendUint16(nil, uint16(code))))
	_, _ = io.Copy(io.Discard, rc.br)
	_ = rc.conn.Close()
}

// TestOverflowDisconnectReachesSlowConsumer (issue 11, item 4): a client
// with a 4 KB receive buffer stops reading while the server sends until the
// queue overflows. The writer is then blocked in a writev with a batch of
// frames; the overflow drops what was not written, finishes the frame in
// flight and writes the 1013 close frame next, and the socket is kept. When
// the client reads again it gets whole frames, in order, then close 1013.
func TestOverflowDisconnectReachesSlowConsumer(t *testing.T) {
	t.Parallel()
	const closeTimeout = 200 * time.Millisecond
	q := queueConfig{Messages: 64, Bytes: 1 << 30}
	s := startServer(t, serverConfig{
		opts:     &AcceptOptions{QueueMessages: q.Messages, QueueBytes: q.Bytes, Overflow: q.Policy, CloseTimeout: closeTimeout},
		onAccept: shrinkServerBuffers,
	})
	rc := rawDialRcvBuf(t, s.addr(), 4<<10)
	srv := s.next(t)

	const size = 16 << 10
	o := newOutcomes()
	accepted := 0
	for ; ; accepted++ {
		if accepted == 100000 {
			t.Fatal("the queue never overflowed")
		}
		err := srv.c.SendNotify(seqFrame(accepted, size), o.done(accepted))
		if errors.Is(err, ErrQueueFull) {
			break
		}
		if err != nil {
			t.Fatalf("send %d: %v", accepted, err)
		}
	}
	if m, _ := srv.c.Buffered(); m != 0 {
		t.Errorf("Buffered() = %d messages after the overflow; the queue should be dropped", m)
	}
	giveCloseTimeoutAChance(t, srv.c, srv.r, closeTimeout)

	n, code, reason := readSeqFrames(t, rc, size)
	if code != int(StatusTryAgainLater) || reason != "send queue full" {
		t.Errorf("close frame %d %q, want 1013 \"send queue full\"", code, reason)
	}
	if n > accepted {
		t.Errorf("client read %d messages, more than the %d accepted", n, accepted)
	}
	rc.answerClose(int(StatusTryAgainLater))
	info := srv.r.waitClose(t)
	if info.Code != StatusTryAgainLater || !errors.Is(info.Err, ErrQueueFull) {
		t.Errorf("HandleClose = %+v, want 1013 with ErrQueueFull", info)
	}
	o.check(t, accepted, n)
}

// TestCloseDrainsBacklogToSlowReader (issue 11, item 1, for Conn.Close): a
// client that reads nothing for a while, then reads, gets every queued
// message and then the close frame: the close timeout counts from writing
// the close frame, not from Close. A ping sent during the drain goes out
// (ahead of the data), so a heartbeat keeps working.
func TestCloseDrainsBacklogToSlowReader(t *testing.T) {
	t.Parallel()
	const closeTimeout = 200 * time.Millisecond
	q := queueConfig{Messages: 1 << 20, Bytes: 1 << 30}
	s := startServer(t, serverConfig{
		opts:     &AcceptOptions{QueueMessages: q.Messages, QueueBytes: q.Bytes, Overflow: q.Policy, CloseTimeout: closeTimeout},
		onAccept: shrinkServerBuffers,
	})
	rc := rawDialRcvBuf(t, s.addr(), 4<<10)
	srv := s.next(t)

	const n, size = 2000, 1 << 10
	o := newOutcomes()
	for i := 0; i < n; i++ {
		if err := srv.c.SendNotify(seqFrame(i, size), o.done(i)); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	srv.c.Close(StatusGoingAway, "restart")
	if err := srv.c.Ping([]byte("still there?")); err != nil {
		t.Errorf("Ping while the close drains the queue = %v, want nil", err)
	}
	giveCloseTimeoutAChance(t, srv.c, srv.r, closeTimeout)

	code, reason, frames := rc.readClose()
	got, pings := 0, 0
	for _, f := range frames {
		switch {
		case f.op == opPing && string(f.payload) == "still there?":
			pings++
		case !f.fin || f.op != byte(MessageBinary) || len(f.payload) != size || int(binary.BigEndian.Uint32(f.payload)) != got:
			t.Fatalf("frame %d: fin %v, opcode %d, %d bytes; want message #%d", got, f.fin, f.op, len(f.payload), got)
		default:
			got++
		}
	}
	if pings != 1 {
		t.Errorf("the client got %d pings, want 1", pings)
	}
	if got != n || code != int(StatusGoingAway) || reason != "restart" {
		t.Errorf("client read %d messages then close %d %q; want %d then 1001 \"restart\"", got, code, reason, n)
	}
	rc.answerClose(int(StatusGoingAway))
	if info := srv.r.waitClose(t); info.Code != StatusGoingAway || info.ByPeer {
		t.Errorf("HandleClose = %+v, want our 1001", info)
	}
	o.check(t, n, got)
}

// TestDiscardQueuedFinishesFrameInFlight: Close with a backlog the client
// does not read, then DiscardQueued (a caller's deadline passing): the
// unwritten messages are dropped and counted, the frame in flight is
// finished, and the close frame follows it.
func TestDiscardQueuedFinishesFrameInFlight(t *testing.T) {
	t.Parallel()
	q := queueConfig{Messages: 1 << 20, Bytes: 1 << 30}
	s := startServer(t, serverConfig{
		opts:     &AcceptOptions{QueueMessages: q.Messages, QueueBytes: q.Bytes, Overflow: q.Policy},
		onAccept: shrinkServerBuffers,
	})
	rc := rawDialRcvBuf(t, s.addr(), 4<<10)
	srv := s.next(t)

	// Queue everything before a writer starts, so that its first batch is
	// a full one (1 MiB, 64 messages) and it blocks writing it.
	srv.c.mu.Lock()
	srv.c.writing = true
	srv.c.mu.Unlock()
	const n, size = 300, 16 << 10
	o := newOutcomes()
	for i := 0; i < n; i++ {
		if err := srv.c.SendNotify(seqFrame(i, size), o.done(i)); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	srv.c.Close(StatusGoingAway, "bye")
	srv.c.mu.Lock()
	srv.c.writing = false
	srv.c.kickLocked()
	srv.c.mu.Unlock()
	// Wait until the writer is inside its writev (blocked: the client
	// reads nothing yet), not only holding the batch: a cut before the
	// write starts drops the whole batch, which is not what this tests.
	pollUntil(t, "the writer to block writing its batch", func() bool {
		srv.c.mu.Lock()
		defer srv.c.mu.Unlock()
		return srv.c.inWrite
	})
	time.Sleep(10 * time.Millisecond) // into the write, past its first bytes
	queued, _ := srv.c.Buffered()
	dropped := srv.c.DiscardQueued()
	if dropped == 0 || dropped >= n {
		t.Errorf("DiscardQueued() = %d, want some of the %d messages", dropped, n)
	}
	if m, b := srv.c.Buffered(); m != 0 || b != 0 {
		t.Errorf("Buffered() = %d, %d after DiscardQueued", m, b)
	}
	if again := srv.c.DiscardQueued(); again != 0 {
		t.Errorf("a second DiscardQueued() = %d, want 0", again)
	}

	got, code, reason := readSeqFrames(t, rc, size)
	if code != int(StatusGoingAway) || reason != "bye" {
		t.Errorf("close frame %d %q, want 1001 \"bye\"", code, reason)
	}
	if got+dropped != n {
		t.Errorf("client read %d messages and %d were dropped; want %d in all", got, dropped, n)
	}
	// The socket buffers hold a few of the batch's messages; the rest of
	// the batch was cut, not written.
	if batch := n - queued; got >= batch {
		t.Errorf("client read %d messages: the writer finished its batch of %d instead of the frame in flight", got, batch)
	}
	t.Logf("batch of %d messages, %d written, %d dropped", n-queued, got, dropped)
	rc.answerClose(int(StatusGoingAway))
	srv.r.waitClose(t)
	if d := o.check(t, n, got); d != dropped {
		t.Errorf("%d callbacks got ErrClosed, DiscardQueued counted %d", d, dropped)
	}
	// The stats count what went out, the cut batch's written messages and
	// the one finished in flight included.
	if st := srv.c.Stats(); st.MessagesOut != uint64(got) {
		t.Errorf("Stats().MessagesOut = %d, the client read %d", st.MessagesOut, got)
	}
}

// TestPongForEveryPing (issue 11, item 8): pings in a row, with the peer
// not flooding, each get their own pong, in order.
func TestPongForEveryPing(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverConfig{})
	rc := rawDial(t, s.addr())
	srv := s.next(t)

	var pings []byte
	for i := 0; i < 10; i++ {
		pings = append(pings, encodeClientFrame(0x80|opPing, fmt.Appendf(nil, "ping %d", i))...)
	}
	rc.write(pings) // one write: the reader sees all ten before the writer runs
	for i := 0; i < 10; i++ {
		f, err := rc.readFrame()
		if err != nil {
			t.Fatalf("pong %d: %v", i, err)
		}
		if want := fmt.Sprintf("ping %d", i); f.op != opPong || string(f.payload) != want {
			t.Fatalf("frame %d: opcode %d %q, want a pong %q", i, f.op, f.payload, want)
		}
	}
	srv.c.Close(StatusNormalClosure, "")
	if code, _, data := rc.readClose(); code != int(StatusNormalClosure) || len(data) != 0 {
		t.Errorf("then %d frames and close %d, want only close 1000", len(data), code)
	}
	rc.finishClose(int(StatusNormalClosure))
	srv.r.waitClose(t)
}

// TestPingFloodOwesBoundedPongs (issue 11, item 8): a client that sends
// 100,000 pings and reads nothing is owed at most maxOwedPongs pongs at any
// time (older ones are dropped, the latest kept), and when it reads it gets
// pongs in the order of its pings, ending with the answer to its last one.
//
// The client reads nothing until the server has dropped owed pongs (the
// flood has filled the socket buffers), then reads while it floods on: a
// client that never reads while it writes can stall its own TCP connection
// (its full receive buffer discards the server's segments, window updates
// included, until a retransmission timer fires, seconds later).
func TestPingFloodOwesBoundedPongs(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverConfig{onAccept: shrinkServerBuffers})
	rc := rawDialRcvBuf(t, s.addr(), 4<<10)
	srv := s.next(t)

	dropped := make(chan struct{})
	var once sync.Once
	hook := func(c *Conn) {
		if c == srv.c {
			once.Do(func() { close(dropped) })
		}
	}
	pongsReplacedHook.Store(&hook)
	t.Cleanup(func() { pongsReplacedHook.Store(nil) })

	var maxOwed atomic.Int32
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			srv.c.mu.Lock()
			owed := max(len(srv.c.pongs), cap(srv.c.pongs))
			srv.c.mu.Unlock()
			if int32(owed) > maxOwed.Load() {
				maxOwed.Store(int32(owed))
			}
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Microsecond):
			}
		}
	}()

	const pings = 100000
	flooded := make(chan error, 1)
	go func() {
		var buf []byte
		write := func() error {
			_ = rc.conn.SetWriteDeadline(time.Now().Add(testTimeout))
			_, err := rc.conn.Write(buf)
			buf = buf[:0]
			return err
		}
		for i := 0; i < pings; i++ {
			buf = append(buf, encodeClientFrame(0x80|opPing, binary.BigEndian.AppendUint64(nil, uint64(i)))...)
			if len(buf) >= 64<<10 || i == pings-1 {
				if err := write(); err != nil {
					flooded <- err
					return
				}
			}
		}
		// A data message after the pings: once it arrives, the reader has
		// queued the pong for every ping.
		buf = append(buf, encodeClientFrame(0x80|byte(MessageText), []byte("done"))...)
		flooded <- write()
	}()

	// The flood may be all written (into the kernel's buffers) before the
	// server has dropped a pong; a write error ends the test at once.
	floodDone := false
	timeout := time.After(testTimeout)
	for waiting := true; waiting; {
		select {
		case <-dropped:
			waiting = false
		case err := <-flooded:
			if err != nil {
				t.Fatalf("flood: %v", err)
			}
			floodDone = true
			flooded = nil
		case <-timeout:
			t.Fatal("the flood never filled the socket buffers: no pong dropped")
		}
	}
	last, got := -1, 0
	for last != pings-1 {
		f, err := rc.readFrame()
		if err != nil {
			t.Fatalf("after %d pongs (the last for ping #%d): %v", got, last, err)
		}
		if f.op != opPong || len(f.payload) != 8 {
			t.Fatalf("frame opcode %d with %d bytes, want a pong", f.op, len(f.payload))
		}
		seq := int(binary.BigEndian.Uint64(f.payload))
		if seq <= last {
			t.Fatalf("pong for ping #%d after the one for #%d", seq, last)
		}
		last = seq
		got++
	}
	if !floodDone {
		if err := <-flooded; err != nil {
			t.Fatalf("flood: %v", err)
		}
	}
	if m := srv.r.next(t); string(m.data) != "done" {
		t.Fatalf("server got %q", m.data)
	}
	close(stop)
	<-sampled
	if owed := maxOwed.Load(); owed > maxOwedPongs {
		t.Errorf("up to %d pongs owed at once, want at most %d", owed, maxOwedPongs)
	}
	if got >= pings {
		t.Errorf("%d pongs for %d pings, with some dropped", got, pings)
	}
	srv.c.Close(StatusNormalClosure, "")
	if code, _, data := rc.readClose(); code != int(StatusNormalClosure) || len(data) != 0 {
		t.Errorf("then %d frames and close %d, want only close 1000", len(data), code)
	}
	rc.finishClose(int(StatusNormalClosure))
	srv.r.waitClose(t)
}

// TestDoneAfterWriter: Done is closed only once the writer has stopped, so a
// send callback never runs after Done (issue 12, item 6). The callback of a
// written frame blocks while the client drops the connection; Done must not
// close until it returns.
func TestDoneAfterWriter(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverConfig{})
	rc := rawDial(t, s.addr())
	srv := s.next(t)
	release := make(chan struct{})
	var (
		mu    sync.Mutex
		order []string
	)
	note := func(e string) {
		mu.Lock()
		order = append(order, e)
		mu.Unlock()
	}
	if err := srv.c.SendNotify(NewFrame(MessageText, []byte("x")), func(error) {
		<-release
		note("callback returned")
	}); err != nil {
		t.Fatal(err)
	}
	if f, err := rc.readFrame(); err != nil || string(f.payload) != "x" {
		t.Fatalf("read %q, %v", f.payload, err)
	}
	_ = rc.conn.Close() // the reader ends while the writer is in the callback
	srv.r.waitClose(t)
	select {
	case <-srv.c.Done():
		note("done")
	case <-time.After(200 * time.Millisecond):
	}
	close(release)
	<-srv.c.Done()
	note("done")
	mu.Lock()
	defer mu.Unlock()
	if order[0] != "callback returned" {
		t.Errorf("events %q: Done was closed while a send callback was running", order)
	}
}

// TestPeerCloseDropsBacklog: when the peer closes first while a backlog it
// does not read is queued, what is not yet written is dropped (callbacks get
// ErrClosed), the frame in flight is finished, and our close frame goes out
// next instead of after the backlog (RFC 6455 5.5.1, see conformance.md).
// The client then reads whole frames, in order, and the echo of its close.
func TestPeerCloseDropsBacklog(t *testing.T) {
	t.Parallel()
	q := queueConfig{Messages: 1 << 20, Bytes: 1 << 30}
	s := startServer(t, serverConfig{
		opts:     &AcceptOptions{QueueMessages: q.Messages, QueueBytes: q.Bytes, Overflow: q.Policy},
		onAccept: shrinkServerBuffers,
	})
	rc := rawDialRcvBuf(t, s.addr(), 4<<10)
	srv := s.next(t)

	const n, size = 5000, 1 << 10
	o := newOutcomes()
	for i := 0; i < n; i++ {
		if err := srv.c.SendNotify(seqFrame(i, size), o.done(i)); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	rc.writeFrame(0x80|opClose, closePayloadOf(4000, "bye"))
	// The server has seen our close once a send callback reports ErrClosed
	// (the backlog is cut); only then does the client read. The rest of
	// the frame in flight and the close echo may need the client to read
	// before they fit into the socket, so the handshake's end (HandleClose)
	// is awaited after reading.
	pollUntil(t, "the backlog cut after the peer's close", func() bool {
		o.mu.Lock()
		defer o.mu.Unlock()
		return o.closed > 0
	})
	code, _, frames := rc.readClose()
	info := srv.r.waitClose(t)
	if info.Code != 4000 || !info.ByPeer {
		t.Errorf("HandleClose = %+v, want the peer's 4000", info)
	}
	for i, f := range frames {
		if !f.fin || f.op != byte(MessageBinary) || len(f.payload) != size || int(binary.BigEndian.Uint32(f.payload)) != i {
			t.Fatalf("frame %d: fin %v, opcode %d, %d bytes; want message #%d", i, f.fin, f.op, len(f.payload), i)
		}
	}
	if code != 4000 {
		t.Errorf("close echo %d, want 4000", code)
	}
	if dropped := o.check(t, n, len(frames)); dropped == 0 {
		t.Errorf("all %d messages were written after the peer's close; want the backlog dropped", n)
	}
}
