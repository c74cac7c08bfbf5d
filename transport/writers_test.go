package transport

import (
	"bytes"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"
)

// Writers of an Acceptor's connections run on its pool: many bursts on
// many connections start few goroutines, every message arrives, and Close
// lets the idle workers go while the connections keep writing.
func TestWriterPool(t *testing.T) {
	pollUntil(t, "other tests' idle writers to exit", func() bool { return countWriterWorkers() == 0 })
	// Direct writes off: each of these sends would find its writer idle
	// and never need one (direct_test.go tests that path).
	srv := startServer(t, serverConfig{opts: &AcceptOptions{DisableDirectWrites: true}})
	const conns, bursts = 20, 50
	clients := make([]*rawClient, conns)
	accepted := make([]*Conn, conns)
	for i := range clients {
		clients[i] = rawDial(t, srv.addr())
		accepted[i] = srv.next(t).c
	}
	for b := range bursts {
		for _, c := range accepted {
			if err := c.Send(NewFrame(MessageText, []byte{byte('a' + b%26)})); err != nil {
				t.Fatal(err)
			}
		}
		for i, rc := range clients {
			if f, err := rc.readFrame(); err != nil || f.payload[0] != byte('a'+b%26) {
				t.Fatalf("client %d burst %d: %q %v", i, b, f.payload, err)
			}
		}
	}
	pool := accepted[0].opts.writers
	if pool == nil {
		t.Fatal("no pool")
	}
	// Without a pool each of the 1,000 writes would start a goroutine.
	if n := pool.started.Load(); n == 0 || n > 2*conns {
		t.Fatalf("%d writer goroutines started for %d bursts on %d connections", n, bursts, conns)
	}
	pool.stop()
	pollUntil(t, "idle writers to exit", func() bool { return countWriterWorkers() == 0 })
	// After Close the connections still write.
	for i, c := range accepted {
		if err := c.Send(NewFrame(MessageText, []byte("after"))); err != nil {
			t.Fatal(err)
		}
		if f, err := clients[i].readFrame(); err != nil || string(f.payload) != "after" {
			t.Fatalf("after Close, client %d: %q %v", i, f.payload, err)
		}
	}
	for _, c := range accepted {
		c.Terminate(nil)
	}
	pollUntil(t, "writers to exit", func() bool { return countWriterWorkers() == 0 })
}

// countWriterWorkers counts the pooled writer goroutines in the process.
// TestWriterPool does not run in parallel, so they are its own (other
// tests' idle workers may linger up to 10s: it waits for those first).
func countWriterWorkers() int {
	buf := make([]byte, 1<<22)
	n := runtime.Stack(buf, true)
	return strings.Count(string(buf[:n]), "transport.(*writerPool).worker(")
}

// The package-level Accept and Dial make one connection each: no pool.
func TestPackageLevelAcceptNoPool(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverConfig{single: true})
	c, _ := dialOur(t, s.wsURL(), nil)
	srv := s.next(t)
	if srv.c.opts.writers != nil || c.opts.writers != nil {
		t.Fatal("a pool for a single connection")
	}
}

// setPoolMax lets at most n of the pool's workers drain its ready list, so a
// test on a machine with more CPUs sees what one with n sees.
func setPoolMax(p *writerPool, n int) {
	p.mu.Lock()
	p.max = n
	p.mu.Unlock()
}

// A writer blocked on a peer that reads nothing gives up its place in the
// pool: with one draining worker and three such peers, another
// connection's message still goes out at once, not after the write
// timeout.
func TestPooledWriterBlockedDoesNotStallOthers(t *testing.T) {
	srv := startServer(t, serverConfig{
		opts:     &AcceptOptions{DisableDirectWrites: true, WriteTimeout: time.Minute, QueueBytes: 64 << 20},
		onAccept: shrinkServerBuffers,
	})
	var slow []*Conn
	for range 3 {
		rawDialRcvBuf(t, srv.addr(), 4<<10) // never reads
		slow = append(slow, srv.next(t).c)
	}
	fast := rawDial(t, srv.addr())
	fc := srv.next(t).c
	setPoolMax(fc.opts.writers, 1)
	for _, c := range slow {
		if err := c.Send(NewFrame(MessageBinary, randomBytes(4<<20))); err != nil {
			t.Fatal(err)
		}
	}
	pollUntil(t, "the slow peers' writers to block", func() bool {
		for _, c := range slow {
			c.mu.Lock()
			blocked := c.inWrite
			c.mu.Unlock()
			if !blocked {
				return false
			}
		}
		return true
	})
	for i := range 20 {
		msg := fmt.Appendf(nil, "m%d", i)
		if err := fc.Send(NewFrame(MessageText, msg)); err != nil {
			t.Fatal(err)
		}
		_ = fast.conn.SetReadDeadline(time.Now().Add(testTimeout))
		if f, err := fast.readFrame(); err != nil || !bytes.Equal(f.payload, msg) {
			t.Fatalf("message %d behind three blocked writers: %q, %v", i, f.payload, err)
		}
	}
	for _, c := range slow {
		c.Terminate(nil)
		<-c.Done()
	}
}

// A connection whose writer has more to write takes turns with the others:
// with one worker, a connection with 20 batches queued ahead of another's
// one message writes maxTurnBatches of them, then the other's message goes
// out, then the rest.
func TestPooledWritersTakeTurns(t *testing.T) {
	srv := startServer(t, serverConfig{opts: &AcceptOptions{DisableDirectWrites: true, QueueMessages: 1 << 20, QueueBytes: 1 << 30}})
	busy := rawDial(t, srv.addr())
	bc := srv.next(t).c
	quiet := rawDial(t, srv.addr())
	qc := srv.next(t).c
	p := bc.opts.writers
	setPoolMax(p, 0) // both join the ready list before any worker runs
	const n = 20 * maxBatchItems
	f := NewFrame(MessageBinary, []byte("x"))
	for range n {
		if err := bc.Send(f); err != nil {
			t.Fatal(err)
		}
	}
	busyAtQuiet := make(chan uint64, 1)
	if err := qc.SendNotify(NewFrame(MessageText, []byte("quiet")), func(error) {
		busyAtQuiet <- bc.Stats().MessagesOut
	}); err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	p.max, p.running = 1, 1
	p.mu.Unlock()
	p.addWorker()

	go func() {
		for range n {
			if _, err := busy.readFrame(); err != nil {
				return
			}
		}
	}()
	if f, err := quiet.readFrame(); err != nil || string(f.payload) != "quiet" {
		t.Fatalf("quiet: %q, %v", f.payload, err)
	}
	if got, want := <-busyAtQuiet, uint64(maxTurnBatches*maxBatchItems); got != want {
		t.Fatalf("the quiet connection's message went out after %d of the busy one's %d, want %d", got, n, want)
	}
	pollUntil(t, "the busy connection's queue to be written", func() bool { return bc.Stats().MessagesOut == n })
}
