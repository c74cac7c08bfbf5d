package transport

import (
	"encoding/binary"
	"errors"
	"net"
	"os"
	"sync"
	"time"
	"unicode/utf8"
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
// reader): it must not block and must not call back into c. Every call
// happens before [Conn.Done] is closed.
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
				c.stats.conflated.Add(1)
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
			c.stats.refused.Add(1)
			return ErrQueueFull
		case OverflowDropOldest:
			var evicted []func(error)
			for c.qHead < len(c.q) && (len(c.q)-c.qHead >= c.opts.Queue.Messages || c.qBytes+n > c.opts.Queue.Bytes) {
				it := c.q[c.qHead]
				c.q[c.qHead] = outItem{}
				c.qHead++
				c.qBytes -= it.f.Len()
				c.stats.refused.Add(1)
				c.stats.evicted.Add(1)
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
			c.stats.refused.Add(1)
			c.stats.overflowCloses.Add(1)
			return ErrQueueFull
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
	c.q = append(c.q, it)
	c.qBytes += n
	c.kickLocked()
}

func (c *Conn) kickLocked() {
	if !c.writing && c.broken == nil {
		c.writing = true
		c.writers.Add(1) // under mu, before broken is set: Done's wait sees it
		go func() {
			defer c.writers.Done()
			c.writeLoop()
		}()
	}
}

// Ping sends a ping frame with payload p (at most 125 bytes), ahead of
// queued data. The matching pong updates [Conn.RTT]; any inbound frame
// updates [Conn.LastSeen]. While a close drains the queue, pings still go
// out (so a heartbeat keeps hearing a slow reader); once our close frame is
// written, or the connection is broken, Ping returns ErrClosed.
func (c *Conn) Ping(p []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cl.sent() || c.broken != nil {
		return ErrClosed
	}
	c.ping = newControlFrame(opPing, p)
	now := time.Now().UnixNano()
	c.pingAt.Store(now)
	c.lastPing.Store(now)
	c.kickLocked()
	return nil
}

// maxOwedPongs is how many pongs may wait to be written. A ping that arrives
// while that many wait replaces them all: under a flood only the latest pong
// is owed (RFC 6455 section 5.5.3 allows answering only the most recent
// ping).
const maxOwedPongs = 16

// queuePong owes the peer a pong with payload (copied by the caller, at most
// 125 bytes). Pongs are written in the order their pings arrived, before
// queued data, until our close frame is written; the reader calls it for
// every ping.
func (c *Conn) queuePong(payload []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cl.sent() || c.broken != nil {
		return
	}
	if len(c.pongs) >= maxOwedPongs {
		clear(c.pongs)
		c.pongs = c.pongs[:0]
	}
	c.pongs = append(c.pongs, newControlFrame(opPong, payload))
	c.kickLocked()
}

// Close starts the closing handshake with code and reason, and returns at
// once; wait on [Conn.Done] to know when it is over. Only the first close
// takes effect, and nothing more can be sent after it.
//
// Messages already queued are written first, then the close frame. The
// drain has no overall deadline: it lasts as long as the peer keeps reading,
// but every write (at most 1 MiB) must still finish within WriteTimeout, so a
// peer that stops reading is cut off with ErrWriteTimeout (without a close
// frame), and the queue is bounded (QueueMessages, QueueBytes), so the drain ends. CloseTimeout counts
// from the moment the close frame is written, not from Close: the peer then
// has that long to answer before the socket is closed (ErrCloseTimeout). To
// bound the drain yourself, call [Conn.DiscardQueued] when your deadline
// passes.
func (c *Conn) Close(code StatusCode, reason string) {
	c.closeWith(code, reason, nil, false)
}

// CloseWithError is Close with a cause reported in [CloseInfo.Err], and
// queued messages are discarded (each reported with ErrClosed) rather than
// written first, as by [Conn.DiscardQueued]: the frame being written is
// finished and the close frame goes out next.
func (c *Conn) CloseWithError(code StatusCode, reason string, cause error) {
	c.closeWith(code, reason, cause, true)
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

// Terminate closes the socket at once, without a closing handshake (ws's
// terminate()), and reports cause in [CloseInfo.Err] unless another cause
// came first.
func (c *Conn) Terminate(cause error) {
	c.mu.Lock()
	if c.cl.cause == nil {
		c.cl.cause = cause
	}
	if c.cl.origin == originNone {
		c.cl.origin = originTerminate
	}
	c.mu.Unlock()
	_ = c.nc.Close()
	c.wakeReader() // a parked reader sees the closed socket and ends
}

// LastPing returns when the last ping was queued by [Conn.Ping] (zero if
// never).
func (c *Conn) LastPing() time.Time {
	if ns := c.lastPing.Load(); ns != 0 {
		return time.Unix(0, ns)
	}
	return time.Time{}
}

func closePayload(code StatusCode, reason string) []byte {
	if code == StatusNoStatusReceived {
		return nil
	}
	if !validSendCode(code) {
		code = StatusInternalError
	}
	if len(reason) > maxControlPayload-2 {
		reason = truncateUTF8(reason, maxControlPayload-2)
	}
	p := binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(reason)), uint16(code))
	return append(p, reason...)
}

func truncateUTF8(s string, n int) string {
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// closeWith queues our close frame (once); with discard, unwritten messages
// are dropped first (see dropUnwrittenLocked). It never blocks. The close
// timeout is not started here but by the writer, once the close frame is on
// the wire (see closeWritten).
func (c *Conn) closeWith(code StatusCode, reason string, cause error, discard bool) bool {
	var dropped []func(error)
	c.mu.Lock()
	if !c.cl.begin(originUs) {
		c.mu.Unlock()
		return false
	}
	if !validSendCode(code) {
		code = StatusInternalError
	}
	c.cl.code, c.cl.text, c.cl.cause = code, reason, cause
	if discard {
		dropped, _ = c.dropUnwrittenLocked()
	}
	c.closeFrame = newControlFrame(opClose, closePayload(code, reason))
	c.kickLocked()
	c.mu.Unlock()
	for _, d := range dropped {
		d(ErrClosed)
	}
	return true
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

// closeReadDeadline returns when reading ends if the peer does not answer
// our close frame: CloseTimeout after it was written, or the zero time
// before it is written.
func (c *Conn) closeReadDeadline() time.Time {
	if ns := c.closeWrittenAt.Load(); ns != 0 {
		return time.Unix(0, ns).Add(c.opts.CloseTimeout)
	}
	return time.Time{}
}

// closeWritten records that our close frame is on the wire: the close
// timeout starts now, bounding the reader, which keeps reading (and dropping
// data) until the peer's close frame arrives.
func (c *Conn) closeWritten() {
	c.closeWrittenAt.Store(time.Now().UnixNano())
	_ = c.nc.SetReadDeadline(c.closeReadDeadline())
	c.mu.Lock()
	c.cl.stage = stageSent
	c.mu.Unlock()
	close(c.closeWrote)
	c.wakeReader() // to wait for the peer's close frame, within the timeout
}

// writeLoop is the connection's only writer. It writes everything queued with
// one writev per round (owed pongs first, then a ping, then data, then the
// close frame once the data lane is empty) and exits when there is nothing
// left to write.
func (c *Conn) writeLoop() {
	b := batchPool.Get().(*writeBatch)
	defer b.release()
	for {
		if !c.takeBatch(b) {
			return
		}
		// Encoding (and a shared frame's first compression) happens outside
		// the lock, so senders never wait for it.
		b.bufs = b.bufs[:0]
		for _, f := range b.frames {
			b.bufs = append(b.bufs, c.encode(f))
		}
		ok := c.writeBatch(b)
		if cap(c.scratch) > maxScratch {
			c.scratch = nil
		} else {
			c.scratch = c.scratch[:0]
		}
		if !ok {
			return
		}
	}
}

// takeBatch moves what is owed into b. It returns false, with the writer
// stopped, when there is nothing to write.
func (c *Conn) takeBatch(b *writeBatch) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.broken != nil {
		c.writing = false
		return false
	}
	b.frames, b.items = b.frames[:0], b.items[:0]
	b.closeAt = -1
	if c.cl.sent() {
		// Nothing may follow a close frame.
		c.ping = nil
		clear(c.pongs)
		c.pongs = c.pongs[:0]
	}
	b.frames = append(b.frames, c.pongs...)
	clear(c.pongs)
	c.pongs = c.pongs[:0]
	if c.ping != nil {
		b.frames = append(b.frames, c.ping)
		c.ping = nil
	}
	b.ctl = len(b.frames)
	const maxBatchBytes = 1 << 20
	batchBytes := 0
	for c.qHead < len(c.q) && len(b.items) < maxBatchItems && batchBytes < maxBatchBytes {
		it := c.q[c.qHead]
		c.q[c.qHead] = outItem{}
		c.qHead++
		n := it.f.Len()
		c.qBytes -= n
		batchBytes += n
		b.items = append(b.items, it)
		b.frames = append(b.frames, it.f)
	}
	if c.qHead == len(c.q) {
		// Keep a small backing array for the next burst; let a big one
		// go, so an idle connection holds little.
		if cap(c.q) <= keepQueueCap {
			c.q = c.q[:0]
		} else {
			c.q = nil
		}
		c.qHead = 0
		if c.closeFrame != nil && !c.cl.sent() {
			b.closeAt = len(b.frames)
			b.frames = append(b.frames, c.closeFrame)
		}
	}
	if len(b.frames) == 0 {
		c.writing = false
		return false
	}
	c.batchHeld = true
	return true
}

// writeBatch writes the encoded batch b and reports each message's fate. A
// cut (dropUnwrittenLocked) that arrives before or during the write drops
// the data frames not yet started and finishes the one in flight. It returns
// false when the socket failed (the writer has stopped).
func (c *Conn) writeBatch(b *writeBatch) bool {
	c.mu.Lock()
	cutEarly := c.cut
	if !cutEarly {
		_ = c.nc.SetWriteDeadline(time.Now().Add(c.opts.WriteTimeout))
		c.inWrite = true
	}
	c.mu.Unlock()

	var (
		n   int64
		err error
	)
	if !cutEarly {
		// WriteTo consumes its receiver, rewriting the slice headers in its
		// array: give it a copy, so b.bufs stays whole for a cut's
		// accounting.
		b.outArr = append(b.outArr[:0], b.bufs...)
		b.out = b.outArr
		n, err = b.out.WriteTo(c.nc)
		c.stats.writes.Add(1)
		c.stats.bytesOut.Add(uint64(n))
	}

	c.mu.Lock()
	c.inWrite = false
	cut := c.cut && (cutEarly || isWriteTimeout(err))
	if err != nil && !cut {
		c.settleLocked()
		c.mu.Unlock()
		if isWriteTimeout(err) {
			err = ErrWriteTimeout
		}
		c.writeFailed(err, b.items)
		return false
	}
	if !cut {
		// Everything was written (a cut that came too late drops nothing).
		c.settleLocked()
		c.mu.Unlock()
		c.stats.frames.Add(uint64(len(b.frames)))
		c.stats.msgsOut.Add(uint64(len(b.items)))
		var payload int
		for _, it := range b.items {
			payload += len(it.f.plain) - it.f.hdrLen
		}
		c.stats.payloadOut.Add(uint64(payload))
		for _, it := range b.items {
			if it.done != nil {
				it.done(nil)
			}
		}
		if b.closeAt >= 0 {
			c.closeWritten()
		}
		return true
	}

	// Cut: frames before k are on the wire, frame k has its first off bytes
	// on the wire (off > 0: it is in flight and must be finished), and the
	// data frames after it are dropped. Control frames not yet started are
	// still written, after the rest of the frame in flight.
	k, off := len(b.bufs), 0
	for i, buf := range b.bufs {
		if n < int64(len(buf)) {
			k, off = i, int(n)
			break
		}
		n -= int64(len(buf))
	}
	rest := b.rest[:0]
	var (
		written, lost []outItem
		finishing     *outItem
		closeInRest   bool
	)
	if off > 0 {
		rest = append(rest, b.bufs[k][off:])
		if k == b.closeAt {
			closeInRest = true
		} else if k >= b.ctl {
			finishing = &b.items[k-b.ctl]
		}
	}
	for i := range b.frames {
		isData := i >= b.ctl && i < b.ctl+len(b.items)
		switch {
		case i < k || (i == k && off > 0):
			if isData && &b.items[i-b.ctl] != finishing {
				written = append(written, b.items[i-b.ctl])
			}
		case isData:
			lost = append(lost, b.items[i-b.ctl])
		default:
			rest = append(rest, b.bufs[i])
			closeInRest = closeInRest || i == b.closeAt
		}
	}
	c.dropped += len(lost)
	c.settleLocked()
	c.mu.Unlock()
	b.rest = rest
	for _, it := range written {
		if it.done != nil {
			it.done(nil)
		}
	}
	for _, it := range lost {
		if it.done != nil {
			it.done(ErrClosed)
		}
	}
	if b.closeAt >= 0 && b.closeAt < k {
		c.closeWritten()
	}
	if len(rest) > 0 {
		// Not interruptible: nothing is left to cut.
		_ = c.nc.SetWriteDeadline(time.Now().Add(c.opts.WriteTimeout))
		b.outArr = append(b.outArr[:0], rest...)
		b.out = b.outArr
		if _, err := b.out.WriteTo(c.nc); err != nil {
			if isWriteTimeout(err) {
				err = ErrWriteTimeout
			}
			var items []outItem
			if finishing != nil {
				items = append(items, *finishing)
			}
			c.writeFailed(err, items)
			return false
		}
	}
	if finishing != nil && finishing.done != nil {
		finishing.done(nil)
	}
	if closeInRest {
		c.closeWritten()
	}
	return true
}

func isWriteTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded)
}

// settleLocked ends the writer's hold on its batch and wakes whoever waits
// for a cut of it.
func (c *Conn) settleLocked() {
	c.batchHeld, c.cut = false, false
	if c.cutDone != nil {
		close(c.cutDone)
		c.cutDone = nil
	}
}

const (
	keepQueueCap  = 16       // queue slots an emptied queue keeps
	maxScratch    = 64 << 10 // client encode buffer kept between batches
	maxBatchItems = 512      // data messages per writev
)

// writeBatch is a running writer's scratch space. Only running writers hold
// one, so idle connections cost nothing for it.
type writeBatch struct {
	frames  []*Frame
	items   []outItem
	ctl     int // frames[:ctl] are pongs and a ping; items are frames[ctl:ctl+len(items)]
	closeAt int // index of the close frame in frames, or -1
	bufs    net.Buffers
	rest    net.Buffers // after a cut: the rest of the frame in flight, then control frames
	outArr  net.Buffers // a copy of what is being written, which WriteTo rewrites
	out     net.Buffers // the view WriteTo consumes (a field, so it is not a heap escape per batch)
}

var batchPool = sync.Pool{New: func() any { return new(writeBatch) }}

func (b *writeBatch) release() {
	clear(b.frames[:cap(b.frames)])
	clear(b.items[:cap(b.items)])
	clear(b.bufs[:cap(b.bufs)])
	clear(b.rest[:cap(b.rest)])
	clear(b.outArr[:cap(b.outArr)])
	b.frames, b.items, b.bufs, b.rest, b.outArr, b.out = b.frames[:0], b.items[:0], b.bufs[:0], b.rest[:0], b.outArr[:0], nil
	batchPool.Put(b)
}

// encode returns the bytes to write for f. Server frames are shared; client
// frames are masked into the writer's scratch buffer, which only the single
// running writer touches.
func (c *Conn) encode(f *Frame) []byte {
	compress := c.compress && f.Len() >= c.opts.Compression.Threshold && f.Len() > 0
	if c.opts.Compression.Threshold < 0 {
		compress = c.compress && f.Len() > 0
	}
	if c.isServer {
		return f.serverBytes(compress, c.opts.Compression.Level)
	}
	start := len(c.scratch)
	c.scratch = f.appendClient(c.scratch, compress, c.opts.Compression.Level)
	return c.scratch[start:len(c.scratch):len(c.scratch)]
}

func (c *Conn) writeFailed(err error, items []outItem) {
	c.mu.Lock()
	c.broken = err
	c.writing = false
	dropped := c.dropQueueLocked()
	if c.cl.begin(originNone) {
		// No close frame was queued: report an abnormal closure, not code 0.
		c.cl.code = StatusAbnormalClosure
	}
	if c.cl.cause == nil {
		c.cl.cause = err
	}
	wasSent := c.cl.sent()
	c.mu.Unlock()
	for _, it := range items {
		if it.done != nil {
			it.done(err)
		}
	}
	for _, d := range dropped {
		d(ErrClosed)
	}
	if !wasSent {
		close(c.closeWrote)
	}
	// A failed or timed-out write leaves the stream unusable: end it, which
	// also ends the reader.
	_ = c.nc.Close()
	c.wakeReader()
}
