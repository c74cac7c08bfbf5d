package supervisor

import (
	"errors"
	"sync"
	"time"
)

// Peer is what a Heartbeat needs of a connection; *transport.Conn
// implements it.
type Peer interface {
	// LastSeen is when the last frame was read from the peer. It stands
	// still while the application holds the reader.
	LastSeen() time.Time
	// LastHeard is when the peer was last heard from: never before
	// LastSeen, and later when data from the peer has reached the socket
	// but not been read yet. It may cost a system call, so the Heartbeat
	// asks only when LastSeen is at least Interval old.
	LastHeard() time.Time
	// LastPing is when we last pinged it.
	LastPing() time.Time
	// Ping queues a ping frame.
	Ping(p []byte) error
	// Terminate closes the socket without a handshake, reporting cause.
	Terminate(cause error)
}

// ErrHeartbeatTimeout is the cause reported (in transport.CloseInfo.Err and
// actors.Closed.Err) for a connection killed because its peer was not heard
// from, not even a pong, within the heartbeat's Interval+Timeout.
var ErrHeartbeatTimeout = errors.New("supervisor: heartbeat timeout")

// HeartbeatOptions configures liveness checks. The zero value means: ping a
// connection not heard from for 30s, kill it when it has not been heard from
// for 60s.
type HeartbeatOptions struct {
	// Interval is how long a connection may go unheard (see [Heartbeat])
	// before it is pinged; it is pinged again every Interval while it stays
	// unheard. Zero means 30s (as the ws README); negative disables
	// heartbeats.
	Interval time.Duration
	// Timeout is how long after Interval a silent peer is given to answer:
	// a connection not heard from for Interval+Timeout is terminated
	// (socket closed, actor stopped, Closed.Err is ErrHeartbeatTimeout).
	// Zero means Interval.
	Timeout time.Duration
}

func (o HeartbeatOptions) withDefaults() HeartbeatOptions {
	if o.Interval == 0 {
		o.Interval = 30 * time.Second
	}
	if o.Timeout <= 0 {
		o.Timeout = o.Interval
	}
	return o
}

// Heartbeat pings idle connections and kills silent ones, for any number of
// connections with one goroutine and one ticker: every tick (a tenth of
// min(Interval, Timeout)) it looks at when each peer was last heard from.
//
// A peer is heard from when a frame from it is read ([Peer.LastSeen]) and,
// on Linux, when data from it reaches the socket even if nothing reads it
// ([Peer.LastHeard]): while a slow handler holds a connection's reader
// (backpressure), the peer's pongs wait unread in the kernel, and the kernel
// says when they came. The rule is the same whatever the handler does:
//
//   - a connection not heard from for Interval is pinged, and again every
//     Interval while it stays unheard;
//   - a connection not heard from for Interval+Timeout is terminated with
//     ErrHeartbeatTimeout, between Interval+Timeout and
//     Interval+Timeout+tick (to the kernel's clock tick of a few
//     milliseconds) after the peer was last heard from.
//
// So a dead peer is terminated on time even behind a handler that never
// returns, and a live peer that answers pings is kept behind a slow one.
// A frame that waited in the socket's buffer counts again when the reader
// reads it. Two live peers look silent and are terminated: one that has
// filled the connection's receive buffer while the reader was held, since it
// can send nothing more, not even a pong; and, where the kernel does not
// report the data it has received (systems other than Linux, sockets that
// are not TCP), any peer whose reader is held for Interval+Timeout after the
// last frame read. Keep handlers short (see the backpressure guide) and
// neither happens.
//
// It does not use protoactor's SetReceiveTimeout, which races at the pinned
// version. Browsers cannot see ping frames but answer them; a browser page
// that wants to detect a dead server sends its own application-level ping
// message.
type Heartbeat struct {
	opts HeartbeatOptions
	tick time.Duration

	mu      sync.Mutex
	conns   map[Peer]struct{}
	running bool
	stop    chan struct{}
	done    chan struct{}
}

// NewHeartbeat returns a Heartbeat; its goroutine runs only while it has
// connections. A disabled Heartbeat (negative Interval) ignores Add.
func NewHeartbeat(opts HeartbeatOptions) *Heartbeat {
	opts = opts.withDefaults()
	tick := min(opts.Interval, opts.Timeout) / 10
	if tick < 5*time.Millisecond {
		tick = 5 * time.Millisecond
	}
	return &Heartbeat{opts: opts, tick: tick, conns: map[Peer]struct{}{}}
}

// Enabled reports whether the heartbeat pings and kills at all.
func (h *Heartbeat) Enabled() bool { return h.opts.Interval > 0 }

// Add watches c until Remove.
func (h *Heartbeat) Add(c Peer) {
	if !h.Enabled() {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.conns[c] = struct{}{}
	if !h.running {
		h.running = true
		h.stop, h.done = make(chan struct{}), make(chan struct{})
		go h.run(h.stop, h.done)
	}
}

// Remove stops watching c. The goroutine exits when nothing is watched.
func (h *Heartbeat) Remove(c Peer) {
	h.mu.Lock()
	delete(h.conns, c)
	var stop, done chan struct{}
	if h.running && len(h.conns) == 0 {
		h.running = false
		stop, done = h.stop, h.done
	}
	h.mu.Unlock()
	if stop != nil {
		close(stop)
		<-done
	}
}

// Len returns the number of watched connections.
func (h *Heartbeat) Len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.conns)
}

func (h *Heartbeat) run(stop, done chan struct{}) {
	defer close(done)
	t := time.NewTicker(h.tick)
	defer t.Stop()
	var batch []Peer
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			batch = h.sweep(now, batch[:0])
		}
	}
}

// sweep pings idle connections and terminates silent ones. It works on a
// snapshot so the lock is not held during I/O calls.
func (h *Heartbeat) sweep(now time.Time, batch []Peer) []Peer {
	h.mu.Lock()
	for c := range h.conns {
		batch = append(batch, c)
	}
	h.mu.Unlock()
	for _, c := range batch {
		h.check(c, now)
	}
	clear(batch)
	return batch
}

func (h *Heartbeat) check(c Peer, now time.Time) {
	if now.Sub(c.LastSeen()) < h.opts.Interval {
		return // read from recently: nothing to do, and no system call
	}
	idle := now.Sub(c.LastHeard())
	switch {
	case idle >= h.opts.Interval+h.opts.Timeout:
		c.Terminate(ErrHeartbeatTimeout)
	case idle >= h.opts.Interval && now.Sub(c.LastPing()) >= h.opts.Interval:
		_ = c.Ping(nil)
	}
}
