package wsactortest

import (
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// DefaultBuffer is how many bytes each direction of a connection made by a
// Net holds before a write waits for the reader: about what a loopback TCP
// socket's send and receive buffers hold together before autotuning.
const DefaultBuffer = 256 << 10

// BufferedPipe returns the two ends of an in-memory connection whose
// directions each buffer up to size bytes (DefaultBuffer if size <= 0),
// as a socket does: a write returns once its bytes are buffered, and waits
// only when the peer has left size bytes unread. Closing one end ends the
// peer's reads (io.EOF once the buffer is drained) and writes
// (net.ErrClosed); deadlines are as in net.Conn. Everything waits on
// channels and timers, so inside a testing/synctest bubble it all runs on
// fake time.
func BufferedPipe(size int) (net.Conn, net.Conn) {
	if size <= 0 {
		size = DefaultBuffer
	}
	ab, ba := newStream(size), newStream(size)
	a := &bufConn{in: ba, out: ab, closed: make(chan struct{})}
	b := &bufConn{in: ab, out: ba, closed: make(chan struct{})}
	a.rd.init()
	a.wd.init()
	b.rd.init()
	b.wd.init()
	return a, b
}

// stream is one direction: bytes written by one end, read by the other.
type stream struct {
	mu       sync.Mutex
	buf      []byte
	limit    int
	eof      bool          // the writing end closed
	gone     bool          // the reading end closed
	readable chan struct{} // a token: something changed for the reader
	writable chan struct{} // a token: something changed for the writer
}

func newStream(limit int) *stream {
	return &stream{limit: limit, readable: make(chan struct{}, 1), writable: make(chan struct{}, 1)}
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

type bufConn struct {
	in, out   *stream
	closeOnce sync.Once
	closed    chan struct{}
	rd, wd    deadline
}

func (c *bufConn) Read(p []byte) (int, error) {
	for {
		select {
		case <-c.closed:
			return 0, net.ErrClosed
		default:
		}
		if c.rd.expired() {
			return 0, os.ErrDeadlineExceeded
		}
		s := c.in
		s.mu.Lock()
		if len(s.buf) > 0 {
			n := copy(p, s.buf)
			s.buf = s.buf[n:]
			if len(s.buf) == 0 {
				s.buf = nil
			}
			s.mu.Unlock()
			signal(s.writable)
			return n, nil
		}
		eof := s.eof
		s.mu.Unlock()
		if eof {
			return 0, io.EOF
		}
		if len(p) == 0 {
			return 0, nil
		}
		select {
		case <-s.readable:
		case <-c.closed:
		case <-c.rd.wait():
		}
	}
}

func (c *bufConn) Write(p []byte) (int, error) {
	written := 0
	for {
		select {
		case <-c.closed:
			return written, net.ErrClosed
		default:
		}
		if c.wd.expired() {
			return written, os.ErrDeadlineExceeded
		}
		s := c.out
		s.mu.Lock()
		if s.gone {
			s.mu.Unlock()
			return written, net.ErrClosed
		}
		if room := s.limit - len(s.buf); room > 0 {
			n := min(room, len(p)-written)
			s.buf = append(s.buf, p[written:written+n]...)
			written += n
			s.mu.Unlock()
			signal(s.readable)
			if written == len(p) {
				return written, nil
			}
			continue
		}
		s.mu.Unlock()
		select {
		case <-s.writable:
		case <-c.closed:
		case <-c.wd.wait():
		}
	}
}

// Close ends both directions: the peer reads what is buffered and then
// io.EOF; what the peer had not yet read from us is dropped, as a socket
// closed with unread data drops it.
func (c *bufConn) Close() error {
	first := false
	c.closeOnce.Do(func() {
		first = true
		close(c.closed)
		c.out.mu.Lock()
		c.out.eof = true
		c.out.mu.Unlock()
		signal(c.out.readable)
		c.in.mu.Lock()
		c.in.gone = true
		c.in.buf = nil
		c.in.mu.Unlock()
		signal(c.in.writable)
		c.rd.stop()
		c.wd.stop()
	})
	if !first {
		return net.ErrClosed
	}
	return nil
}

func (c *bufConn) LocalAddr() net.Addr  { return pipeAddr{} }
func (c *bufConn) RemoteAddr() net.Addr { return pipeAddr{} }

func (c *bufConn) SetDeadline(t time.Time) error {
	c.rd.set(t)
	c.wd.set(t)
	return nil
}
func (c *bufConn) SetReadDeadline(t time.Time) error  { c.rd.set(t); return nil }
func (c *bufConn) SetWriteDeadline(t time.Time) error { c.wd.set(t); return nil }

// deadline is a settable point in time with a channel closed when it
// passes.
type deadline struct {
	mu    sync.Mutex
	timer *time.Timer
	ch    chan struct{} // closed once the deadline has passed
}

func (d *deadline) init() { d.ch = make(chan struct{}) }

func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil && !d.timer.Stop() {
		<-d.ch // the timer fired (or is firing): wait for it to close ch
	}
	d.timer = nil
	select {
	case <-d.ch:
		d.ch = make(chan struct{})
	default:
	}
	if t.IsZero() {
		return
	}
	wait := time.Until(t)
	if wait <= 0 {
		close(d.ch)
		return
	}
	ch := d.ch
	d.timer = time.AfterFunc(wait, func() { close(ch) })
}

func (d *deadline) wait() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ch
}

func (d *deadline) expired() bool {
	select {
	case <-d.wait():
		return true
	default:
		return false
	}
}

func (d *deadline) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
}
