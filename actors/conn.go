package actors

import (
	"net"
	"net/http"
	"net/netip"
	"sync/atomic"
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
	pid atomic.Pointer[actor.PID] // set when the actor starts
	log *zerolog.Logger           // the Handler's, or the connection's own with its fields
	// watch is the actor's NotifyStopped list, shared by the handles of
	// every session of a reconnecting client.
	watch *stopWatchers
}

// PID returns the connection actor's PID (nil before the actor has
// started, which the handle's holders never see but Handler.Range may).
func (c *Conn) PID() *actor.PID { return c.pid.Load() }

// ID returns the connection's id (its PID's Id; "" before the actor has
// started).
func (c *Conn) ID() string {
	if p := c.pid.Load(); p != nil {
		return p.Id
	}
	return ""
}

// Logger returns a logger carrying the connection's id and remote address
// (the Handler's logger itself while that logs nothing, which saves every
// connection a copy).
func (c *Conn) Logger() *zerolog.Logger { return c.log }

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
// error). done runs on the connection's writer, one of the Handler's few
// pooled writer goroutines, or for a frame that is dropped on whichever
// goroutine dropped it (see [transport.Conn.SendNotify]); it must not block
// (a done that blocks delays other connections' writes), and it always runs before
// the connection's transport Done is closed. It is not called when
// SendNotify returns an error.
func (c *Conn) SendNotify(f *transport.Frame, done func(error)) error {
	return c.t.SendNotify(f, done)
}

// Close starts the closing handshake and returns at once. Messages already
// queued are written first (each write bounded by WriteTimeout, so a peer
// that stops reading is cut off), then the close frame; CloseTimeout counts
// from that close frame being written. To drop the backlog instead (your own
// deadline passed), call Transport().DiscardQueued() after Close: the frame
// being written is finished and the close frame goes next. See
// [transport.Conn.Close].
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

// LastSeen returns when the last frame from the peer was read (see
// [transport.Conn.LastSeen]; the heartbeat also uses LastHeard).
func (c *Conn) LastSeen() time.Time { return c.t.LastSeen() }

// LastHeard returns when the peer was last heard from: a frame read, or on
// Linux data reaching the socket while the reader is held by a slow
// handler (see [transport.Conn.LastHeard]). The heartbeat judges by it.
func (c *Conn) LastHeard() time.Time { return c.t.LastHeard() }

// Transport returns the underlying transport connection.
func (c *Conn) Transport() *transport.Conn { return c.t }
