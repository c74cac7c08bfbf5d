package transport

import (
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// NetConn starts c and returns it as a net.Conn, the equivalent of ws's
// createWebSocketStream: Read returns the bytes of successive messages as one
// stream, and each Write sends one message of type typ and returns once it is
// written to the socket (so io.Copy into it is paced by the peer).
//
// Read returns io.EOF after a normal close (1000 or 1001) and a CloseError
// for any other close code. Close starts the closing handshake with 1000 and
// waits for it to finish (at most the close timeout). Deadlines apply to
// pending and future calls, as net.Conn requires.
func NetConn(c *Conn, typ MessageType) net.Conn {
	s := &stream{
		c:      c,
		typ:    typ,
		msgs:   make(chan []byte, 16),
		stop:   make(chan struct{}),
		closed: make(chan struct{}),
		rdl:    newDeadline(),
		wdl:    newDeadline(),
	}
	c.Start(s)
	return s
}

type stream struct {
	c      *Conn
	typ    MessageType
	msgs   chan []byte
	stop   chan struct{} // closed by Close: the reader stops waiting on msgs
	closed chan struct{} // closed by HandleClose
	info   CloseInfo

	readMu sync.Mutex
	cur    []byte

	once     sync.Once
	rdl, wdl *deadline
}

func (s *stream) HandleMessage(_ *Conn, _ MessageType, data []byte) {
	select {
	case s.msgs <- data:
	case <-s.stop:
	}
}

func (s *stream) HandleClose(_ *Conn, info CloseInfo) {
	s.info = info
	close(s.closed)
}

func (s *stream) Read(p []byte) (int, error) {
	s.readMu.Lock()
	defer s.readMu.Unlock()
	for len(s.cur) == 0 {
		select {
		case m := <-s.msgs:
			s.cur = m
			continue
		default:
		}
		select {
		case m := <-s.msgs:
			s.cur = m
		case <-s.closed:
			select {
			case m := <-s.msgs:
				s.cur = m
				continue
			default:
			}
			if s.info.Code == StatusNormalClosure || s.info.Code == StatusGoingAway {
				return 0, io.EOF
			}
			return 0, CloseError{Code: s.info.Code, Reason: s.info.Reason}
		case <-s.rdl.wait():
			return 0, os.ErrDeadlineExceeded
		}
	}
	n := copy(p, s.cur)
	s.cur = s.cur[n:]
	return n, nil
}

func (s *stream) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	done := make(chan error, 1)
	if err := s.c.SendNotify(NewFrame(s.typ, p), func(err error) { done <- err }); err != nil {
		return 0, err
	}
	select {
	case err := <-done:
		if err != nil {
			return 0, err
		}
		return len(p), nil
	case <-s.wdl.wait():
		return 0, os.ErrDeadlineExceeded
	}
}

func (s *stream) Close() error {
	s.once.Do(func() {
		close(s.stop)
		s.c.Close(StatusNormalClosure, "")
	})
	<-s.c.Done()
	return nil
}

func (s *stream) LocalAddr() net.Addr  { return s.c.LocalAddr() }
func (s *stream) RemoteAddr() net.Addr { return s.c.RemoteAddr() }

func (s *stream) SetDeadline(t time.Time) error {
	s.rdl.set(t)
	s.wdl.set(t)
	return nil
}
func (s *stream) SetReadDeadline(t time.Time) error  { s.rdl.set(t); return nil }
func (s *stream) SetWriteDeadline(t time.Time) error { s.wdl.set(t); return nil }

// deadline is a channel that is closed when the deadline passes; setting a
// new deadline wakes nobody early and re-arms the channel.
type deadline struct {
	mu     sync.Mutex
	timer  *time.Timer
	cancel chan struct{}
}

func newDeadline() *deadline { return &deadline{cancel: make(chan struct{})} }

func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil && !d.timer.Stop() {
		<-d.cancel // the timer fired and closed it; wait is over
	}
	d.timer = nil
	closed := isClosed(d.cancel)
	if t.IsZero() {
		if closed {
			d.cancel = make(chan struct{})
		}
		return
	}
	if dur := time.Until(t); dur > 0 {
		if closed {
			d.cancel = make(chan struct{})
		}
		ch := d.cancel
		d.timer = time.AfterFunc(dur, func() { close(ch) })
		return
	}
	if !closed {
		close(d.cancel)
	}
}

func (d *deadline) wait() chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cancel
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
