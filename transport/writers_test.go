package transport

import (
	"runtime"
	"strings"
	"testing"
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
