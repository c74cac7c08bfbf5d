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
// reader): it must not block and must not call back into c.
func (c *Conn) SendNotify(f *Frame, done func(error)) error { return c.enqueue(f, done) }

// WriteMessage is a convenience for Send(NewFrame(typ, p)).
func (c *Conn) WriteMessage(typ MessageType, p []byte) error {
	return c.Send(NewFrame(typ, p))
}

func (c *Conn) enqueue(f *Frame, done func(error)) error {
	if f == nil || f.isControl() {
		return errors.New("transport: Send needs a data frame")
	}
	n := f.Len()
	c.mu.Lock()
	if c.closeQueue || c.broken != nil {
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
			return ErrQueueFull
		case OverflowDropOldest:
			var evicted []func(error)
			for c.qHead < len(c.q) && (len(c.q)-c.qHead >= c.opts.Queue.Messages || c.qBytes+n > c.opts.Queue.Bytes) {
				it := c.q[c.qHead]
				c.q[c.qHead] = outItem{}
				c.qHead++
				c.qBytes -= it.f.Len()
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
			c.closeWith(StatusTryAgainLater, "send queue full", ErrQueueFull, true)
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
	// append has to grow it. Live items are at most Queue.Messages, so the
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
		go c.writeLoop()
	}
}

// Ping sends a ping frame with payload p (at most 125 bytes). The matching
// pong updates [Conn.RTT]; any inbound frame updates [Conn.LastSeen].
func (c *Conn) Ping(p []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closeQueue || c.broken != nil {
		return ErrClosed
	}
	c.ping = newControlFrame(opPing, p)
	now := time.Now().UnixNano()
	c.pingAt.Store(now)
	c.lastPing.Store(now)
	c.kickLocked()
	return nil
}

// Close starts the closing handshake: queued messages are written, then a
// close frame with code and reason; the connection ends when the peer answers
// or CloseTimeout passes. Close returns at once; wait on [Conn.Done] to know
// when it is over. Only the first close takes effect.
func (c *Conn) Close(code StatusCode, reason string) {
	c.closeWith(code, reason, nil, false)
}

// CloseWithError is Close with a cause reported in [CloseInfo.Err], and
// queued messages are discarded (each reported with ErrClosed) rather than
// written first.
func (c *Conn) CloseWithError(code StatusCode, reason string, cause error) {
	c.closeWith(code, reason, cause, true)
}

// Abort closes the socket at once, without a closing handshake.
func (c *Conn) Abort() { c.Terminate(nil) }

// Terminate closes the socket at once, without a closing handshake (ws's
// terminate()), and reports cause in [CloseInfo.Err] unless another cause
// came first.
func (c *Conn) Terminate(cause error) {
	c.mu.Lock()
	if c.cause == nil {
		c.cause = cause
	}
	c.terminated = true
	c.mu.Unlock()
	_ = c.nc.Close()
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

// closeWith queues our close frame (once) and bounds the rest of the closing
// handshake with the close timeout.
func (c *Conn) closeWith(code StatusCode, reason string, cause error, discard bool) bool {
	var dropped []func(error)
	c.mu.Lock()
	if c.closeQueue {
		c.mu.Unlock()
		return false
	}
	if !validSendCode(code) {
		code = StatusInternalError
	}
	c.closeQueue = true
	c.closeCode, c.closeText, c.cause = code, reason, cause
	if discard {
		dropped = c.dropQueueLocked()
	}
	c.closeFrame = newControlFrame(opClose, closePayload(code, reason))
	c.kickLocked()
	c.mu.Unlock()
	for _, d := range dropped {
		d(ErrClosed)
	}
	// The reader keeps draining until the peer's close frame arrives; this
	// bounds how long it may take.
	_ = c.nc.SetReadDeadline(time.Now().Add(c.opts.CloseTimeout))
	return true
}

func (c *Conn) dropQueueLocked() []func(error) {
	var dropped []func(error)
	for i := c.qHead; i < len(c.q); i++ {
		if c.q[i].done != nil {
			dropped = append(dropped, c.q[i].done)
		}
	}
	c.q, c.qHead, c.qBytes = nil, 0, 0
	return dropped
}

// writeLoop is the connection's only writer (besides gorilla's 1002 close on
// a protocol error, which is one whole frame and so cannot interleave with
// ours). It writes everything queued with one writev per round and exits when
// the queue is empty.
func (c *Conn) writeLoop() {
	b := batchPool.Get().(*writeBatch)
	defer b.release()
	for {
		c.mu.Lock()
		if c.broken != nil {
			c.writing = false
			c.mu.Unlock()
			return
		}
		b.frames, b.items = b.frames[:0], b.items[:0]
		var closeF *Frame
		if c.closeSent {
			// Nothing may follow a close frame.
			c.ping, c.pong = nil, nil
		}
		if c.pong != nil {
			b.frames = append(b.frames, c.pong)
			c.pong = nil
		}
		if c.ping != nil {
			b.frames = append(b.frames, c.ping)
			c.ping = nil
		}
		const maxBatchBytes = 1 << 20
		batchBytes := 0
		for c.qHead < len(c.q) && len(b.items) < 512 && batchBytes < maxBatchBytes {
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
			if c.closeFrame != nil && !c.closeSent {
				closeF = c.closeFrame
				b.frames = append(b.frames, closeF)
			}
		}
		if len(b.frames) == 0 {
			c.writing = false
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()

		// Encoding (and a shared frame's first compression) happens outside
		// the lock, so senders never wait for it.
		b.bufs = b.bufs[:0]
		for _, f := range b.frames {
			b.bufs = append(b.bufs, c.encode(f))
		}
		_ = c.nc.SetWriteDeadline(time.Now().Add(c.opts.WriteTimeout))
		b.out = b.bufs // WriteTo consumes its receiver; b.bufs keeps the array
		_, err := b.out.WriteTo(c.nc)
		if cap(c.scratch) > maxScratch {
			c.scratch = nil
		} else {
			c.scratch = c.scratch[:0]
		}
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded) {
				err = ErrWriteTimeout
			}
			c.writeFailed(err, b.items)
			return
		}
		for _, it := range b.items {
			if it.done != nil {
				it.done(nil)
			}
		}
		if closeF != nil {
			c.mu.Lock()
			c.closeSent = true
			c.mu.Unlock()
			close(c.closeWrote)
		}
	}
}

const (
	keepQueueCap = 16       // queue slots an emptied queue keeps
	maxScratch   = 64 << 10 // client encode buffer kept between batches
)

// writeBatch is a running writer's scratch space. Only running writers hold
// one, so idle connections cost nothing for it.
type writeBatch struct {
	frames []*Frame
	items  []outItem
	bufs   net.Buffers
	out    net.Buffers // the view WriteTo consumes (a field, so it is not a heap escape per batch)
}

var batchPool = sync.Pool{New: func() any { return new(writeBatch) }}

func (b *writeBatch) release() {
	clear(b.frames[:cap(b.frames)])
	clear(b.items[:cap(b.items)])
	clear(b.bufs[:cap(b.bufs)])
	b.frames, b.items, b.bufs, b.out = b.frames[:0], b.items[:0], b.bufs[:0], nil
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
	if !c.closeQueue {
		// No close frame was queued: report an abnormal closure, not code 0.
		c.closeCode = StatusAbnormalClosure
	}
	c.closeQueue = true
	if c.cause == nil {
		c.cause = err
	}
	wasSent := c.closeSent
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
}
