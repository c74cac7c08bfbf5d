package transport

import (
	"time"

	"github.com/wsactor/wsactor/internal/probe"
)

// Direct writes. A Send that finds the connection's writer idle and nothing
// waiting (no queued message, pong, ping or close frame) writes its frame
// from the sending goroutine with one non-blocking write system call, instead
// of handing it to a writer goroutine: for a request/response connection
// (echo, a game's input and its answer) that is one goroutine hand-off and one
// wake-up less per message. The sender never blocks: if the socket takes only
// part of the frame (its buffer is full), the rest becomes the connection's
// in-flight bytes, which a writer started for them writes first, before
// anything else; a write that fails hands the frame to the writer too, which
// meets the same error and fails the connection as any failed write does.
//
// Only a server connection on a plain socket (TCP or Unix, not TLS) takes
// this path, for a frame sent without a callback whose bytes are ready (not
// compressed, or already compressed at this connection's level), and only
// for the frame's first send: a broadcast frame goes directly to at most one
// member, its sender does not make one system call per member (measured:
// with every member written directly, a room's fan-out at full load fell to
// a tenth, each delivery its own write on the room's goroutine; through the
// writers they are batched, on both cores). Everything else, and every frame
// while something is queued, goes through the queue.

// directAllowed reports whether writeDirect may write to c's socket.
func (c *Conn) directAllowed() bool {
	return c.isServer && directSupported && !c.opts.directOff && c.raw != nil && c.interruptible()
}

// idleWriterLocked reports whether nothing is being written or waits to be:
// a frame written now goes out in order.
func (c *Conn) idleWriterLocked() bool {
	return !c.writing && c.broken == nil && c.qHead == len(c.q) && len(c.pongs) == 0 &&
		c.ping == nil && c.closeFrame == nil && c.inflight == nil
}

// readyBytes returns f's bytes for this connection if they need no work
// (compression) to make, else nil.
func (c *Conn) readyBytes(f *Frame) []byte {
	if !c.wouldCompress(f) {
		return f.plain
	}
	if d := f.deflatedAt(c.opts.Compression.Level); d != nil {
		if d.bytes == nil {
			return f.plain // not worth compressing
		}
		return d.bytes
	}
	return nil
}

// writeDirect writes b, the bytes of f, from the sender's goroutine. Called
// with c.mu held and the writer idle (idleWriterLocked); it takes the
// writer's role for the write, so nothing else writes meanwhile, and
// unlocks.
func (c *Conn) writeDirect(f *Frame, b []byte) {
	c.writing = true
	c.writers.Add(1)
	c.mu.Unlock()

	// An error (a full socket, or a real one) leaves the rest to the
	// writer, which meets a real error again and fails the connection.
	n, _ := directWrite(c.raw, b)
	if n > 0 {
		c.out.bytesOut.Add(uint64(n))
	}
	c.out.writes.Add(1)
	probe.DirectWrites.Add(1)
	payload := len(f.plain) - f.hdrLen
	c.mu.Lock()
	if n < len(b) {
		probe.DirectPartials.Add(1)
		// The rest is the writer's, first thing; the message counts as
		// written once it is.
		c.inflight = &inflight{rest: b[n:], payload: payload}
		c.mu.Unlock()
		c.startWriter()
		return
	}
	c.countWritten(payload)
	c.writing = false
	if c.pendingLocked() {
		c.writing = true
		c.mu.Unlock()
		c.startWriter() // keeps our Add for the writer it starts
		return
	}
	c.mu.Unlock()
	c.writers.Done()
}

// inflight is the rest of a frame a direct write began.
type inflight struct {
	rest    []byte
	payload int // the message's payload length, for the stats
}

// countWritten counts one data message, of payload bytes, as written.
func (c *Conn) countWritten(payload int) {
	c.out.frames.Add(1)
	c.out.msgsOut.Add(1)
	c.out.payloadOut.Add(uint64(payload))
}

// pendingLocked reports whether something waits for the writer.
func (c *Conn) pendingLocked() bool {
	return c.broken == nil && (c.qHead < len(c.q) || len(c.pongs) > 0 || c.ping != nil ||
		(c.closeFrame != nil && !c.cl.sent()) || c.inflight != nil)
}

// startWriter starts a writer for a connection whose c.writing is already
// set and whose c.writers already counts it.
func (c *Conn) startWriter() {
	if p := c.opts.writers; p != nil {
		p.start(c)
	} else {
		go c.runWriter()
	}
}

// finishInflight writes the rest of a frame a direct write began, before
// anything else. It cannot be cut short: the peer must see whole frames. It
// reports false when the write failed (the writer has stopped).
func (c *Conn) finishInflight(b *writeBatch) bool {
	c.mu.Lock()
	p := c.inflight
	c.inflight = nil
	if c.broken != nil {
		// Torn down while the direct write ran: the socket is closed.
		c.writing = false
		c.mu.Unlock()
		return false
	}
	c.mu.Unlock()
	if p == nil {
		return true
	}
	_ = c.nc.SetWriteDeadline(time.Now().Add(c.opts.WriteTimeout))
	b.beforeBlocking()
	n, err := c.nc.Write(p.rest)
	c.out.bytesOut.Add(uint64(n))
	c.out.writes.Add(1)
	if err != nil {
		if isWriteTimeout(err) {
			err = ErrWriteTimeout
		}
		c.writeFailed(err, nil)
		return false
	}
	c.countWritten(p.payload)
	return true
}
