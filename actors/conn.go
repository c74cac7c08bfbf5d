package actors

import (
	"net"
	"net/http"
	"net/netip"
	"runtime/debug"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"

	"github.com/wsactor/wsactor/transport"
)

// PID is protoactor's process id. Compare PIDs with Equal, never ==.
type PID = actor.PID

// Conn is the handle of one connection actor, given to its behaviour in every
// Opened, Message and Closed. Its methods are safe from any goroutine and
// never block.
type Conn struct {
	t   *transport.Conn
	pid *actor.PID
	log zerolog.Logger
}

// PID returns the connection actor's PID.
func (c *Conn) PID() *actor.PID { return c.pid }

// ID returns the connection's id (its PID's Id).
func (c *Conn) ID() string { return c.pid.Id }

// Logger returns a logger carrying the connection's id and remote address.
func (c *Conn) Logger() *zerolog.Logger { return &c.log }

// Send queues a message. It returns transport.ErrClosed once the connection
// is closing and transport.ErrQueueFull when the outbound queue's policy
// refuses it.
func (c *Conn) Send(typ MessageType, data []byte) error {
	return c.t.Send(transport.NewFrame(typ, data))
}

// SendText queues a text message.
func (c *Conn) SendText(s string) error {
	return c.t.Send(transport.NewFrame(transport.MessageText, []byte(s)))
}

// SendFrame queues a prepared frame, e.g. one shared by a broadcast.
func (c *Conn) SendFrame(f *transport.Frame) error { return c.t.Send(f) }

// SendNotify queues f and calls done once it is written (nil) or lost (the
// error). done runs on the connection's writer goroutine and must not block;
// it is not called when SendNotify returns an error.
func (c *Conn) SendNotify(f *transport.Frame, done func(error)) error {
	return c.t.SendNotify(f, done)
}

// Close starts the closing handshake; queued messages are written first.
func (c *Conn) Close(code StatusCode, reason string) { c.t.Close(code, reason) }

// Ping sends a ping; the pong updates RTT.
func (c *Conn) Ping(p []byte) error { return c.t.Ping(p) }

// Buffered returns the queued (not yet written) messages and bytes.
func (c *Conn) Buffered() (messages, bytes int) { return c.t.Buffered() }

// Request returns the upgrade request (server connections only).
func (c *Conn) Request() *http.Request { return c.t.Request() }

// Response returns the handshake response (client connections only).
func (c *Conn) Response() *http.Response { return c.t.Response() }

// Principal returns what the authentication hook returned.
func (c *Conn) Principal() any { return c.t.Principal() }

// ClientIP returns the client's address (see transport.ClientIP).
func (c *Conn) ClientIP() netip.Addr { return c.t.ClientIP() }

// RemoteAddr returns the socket's remote address.
func (c *Conn) RemoteAddr() net.Addr { return c.t.RemoteAddr() }

// Subprotocol returns the negotiated subprotocol.
func (c *Conn) Subprotocol() string { return c.t.Subprotocol() }

// Compressed reports whether permessage-deflate was negotiated.
func (c *Conn) Compressed() bool { return c.t.Compressed() }

// RTT returns the last measured ping round-trip time.
func (c *Conn) RTT() time.Duration { return c.t.RTT() }

// LastSeen returns when the peer last sent any frame.
func (c *Conn) LastSeen() time.Time { return c.t.LastSeen() }

// Transport returns the underlying transport connection.
func (c *Conn) Transport() *transport.Conn { return c.t }

// connActor is the actor behind every connection. It owns the socket's
// lifetime, delivers Opened/Message/Closed to the user's behaviour, recovers
// its panics, and turns Send/Close messages into writes.
type connActor struct {
	user    actor.Actor
	conn    *Conn
	credits chan struct{} // inbound messages in the mailbox, bounded
	stopped chan struct{} // closed on Stopped: the reader stops waiting
	root    *actor.RootContext
	log     zerolog.Logger
	onStop  func(*Conn) // bookkeeping of the owner (Handler or Dial)
	opened  chan<- struct{}

	closed bool // Closed was delivered
}

func (a *connActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		a.conn.pid = ctx.Self()
		a.conn.log = a.log.With().Str("conn", ctx.Self().Id).Str("remote", a.conn.t.RemoteAddr().String()).Logger()
		a.conn.log.Debug().Msg("connection opened")
		a.deliver(ctx, m)
		a.deliver(ctx, &Opened{Conn: a.conn})
		if a.opened != nil {
			close(a.opened)
		}
		a.conn.t.Start(a)
	case *Message:
		a.deliver(ctx, m)
		<-a.credits
	case *Send:
		a.send(ctx, m)
	case *Close:
		a.conn.t.Close(m.Code, m.Reason)
	case *closedEvent:
		a.conn.log.Debug().Int("code", int(m.info.Code)).AnErr("cause", m.info.Err).Bool("by_peer", m.info.ByPeer).Msg("connection closed")
		a.deliverClosed(ctx, m.info.Code, m.info.Reason, m.info.ByPeer, m.info.Err)
		ctx.Stop(ctx.Self())
	case *actor.Stopping:
		if !a.closed {
			// Stopped from outside before the socket ended.
			a.conn.t.CloseWithError(transport.StatusGoingAway, "going away", ErrStopped)
			a.deliverClosed(ctx, transport.StatusGoingAway, "going away", false, ErrStopped)
		}
		a.deliver(ctx, m)
	case *actor.Stopped:
		a.conn.log.Debug().Msg("connection actor stopped")
		close(a.stopped)
		a.deliver(ctx, m)
		if a.onStop != nil {
			select {
			case <-a.conn.t.Done():
				a.onStop(a.conn)
			default:
				// The closing handshake is still running; account for the
				// connection once its goroutines are gone.
				go func() { <-a.conn.t.Done(); a.onStop(a.conn) }()
			}
		}
	default:
		a.deliver(ctx, m)
	}
}

func (a *connActor) send(ctx actor.Context, m *Send) {
	f := m.Frame
	if f == nil {
		f = transport.NewFrame(m.Type, m.Data)
	}
	if m.ReplyTo == nil {
		_ = a.conn.t.Send(f)
		return
	}
	root, to, id := a.root, m.ReplyTo, m.ID
	if err := a.conn.t.SendNotify(f, func(err error) { root.Send(to, &Sent{ID: id, Err: err}) }); err != nil {
		ctx.Send(to, &Sent{ID: id, Err: err})
	}
}

func (a *connActor) deliverClosed(ctx actor.Context, code StatusCode, reason string, byPeer bool, err error) {
	if a.closed {
		return
	}
	a.closed = true
	a.deliver(ctx, &Closed{Conn: a.conn, Code: code, Reason: reason, ByPeer: byPeer, Err: err})
}

// deliver runs the user's Receive with msg as the current message, recovering
// a panic: it is logged once with its stack and the connection closes with
// 1011.
func (a *connActor) deliver(ctx actor.Context, msg any) {
	defer func() {
		if r := recover(); r != nil {
			pe := &PanicError{Value: r, Message: msg, Stack: debug.Stack()}
			a.conn.log.Error().Str("panic", pe.Error()).Bytes("stack", pe.Stack).Msg("connection handler panicked; closing with 1011")
			a.conn.t.CloseWithError(transport.StatusInternalError, "internal error", pe)
		}
	}()
	if msg == ctx.Message() {
		a.user.Receive(ctx)
		return
	}
	a.user.Receive(withMessage{ctx, msg})
}

// withMessage presents a message the connection actor made up (Opened,
// Closed) as the current message.
type withMessage struct {
	actor.Context
	msg any
}

func (c withMessage) Message() any { return c.msg }

// HandleMessage implements transport.Handler on the reader goroutine: it
// waits for a slot in the inbox (backpressure), then posts to the mailbox.
func (a *connActor) HandleMessage(_ *transport.Conn, typ MessageType, data []byte) {
	select {
	case a.credits <- struct{}{}:
	case <-a.stopped:
		return
	}
	a.root.Send(a.conn.pid, &Message{Conn: a.conn, Type: typ, Data: data})
}

// HandleClose implements transport.Handler.
func (a *connActor) HandleClose(_ *transport.Conn, info transport.CloseInfo) {
	a.root.Send(a.conn.pid, &closedEvent{info: info})
}
