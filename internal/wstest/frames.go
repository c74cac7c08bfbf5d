// Package wstest is test and benchmark plumbing shared by wsactor's
// packages: an in-memory network (Net, Server) and Pipe, a connected pair of
// transport connections made with the real handshake over net.Pipe, both of
// which run on fake time inside a testing/synctest bubble; and a cheap
// counter of the frames a server sends, read straight off client sockets
// without a WebSocket library (so the client side costs almost nothing). It
// is not API.
package wstest

import (
	"bufio"
	"encoding/binary"
	"io"
	"sync"
	"sync/atomic"
)

// FrameCounter counts the data frames that server connections deliver to
// any number of client sockets, and lets a benchmark wait for a total.
type FrameCounter struct {
	total  atomic.Int64
	target atomic.Int64
	mu     sync.Mutex
	cond   *sync.Cond
}

// NewFrameCounter returns a FrameCounter at zero.
func NewFrameCounter() *FrameCounter {
	c := &FrameCounter{}
	c.cond = sync.NewCond(&c.mu)
	return c
}

// Read reads unmasked server frames from br, counting data frames and
// skipping control frames, until the connection ends. It allocates nothing.
func (c *FrameCounter) Read(br *bufio.Reader) {
	ReadDataFrames(br, func() {
		if c.total.Add(1) == c.target.Load() {
			c.mu.Lock()
			c.cond.Broadcast()
			c.mu.Unlock()
		}
	})
}

// ReadDataFrames reads unmasked server frames from br until the
// connection ends, calling each for every data frame and skipping control
// frames and all payloads. It allocates nothing.
func ReadDataFrames(br *bufio.Reader, each func()) {
	var hdr [8]byte
	for {
		if _, err := io.ReadFull(br, hdr[:2]); err != nil {
			return
		}
		op := hdr[0] & 0x0f
		n := int(hdr[1] & 0x7f)
		switch n {
		case 126:
			if _, err := io.ReadFull(br, hdr[:2]); err != nil {
				return
			}
			n = int(binary.BigEndian.Uint16(hdr[:2]))
		case 127:
			if _, err := io.ReadFull(br, hdr[:8]); err != nil {
				return
			}
			n = int(binary.BigEndian.Uint64(hdr[:8]))
		}
		if _, err := br.Discard(n); err != nil {
			return
		}
		if op < 0x8 { // a data frame
			each()
		}
	}
}

// Total returns the data frames counted so far.
func (c *FrameCounter) Total() int64 { return c.total.Load() }

// WaitTotal blocks until x data frames have been counted in all.
func (c *FrameCounter) WaitTotal(x int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.target.Store(x)
	for c.total.Load() < x {
		c.cond.Wait()
	}
}
