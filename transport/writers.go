package transport

import (
	"sync/atomic"
	"time"
)

// writerPool runs the writers of an Acceptor's or a Dialer's connections on
// long-lived goroutines. A connection's writer exists only while something
// is queued (conn.go); starting a fresh goroutine for every burst costs a
// goroutine start and the growth of its small stack through the write path
// (encode, writev), on every message of a request/response exchange. A
// pooled writer has grown its stack already: the burst goes to an idle
// worker, or to a new one when none is idle, so starting a writer never
// waits. A worker exits after idle without work. Connections made by the
// package-level Accept and Dial (an Acceptor or a Dialer of their own)
// start plain goroutines instead: a pool per connection would only keep an
// idle goroutine alive for nothing.
type writerPool struct {
	work chan *Conn // unbuffered: a send succeeds only to an idle worker
	quit chan struct{}
	idle time.Duration

	started atomic.Int64 // workers started, for tests
}

// writerIdle is how long an idle pooled writer waits for work.
const writerIdle = 10 * time.Second

func newWriterPool() *writerPool {
	return &writerPool{work: make(chan *Conn), quit: make(chan struct{}), idle: writerIdle}
}

// stop makes idle workers exit, and busy ones once their run is done;
// writers started after stop run on a goroutine that then exits.
func (p *writerPool) stop() {
	if p == nil {
		return
	}
	select {
	case <-p.quit:
	default:
		close(p.quit)
	}
}

// start runs c's writer (c.writers counts it already).
func (p *writerPool) start(c *Conn) {
	select {
	case p.work <- c:
	default:
		go p.worker(c)
	}
}

func (p *writerPool) worker(c *Conn) {
	p.started.Add(1)
	t := time.NewTimer(p.idle)
	defer t.Stop()
	for c != nil {
		c.runWriter()
		t.Reset(p.idle)
		c = p.next(t)
	}
}

// next waits for the next connection that needs a writer, or returns nil
// after idle. It is the top function of an idle worker, which goroutine
// leak checks may ignore by that name (a writer blocked anywhere else is
// not idle).
//
//go:noinline
func (p *writerPool) next(t *time.Timer) *Conn {
	select {
	case c := <-p.work:
		return c
	case <-t.C:
		return nil
	case <-p.quit:
		return nil
	}
}

// runWriter is one run of c's writer, on whichever goroutine.
func (c *Conn) runWriter() {
	defer c.writers.Done()
	c.writeLoop()
}
