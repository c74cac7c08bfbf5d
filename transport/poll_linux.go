package transport

import (
	"errors"
	"sync"

	"golang.org/x/sys/unix"
)

// The idle-reader poller (Linux). A connection whose peer has sent nothing
// for IdleReader parks its reader: the goroutine ends, its read buffer is let
// go, and the socket waits in one epoll set shared by every
// connection of the process. When bytes (or the peer's FIN) arrive, the
// poller starts a new reader goroutine. Go's own netpoller keeps its
// registration of the socket; an epoll set may watch a descriptor another
// set watches too, and each wakes its own waiter.
//
// The registration is one-shot (EPOLLONESHOT): one event per arming, so a
// connection is handed to at most one reader, and re-arming (EPOLL_CTL_MOD)
// reports data that arrived before it, as epoll is level-triggered: nothing
// that comes between the reader's last read and the arming is missed.

// poller is the process's epoll set and the connections parked in it.
type poller struct {
	epfd int

	mu    sync.Mutex
	next  uint64
	conns map[uint64]*Conn // registered connections, by the id in their events
}

var (
	thePoller     *poller
	thePollerOnce sync.Once
)

// thePollerFor returns the process's poller, made at the first call, or nil
// if epoll is unavailable. Only sockets with raw access (Conn.raw) park.
func thePollerFor() *poller {
	thePollerOnce.Do(func() {
		epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
		if err != nil {
			return // no epoll: every connection keeps its reader
		}
		thePoller = &poller{epfd: epfd, conns: map[uint64]*Conn{}}
		go thePoller.run()
	})
	return thePoller
}

// errNotArmed: the socket could not be watched (it is closed).
var errNotArmed = errors.New("transport: socket not watched")

// arm watches c's socket for one readiness event: registered the first
// time, re-armed after.
func (p *poller) arm(c *Conn) error {
	p.mu.Lock()
	if c.pollID == 0 {
		p.next++
		c.pollID = p.next
		p.conns[c.pollID] = c
	}
	id, registered := c.pollID, c.pollRegistered
	c.pollRegistered = true
	p.mu.Unlock()
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT}
	// The event's 64 bits of user data hold the id.
	ev.Fd = int32(id)
	ev.Pad = int32(id >> 32)
	var ctlErr error
	err := c.raw.Control(func(fd uintptr) {
		op := unix.EPOLL_CTL_MOD
		if !registered {
			op = unix.EPOLL_CTL_ADD
		}
		ctlErr = unix.EpollCtl(p.epfd, op, int(fd), &ev)
	})
	if err != nil || ctlErr != nil {
		return errNotArmed
	}
	return nil
}

// forget drops c, whose reader has ended. The kernel removes the socket
// from the set when it is closed.
func (p *poller) forget(c *Conn) {
	p.mu.Lock()
	if c.pollID != 0 {
		delete(p.conns, c.pollID)
	}
	p.mu.Unlock()
}

// run waits for events and wakes the parked readers they name.
func (p *poller) run() {
	events := make([]unix.EpollEvent, 128)
	for {
		n, err := unix.EpollWait(p.epfd, events, -1)
		if err != nil {
			if err == unix.EINTR {
				continue
			}
			return // the set is gone: parked readers are woken by their closes
		}
		for i := range events[:n] {
			id := uint64(uint32(events[i].Fd)) | uint64(uint32(events[i].Pad))<<32
			p.mu.Lock()
			c := p.conns[id]
			p.mu.Unlock()
			if c != nil {
				c.wakeReader()
			}
		}
	}
}
