package transport

// The outbound queue: Send appends a data frame under the connection's lock
// and never blocks; what a full queue does is the OverflowPolicy's; the
// writer (write.go) takes the queue in batches. Dropping what is not written
// yet (a close by the peer, OverflowDisconnect, DiscardQueued) cuts the
// batch the writer holds after the frame in flight.

import (
	"errors"
	"net"
	"sync"
	"time"
)

// Send queues f for writing and returns at once. It returns ErrClosed once
// the connection is closing, and ErrQueueFull when the queue's policy refuses
// f (with OverflowDisconnect the connection is then being closed).
func (c *Conn) Send(f *Frame) error { return c.enqueue(f, nil) }

// SendNotify is Send with a report: done is called once with nil when f has
// been written to the socket, or with the error that lost it (ErrQueueFull
// when evicted by OverflowDropOldest, ErrConflated, ErrClosed,
// ErrWriteTimeout or an I/O error). done is not called when SendNotify itself
// returns an error. done runs on the writer goroutine, or for a frame that is
// dropped on whichever goroutine dropped it (a later Send, Close, or the
// reader): it must not block and must not call back into c. For an
// Acceptor's or a Dialer's connections the writer is one of a few pooled
// workers shared by all of them, so a done that blocks delays other
// connections' writes too. Every call happens before [Conn.Done] is closed.
func (c *Conn) SendNotify(f *Frame, done func(error)) error { return c.enqueue(f, done) }

func (c *Conn) enqueue(f *Frame, done func(error)) error {
	if f == nil || f.isControl() {
		return errors.New("transport: Send needs a data frame")
	}
	n := f.Len()
	c.mu.Lock()
	if c.cl.queued() || c.broken != nil {
		c.mu.Unlock()
		return ErrClosed
	}
	if f.key != "" {
		// Conflate: replace a queued frame with the same key in place.
		for i := len(c.q) - 1; i >= c.qHead; i-- {
			if c.q[i].f.key == f.key {
				old := c.q[i]
				c.qBytes += n - old.f.Len()
				c.q[i] = outItem{f, done}
				c.mu.Unlock()
				c.out.conflated.Add(1)
				if old.done != nil {
					old.done(ErrConflated)
				}
				return nil
			}
		}
	}
	queued := len(c.q) - c.qHead
	if queued > 0 && (queued >= c.opts.Queue.Messages || c.qBytes+n > c.opts.Queue.Bytes) {
		switch c.opts.Queue.Policy {
		case OverflowDropNewest:
			c.mu.Unlock()
			c.out.refused.Add(1)
			return ErrQueueFull
		case OverflowDropOldest:
			var evicted []func(error)
			for c.qHead < len(c.q) && (len(c.q)-c.qHead >= c.opts.Queue.Messages || c.qBytes+n > c.opts.Queue.Bytes) {
				it := c.q[c.qHead]
				c.q[c.qHead] = outItem{}
				c.qHead++
				c.qBytes -= it.f.Len()
				c.out.refused.Add(1)
				c.out.evicted.Add(1)
				if it.done != nil {
					evicted = append(evicted, it.done)
				}
			}
			c.pushLocked(outItem{f, done}, n)
			c.mu.Unlock()
			for _, d := range evicted {
				d(ErrQueueFull)
			}
			return nil
		default:
			c.mu.Unlock()
			// Drop what is not written yet and finish the frame in flight,
			// so the 1013 close frame is the next thing the peer reads.
			c.closeWith(StatusTryAgainLater, "send queue full", ErrQueueFull, true)
			c.out.refused.Add(1)
			c.out.overflowCloses.Add(1)
			return ErrQueueFull
		}
	}
	if done == nil && c.direct && c.idleWriterLocked() && f.firstSend() {
		if b := c.readyBytes(f); b != nil {
			c.writeDirect(f, b) // unlocks
			return nil
		}
	}
	c.pushLocked(outItem{f, done}, n)
	c.mu.Unlock()
	return nil
}

// pushLocked appends to the data lane and makes sure a writer runs.
func (c *Conn) pushLocked(it outItem, n int) {
	if c.qHead > 0 && c.qHead == len(c.q) {
		c.q, c.qHead = c.q[:0], 0
	}
	// While the queue never empties (a slow reader, OverflowDropOldest) the
	// dead slots before qHead would keep growing the slice: compact before
	// append has to grow it. Live items are at most QueueMessages, so the
	// slice stays within a small multiple of that.
	if c.qHead > 0 && len(c.q) == cap(c.q) && 2*c.qHead >= len(c.q) {
		live := copy(c.q, c.q[c.qHead:])
		clear(c.q[live:])
		c.q, c.qHead = c.q[:live], 0
	}
	if len(c.q) == cap(c.q) && cap(c.q) >= keepQueueCap {
		c.q = growQueue(c.q)
	}
	c.q = append(c.q, it)
	c.qBytes += n
	c.kickLocked()
}

// DiscardQueued drops every data message that is queued and not yet written,
// reporting ErrClosed to each send callback, and returns how many it dropped.
// The frame being written when it is called is finished, so the peer never
// sees a partial frame; after it comes a close frame queued by [Conn.Close]
// (or, if the connection is not closing, whatever is sent next).
//
// Use it to bound a graceful close: Close, wait on [Conn.Done] until your own
// deadline, then DiscardQueued, so the close frame goes out after at most the
// frame in flight. It may wait for the writer to stop its current write,
// which it interrupts at once. One exception: when the socket is not a
// *net.TCPConn or *net.UnixConn (TLS terminated in this process, or a conn
// from DialOptions.NetDialContext), a write cannot be interrupted safely, so
// the batch being written (at most 512 messages or 1 MiB) is written in full
// and only the messages still queued are dropped.
func (c *Conn) DiscardQueued() int {
	c.mu.Lock()
	before := c.dropped
	dropped, wait := c.dropUnwrittenLocked()
	c.mu.Unlock()
	for _, d := range dropped {
		d(ErrClosed)
	}
	if wait != nil {
		<-wait
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dropped - before
}

// dropQueueLocked empties the data lane and returns the callbacks to call
// with the loss (after unlocking).
func (c *Conn) dropQueueLocked() []func(error) {
	var dropped []func(error)
	for i := c.qHead; i < len(c.q); i++ {
		if c.q[i].done != nil {
			dropped = append(dropped, c.q[i].done)
		}
	}
	c.dropped += len(c.q) - c.qHead
	c.q, c.qHead, c.qBytes = nil, 0, 0
	return dropped
}

// aLongTimeAgo is a deadline in the past: it makes a blocked write return.
var aLongTimeAgo = time.Unix(1, 0)

// dropUnwrittenLocked drops the data lane and cuts the batch the writer
// holds: its messages not yet started are dropped (the writer reports them
// with ErrClosed), the frame in flight is finished, and the writer carries on
// with the control frames (pongs, ping, close). A write in progress is
// interrupted by moving its deadline into the past, so a blocked writev
// returns with the count of bytes written. It returns the queue's callbacks
// to call with ErrClosed, and a channel closed once the writer has settled
// the cut (nil when there is nothing to wait for).
func (c *Conn) dropUnwrittenLocked() (dropped []func(error), settled <-chan struct{}) {
	dropped = c.dropQueueLocked()
	if !c.batchHeld || (c.inWrite && !c.interruptible()) {
		return dropped, nil
	}
	if !c.cut {
		c.cut = true
		c.cutDone = make(chan struct{})
		if c.inWrite {
			_ = c.nc.SetWriteDeadline(aLongTimeAgo)
		}
	}
	return dropped, c.cutDone
}

// interruptible reports whether a write on the socket may be cut short by a
// deadline and the stream still be written to after it: true for the net
// package's sockets, which report exactly how much was written; false for
// crypto/tls (a timed-out write leaves it unusable) and unknown conns.
func (c *Conn) interruptible() bool {
	switch c.nc.(type) {
	case *net.TCPConn, *net.UnixConn:
		return true
	}
	return false
}

// Buffered returns the number of data messages and payload bytes queued and
// not yet written (ws's bufferedAmount).
func (c *Conn) Buffered() (messages, bytes int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.q) - c.qHead, c.qBytes
}

// Queue arrays. A send queue grows by doubling while a burst is queued and,
// once the writer has emptied it, gives back an array larger than
// keepQueueCap so an idle connection holds little. Growing from scratch on
// every burst made a broadcast's fan-out allocate and copy its way up again
// each time; the arrays given back wait here, by size (32 to 4,096 slots),
// for the next queue that grows.
var queueArrays [8]sync.Pool

// queueClass is the pool of arrays of exactly capacity slots, or -1.
func queueClass(capacity int) int {
	for i := range queueArrays {
		if capacity == 32<<i {
			return i
		}
	}
	return -1
}

// growQueue returns q's items in an array of twice q's capacity (at least
// 32 slots), pooled when one is there.
func growQueue(q []outItem) []outItem {
	want := max(32, 2*cap(q))
	var nq []outItem
	if i := queueClass(want); i >= 0 {
		if p, ok := queueArrays[i].Get().(*[]outItem); ok {
			nq = (*p)[:0]
		}
	}
	if nq == nil {
		nq = make([]outItem, 0, want)
	}
	nq = append(nq, q...)
	releaseQueue(q)
	return nq
}

// releaseQueue gives an array back to its pool (cleared: it must pin no
// frame or callback); a small or odd-sized one is left to the GC.
func releaseQueue(q []outItem) {
	if i := queueClass(cap(q)); i >= 0 {
		q = q[:cap(q)]
		clear(q)
		q = q[:0]
		queueArrays[i].Put(&q)
	}
}
