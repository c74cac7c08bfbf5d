package transport

import (
	"bufio"
	"time"

	"github.com/wsactor/wsactor/internal/probe"
)

// Idle readers. A connection's reader that has waited IdleReader for the
// peer's next message parks: its goroutine ends and its read buffer is let
// go, and the socket waits in the process's poller (Linux,
// poll_linux.go) until bytes or the peer's FIN arrive; then a new reader
// goroutine takes over. An idle connection then costs no goroutine stack and
// no read buffer. Only the reader parks, only between messages and never
// while a close is under way; the writer is separate (it exists only while
// something is queued).
//
// Who runs the reader is one atomic state: running or parked. The reader
// parks itself; the poller's event, and anything that must make the reader
// see the socket now (Terminate, a failed write, our close frame written),
// wake it. Whoever moves parked -> running starts the new goroutine, so
// there is never more than one reader.

const (
	readerRunning int32 = iota
	readerParked
)

// park gives up the reader goroutine and its buffer, leaving the socket to
// the poller. It returns false, and the reader goes on, when it cannot park:
// a close is under way, or the socket cannot be watched (it is closed).
func (c *Conn) park() bool {
	if c.closeBegun() {
		return false
	}
	c.br = nil // garbage now: a woken reader gets a new one
	probe.ParkedReaders.Add(1)
	probe.Parks.Add(1)
	c.readerState.Store(readerParked)
	if err := c.poll.arm(c); err != nil {
		if c.readerState.CompareAndSwap(readerParked, readerRunning) {
			probe.ParkedReaders.Add(-1)
			c.br = c.newReadBuffer()
			return false
		}
		// Woken meanwhile: the new reader reads on (and finds the socket
		// closed).
	}
	return true
}

// wakeReader starts a reader for a parked connection; it does nothing if
// the reader is running.
func (c *Conn) wakeReader() {
	if c.readerState.CompareAndSwap(readerParked, readerRunning) {
		probe.ParkedReaders.Add(-1)
		go c.resume()
	}
}

// resume is a woken connection's new reader.
func (c *Conn) resume() {
	c.br = c.newReadBuffer()
	c.readLoop()
}

// bufferSize is the read buffer a woken reader gets.
func (c *Conn) bufferSize() int {
	if c.opts.readBuffer > 0 {
		return c.opts.readBuffer
	}
	return defaultReadBuffer
}

// newReadBuffer returns a new read buffer over the socket. Buffers are not
// pooled: with a sync.Pool of them, a flood of pings under load (parking
// after 1ms) lost bytes in about one run in forty, for a reason not found
// yet (docs/performance.md, idle connections); a fresh 1 KiB per wake costs
// little.
func (c *Conn) newReadBuffer() *bufio.Reader {
	return bufio.NewReaderSize(c.nc, c.bufferSize())
}

// restoreReadDeadline puts back the read deadline the close handshake
// wants (none before our close frame is written) after an idle wait. It
// reads the close time again after setting it: closeWritten stores that
// time before it sets its deadline, so whichever of the two runs last sets
// the right one.
func (c *Conn) restoreReadDeadline() {
	_ = c.nc.SetReadDeadline(c.closeReadDeadline())
	if c.closeWrittenAt.Load() != 0 {
		_ = c.nc.SetReadDeadline(c.closeReadDeadline())
	}
}

// closeExpired reports whether the close timeout has passed: our close
// frame was written CloseTimeout ago and the peer has not closed.
func (c *Conn) closeExpired() bool {
	ns := c.closeWrittenAt.Load()
	return ns != 0 && time.Now().UnixNano() >= ns+int64(c.opts.CloseTimeout)
}
