package actors

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"

	"github.com/wsactor/wsactor/supervisor"
	"github.com/wsactor/wsactor/transport"
)

// A connection is three small types, one per goroutine or role:
//
//   - connActor is the actor, on the actor's goroutine: it hosts the user's
//     behaviour, delivers Opened/Closed, turns Send/Close into writes and owns
//     the current session (session);
//   - reader is the transport.Handler of one session, on the transport's
//     reader goroutine: it decodes, waits for room in the inbox, and posts to
//     the mailbox. It shares only the inbox and the decoder's host with the
//     actor, both safe for that;
//   - redialer is a dialed connection's reconnect state (client only), used
//     by the actor and by its redial timer's goroutine.

// failurePolicies are a connection's reactions to failures of user code.
type failurePolicies struct {
	handlerPanic supervisor.Policy
	decodeFail   supervisor.Policy
	decode       func(MessageType, []byte) (any, error)
	onPanic      func(outcome string) // the Handler's count; nil for clients
}

// newConnActor returns the actor of connection c, whose behaviour producer
// makes; the caller sets root, and onStop (server) or the client fields.
func newConnActor(c *Conn, producer actor.Producer, p failurePolicies, log *zerolog.Logger, in *inbox) *connActor {
	a := &connActor{sess: session{conn: c}, decode: p.decode, log: log, inbox: in}
	a.current.Store(c)
	c.log, c.watch = log, &a.watchers
	a.host = supervisor.NewHost(producer, supervisor.HostOptions{
		Policy:   p.handlerPanic,
		Logger:   *log,
		Name:     "connection handler",
		Owner:    a,
		Panicked: p.onPanic,
	})
	if p.decode != nil {
		a.decoder = supervisor.NewHost(nil, supervisor.HostOptions{
			Policy:   p.decodeFail,
			Logger:   *log,
			Name:     "decoder",
			Owner:    a, // a decoder's host never restarts (no instance)
			Panicked: p.onPanic,
		})
	}
	return a
}

// connActor is the actor behind every connection. It owns the socket's
// lifetime, delivers Opened/Message/Closed to the user's behaviour, applies
// the failure policies to its panics, and turns Send/Close messages into
// writes. Its fields are the actor's alone, except where noted.
type connActor struct {
	host    *supervisor.Host // runs the user's behaviour
	decoder *supervisor.Host // runs decode on the reader; nil without one
	decode  func(MessageType, []byte) (any, error)
	root    *actor.RootContext
	log     *zerolog.Logger // shared by the Handler's connections
	inbox   *inbox          // shared with each session's reader; stopped on Stopped

	watchers stopWatchers // told when the actor stops (Conn.NotifyStopped)

	sess     session // the current socket
	stopping bool
	// current is sess.conn for GiveUp, which the decoder's host calls on
	// the reader goroutine.
	current atomic.Pointer[Conn]

	// onStop is the Handler's bookkeeping (server connections).
	onStop func(*Conn)
	// onClosed counts the close for the Handler's metrics.
	onClosed func(c *Conn, code StatusCode, reason string, byPeer bool, err error)

	// cl is what only a client connection has (nil on the server, whose
	// many connections need not carry it).
	cl *clientParts
	// turns is the actor's mailbox, whose turns the reader may take
	// (turn.go); nil with a mailbox of the caller's.
	turns *turnMailbox
}

// clientParts are a client connection actor's: opened is closed once the
// first Opened is delivered (Dial waits for it); hb is the client heartbeat
// (nil when disabled); redial reconnects (nil without
// DialOptions.Reconnect); dialer made the connections, and lets its idle
// writers go when the actor stops.
type clientParts struct {
	opened chan<- struct{}
	hb     *supervisor.Heartbeat
	redial *redialer
	dialer *transport.Dialer
}

// session is one socket of a connection actor: a server connection has one,
// a reconnecting client one per connection made.
type session struct {
	conn   *Conn
	closed bool // Closed was delivered
	// panicCause is the PanicError the close reports after a panic past its
	// budget: once the host has given up no more messages are delivered;
	// once the decoder has, the reader posts no more.
	panicCause *PanicError
}

// redialer reconnects a dialed connection.
type redialer struct {
	dial    func(context.Context) (*transport.Conn, error)
	backoff supervisor.Backoff
	max     int // attempts per outage; 0 = no limit

	// The actor's alone.
	attempt int
	timer   *time.Timer
	// ctx is read by the redial timer's goroutine; it is set before the
	// first timer is armed and never changes after.
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex // guards pending and isDone against the redial timer
	pending *transport.Conn
	isDone  bool
}

// redialed tells the actor that a reconnect attempt finished.
type redialed struct {
	err     error
	attempt int
}

func (*redialed) IgnoreDeadLetterLogging() {}

func (a *connActor) Receive(ctx actor.Context) {
	if a.turns != nil && a.turns.received() {
		a.sess.conn.t.HandOffReading() // the reader's turn runs long (turn.go)
	}
	switch m := ctx.Message().(type) {
	case *actor.Started:
		a.sess.conn.pid.Store(ctx.Self()) // for a give-up while the behaviour starts
		a.host.Receive(ctx)
		a.open(ctx)
		if a.cl != nil && a.cl.opened != nil {
			close(a.cl.opened)
			a.cl.opened = nil
		}
	case *Message:
		// Only the reader's messages hold inbox space; clear the mark before
		// the behaviour sees m, so a copy it sends on does not release twice.
		admitted, held := m.admitted, m.held
		m.admitted, m.held = false, 0
		if !a.host.Failed() {
			if a.turns != nil && a.turns.onReader() {
				// Rooms it sends to may run on the reader too (turn.go).
				a.host.Receive(a.turns.readerContext(ctx))
			} else {
				a.host.Receive(ctx)
			}
		}
		if admitted {
			a.inbox.release(held)
		}
	case *panicClose:
		if m.t == a.sess.conn.t {
			a.sess.panicCause = m.err
			// Close, not CloseWithError: replies already queued for earlier
			// messages are written before the close frame.
			a.sess.conn.t.Close(transport.StatusInternalError, "internal error")
		}
	case *Send:
		a.send(ctx, m)
	case *Close:
		a.sess.conn.t.Close(m.Code, m.Reason)
	case *closedEvent:
		info := m.info
		if a.sess.panicCause != nil && !info.ByPeer && info.Code == transport.StatusInternalError {
			info.Err = a.sess.panicCause // our 1011 for a panic past its budget
		}
		a.sess.conn.log.Debug().Int("code", int(info.Code)).AnErr("cause", info.Err).Bool("by_peer", info.ByPeer).Msg("connection closed")
		if a.cl != nil && a.cl.hb != nil {
			a.cl.hb.Remove(a.sess.conn.t)
		}
		a.deliverClosed(ctx, info.Code, info.Reason, info.ByPeer, info.Err)
		if a.cl != nil && a.cl.redial != nil && !a.stopping && !(info.Err == nil && !info.ByPeer) {
			a.cl.redial.attempt = 0
			a.scheduleRedial(ctx, info.Err)
			return
		}
		ctx.Stop(ctx.Self())
	case *redialed:
		a.onRedialed(ctx, m)
	case *actor.Stopping:
		a.stopping = true
		if a.cl != nil && a.cl.redial != nil {
			a.cl.redial.stopTimer()
		}
		if !a.sess.closed {
			// Stopped from outside before the socket ended.
			a.sess.conn.t.CloseWithError(transport.StatusGoingAway, "going away", ErrStopped)
			a.deliverClosed(ctx, transport.StatusGoingAway, "going away", false, ErrStopped)
		}
		a.host.Receive(ctx)
	case *actor.Stopped:
		conn := a.sess.conn
		conn.log.Debug().Msg("connection actor stopped")
		a.inbox.stop() // the reader stops waiting for room
		a.watchers.stop(ctx)
		if cl := a.cl; cl != nil {
			if cl.redial != nil {
				cl.redial.done()
			}
			cl.dialer.Close()
			if cl.hb != nil {
				cl.hb.Remove(conn.t)
			}
		}
		a.host.Receive(ctx)
		if a.onStop != nil {
			select {
			case <-conn.t.Done():
				a.onStop(conn)
			default:
				// The closing handshake is still running; account for the
				// connection once its goroutines are gone.
				go func() { <-conn.t.Done(); a.onStop(conn) }()
			}
		}
	default:
		a.host.Receive(ctx)
	}
}

// open starts the session on a.sess.conn: Opened, then the reader.
func (a *connActor) open(ctx actor.Context) {
	c := a.sess.conn
	c.pid.Store(ctx.Self())
	c.log = a.log
	if e := a.log.Error(); e != nil {
		// The connection's fields cost a buffer per connection: only for
		// a logger that writes something.
		e.Discard()
		l := a.log.With().Str("conn", ctx.Self().Id).Str("remote", c.t.RemoteAddr().String()).Logger()
		c.log = &l
		a.host.SetLogger(l)
		if a.decoder != nil {
			a.decoder.SetLogger(l)
		}
	}
	c.log.Debug().Msg("connection opened")
	a.host.Deliver(ctx, &Opened{Conn: c})
	c.t.Start(&reader{conn: c, root: a.root, decoder: a.decoder, decode: a.decode, inbox: a.inbox, turns: a.turns})
	if a.cl != nil && a.cl.hb != nil {
		a.cl.hb.Add(c.t)
	}
}

func (a *connActor) scheduleRedial(ctx actor.Context, cause error) {
	r := a.cl.redial
	if r.max > 0 && r.attempt >= r.max || errors.Is(cause, ErrRefused) {
		a.sess.conn.log.Warn().Int("attempts", r.attempt).AnErr("cause", cause).Msg("giving up reconnecting")
		ctx.Stop(ctx.Self())
		return
	}
	if r.ctx == nil {
		r.ctx, r.cancel = context.WithCancel(context.Background())
	}
	delay := r.backoff.Delay(r.attempt)
	r.attempt++
	a.host.Deliver(ctx, &Reconnecting{Attempt: r.attempt, Delay: delay, Err: cause})
	self, attempt, root := ctx.Self(), r.attempt, a.root
	r.timer = time.AfterFunc(delay, func() {
		t, err := r.dial(r.ctx)
		if r.hold(t) {
			root.Send(self, &redialed{err: err, attempt: attempt})
		}
	})
}

// hold keeps t, a redial's result, for the actor, and reports true; once the
// actor has stopped it closes t and reports false. It runs on the redial
// timer's goroutine.
func (r *redialer) hold(t *transport.Conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.isDone {
		if t != nil {
			t.Terminate(nil)
		}
		return false
	}
	r.pending = t
	return true
}

// take returns the connection the last redial made, if any.
func (r *redialer) take() *transport.Conn {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := r.pending
	r.pending = nil
	return t
}

// stopTimer stops the next attempt and ends the one in flight.
func (r *redialer) stopTimer() {
	if r.timer != nil {
		r.timer.Stop()
	}
	if r.cancel != nil {
		r.cancel()
	}
}

// done marks the actor stopped: a connection a redial makes from now on is
// closed, as is one made and not yet taken.
func (r *redialer) done() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.isDone = true
	if r.pending != nil {
		r.pending.Terminate(nil)
		r.pending = nil
	}
}

func (a *connActor) onRedialed(ctx actor.Context, m *redialed) {
	t := a.cl.redial.take()
	if a.stopping {
		if t != nil {
			t.Terminate(nil)
		}
		return
	}
	if m.err != nil || t == nil {
		a.sess.conn.log.Debug().Err(m.err).Int("attempt", m.attempt).Msg("reconnect failed")
		a.scheduleRedial(ctx, m.err)
		return
	}
	a.cl.redial.attempt = 0
	a.sess = session{conn: &Conn{t: t, log: a.log, watch: &a.watchers}}
	a.current.Store(a.sess.conn)
	// A new session: the behaviour may fail again (the budget's window
	// keeps the panics already counted). The previous session's reader has
	// returned.
	a.host.Revive()
	if a.decoder != nil {
		a.decoder.Revive()
	}
	a.open(ctx)
}

func (a *connActor) send(ctx actor.Context, m *Send) {
	f := m.Frame
	if f == nil {
		f = transport.NewFrame(m.Type, m.Data)
	}
	t := a.sess.conn.t
	if m.ReplyTo == nil {
		_ = t.Send(f)
		return
	}
	root, to, id := a.root, m.ReplyTo, m.ID
	if err := t.SendNotify(f, func(err error) { root.Send(to, &Sent{ID: id, Err: err}) }); err != nil {
		ctx.Send(to, &Sent{ID: id, Err: err})
	}
}

func (a *connActor) deliverClosed(ctx actor.Context, code StatusCode, reason string, byPeer bool, err error) {
	if a.sess.closed {
		return
	}
	a.sess.closed = true
	if a.onClosed != nil {
		a.onClosed(a.sess.conn, code, reason, byPeer, err)
	}
	a.host.Deliver(ctx, &Closed{Conn: a.sess.conn, Code: code, Reason: reason, ByPeer: byPeer, Err: err})
}

// GiveUp implements supervisor.HostOwner for both hosts: the behaviour (on
// the actor) or the decoder (on the reader) panicked past its budget, or
// under supervisor.Stop. The
// connection closes with 1011 through the mailbox, so *Send messages already
// in it (replies to earlier messages) and messages the reader posted before
// are handled first; the host delivers no more *Message, and the reader
// posts no more.
func (a *connActor) GiveUp(pe *PanicError) {
	c := a.current.Load()
	a.root.Send(c.PID(), &panicClose{t: c.t, err: pe})
}

// Restarted implements supervisor.HostOwner: the fresh behaviour, made
// after a panic under supervisor.Restart, gets *Opened again for the same
// Conn, with Restarted set, unless the connection has already closed.
func (a *connActor) Restarted(ctx actor.Context, pe *PanicError) {
	if !a.sess.closed {
		a.host.Deliver(ctx, &Opened{Conn: a.sess.conn, Restarted: pe})
	}
}

// panicClose asks the actor to close session t with 1011 after a panic past
// its budget. It travels through the mailbox behind what was sent before it.
type panicClose struct {
	t   *transport.Conn
	err *PanicError
}

// reader is the transport.Handler of one session, run on the transport's
// reader goroutine: it runs the Decode hook (if any), waits for room in the
// inbox (backpressure: the reader reads nothing more meanwhile), then posts
// to the actor's mailbox. It never touches the actor's state.
type reader struct {
	conn    *Conn
	root    *actor.RootContext
	decoder *supervisor.Host // nil without decode
	decode  func(MessageType, []byte) (any, error)
	inbox   *inbox
	turns   *turnMailbox // nil: post through the dispatcher
}

// HandleMessage implements transport.Handler.
func (r *reader) HandleMessage(t *transport.Conn, typ MessageType, data []byte) {
	var value any
	if r.decoder != nil {
		if r.decoder.Failed() {
			return // the decoder panicked past its budget; the 1011 is on its way
		}
		var (
			v   any
			err error
		)
		if !r.decoder.Call("decode", func() { v, err = r.decode(typ, data) }) {
			return // dropped; the reader resumes with the next message
		}
		if err != nil {
			t.CloseWithError(transport.StatusInvalidFramePayloadData, "invalid message", fmt.Errorf("%w: %w", ErrDecode, err))
			return
		}
		value = v
	}
	// data is held at its buffer's capacity, which may exceed its length.
	held := cap(data)
	if !r.inbox.acquire(r.conn, held) {
		return
	}
	msg := &Message{Conn: r.conn, Type: typ, Data: data, Value: value, admitted: true, held: held}
	if r.turns != nil {
		r.turns.post(r.root, r.conn.PID(), msg, r.conn.t)
		return
	}
	r.root.Send(r.conn.PID(), msg)
}

// HandleClose implements transport.Handler.
func (r *reader) HandleClose(_ *transport.Conn, info transport.CloseInfo) {
	r.root.Send(r.conn.PID(), &closedEvent{info: info})
}

// inbox bounds the received messages a connection holds: posted by the
// reader and not yet handled by the actor (the one being handled counts until
// its Receive returns). It counts messages (InboxLimit) and bytes
// (InboxBytes). Its one waiter is the connection's reader.
type inbox struct {
	maxMsgs  int
	maxBytes int // < 0: no byte budget

	mu      sync.Mutex
	msgs    int
	bytes   int
	waiting bool          // the reader waits on freed
	stopped bool          // the actor has stopped: nothing more is admitted
	freed   chan struct{} // closed by release while waiting; made by the waiter
}

func newInbox(maxMsgs, maxBytes int) *inbox {
	return &inbox{maxMsgs: maxMsgs, maxBytes: maxBytes}
}

// acquire waits until a message holding n bytes fits, takes its room and
// reports true; it reports false once the inbox is stopped. A message fits when
// fewer than maxMsgs messages are held and the bytes held stay within
// maxBytes; into an empty inbox any message fits, so one larger than the
// budget is admitted alone.
func (b *inbox) acquire(c *Conn, n int) bool {
	for {
		b.mu.Lock()
		if b.stopped {
			b.mu.Unlock()
			return false
		}
		if b.msgs < b.maxMsgs && (b.msgs == 0 || b.maxBytes < 0 || b.bytes+n <= b.maxBytes) {
			b.msgs++
			b.bytes += n
			b.mu.Unlock()
			return true
		}
		b.waiting = true
		if b.freed == nil {
			b.freed = make(chan struct{})
		}
		freed := b.freed
		msgs, bytes := b.msgs, b.bytes
		b.mu.Unlock()
		if h := inboxWaitHook.Load(); h != nil {
			(*h)(c, msgs, bytes)
		}
		<-freed
	}
}

// stop admits nothing more and wakes a waiting reader.
func (b *inbox) stop() {
	b.mu.Lock()
	b.stopped = true
	if b.waiting {
		b.waiting = false
		close(b.freed)
		b.freed = nil
	}
	b.mu.Unlock()
}

// release returns the room of a handled message that held n bytes.
func (b *inbox) release(n int) {
	b.mu.Lock()
	b.msgs--
	b.bytes -= n
	if b.waiting {
		b.waiting = false
		close(b.freed)
		b.freed = nil
	}
	b.mu.Unlock()
}

// inboxWaitHook, set only by tests, is called by a reader about to wait for
// room in its inbox, with what the inbox holds.
var inboxWaitHook atomic.Pointer[func(c *Conn, msgs, bytes int)]

// ErrDecode is the Closed.Err (wrapping the decoder's error) of a connection
// closed with 1007 because HandlerOptions.Decode refused a message.
var ErrDecode = errors.New("actors: message could not be decoded")
