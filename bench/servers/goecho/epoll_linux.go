package main

import (
	"bufio"
	"errors"
	"net"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// loops are the epoll event loops; connections are dealt to them in turn.
type loops struct {
	all  []*loop
	next atomic.Uint32
}

// loop is one goroutine waiting on one level-triggered epoll set.
type loop struct {
	epfd  int
	mu    sync.Mutex
	conns map[int32]*econn
}

// econn is a connection served by a loop: its own descriptor (a duplicate
// of the accepted socket's, non-blocking) and its unread bytes.
type econn struct {
	fd  int
	in  []byte
	out []byte
}

func startLoops(n int) (*loops, error) {
	ls := &loops{}
	for range n {
		epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
		if err != nil {
			return nil, err
		}
		l := &loop{epfd: epfd, conns: map[int32]*econn{}}
		ls.all = append(ls.all, l)
		go l.run()
	}
	return ls, nil
}

// adopt moves c to a loop: the loop reads and writes a duplicate of its
// descriptor, and c itself is closed.
func (ls *loops) adopt(c net.Conn, br *bufio.Reader) {
	defer c.Close()
	sc, ok := c.(*net.TCPConn)
	if !ok {
		return
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return
	}
	fd := -1
	_ = raw.Control(func(s uintptr) { fd, _ = unix.Dup(int(s)) })
	if fd < 0 || unix.SetNonblock(fd, true) != nil {
		return
	}
	ec := &econn{fd: fd, in: make([]byte, 0, 64<<10)}
	if n := br.Buffered(); n > 0 {
		b, _ := br.Peek(n)
		ec.in = append(ec.in, b...)
	}
	l := ls.all[int(ls.next.Add(1))%len(ls.all)]
	l.mu.Lock()
	l.conns[int32(fd)] = ec
	l.mu.Unlock()
	if len(ec.in) > 0 && !l.handle(ec, 0) {
		l.drop(ec)
		return
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(fd)}
	if unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &ev) != nil {
		l.drop(ec)
	}
}

func (l *loop) drop(ec *econn) {
	l.mu.Lock()
	delete(l.conns, int32(ec.fd))
	l.mu.Unlock()
	_ = unix.Close(ec.fd) // also leaves the epoll set
}

func (l *loop) run() {
	events := make([]unix.EpollEvent, 256)
	for {
		n, err := unix.EpollWait(l.epfd, events, -1)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			panic(err)
		}
		for _, ev := range events[:n] {
			l.mu.Lock()
			ec := l.conns[ev.Fd]
			l.mu.Unlock()
			if ec != nil && !l.handle(ec, ev.Events) {
				l.drop(ec)
			}
		}
	}
}

// handle reads ec once (level-triggered: what this read leaves is reported
// again) and writes back what it completed. False: the connection is over.
func (l *loop) handle(ec *econn, events uint32) bool {
	if events != 0 {
		if len(ec.in) == cap(ec.in) {
			return false // a frame bigger than the buffer
		}
		n, err := unix.Read(ec.fd, ec.in[len(ec.in):cap(ec.in)])
		if err == unix.EAGAIN {
			return true
		}
		if n <= 0 {
			return false
		}
		ec.in = ec.in[:len(ec.in)+n]
	}
	out, used, end := echoFrames(ec.in, ec.out[:0])
	ec.out = out
	for len(out) > 0 {
		// A floor, not a server: a socket that does not take the echo at
		// once is written again until it does (echo's messages are small).
		n, err := unix.Write(ec.fd, out)
		if err != nil && err != unix.EAGAIN {
			return false
		}
		out = out[max(n, 0):]
	}
	ec.in = ec.in[:copy(ec.in, ec.in[used:])]
	return !end
}
