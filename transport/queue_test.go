package transport

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// A small send buffer makes the server's writer block soon when the client
// does not read. (The client's receive buffer is left alone: it does not
// grow while nothing is read, and shrinking it after connect stalls reads
// later on Linux.)
func shrinkServerBuffers(c *Conn) {
	if tc, ok := c.nc.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(8 << 10)
	}
}

func seqFrame(seq, size int) *Frame {
	p := make([]byte, size)
	binary.BigEndian.PutUint32(p, uint32(seq))
	return NewFrame(MessageBinary, p)
}

// queueCap returns the capacity of c's queue slice, to check that it stays
// bounded.
func queueCap(c *Conn) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return cap(c.q)
}

func checkBuffered(t *testing.T, c *Conn, q queueConfig, size int) {
	t.Helper()
	m, b := c.Buffered()
	if m > q.Messages || b != m*size || (m > 1 && b > q.Bytes) {
		t.Fatalf("Buffered() = %d messages, %d bytes; limits %d messages, %d bytes, %d bytes each", m, b, q.Messages, q.Bytes, size)
	}
}

func TestQueueDisconnect(t *testing.T) {
	t.Parallel()
	q := queueConfig{Messages: 8, Bytes: 1 << 30}
	s := startServer(t, serverConfig{
		opts:     &AcceptOptions{QueueMessages: q.Messages, QueueBytes: q.Bytes, Overflow: q.Policy},
		onAccept: shrinkServerBuffers,
	})
	ws := mustDialGorilla(t, s.wsURL(), nil, nil)
	srv := s.next(t)

	const size = 64 << 10
	f := NewFrame(MessageBinary, make([]byte, size))
	accepted, full := 0, false
	for i := 0; i < 5000 && !full; i++ {
		err := srv.c.Send(f)
		switch {
		case errors.Is(err, ErrQueueFull):
			full = true
		case err != nil:
			t.Fatalf("send %d: %v", i, err)
		default:
			accepted++
			checkBuffered(t, srv.c, q, size)
		}
	}
	if !full {
		t.Fatal("the queue never filled up")
	}
	if err := srv.c.Send(f); !errors.Is(err, ErrClosed) {
		t.Errorf("Send after the overflow = %v, want ErrClosed", err)
	}
	if m, b := srv.c.Buffered(); m != 0 || b != 0 {
		t.Errorf("Buffered() = %d, %d after the disconnect; the queue should be discarded", m, b)
	}

	// Now the client reads: what was in flight, then the close frame.
	n, err := gorillaReadUntilErr(ws)
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != int(StatusTryAgainLater) || ce.Text != "send queue full" {
		t.Fatalf("client read %v, want close 1013 \"send queue full\"", err)
	}
	if n > accepted {
		t.Errorf("client read %d messages, more than the %d accepted", n, accepted)
	}
	ws.Close()
	info := srv.r.waitClose(t)
	if info.Code != StatusTryAgainLater || !errors.Is(info.Err, ErrQueueFull) {
		t.Errorf("HandleClose = %+v, want 1013 with ErrQueueFull", info)
	}
}

func TestQueueDropNewest(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		q    queueConfig
	}{
		{"message limit", queueConfig{Messages: 8, Bytes: 1 << 30, Policy: OverflowDropNewest}},
		{"byte limit", queueConfig{Messages: 1000, Bytes: 3 * 32 << 10, Policy: OverflowDropNewest}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := startServer(t, serverConfig{
				opts:     &AcceptOptions{QueueMessages: tc.q.Messages, QueueBytes: tc.q.Bytes, Overflow: tc.q.Policy},
				onAccept: shrinkServerBuffers,
			})
			ws := mustDialGorilla(t, s.wsURL(), nil, nil)
			srv := s.next(t)

			const size = 32 << 10
			var acceptedSeqs []int
			refused := 0
			for i := 0; i < 300; i++ {
				err := srv.c.Send(seqFrame(i, size))
				switch {
				case errors.Is(err, ErrQueueFull):
					refused++
				case err != nil:
					t.Fatalf("send %d: %v", i, err)
				default:
					acceptedSeqs = append(acceptedSeqs, i)
				}
				checkBuffered(t, srv.c, tc.q, size)
			}
			if refused == 0 {
				t.Fatal("no message was refused")
			}
			// The connection is still open and everything accepted arrives, in order.
			srv.c.Close(StatusNormalClosure, "")
			for i, want := range acceptedSeqs {
				_, p, err := gorillaRead(t, ws)
				if err != nil {
					t.Fatalf("message %d of %d: %v", i, len(acceptedSeqs), err)
				}
				if got := int(binary.BigEndian.Uint32(p)); got != want {
					t.Fatalf("message %d is #%d, want #%d", i, got, want)
				}
			}
			if _, err := gorillaReadUntilErr(ws); !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
				t.Fatalf("after the messages: %v, want close 1000", err)
			}
			ws.Close()
			if info := srv.r.waitClose(t); info.Code != StatusNormalClosure || info.Err != nil {
				t.Errorf("HandleClose = %+v, want a clean 1000", info)
			}
		})
	}
}

func TestQueueDropOldest(t *testing.T) {
	t.Parallel()
	q := queueConfig{Messages: 8, Bytes: 1 << 30, Policy: OverflowDropOldest}
	s := startServer(t, serverConfig{
		opts:     &AcceptOptions{QueueMessages: q.Messages, QueueBytes: q.Bytes, Overflow: q.Policy},
		onAccept: shrinkServerBuffers,
	})
	ws := mustDialGorilla(t, s.wsURL(), nil, nil)
	srv := s.next(t)

	const n, size = 400, 32 << 10
	results := make([]chan error, n)
	maxCap := 0
	for i := 0; i < n; i++ {
		ch := make(chan error, 1)
		results[i] = ch
		if err := srv.c.SendNotify(seqFrame(i, size), func(err error) { ch <- err }); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		checkBuffered(t, srv.c, q, size)
		maxCap = max(maxCap, queueCap(srv.c))
	}
	if maxCap > 8*q.Messages {
		t.Errorf("the queue's backing array grew to %d slots for a %d-message queue", maxCap, q.Messages)
	}

	var received []int
	readDone := make(chan error, 1)
	go func() {
		_ = ws.SetReadDeadline(time.Now().Add(testTimeout))
		for {
			_, p, err := ws.ReadMessage()
			if err != nil {
				readDone <- err
				return
			}
			received = append(received, int(binary.BigEndian.Uint32(p)))
		}
	}()
	srv.c.Close(StatusNormalClosure, "")
	if err := <-readDone; !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
		t.Fatalf("client read ended with %v", err)
	}
	ws.Close()
	srv.r.waitClose(t)

	var written []int
	evicted := 0
	for i, ch := range results {
		select {
		case err := <-ch:
			switch {
			case err == nil:
				written = append(written, i)
			case errors.Is(err, ErrQueueFull):
				evicted++
			default:
				t.Errorf("message %d: callback error %v", i, err)
			}
		default:
			t.Errorf("message %d: callback never called", i)
		}
	}
	if evicted == 0 {
		t.Error("nothing was evicted")
	}
	if len(received) != len(written) {
		t.Fatalf("client received %d messages, callbacks reported %d written", len(received), len(written))
	}
	for i := range received {
		if received[i] != written[i] {
			t.Fatalf("message %d is #%d, callbacks say #%d", i, received[i], written[i])
		}
	}
	// The newest messages survive.
	if written[len(written)-1] != n-1 {
		t.Errorf("the last message written is #%d, want the newest #%d", written[len(written)-1], n-1)
	}
}

// TestWriteTimeout: a peer that stops reading makes the write time out; the
// connection ends with ErrWriteTimeout and every callback is called.
func TestWriteTimeout(t *testing.T) {
	t.Parallel()
	q := queueConfig{Messages: 1 << 20, Bytes: 1 << 30}
	s := startServer(t, serverConfig{
		opts:     &AcceptOptions{QueueMessages: q.Messages, QueueBytes: q.Bytes, Overflow: q.Policy, WriteTimeout: 300 * time.Millisecond},
		onAccept: shrinkServerBuffers,
	})
	ws := mustDialGorilla(t, s.wsURL(), nil, nil)
	defer ws.Close()
	srv := s.next(t)

	const n = 200
	f := NewFrame(MessageBinary, make([]byte, 64<<10))
	var mu sync.Mutex
	errs := map[string]int{}
	var calls atomic.Int32
	for i := 0; i < n; i++ {
		if err := srv.c.SendNotify(f, func(err error) {
			calls.Add(1)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				errs["nil"]++
			case errors.Is(err, ErrWriteTimeout):
				errs["timeout"]++
			case errors.Is(err, ErrClosed):
				errs["closed"]++
			default:
				errs[err.Error()]++
			}
		}); err != nil {
			t.Fatal(err)
		}
	}
	info := srv.r.waitClose(t)
	if !errors.Is(info.Err, ErrWriteTimeout) || info.ByPeer || info.Code != StatusAbnormalClosure {
		t.Errorf("HandleClose = %+v, want 1006 with ErrWriteTimeout", info)
	}
	pollUntil(t, "all callbacks", func() bool { return calls.Load() == n })
	mu.Lock()
	defer mu.Unlock()
	if errs["timeout"] == 0 || errs["nil"]+errs["timeout"]+errs["closed"] != n {
		t.Errorf("callback results %v", errs)
	}
	if err := srv.c.Send(f); !errors.Is(err, ErrClosed) {
		t.Errorf("Send after the timeout = %v, want ErrClosed", err)
	}
}

// TestConflation: while the writer is busy, a keyed frame replaces the queued
// one with the same key in place; the replaced one reports ErrConflated.
func TestConflation(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverConfig{onAccept: shrinkServerBuffers})
	ws := mustDialGorilla(t, s.wsURL(), nil, nil)
	srv := s.next(t)

	// Occupy the writer with a message larger than the socket buffers.
	if err := srv.c.Send(NewFrame(MessageBinary, make([]byte, 4<<20))); err != nil {
		t.Fatal(err)
	}
	pollUntil(t, "the writer to take the big message", func() bool { m, _ := srv.c.Buffered(); return m == 0 })

	const n = 100
	results := make([]chan error, n)
	for i := 0; i < n; i++ {
		ch := make(chan error, 1)
		results[i] = ch
		if err := srv.c.SendNotify(NewKeyedFrame(MessageText, []byte(fmt.Sprint("price ", i)), "price"), func(err error) { ch <- err }); err != nil {
			t.Fatal(err)
		}
		if i == n/2 {
			_ = srv.c.Send(NewFrame(MessageText, []byte("other")))
		}
	}
	if m, b := srv.c.Buffered(); m != 2 || b != len("price 99")+len("other") {
		t.Errorf("Buffered() = %d, %d; want the latest keyed frame and the other one", m, b)
	}

	// Reading 4 MB through an 8 KB send buffer is slow: restore it.
	if tc, ok := srv.c.nc.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(4 << 20)
	}
	var got []string
	for i := 0; i < 3; i++ {
		_, p, err := gorillaRead(t, ws)
		if err != nil {
			t.Fatal(err)
		}
		if i > 0 {
			got = append(got, string(p))
		}
	}
	if len(got) != 2 || got[0] != "price 99" || got[1] != "other" {
		t.Errorf("client read %q, want the latest price in the first one's place, then the other message", got)
	}
	for i, ch := range results {
		want := ErrConflated
		if i == n-1 {
			want = nil
		}
		select {
		case err := <-ch:
			if !errors.Is(err, want) || (want == nil && err != nil) {
				t.Errorf("message %d: callback %v, want %v", i, err, want)
			}
		case <-time.After(testTimeout):
			t.Fatalf("message %d: callback not called", i)
		}
	}
	gorillaClose(t, ws, websocket.CloseNormalClosure, "")
	srv.r.waitClose(t)
}

// A queue that grows through the pooled sizes keeps every item in order;
// an array given back holds no frame or callback.
func TestQueueArrays(t *testing.T) {
	var q []outItem
	frames := make([]*Frame, 3000)
	for i := range frames {
		frames[i] = NewFrame(MessageText, []byte{byte(i)})
		if len(q) == cap(q) && cap(q) >= keepQueueCap {
			q = growQueue(q)
		}
		q = append(q, outItem{f: frames[i]})
	}
	for i, it := range q {
		if it.f != frames[i] {
			t.Fatalf("item %d out of place after growing", i)
		}
	}
	if queueClass(cap(q)) < 0 {
		t.Fatalf("grown to %d slots, not a pooled size", cap(q))
	}
	full := q[:cap(q)]
	releaseQueue(q)
	for i, it := range full {
		if it.f != nil || it.done != nil {
			t.Fatalf("released array still holds item %d", i)
		}
	}
	if queueClass(32) != 0 || queueClass(4096) != 7 || queueClass(48) != -1 || queueClass(8192) != -1 {
		t.Fatal("queueClass")
	}
}

// Through a real connection: a backlog that grows the queue through
// several pooled sizes, twice, arrives whole and in order.
func TestQueueGrowsAndShrinks(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverConfig{opts: &AcceptOptions{QueueMessages: 5000}})
	rc := rawDial(t, s.addr())
	srv := s.next(t)
	for round := range 2 {
		srv.c.mu.Lock()
		srv.c.writing = true // hold the writer off while the backlog builds
		srv.c.mu.Unlock()
		for i := range 2000 {
			if err := srv.c.Send(NewFrame(MessageBinary, []byte{byte(round), byte(i >> 8), byte(i)})); err != nil {
				t.Fatal(err)
			}
		}
		if c := cap(srv.c.q); c < 2000 {
			t.Fatalf("queue of %d slots for 2000 messages", c)
		}
		srv.c.mu.Lock()
		srv.c.writing = false
		srv.c.kickLocked()
		srv.c.mu.Unlock()
		for i := range 2000 {
			f, err := rc.readFrame()
			if err != nil || len(f.payload) != 3 || f.payload[0] != byte(round) || int(f.payload[1])<<8|int(f.payload[2]) != i {
				t.Fatalf("round %d message %d: %v %v", round, i, f.payload, err)
			}
		}
		pollUntil(t, "the writer to stop and the emptied queue to give its array back", func() bool {
			srv.c.mu.Lock()
			defer srv.c.mu.Unlock()
			return !srv.c.writing && cap(srv.c.q) <= keepQueueCap // no writer may run while the next round holds it off
		})
	}
}

// A writer's batch keeps no pointers past what it holds: a batch taken after
// a longer one clears the longer one's tail, and release leaves nothing in
// the pooled arrays (they are cleared by length, not capacity).
func TestWriteBatchKeepsNothingStale(t *testing.T) {
	srv := startServer(t, serverConfig{opts: &AcceptOptions{QueueMessages: 1 << 20, QueueBytes: 1 << 30}})
	rawDial(t, srv.addr())
	c := srv.next(t).c
	c.mu.Lock()
	c.writing = true // hold the writer: this test takes the batches
	c.mu.Unlock()
	n := maxBatchItems + 88
	for i := range n {
		if err := c.Send(seqFrame(i, 8)); err != nil {
			t.Fatal(err)
		}
	}
	b := new(writeBatch)
	stale := func(when string) {
		t.Helper()
		for i, f := range b.frames[len(b.frames):cap(b.frames)] {
			if f != nil {
				t.Fatalf("%s: frame slot %d past the length still set", when, len(b.frames)+i)
			}
		}
		for i, it := range b.items[len(b.items):cap(b.items)] {
			if it.f != nil {
				t.Fatalf("%s: item slot %d past the length still set", when, len(b.items)+i)
			}
		}
	}
	settle := func() {
		c.mu.Lock()
		c.settleLocked()
		c.mu.Unlock()
	}
	if !c.takeBatch(b) || len(b.items) != maxBatchItems {
		t.Fatalf("first batch: %d items", len(b.items))
	}
	settle()
	if !c.takeBatch(b) || len(b.items) != 88 {
		t.Fatalf("second batch: %d items", len(b.items))
	}
	settle()
	stale("after a shorter batch")
	for _, f := range b.frames {
		b.bufs = append(b.bufs, c.encode(f))
	}
	b.outArr = append(b.outArr, b.bufs...)
	b.release()
	b.frames, b.items, b.bufs, b.outArr = b.frames[:cap(b.frames)], b.items[:cap(b.items)], b.bufs[:cap(b.bufs)], b.outArr[:cap(b.outArr)]
	for i := range b.frames {
		if b.frames[i] != nil {
			t.Fatalf("released batch: frame slot %d still set", i)
		}
	}
	for i := range b.items {
		if b.items[i].f != nil {
			t.Fatalf("released batch: item slot %d still set", i)
		}
	}
	for i := range b.bufs {
		if b.bufs[i] != nil {
			t.Fatalf("released batch: buffer %d still set", i)
		}
	}
	for i := range b.outArr {
		if b.outArr[i] != nil {
			t.Fatalf("released batch: out buffer %d still set", i)
		}
	}
	c.mu.Lock()
	c.writing = false
	c.mu.Unlock()
}
