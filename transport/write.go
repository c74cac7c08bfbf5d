package transport

import (
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

func (c *Conn) kickLocked() {
	if !c.writing && c.broken == nil {
		c.writing = true
		c.writers.Add(1) // under mu, before broken is set: Done's wait sees it
		if p := c.opts.writers; p != nil {
			p.start(c)
		} else {
			go c.runWriter()
		}
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

// pongsReplacedHook, when set (by tests), is called with c.mu held each time
// a ping replaces the pongs owed on c.
var pongsReplacedHook atomic.Pointer[func(c *Conn)]

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
		if f := pongsReplacedHook.Load(); f != nil {
			(*f)(c)
		}
	}
	c.pongs = append(c.pongs, newControlFrame(opPong, payload))
	c.kickLocked()
}

// LastPing returns when the last ping was queued by [Conn.Ping] (zero if
// never).
func (c *Conn) LastPing() time.Time {
	if ns := c.lastPing.Load(); ns != 0 {
		return time.Unix(0, ns)
	}
	return time.Time{}
}

// writeLoop is the connection's only writer. It writes everything queued with
// one writev per round (owed pongs first, then a ping, then data, then the
// close frame once the data lane is empty) and returns when there is nothing
// left to write. On a pool's worker (p not nil) it returns with more true,
// still the writer, after maxTurnBatches batches if more is owed, to take
// its turn again later; gaveUp reports that it gave up the worker's place in
// the pool to block in a write (writers.go).
func (c *Conn) writeLoop(p *writerPool) (more, gaveUp bool) {
	b := batchPool.Get().(*writeBatch)
	b.pool, b.gaveUp = p, false
	defer b.release()
	if !c.finishInflight(b) {
		return false, b.gaveUp
	}
	for turn := 0; ; turn++ {
		if p != nil && turn == maxTurnBatches && c.owesMore() {
			return true, b.gaveUp
		}
		if !c.takeBatch(b) {
			return false, b.gaveUp
		}
		// Encoding (and a shared frame's first compression) happens outside
		// the lock, so senders never wait for it.
		clear(b.bufs)
		b.bufs = b.bufs[:0]
		for _, f := range b.frames {
			b.bufs = append(b.bufs, c.encode(f))
		}
		ok := c.writeBatch(b)
		if cl := c.client; cl != nil {
			if cap(cl.scratch) > maxScratch {
				cl.scratch = nil
			} else {
				cl.scratch = cl.scratch[:0]
			}
		}
		if !ok {
			return false, b.gaveUp
		}
	}
}

// owesMore reports whether the writer has more to write.
func (c *Conn) owesMore() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pendingLocked()
}

// beforeBlocking is called before a write that may wait for the socket: a
// pooled writer gives up its place, once per run, so the pool's other
// connections are not kept waiting behind this one.
func (b *writeBatch) beforeBlocking() {
	if b.pool != nil && !b.gaveUp {
		b.gaveUp = true
		b.pool.blocking()
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
	clear(b.frames)
	clear(b.items)
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
			releaseQueue(c.q)
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
	// First one non-blocking writev, with no deadline to set (a batch the
	// socket takes at once, the usual case, costs no timer); only what it
	// leaves is written blocking, under the write deadline.
	tryFirst := c.tryFirst()
	c.mu.Lock()
	cutEarly := c.cut
	if !cutEarly {
		if !tryFirst {
			_ = c.nc.SetWriteDeadline(time.Now().Add(c.opts.WriteTimeout))
		}
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
		clear(b.outArr)
		b.outArr = append(b.outArr[:0], b.bufs...)
		b.out = b.outArr
		if tryFirst {
			n, err = c.writeTryFirst(b)
		} else {
			b.beforeBlocking()
			n, err = b.out.WriteTo(c.nc)
			c.out.writes.Add(1)
			c.out.bytesOut.Add(uint64(n))
		}
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
		c.out.frames.Add(uint64(len(b.frames)))
		c.out.msgsOut.Add(uint64(len(b.items)))
		var payload int
		for _, it := range b.items {
			payload += len(it.f.plain) - it.f.hdrLen
		}
		c.out.payloadOut.Add(uint64(payload))
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
	clear(b.rest)
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
	// What went out counts as on the uncut path: the frames before k, and
	// the data messages among them.
	c.out.frames.Add(uint64(k))
	for _, it := range written {
		c.out.msgsOut.Add(1)
		c.out.payloadOut.Add(uint64(len(it.f.plain) - it.f.hdrLen))
	}
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
		b.beforeBlocking()
		clear(b.outArr)
		b.outArr = append(b.outArr[:0], rest...)
		b.out = b.outArr
		m, err := b.out.WriteTo(c.nc)
		c.out.writes.Add(1)
		c.out.bytesOut.Add(uint64(m))
		if err != nil {
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
	c.out.frames.Add(uint64(len(rest))) // the frame in flight and the control frames
	if finishing != nil {
		c.out.msgsOut.Add(1)
		c.out.payloadOut.Add(uint64(len(finishing.f.plain) - finishing.f.hdrLen))
		if finishing.done != nil {
			finishing.done(nil)
		}
	}
	if closeInRest {
		c.closeWritten()
	}
	return true
}

// tryFirst reports whether a batch is first written with a non-blocking
// writev (writeTryFirst): on plain sockets, on Linux. (DisableDirectWrites
// does not change it: the write is the writer's own.)
func (c *Conn) tryFirst() bool {
	return directSupported && c.raw != nil && c.interruptible()
}

// writeTryFirst writes b.out, consuming it: one non-blocking writev, then,
// if the socket did not take it all, the rest blocking under the write
// deadline. A cut that came meanwhile (its deadline in the past is then
// overwritten by nothing) is reported as a timed-out write of what went out.
func (c *Conn) writeTryFirst(b *writeBatch) (int64, error) {
	total := 0
	for _, buf := range b.out {
		total += len(buf)
	}
	k, _ := directWritev(c.raw, b.out)
	c.out.writes.Add(1)
	c.out.bytesOut.Add(uint64(k))
	n := int64(k)
	if k == total {
		return n, nil
	}
	// The rest: consume what went out, then block for the rest.
	for k > 0 {
		if k < len(b.out[0]) {
			b.out[0] = b.out[0][k:]
			break
		}
		k -= len(b.out[0])
		b.out = b.out[1:]
	}
	c.mu.Lock()
	if c.cut {
		c.mu.Unlock()
		return n, os.ErrDeadlineExceeded
	}
	_ = c.nc.SetWriteDeadline(time.Now().Add(c.opts.WriteTimeout))
	c.mu.Unlock()
	b.beforeBlocking()
	m, err := b.out.WriteTo(c.nc)
	c.out.writes.Add(1)
	c.out.bytesOut.Add(uint64(m))
	return n + m, err
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
	pool    *writerPool // the pool whose worker runs this writer, nil if none
	gaveUp  bool        // the worker gave up its place in the pool (beforeBlocking)
}

var batchPool = sync.Pool{New: func() any { return new(writeBatch) }}

// release clears what b points to and pools it. Every reuse of a slice
// clears its old length first (takeBatch, writeLoop, writeBatch), so
// nothing is left past the lengths: clearing the whole capacity here cost a
// writer run that had once held a 512-message batch 48 KB of memclr.
func (b *writeBatch) release() {
	clear(b.frames)
	clear(b.items)
	clear(b.bufs)
	clear(b.rest)
	clear(b.outArr)
	b.frames, b.items, b.bufs, b.rest, b.outArr, b.out = b.frames[:0], b.items[:0], b.bufs[:0], b.rest[:0], b.outArr[:0], nil
	b.pool = nil
	batchPool.Put(b)
}

// encode returns the bytes to write for f. Server frames are shared; client
// frames are masked into the writer's scratch buffer, which only the single
// running writer touches.
func (c *Conn) encode(f *Frame) []byte {
	compress := c.wouldCompress(f)
	if c.isServer {
		return f.serverBytes(compress, c.opts.Compression.Level)
	}
	cl := c.client
	start := len(cl.scratch)
	cl.scratch = f.appendClient(cl.scratch, compress, c.opts.Compression.Level)
	return cl.scratch[start:len(cl.scratch):len(cl.scratch)]
}

// wouldCompress reports whether f goes out compressed on c.
func (c *Conn) wouldCompress(f *Frame) bool {
	if !c.compress || f.Len() == 0 {
		return false
	}
	return c.opts.Compression.Threshold < 0 || f.Len() >= c.opts.Compression.Threshold
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
		c.fire(&c.closeWrote)
	}
	// A failed or timed-out write leaves the stream unusable: end it, which
	// also ends the reader.
	_ = c.nc.Close()
	c.wakeReader()
}
