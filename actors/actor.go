package actors

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
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
	credits  chan struct{} // inbound messages in the mailbox, bounded
	stopped  chan struct{} // closed on Stopped: the reader stops waiting
	root     *actor.RootContext
	log      zerolog.Logger
	onStop   func(*Conn) // bookkeeping of the owner (Handler)
	opened   chan<- struct{}
	policies failurePolicies
	panics   *supervisor.Counter // lazily made on the first panic
	decodes  *supervisor.Counter
	hb       *supervisor.Heartbeat // client heartbeat, owned by this actor

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
		a.deliver(ctx, m)
		<-a.credits
	case *Send:
		a.send(ctx, m)
	case *Close:
		a.conn.t.Close(m.Code, m.Reason)
	case *closedEvent:
		a.conn.log.Debug().Int("code", int(m.info.Code)).AnErr("cause", m.info.Err).Bool("by_peer", m.info.ByPeer).Msg("connection closed")
		if a.hb != nil {
			a.hb.Remove(a.conn.t)
		}
		a.deliverClosed(ctx, m.info.Code, m.info.Reason, m.info.ByPeer, m.info.Err)
		if a.redial != nil && a.redial.dial != nil && !a.stopping && !(m.info.Err == nil && !m.info.ByPeer) {
			a.attempt = 0
			a.scheduleRedial(ctx, m.info.Err)
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
// close the connection with 1011.
func (a *connActor) deliver(ctx actor.Context, msg any) {
	defer func() {
		if r := recover(); r != nil {
			pe := &PanicError{Value: r, Message: msg, Stack: debug.Stack()}
			a.onPanic(a.conn.t, pe, a.policies.handlerPanic, &a.panics, "connection handler panicked; resuming, message dropped")
		}
	}()
	if msg == ctx.Message() {
		a.user.Receive(ctx)
		return
	}
	a.user.Receive(withMessage{ctx, msg})
}

// onPanic logs pe once with its stack and applies policy p against the
// failure counter *c (made on first use): within budget under Resume it logs
// resumed, otherwise it closes the connection with 1011.
func (a *connActor) onPanic(t *transport.Conn, pe *PanicError, p supervisor.Policy, c **supervisor.Counter, resumed string) {
	if *c == nil {
		*c = supervisor.NewCounter(p.Budget)
	}
	ev := a.conn.log.Error().Str("panic", pe.Error()).Bytes("stack", pe.Stack)
	if p.Directive == supervisor.Resume && (*c).Fail(time.Now()) {
		ev.Msg(resumed)
		return
	}
	ev.Msg("panic past its budget; closing with 1011")
	t.CloseWithError(transport.StatusInternalError, "internal error", pe)
}

// withMessage presents a message the connection actor made up (Opened,
// Closed, Reconnecting) as the current message.
type withMessage struct {
	actor.Context
	msg any
}

func (c withMessage) Message() any { return c.msg }

// HandleMessage implements transport.Handler on the reader goroutine: it runs
// the Decode hook (if any), waits for a slot in the inbox (backpressure),
// then posts to the mailbox.
func (a *connActor) HandleMessage(t *transport.Conn, typ MessageType, data []byte) {
	var value any
	if a.policies.decode != nil {
		v, err, panicked := a.safeDecode(typ, data)
		if panicked != nil {
			a.onPanic(t, panicked, a.policies.decodeFail, &a.decodes, "decoder panicked; reader resumes with the next message")
			return
		}
		if err != nil {
			t.CloseWithError(transport.StatusInvalidFramePayloadData, "invalid message", fmt.Errorf("%w: %w", ErrDecode, err))
			return
		}
		value = v
	}
	select {
	case a.credits <- struct{}{}:
	case <-a.stopped:
		return
	}
	a.root.Send(a.conn.pid, &Message{Conn: a.conn, Type: typ, Data: data, Value: value})
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

// ErrDecode is the Closed.Err (wrapping the decoder's error) of a connection
// closed with 1007 because HandlerOptions.Decode refused a message.
var ErrDecode = errors.New("actors: message could not be decoded")
