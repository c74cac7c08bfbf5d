package transport

import (
	"bufio"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Handler receives a connection's inbound messages and its end. Both methods
// are called from the connection's reader goroutine, never concurrently.
type Handler interface {
	// HandleMessage receives one complete data message. data belongs to the
	// handler. The reader reads nothing more until HandleMessage returns, so
	// blocking here applies backpressure to the peer, unless it calls
	// [Conn.HandOffReading]: then a new reader reads on, and HandleMessage
	// may be called again before this call returns.
	HandleMessage(c *Conn, typ MessageType, data []byte)
	// HandleClose is called exactly once, when the closing handshake is over
	// (or failed). The socket may still linger for the peer's FIN, at most the
	// close timeout; [Conn.Done] is closed once it is closed.
	HandleClose(c *Conn, info CloseInfo)
}

// outItem is one queued data message.
type outItem struct {
	f    *Frame
	done func(error)
}

// Conn is one WebSocket connection, server-accepted or client-dialed.
//
// Writes go through an outbound queue drained by a writer goroutine that
// exists only while there is something to write (or, when the writer is
// idle, straight to the socket without blocking); reads are done by a reader
// goroutine started by [Conn.Start], which parks while the peer is idle.
// See the package documentation.
type Conn struct {
	// The fields are grouped by who writes them. The reader's, written for
	// every message read, come first; the writer's and the senders' last;
	// read-only and rarely written fields lie between them, so the reader
	// and the writer, running on different cores, never write to the same
	// cache line and no padding is needed (TestConnLayout holds both).

	// The reader's side.
	br          *bufio.Reader // reads nc; owned by the reader goroutine
	lastSeen    atomic.Int64  // unix nanos of the last inbound frame
	pausedAt    atomic.Int64  // unix nanos since the reader is inside Handler.HandleMessage, 0 if not
	pingAt      atomic.Int64  // unix nanos of the unanswered ping, for RTT
	rtt         atomic.Int64  // nanos, from the last pong that answered our ping
	in          inStats
	readerState atomic.Int32 // the idle reader's state (idle.go)
	started     atomic.Bool
	// readerGen counts reader hand-offs; handing is the generation of the
	// reader inside Handler.HandleMessage that may hand off, 0 if none
	// (HandOffReading).
	readerGen, handing atomic.Uint32
	isServer           bool
	compress           bool
	// direct: a send may write its frame itself (direct.go), else it
	// always goes through the writer.
	direct         bool
	pollRegistered bool // guarded by poll.mu

	// Set when the connection is made, then only read.
	nc   net.Conn
	raw  syscall.RawConn // nc's raw access, nil if none: parking (idle.go), writeDirect (direct.go)
	opts *connConfig     // shared by every connection of its Acceptor or Dialer: read-only
	h    Handler
	poll *poller // the idle reader's poller, nil when the connection cannot park

	subprotocol string
	request     *keptRequest // server connections only
	principal   any
	clientIP    netip.Addr
	pollID      uint64 // guarded by poll.mu
	// client is what only a client connection has; nil on the server, so
	// the many server connections do not carry it.
	client *clientSide

	// Written rarely: by Ping, and while closing.
	lastPing atomic.Int64 // unix nanos of the last ping we sent
	// closeWrittenAt is when our close frame was written (unix nanos, 0
	// before): the close timeout counts from it. Atomic, for the reader.
	closeWrittenAt atomic.Int64
	cl             closing        // the closing handshake (closing.go); guarded by mu
	broken         error          // the writer failed; nothing more can be written; guarded by mu
	writers        sync.WaitGroup // the running writer, if any; waited for before done
	// Two events, each a channel made only when someone waits for it (most
	// connections' Done is never asked for while they are open):
	// closeWrote, our close frame is written or writing failed; done, the
	// connection is over (Done). Guarded by mu.
	closeWrote, done lazyEvent
	cutDone          chan struct{} // closed when the writer has settled a cut; nil if none is pending
	dropped          int           // data messages accepted and later dropped unwritten, in all

	// The writer's and the senders' side, guarded by mu (the counters are
	// atomic, for Stats).
	mu         sync.Mutex
	q          []outItem // data lane, oldest first
	qHead      int       // index of the oldest live item in q
	qBytes     int
	ping       *Frame   // control lane: ping to send
	closeFrame *Frame   // close frame to write after the data lane
	pongs      []*Frame // control lane: owed pongs, oldest first, at most maxOwedPongs
	// inflight is the rest of a frame writeDirect could not write at
	// once, which the writer writes first.
	inflight  *inflight
	writing   bool
	batchHeld bool // the writer holds a batch taken from the queue (write.go)
	inWrite   bool // the writer is writing that batch (a cut interrupts it)
	cut       bool // drop the held batch's unwritten messages, finishing the frame in flight
	out       outStats
}

// newConn wraps an upgraded socket. br, if not nil, is a reader over nc that
// holds bytes read past the handshake; the connection reads through it. A
// nil br: the reader gets its buffer when it first reads (or the connection
// starts parked, idle.go).
func newConn(nc net.Conn, br *bufio.Reader, isServer bool, subprotocol string, compress bool, opts *connConfig) *Conn {
	c := &Conn{
		nc:          nc,
		br:          br,
		isServer:    isServer,
		compress:    compress,
		subprotocol: subprotocol,
		opts:        opts,
	}
	if !isServer {
		c.client = &clientSide{}
	}
	c.raw = rawConnOf(nc)
	c.direct = c.directAllowed()
	c.lastSeen.Store(time.Now().UnixNano())
	return c
}

// rawConnOf returns nc's raw access, or nil if it has none (TLS, an
// in-memory pipe, a wrapper).
func rawConnOf(nc net.Conn) syscall.RawConn {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return raw
}

// Subprotocol returns the negotiated subprotocol, or "".
func (c *Conn) Subprotocol() string { return c.subprotocol }

// Compressed reports whether permessage-deflate was negotiated.
func (c *Conn) Compressed() bool { return c.compress }

// Request returns the upgrade request of a server connection (nil for a
// client connection): its method, URL, headers, Host, RemoteAddr and TLS
// state. The handshake's own headers (Upgrade, Connection, Sec-WebSocket-Key,
// Sec-WebSocket-Version) are not kept: they meant nothing after the upgrade.
// Its Context is context.Background and its Body is empty. Treat it
// as read-only: the connection keeps the request's head as one string and
// builds the *http.Request from it when asked, so calls may return the
// same one (while it is in use) or a fresh copy.
func (c *Conn) Request() *http.Request {
	if c.request == nil {
		return nil
	}
	return c.request.get(c.nc)
}

// Response returns the handshake response of a client connection.
func (c *Conn) Response() *http.Response {
	if c.client == nil {
		return nil
	}
	return c.client.response
}

// clientSide is the state of a client connection that a server one has no
// use for.
type clientSide struct {
	response *http.Response
	// scratch is the encode buffer for masked frames, owned by the writer.
	scratch []byte
	// window is the last windowSize bytes the peer's compressed messages
	// inflated to, when the peer keeps its compression context across
	// messages (a server that did not answer server_no_context_takeover):
	// the next message's dictionary. Nil otherwise. Owned by the reader.
	window []byte
}

// Principal returns what the authentication hook returned during the upgrade.
func (c *Conn) Principal() any { return c.principal }

// RemoteAddr returns the socket's remote address.
func (c *Conn) RemoteAddr() net.Addr { return c.nc.RemoteAddr() }

// LocalAddr returns the socket's local address.
func (c *Conn) LocalAddr() net.Addr { return c.nc.LocalAddr() }

// ClientIP returns the client's address: the socket's remote address, or the
// address from X-Forwarded-For when the socket's peer is a trusted proxy (see
// [AcceptOptions.TrustedProxies]). For client connections it is the server's.
func (c *Conn) ClientIP() netip.Addr { return c.clientIP }

// LastSeen returns when the last frame (of any kind) was read from the peer.
// It is a fact, not a judgement: while the reader is paused (see
// [Conn.ReadPaused]) nothing is read, so LastSeen does not advance even if
// the peer is sending. A heartbeat weighs the two.
func (c *Conn) LastSeen() time.Time {
	return time.Unix(0, c.lastSeen.Load())
}

// ReadPaused returns when the reader was handed to [Handler.HandleMessage]
// and has not come back (backpressure from a slow application), or the zero
// time while the reader is reading.
func (c *Conn) ReadPaused() time.Time {
	if ns := c.pausedAt.Load(); ns != 0 {
		return time.Unix(0, ns)
	}
	return time.Time{}
}

// RTT returns the round-trip time measured by the last pong that answered a
// [Conn.Ping], or 0 if none has.
func (c *Conn) RTT() time.Duration { return time.Duration(c.rtt.Load()) }

// Done is closed when everything about the connection is over: the socket is
// closed, the Handler has been told (HandleClose has returned), and the
// writer has stopped, so no send callback runs after Done.
func (c *Conn) Done() <-chan struct{} { return c.event(&c.done) }

// Start starts the reader, which passes each message to h and calls
// h.HandleClose once at the end. It must be called exactly once.
func (c *Conn) Start(h Handler) {
	if !c.started.CompareAndSwap(false, true) {
		panic("transport: Conn.Start called twice")
	}
	c.h = h
	if c.opts.IdleReader > 0 && c.raw != nil {
		c.poll = thePollerFor()
	}
	// Nothing read past the handshake: the connection can start parked,
	// so a connection that stays idle never has a reader goroutine.
	if c.br == nil && c.poll != nil && c.park() {
		return
	}
	if c.br == nil {
		c.br = c.newReadBuffer()
	}
	go c.readLoop()
}

// lazyEvent is a one-time event whose channel is made only when someone
// waits for it. Guarded by Conn.mu.
type lazyEvent struct {
	ch    chan struct{}
	fired bool
}

// closedChan is the channel of every event that fired before anyone waited.
var closedChan = func() chan struct{} { ch := make(chan struct{}); close(ch); return ch }()

// event returns e's channel, closed once e has fired.
func (c *Conn) event(e *lazyEvent) <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e.ch == nil {
		if e.fired {
			return closedChan
		}
		e.ch = make(chan struct{})
	}
	return e.ch
}

// fire marks e as happened and wakes its waiters. It panics if e fired
// before, as closing a channel twice would.
func (c *Conn) fire(e *lazyEvent) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e.fired {
		panic("transport: event fired twice")
	}
	e.fired = true
	if e.ch != nil {
		close(e.ch)
	}
}
