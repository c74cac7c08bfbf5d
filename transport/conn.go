package transport

import (
	"compress/flate"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"reflect"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
)

// Handler receives a connection's inbound messages and its end. Both methods
// are called from the connection's reader goroutine, never concurrently.
type Handler interface {
	// HandleMessage receives one complete data message. data belongs to the
	// handler. The reader reads nothing more until HandleMessage returns, so
	// blocking here applies backpressure to the peer.
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
// exists only while there is something to write; reads are done by one reader
// goroutine started by [Conn.Start]. See the package documentation.
type Conn struct {
	ws       *websocket.Conn
	nc       net.Conn
	isServer bool
	compress bool
	opts     ConnOptions

	subprotocol string
	request     *http.Request
	response    *http.Response
	principal   any
	clientIP    netip.Addr

	h       Handler
	started atomic.Bool
	done    chan struct{}

	lastSeen  atomic.Int64 // unix nanos of the last inbound frame
	pingAt    atomic.Int64 // unix nanos of the unanswered ping, for RTT
	lastPing  atomic.Int64 // unix nanos of the last ping we sent
	inHandler atomic.Bool  // the reader is inside Handler.HandleMessage
	rtt       atomic.Int64 // nanos, from the last pong that answered our ping

	mu         sync.Mutex
	q          []outItem // data lane, oldest first
	qHead      int       // index of the oldest live item in q
	qBytes     int
	pong       *Frame // control lane: latest pong to send (only the latest is owed)
	ping       *Frame // control lane: ping to send
	closeFrame *Frame // close frame to write after the data lane
	closeQueue bool   // a close frame is queued or written: no more data
	closeSent  bool   // the close frame has been written
	closeCode  StatusCode
	closeText  string
	byPeer     bool // the peer sent its close frame before we queued ours
	terminated bool // we closed the socket without a handshake (Terminate)
	peerClose  *CloseError
	cause      error // why we closed, if not a clean close
	broken     error // the writer failed; nothing more can be written
	writing    bool
	closeWrote chan struct{} // closed when the close frame is written or writing failed
	scratch    []byte        // client-side encode buffer, owned by the writer
}

func newConn(ws *websocket.Conn, isServer, compress bool, opts ConnOptions) *Conn {
	c := &Conn{
		ws:         ws,
		nc:         ws.NetConn(),
		isServer:   isServer,
		compress:   compress,
		opts:       opts,
		done:       make(chan struct{}),
		closeWrote: make(chan struct{}),
	}
	c.subprotocol = ws.Subprotocol()
	c.lastSeen.Store(time.Now().UnixNano())
	// gorilla would write pongs and close replies itself, racing our writer;
	// route them through our queue instead.
	ws.SetPingHandler(c.onPing)
	ws.SetPongHandler(c.onPong)
	ws.SetCloseHandler(c.onClose)
	return c
}

// Subprotocol returns the negotiated subprotocol, or "".
func (c *Conn) Subprotocol() string { return c.subprotocol }

// Compressed reports whether permessage-deflate was negotiated.
func (c *Conn) Compressed() bool { return c.compress }

// Request returns the upgrade request of a server connection (nil for a
// client connection). Its context is done: do not use it after the upgrade.
func (c *Conn) Request() *http.Request { return c.request }

// Response returns the handshake response of a client connection.
func (c *Conn) Response() *http.Response { return c.response }

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

// LastSeen returns when the last frame (of any kind) arrived from the peer.
//
// While the reader is held inside [Handler.HandleMessage] (backpressure from
// a slow application), the peer's silence cannot be observed, so LastSeen is
// the current time: a heartbeat must not kill a live peer because its own
// application is slow.
func (c *Conn) LastSeen() time.Time {
	if c.inHandler.Load() {
		return time.Now()
	}
	return time.Unix(0, c.lastSeen.Load())
}

// RTT returns the round-trip time measured by the last pong that answered a
// [Conn.Ping], or 0 if none has.
func (c *Conn) RTT() time.Duration { return time.Duration(c.rtt.Load()) }

// Done is closed when the connection is closed and its Handler has been told.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Buffered returns the number of data messages and payload bytes queued and
// not yet written (ws's bufferedAmount).
func (c *Conn) Buffered() (messages, bytes int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.q) - c.qHead, c.qBytes
}

// Start starts the reader, which passes each message to h and calls
// h.HandleClose once at the end. It must be called exactly once.
func (c *Conn) Start(h Handler) {
	if !c.started.CompareAndSwap(false, true) {
		panic("transport: Conn.Start called twice")
	}
	c.h = h
	go c.readLoop()
}

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

func (c *Conn) touch() { c.lastSeen.Store(time.Now().UnixNano()) }

func (c *Conn) onPing(data string) error {
	c.touch()
	c.mu.Lock()
	if !c.closeQueue && c.broken == nil {
		c.pong = newControlFrame(opPong, []byte(data))
		c.kickLocked()
	}
	c.mu.Unlock()
	return nil
}

func (c *Conn) onPong(string) error {
	c.touch()
	if at := c.pingAt.Swap(0); at != 0 {
		c.rtt.Store(time.Now().UnixNano() - at)
	}
	return nil
}

// onClose runs on the reader when the peer's close frame arrives: it answers
// with our own close frame (echoing the code) unless we already sent one.
func (c *Conn) onClose(code int, text string) error {
	c.touch()
	c.mu.Lock()
	c.peerClose = &CloseError{Code: StatusCode(code), Reason: text}
	if c.closeQueue {
		c.mu.Unlock()
		return nil
	}
	c.closeQueue, c.byPeer = true, true
	echo := StatusCode(code)
	c.closeCode = echo
	c.closeFrame = newControlFrame(opClose, closePayload(echo, ""))
	c.kickLocked()
	c.mu.Unlock()
	return nil
}

// readLoop is the connection's only reader. It hands each message to the
// Handler and, once the peer's close frame, an error or the close timeout ends
// reading, closes the socket and reports the end.
func (c *Conn) readLoop() {
	var err error
	for {
		var (
			typ int
			r   io.Reader
		)
		typ, r, err = c.ws.NextReader()
		if err != nil {
			break
		}
		c.touch()
		c.mu.Lock()
		draining := c.closeQueue
		c.mu.Unlock()
		if draining {
			// After our close frame, data is dropped (RFC 6455 7.1.1). Do
			// not read r: that would inflate compressed messages. The next
			// NextReader skips the message's frames raw.
			continue
		}
		var data []byte
		data, err = readMessage(r, c.opts.ReadLimit)
		if errors.Is(err, ErrMessageTooBig) {
			c.closeWith(StatusMessageTooBig, "message too big", ErrMessageTooBig, false)
			continue
		}
		if c.isInflateError(err) {
			// Corrupt or truncated deflate data: fail with 1007 (as Node's
			// ws does) rather than drop TCP as if the peer had.
			c.closeWith(StatusInvalidFramePayloadData, "invalid compressed data", fmt.Errorf("transport: inflate: %w", err), false)
			continue
		}
		if err != nil {
			break
		}
		if typ == websocket.TextMessage && !utf8.Valid(data) {
			c.closeWith(StatusInvalidFramePayloadData, "invalid UTF-8", ErrInvalidUTF8, false)
			continue
		}
		c.inHandler.Store(true)
		c.h.HandleMessage(c, MessageType(typ), data)
		c.inHandler.Store(false)
		c.touch()
	}
	info, linger := c.teardown(err)
	c.h.HandleClose(c, info)
	if linger {
		c.linger()
	}
	close(c.done)
}

// teardown ends the TCP connection the way the closing handshake says (or
// asks the caller to linger first) and returns what the handler is told.
func (c *Conn) teardown(readErr error) (info CloseInfo, linger bool) {
	var ce *websocket.CloseError
	peerClosed := errors.As(readErr, &ce)
	if peerClosed && ce.Code == websocket.CloseAbnormalClosure {
		// gorilla reports a stream that ended without a close frame (EOF,
		// also mid-frame) as a CloseError with 1006; no close frame arrived
		// (gorilla refuses a received 1006), so this is not a peer close.
		peerClosed, readErr = false, io.ErrUnexpectedEOF
	}
	protoErr := !peerClosed && isProtocolError(readErr)
	// gorilla writes its own 1002 for every protocol error it reports except
	// ErrReadLimit (a 64-bit frame length with the top bit set, or a message
	// length that overflows): for that one, send ours.
	ownClose := protoErr && errors.Is(readErr, websocket.ErrReadLimit)
	if ownClose {
		c.closeWith(StatusProtocolError, "invalid frame length", nil, true)
	}

	c.mu.Lock()
	info = CloseInfo{Err: c.cause}
	switch {
	case peerClosed:
		info.Code, info.Reason, info.ByPeer = StatusCode(ce.Code), ce.Text, c.byPeer
	case protoErr:
		// gorilla has already written a 1002 close frame.
		info.Code, info.Reason = StatusProtocolError, readErr.Error()
		info.Err = errors.Join(ErrProtocol, readErr)
		c.closeQueue = true
		if !ownClose {
			c.closeSent = true
		}
	case c.closeQueue && !c.byPeer:
		info.Code, info.Reason = c.closeCode, c.closeText
		if info.Err == nil {
			info.Err = readErr
			if isTimeout(readErr) {
				info.Err = ErrCloseTimeout
			}
		}
	default:
		info.Code, info.ByPeer = StatusAbnormalClosure, !c.terminated
		if info.Err == nil {
			info.Err = readErr
		}
		if errors.Is(readErr, io.EOF) || errors.Is(readErr, io.ErrUnexpectedEOF) {
			info.Err = io.ErrUnexpectedEOF
		}
	}
	c.closeQueue = true
	c.mu.Unlock()

	linger = false
	switch {
	case peerClosed:
		// Both close frames are out once the writer has put ours on the
		// wire. A server then closes TCP at once (it closes first, RFC 6455
		// 7.1.1); a client waits for the server's FIN.
		select {
		case <-c.closeWrote:
		case <-time.After(c.opts.WriteTimeout):
		}
		linger = !c.isServer
	case protoErr:
		if ownClose {
			select {
			case <-c.closeWrote:
			case <-time.After(c.opts.WriteTimeout):
			}
		}
		// The peer may still be sending: half-close and drain, so our 1002
		// reaches it instead of a reset.
		if cw, ok := c.nc.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		}
		linger = true
	}
	if !linger {
		_ = c.nc.Close()
	}
	c.mu.Lock()
	if c.broken == nil {
		c.broken = ErrClosed
	}
	dropped := c.dropQueueLocked()
	c.mu.Unlock()
	for _, d := range dropped {
		d(ErrClosed)
	}
	return info, linger
}

// linger waits, at most the close timeout, for the peer to end the TCP
// connection, discarding what it still sends, then closes the socket.
func (c *Conn) linger() {
	_ = c.nc.SetReadDeadline(time.Now().Add(c.opts.CloseTimeout))
	_, _ = io.Copy(io.Discard, c.nc)
	_ = c.nc.Close()
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// isProtocolError tells gorilla's protocol errors (it has already sent 1002)
// from I/O errors. gorilla reports them as plain errors prefixed "websocket: ".
func isProtocolError(err error) bool {
	if err == nil || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) {
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return false
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return false
	}
	return len(err.Error()) > 11 && err.Error()[:11] == "websocket: "
}

// isInflateError tells a decompression failure (corrupt or truncated deflate
// data in a compressed message) from I/O and protocol errors, which gorilla
// passes through compress/flate unchanged. A bare io.ErrUnexpectedEOF is
// flate's for a truncated stream, or the socket's (crypto/tls ends a stream
// so mid-record): gorilla records every error of its own frame reader in its
// unexported readErr, so the error is flate's when that is still nil
// (pinned by the "truncated stored block" cases of the CorruptCompressedData
// tests).
func (c *Conn) isInflateError(err error) bool {
	var ce flate.CorruptInputError
	var ie flate.InternalError
	if errors.As(err, &ce) || errors.As(err, &ie) {
		return true
	}
	if err != io.ErrUnexpectedEOF || !c.compress {
		return false
	}
	f := reflect.ValueOf(c.ws).Elem().FieldByName("readErr")
	return f.IsValid() && f.Kind() == reflect.Interface && f.IsNil()
}

// readMessage reads one message, refusing it once it exceeds limit bytes
// (limit < 0: no limit) without reading further, so a compressed bomb is never
// inflated past the limit.
func readMessage(r io.Reader, limit int64) ([]byte, error) {
	buf := make([]byte, 0, 512)
	for {
		if len(buf) == cap(buf) {
			next := 2 * cap(buf)
			// next-1 > limit is next > limit+1 without overflowing
			// when limit is math.MaxInt64.
			if limit >= 0 && int64(next)-1 > limit {
				next = int(limit + 1)
			}
			if next <= cap(buf) {
				return nil, ErrMessageTooBig
			}
			nb := make([]byte, len(buf), next)
			copy(nb, buf)
			buf = nb
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if limit >= 0 && int64(len(buf)) > limit {
			return nil, ErrMessageTooBig
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}
