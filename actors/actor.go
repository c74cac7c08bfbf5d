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

// failurePolicies are a connection's reactions to failures of user code.
type failurePolicies struct {
	handlerPanic supervisor.Policy
	decodeFail   supervisor.Policy
	decode       func(MessageType, []byte) (any, error)
}

// newConnActor returns the actor of connection c, whose behaviour producer
// makes; the caller sets the remaining fields.
func newConnActor(c *Conn, producer actor.Producer, p failurePolicies, log zerolog.Logger) *connActor {
	a := &connActor{conn: c, policies: p, log: log, stopped: make(chan struct{})}
	a.host = supervisor.NewHost(producer, supervisor.HostOptions{
		Policy:    p.handlerPanic,
		Logger:    log,
		Name:      "connection handler",
		GiveUp:    a.giveUp,
		Restarted: a.restarted,
	})
	if p.decode != nil {
		a.decoder = supervisor.NewHost(nil, supervisor.HostOptions{
			Policy: p.decodeFail,
			Logger: log,
			Name:   "decoder",
			GiveUp: a.giveUp,
		})
	}
	return a
}

// redialer reconnects a dialed connection.
type redialer struct {
	dial    func(context.Context) (*transport.Conn, error)
	backoff supervisor.Backoff
	max     int // attempts per outage; 0 = no limit
	hb      *supervisor.HeartbeatOptions
}

// connActor is the actor behind every connection. It owns the socket's
// lifetime, delivers Opened/Message/Closed to the user's behaviour, applies
// the failure policies to its panics, and turns Send/Close messages into
// writes.
type connActor struct {
	host     *supervisor.Host // runs the user's behaviour
	decoder  *supervisor.Host // runs policies.decode; nil without one
	conn     *Conn
	inbox    *inbox        // received messages not yet handled, bounded
	stopped  chan struct{} // closed on Stopped: the reader stops waiting
	root     *actor.RootContext
	log      zerolog.Logger
	onStop   func(*Conn) // bookkeeping of the owner (Handler)
	opened   chan<- struct{}
	policies failurePolicies
	hb       *supervisor.Heartbeat // client heartbeat, owned by this actor

	// A panic past its budget ends the session: once host has given up, no
	// more messages are delivered; once decoder has, the reader posts no
	// more. panicCause (actor only) is the PanicError the close reports.
	// Reset per session.
	panicCause *PanicError

	redial  *redialer
	attempt int
	timer   *time.Timer
	// redialCtx is read by the redial timer's goroutine; it is set before
	// the first timer is armed and never changes after.
	redialCtx    context.Context
	redialCancel context.CancelFunc
	mu           sync.Mutex // guards pending and isDone against the redial timer
	pending      *transport.Conn
	isDone       bool
	stopping     bool
	closed       bool // Closed was delivered for the current session
}

// redialed tells the actor that a reconnect attempt finished.
type redialed struct {
	err     error
	attempt int
}

func (*redialed) IgnoreDeadLetterLogging() {}

func (a *connActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		a.conn.pid = ctx.Self() // for a give-up while the behaviour starts
		a.host.Receive(ctx)
		a.open(ctx)
		if a.opened != nil {
			close(a.opened)
			a.opened = nil
		}
	case *Message:
		// Only the reader's messages hold inbox space; clear the mark before
		// the behaviour sees m, so a copy it sends on does not release twice.
		admitted, held := m.admitted, m.held
		m.admitted, m.held = false, 0
		if !a.host.Failed() {
			a.host.Receive(ctx)
		}
		if admitted {
			a.inbox.release(held)
		}
	case *panicClose:
		if m.t == a.conn.t {
			a.panicCause = m.err
			// Close, not CloseWithError: replies already queued for earlier
			// messages are written before the close frame.
			a.conn.t.Close(transport.StatusInternalError, "internal error")
		}
	case *Send:
		a.send(ctx, m)
	case *Close:
		a.conn.t.Close(m.Code, m.Reason)
	case *closedEvent:
		info := m.info
		if a.panicCause != nil && !info.ByPeer && info.Code == transport.StatusInternalError {
			info.Err = a.panicCause // our 1011 for a panic past its budget
		}
		a.conn.log.Debug().Int("code", int(info.Code)).AnErr("cause", info.Err).Bool("by_peer", info.ByPeer).Msg("connection closed")
		if a.hb != nil {
			a.hb.Remove(a.conn.t)
		}
		a.deliverClosed(ctx, info.Code, info.Reason, info.ByPeer, info.Err)
		if a.redial != nil && a.redial.dial != nil && !a.stopping && !(info.Err == nil && !info.ByPeer) {
			a.attempt = 0
			a.scheduleRedial(ctx, info.Err)
			return
		}
		ctx.Stop(ctx.Self())
	case *redialed:
		a.onRedialed(ctx, m)
	case *actor.Stopping:
		a.stopping = true
		if a.timer != nil {
			a.timer.Stop()
		}
		if a.redialCancel != nil {
			a.redialCancel() // an attempt in flight ends now
		}
		if !a.closed {
			// Stopped from outside before the socket ended.
			a.conn.t.CloseWithError(transport.StatusGoingAway, "going away", ErrStopped)
			a.deliverClosed(ctx, transport.StatusGoingAway, "going away", false, ErrStopped)
		}
		a.host.Receive(ctx)
	case *actor.Stopped:
		a.conn.log.Debug().Msg("connection actor stopped")
		close(a.stopped)
		a.mu.Lock()
		a.isDone = true
		if a.pending != nil {
			a.pending.Abort()
			a.pending = nil
		}
		a.mu.Unlock()
		if a.hb != nil {
			a.hb.Remove(a.conn.t)
		}
		a.host.Receive(ctx)
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
		a.host.Receive(ctx)
	}
}

// open starts a session on a.conn: Opened, then the reader.
func (a *connActor) open(ctx actor.Context) {
	a.closed = false
	a.panicCause = nil
	a.conn.pid = ctx.Self()
	a.conn.log = a.log.With().Str("conn", ctx.Self().Id).Str("remote", a.conn.t.RemoteAddr().String()).Logger()
	a.host.SetLogger(a.conn.log)
	if a.decoder != nil {
		a.decoder.SetLogger(a.conn.log)
	}
	a.conn.log.Debug().Msg("connection opened")
	a.host.Deliver(ctx, &Opened{Conn: a.conn})
	a.conn.t.Start(a)
	if a.redial != nil && a.redial.hb != nil {
		if a.hb == nil {
			a.hb = supervisor.NewHeartbeat(*a.redial.hb)
		}
		a.hb.Add(a.conn.t)
	}
}

func (a *connActor) scheduleRedial(ctx actor.Context, cause error) {
	if a.redial.max > 0 && a.attempt >= a.redial.max || errors.Is(cause, ErrRefused) {
		a.conn.log.Warn().Int("attempts", a.attempt).AnErr("cause", cause).Msg("giving up reconnecting")
		ctx.Stop(ctx.Self())
		return
	}
	if a.redialCtx == nil {
		a.redialCtx, a.redialCancel = context.WithCancel(context.Background())
	}
	delay := a.redial.backoff.Delay(a.attempt)
	a.attempt++
	a.host.Deliver(ctx, &Reconnecting{Attempt: a.attempt, Delay: delay, Err: cause})
	self, attempt := ctx.Self(), a.attempt
	a.timer = time.AfterFunc(delay, func() {
		t, err := a.redial.dial(a.redialCtx)
		a.mu.Lock()
		defer a.mu.Unlock()
		if a.isDone {
			if t != nil {
				t.Abort()
			}
			return
		}
		a.pending = t
		a.root.Send(self, &redialed{err: err, attempt: attempt})
	})
}

func (a *connActor) onRedialed(ctx actor.Context, m *redialed) {
	a.mu.Lock()
	t := a.pending
	a.pending = nil
	a.mu.Unlock()
	if a.stopping {
		if t != nil {
			t.Abort()
		}
		return
	}
	if m.err != nil || t == nil {
		a.conn.log.Debug().Err(m.err).Int("attempt", m.attempt).Msg("reconnect failed")
		a.scheduleRedial(ctx, m.err)
		return
	}
	a.attempt = 0
	a.conn = &Conn{t: t}
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
	a.host.Deliver(ctx, &Closed{Conn: a.conn, Code: code, Reason: reason, ByPeer: byPeer, Err: err})
}

// giveUp is the hosts' GiveUp: the behaviour (on the actor) or the decoder
// (on the reader) panicked past its budget, or under supervisor.Stop. The
// connection closes with 1011 through the mailbox, so *Send messages already
// in it (replies to earlier messages) and messages the reader posted before
// are handled first; the host delivers no more *Message, and the reader
// posts no more.
func (a *connActor) giveUp(pe *PanicError) {
	a.root.Send(a.conn.pid, &panicClose{t: a.conn.t, err: pe})
}

// restarted is the host's Restarted: the fresh behaviour, made after a panic
// under supervisor.Restart, gets *Opened again for the same Conn, with
// Restarted set, unless the connection has already closed.
func (a *connActor) restarted(ctx actor.Context, pe *PanicError) {
	if !a.closed {
		a.host.Deliver(ctx, &Opened{Conn: a.conn, Restarted: pe})
	}
}

// panicClose asks the actor to close session t with 1011 after a panic past
// its budget. It travels through the mailbox behind what was sent before it.
type panicClose struct {
	t   *transport.Conn
	err *PanicError
}

// HandleMessage implements transport.Handler on the reader goroutine: it runs
// the Decode hook (if any), waits for room in the inbox (backpressure: the
// reader reads nothing more meanwhile), then posts to the mailbox.
func (a *connActor) HandleMessage(t *transport.Conn, typ MessageType, data []byte) {
	var value any
	if a.decoder != nil {
		if a.decoder.Failed() {
			return // the decoder panicked past its budget; the 1011 is on its way
		}
		var (
			v   any
			err error
		)
		if !a.decoder.Call("decode", func() { v, err = a.policies.decode(typ, data) }) {
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
	if !a.inbox.acquire(a.conn, held, a.stopped) {
		return
	}
	a.root.Send(a.conn.pid, &Message{Conn: a.conn, Type: typ, Data: data, Value: value, admitted: true, held: held})
}

// HandleClose implements transport.Handler.
func (a *connActor) HandleClose(_ *transport.Conn, info transport.CloseInfo) {
	a.root.Send(a.conn.pid, &closedEvent{info: info})
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
	freed   chan struct{} // closed by release while waiting
}

func newInbox(maxMsgs, maxBytes int) *inbox {
	return &inbox{maxMsgs: maxMsgs, maxBytes: maxBytes, freed: make(chan struct{})}
}

// acquire waits until a message holding n bytes fits, takes its room and
// reports true; it reports false once stop is closed. A message fits when
// fewer than maxMsgs messages are held and the bytes held stay within
// maxBytes; into an empty inbox any message fits, so one larger than the
// budget is admitted alone.
func (b *inbox) acquire(c *Conn, n int, stop <-chan struct{}) bool {
	for {
		b.mu.Lock()
		if b.msgs < b.maxMsgs && (b.msgs == 0 || b.maxBytes < 0 || b.bytes+n <= b.maxBytes) {
			b.msgs++
			b.bytes += n
			b.mu.Unlock()
			return true
		}
		b.waiting = true
		freed := b.freed
		msgs, bytes := b.msgs, b.bytes
		b.mu.Unlock()
		if h := inboxWaitHook.Load(); h != nil {
			(*h)(c, msgs, bytes)
		}
		select {
		case <-freed:
		case <-stop:
			return false
		}
	}
}

// release returns the room of a handled message that held n bytes.
func (b *inbox) release(n int) {
	b.mu.Lock()
	b.msgs--
	b.bytes -= n
	if b.waiting {
		b.waiting = false
		close(b.freed)
		b.freed = make(chan struct{})
	}
	b.mu.Unlock()
}

// inboxWaitHook, set only by tests, is called by a reader about to wait for
// room in its inbox, with what the inbox holds.
var inboxWaitHook atomic.Pointer[func(c *Conn, msgs, bytes int)]

// ErrDecode is the Closed.Err (wrapping the decoder's error) of a connection
// closed with 1007 because HandlerOptions.Decode refused a message.
var ErrDecode = errors.New("actors: message could not be decoded")
