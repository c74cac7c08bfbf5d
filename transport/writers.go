package transport

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// writerPool runs the writers of an Acceptor's or a Dialer's connections on
// a few long-lived goroutines. A connection's writer exists only while
// something is queued (conn.go). Starting a goroutine for every burst costs
// a goroutine start and the growth of its small stack through the write path
// (encode, writev), and handing each connection to an idle goroutine over a
// channel costs a wake-up per connection: a room's broadcast to 5,000
// members made 5,000 of either. Instead a connection that needs its writer
// joins the pool's ready list, and at most one worker per CPU (GOMAXPROCS)
// drains it, one connection after another: a broadcast's deliveries cost a
// list append and a pop each, and its writes run on every core.
//
// A worker never waits on one connection while others are ready. A batch
// is first written with a non-blocking writev (write.go); when the socket
// does not take all of it, the worker gives up its place among the draining
// workers (another one takes over the list) before it blocks to write the
// rest, and takes a place back afterwards, or goes idle if the others
// suffice. A connection that keeps its writer busy goes back to the end of
// the list after maxTurnBatches batches, so it takes turns with the rest.
// The send callbacks run on the workers too: they must not block (as
// SendNotify says).
//
// Idle workers wait for work (writerPool.next) and exit after writerIdle
// without any. Connections made by the package-level Accept and Dial (an
// Acceptor or a Dialer of their own) start a plain goroutine per writer run
// instead: a pool per connection would only keep an idle goroutine alive for
// nothing.
type writerPool struct {
	mu      sync.Mutex
	ready   []*Conn // connections waiting for a worker: ready[head:], oldest first
	head    int
	running int // workers draining ready (not blocked in a write, not idle)
	max     int // most workers draining at once

	wake    chan struct{} // unbuffered: a send succeeds only to an idle worker
	quit    chan struct{}
	stopped atomic.Bool
	idle    time.Duration

	started atomic.Int64 // worker goroutines started, for tests
}

// writerIdle is how long an idle pooled writer waits for work.
const writerIdle = 10 * time.Second

// maxTurnBatches is how many batches a connection's writer writes before
// it goes to the back of the ready list (if others wait).
const maxTurnBatches = 4

func newWriterPool() *writerPool {
	return &writerPool{
		wake: make(chan struct{}), quit: make(chan struct{}), idle: writerIdle,
		max: max(1, runtime.GOMAXPROCS(0)),
	}
}

// stop makes idle workers exit, and busy ones once the ready list is empty;
// writers started after stop run on a goroutine that then exits.
func (p *writerPool) stop() {
	if p == nil {
		return
	}
	if p.stopped.CompareAndSwap(false, true) {
		close(p.quit)
	}
}

// start runs c's writer (c.writers counts it already).
func (p *writerPool) start(c *Conn) {
	if p.stopped.Load() {
		go c.runWriter()
		return
	}
	p.mu.Lock()
	p.ready = append(p.ready, c)
	more := p.running < p.max
	if more {
		p.running++
	}
	p.mu.Unlock()
	if more {
		p.addWorker()
	}
}

// addWorker hands a place among the draining workers (counted in running
// already) to an idle worker, or to a new one.
func (p *writerPool) addWorker() {
	select {
	case p.wake <- struct{}{}:
	default:
		go p.worker()
	}
}

// pop returns the next ready connection, or nil (and the caller's place is
// given up) when none is ready.
func (p *writerPool) pop() *Conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.head == len(p.ready) {
		p.running--
		if cap(p.ready) > 1024 {
			p.ready = nil // let a big burst's list go
		} else {
			p.ready = p.ready[:0]
		}
		p.head = 0
		return nil
	}
	c := p.ready[p.head]
	p.ready[p.head] = nil
	p.head++
	return c
}

// requeue puts c, whose writer has more to write, at the end of the list;
// the caller keeps its place.
func (p *writerPool) requeue(c *Conn) {
	p.mu.Lock()
	p.ready = append(p.ready, c)
	p.mu.Unlock()
}

// blocking gives up the caller's place before it blocks in a write, handing
// it to another worker if connections are ready.
func (p *writerPool) blocking() {
	p.mu.Lock()
	p.running--
	more := p.head < len(p.ready) && p.running < p.max
	if more {
		p.running++
	}
	p.mu.Unlock()
	if more {
		p.addWorker()
	}
}

// rejoin takes a place back after a blocking write, if the list needs one;
// false: the draining workers suffice, and the caller goes idle.
func (p *writerPool) rejoin() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.head < len(p.ready) && p.running < p.max {
		p.running++
		return true
	}
	return false
}

func (p *writerPool) worker() {
	p.started.Add(1)
	t := time.NewTimer(p.idle)
	defer t.Stop()
	for {
		// The worker holds a place: drain the list.
		for {
			c := p.pop()
			if c == nil {
				break
			}
			more, gaveUp := c.writeLoop(p)
			if more {
				p.requeue(c) // its writer keeps its c.writers count
			} else {
				c.writers.Done()
			}
			if gaveUp && !p.rejoin() {
				break
			}
		}
		t.Reset(p.idle)
		if !p.next(t) {
			return
		}
	}
}

// next waits for a place among the draining workers, or returns false after
// idle or once the pool is stopped. It is the top function of an idle
// worker, which goroutine leak checks may ignore by that name (a writer
// blocked anywhere else is not idle).
//
//go:noinline
func (p *writerPool) next(t *time.Timer) bool {
	select {
	case <-p.wake:
		return true
	case <-t.C:
		return false
	case <-p.quit:
		return false
	}
}

// runWriter is one run of c's writer on a goroutine of its own.
func (c *Conn) runWriter() {
	defer c.writers.Done()
	c.writeLoop(nil)
}
