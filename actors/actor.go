package actors

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
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
	user     actor.Actor
	conn     *Conn
	inbox    *inbox        // received messages not yet handled, bounded
	stopped  chan struct{} // closed on Stopped: the reader stops waiting
	root     *actor.RootContext
	log      zerolog.Logger
	onStop   func(*Conn) // bookkeeping of the owner (Handler)
	opened   chan<- struct{}
	policies failurePolicies
	panics   *supervisor.Counter // lazily made on the first panic
	decodes  *supervisor.Counter
	hb       *supervisor.Heartbeat // client heartbeat, owned by this actor

	// A panic past its budget ends the session. failing (actor only): the
	// handler panicked, so no more messages are delivered; panicCause (actor
	// only): the PanicError the close reports; readFailed: the decoder
	// panicked, so the reader posts no more messages. Reset per session.
	failing    bool
	panicCause *PanicError
	readFailed atomic.Bool

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
		a.deliver(ctx, m)
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
		if !a.failing {
			a.deliver(ctx, m)
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
		a.deliver(ctx, m)
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

// open starts a session on a.conn: Opened, then the reader.
func (a *connActor) open(ctx actor.Context) {
	a.closed = false
	a.failing, a.panicCause = false, nil
	a.readFailed.Store(false) // the previous session's reader has returned
	a.conn.pid = ctx.Self()
	a.conn.log = a.log.With().Str("conn", ctx.Self().Id).Str("remote", a.conn.t.RemoteAddr().String()).Logger()
	a.conn.log.Debug().Msg("connection opened")
	a.deliver(ctx, &Opened{Conn: a.conn})
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
	a.deliver(ctx, &Reconnecting{Attempt: a.attempt, Delay: delay, Err: cause})
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
	a.deliver(ctx, &Closed{Conn: a.conn, Code: code, Reason: reason, ByPeer: byPeer, Err: err})
}

// deliver runs the user's Receive with msg as the current message. A panic
// is logged once with its stack, then the HandlerPanic policy applies:
// resume (the message is dropped, state kept) while within budget, else
// close the connection with 1011. That close goes through the mailbox, so
// *Send messages already in it (replies to earlier messages) are written
// first; received messages still queued are dropped.
func (a *connActor) deliver(ctx actor.Context, msg any) {
	defer func() {
		if r := recover(); r != nil {
			pe := &PanicError{Value: r, Message: msg, Stack: debug.Stack()}
			if !a.onPanic(pe, a.policies.handlerPanic, &a.panics, "connection handler panicked; resuming, message dropped") {
				a.failing = true
				ctx.Send(ctx.Self(), &panicClose{t: a.conn.t, err: pe})
			}
		}
	}()
	if msg == ctx.Message() {
		a.user.Receive(ctx)
		return
	}
	a.user.Receive(withMessage{ctx, msg})
}

// onPanic logs pe once with its stack and applies policy p against the
// failure counter *c (made on first use): it reports true when the panic is
// within budget under Resume (logged as resumed); false means the caller
// closes the connection with 1011.
func (a *connActor) onPanic(pe *PanicError, p supervisor.Policy, c **supervisor.Counter, resumed string) bool {
	if *c == nil {
		*c = supervisor.NewCounter(p.Budget)
	}
	ev := a.conn.log.Error().Str("panic", pe.Error()).Bytes("stack", pe.Stack)
	if p.Directive == supervisor.Resume && (*c).Fail(time.Now()) {
		ev.Msg(resumed)
		return true
	}
	ev.Msg("panic past its budget; closing with 1011")
	return false
}

// panicClose asks the actor to close session t with 1011 after a panic past
// its budget. It travels through the mailbox behind what was sent before it.
type panicClose struct {
	t   *transport.Conn
	err *PanicError
}

// withMessage presents a message the connection actor made up (Opened,
// Closed, Reconnecting) as the current message.
type withMessage struct {
	actor.Context
	msg any
}

func (c withMessage) Message() any { return c.msg }

// HandleMessage implements transport.Handler on the reader goroutine: it runs
// the Decode hook (if any), waits for room in the inbox (backpressure: the
// reader reads nothing more meanwhile), then posts to the mailbox.
func (a *connActor) HandleMessage(t *transport.Conn, typ MessageType, data []byte) {
	if a.readFailed.Load() {
		return // the decoder panicked past its budget; the 1011 is on its way
	}
	var value any
	if a.policies.decode != nil {
		v, err, panicked := a.safeDecode(typ, data)
		if panicked != nil {
			if !a.onPanic(panicked, a.policies.decodeFail, &a.decodes, "decoder panicked; reader resumes with the next message") {
				// Messages already posted are still handled and their
				// replies written; then the actor closes with 1011.
				a.readFailed.Store(true)
				a.root.Send(a.conn.pid, &panicClose{t: t, err: panicked})
			}
			return
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

func (a *connActor) safeDecode(typ MessageType, data []byte) (v any, err error, pe *PanicError) {
	defer func() {
		if r := recover(); r != nil {
			pe = &PanicError{Value: r, Message: "decode", Stack: debug.Stack()}
		}
	}()
	v, err = a.policies.decode(typ, data)
	return v, err, nil
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
