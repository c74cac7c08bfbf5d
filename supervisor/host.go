package supervisor

import (
	"fmt"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"
)

// PanicError is a panic recovered by a [Host]. It is what a host gives to
// its GiveUp hook, and the actors package reports it as Closed.Err of a
// connection closed with 1011.
type PanicError struct {
	// Value is what was passed to panic.
	Value any
	// Message is the message being handled (for [Host.Call], what the
	// caller passed), or nil when the producer panicked.
	Message any
	// Stack is the panicking goroutine's stack.
	Stack []byte
}

func (e *PanicError) Error() string {
	return fmt.Sprintf("supervisor: panic handling %s: %v", describe(e.Message), e.Value)
}

// describe names a message by its type; a string (what Call's callers pass)
// names itself.
func describe(m any) string {
	if s, ok := m.(string); ok {
		return s
	}
	return fmt.Sprintf("%T", m)
}

// HostOptions configures a [Host].
type HostOptions struct {
	// Policy is what a panic does: its Directive while its Budget lasts;
	// past the budget, or at the first panic under Stop, the host gives up.
	// The zero value resumes up to 3 times a minute.
	Policy Policy

	// Logger receives one error line per panic, with the panic value
	// ("panic"), the type of the message being handled ("handling"; a
	// string given to Call as itself), the directive ("policy") and the
	// stack ("stack"). The zero value logs nothing. [Host.SetLogger]
	// replaces it.
	Logger zerolog.Logger

	// Name names the hosted code in log lines, e.g. "room behaviour". Empty
	// means "behaviour".
	Name string

	// GiveUp is called when the host gives up (once, until [Host.Revive]),
	// on the goroutine that recovered the panic (the owner's actor for
	// Receive and Deliver), with that panic. It says what giving up means to
	// the owner: a connection closes with 1011, a room stops. Nil does
	// nothing.
	GiveUp func(*PanicError)

	// Panicked, if set, is called for every panic the host recovers, on
	// the goroutine that recovered it, with what it did: "resumed",
	// "restarted" or "gave_up" (for metrics).
	Panicked func(outcome string)

	// Restarted, if set, is called after a Restart, once the fresh
	// behaviour has received *actor.Started, with the panic that caused the
	// restart. The owner uses it to tell the fresh behaviour what the old one
	// was told when it began (a connection delivers *actors.Opened again).
	Restarted func(actor.Context, *PanicError)

	// Owner, if set, is told instead of GiveUp and Restarted, which are
	// then ignored: one interface value in place of two func values, which
	// an owner made per connection would allocate for every one.
	Owner HostOwner
}

// HostOwner is what a Host tells its owner (HostOptions.Owner): GiveUp and
// Restarted mean what HostOptions' fields of those names do.
type HostOwner interface {
	GiveUp(*PanicError)
	Restarted(actor.Context, *PanicError)
}

// funcOwner is HostOptions' GiveUp and Restarted as a HostOwner.
type funcOwner struct {
	giveUp    func(*PanicError)
	restarted func(actor.Context, *PanicError)
}

func (o *funcOwner) GiveUp(pe *PanicError) {
	if o.giveUp != nil {
		o.giveUp(pe)
	}
}

func (o *funcOwner) Restarted(ctx actor.Context, pe *PanicError) {
	if o.restarted != nil {
		o.restarted(ctx, pe)
	}
}

// Host runs user code inside a library actor (its owner): a behaviour, an
// actor.Actor made by a producer, whose Receive the owner calls through the
// host with [Host.Receive] and [Host.Deliver], or a plain function run with
// [Host.Call]. The owner keeps its own state (a socket, a room's members)
// out of the behaviour, so a panic in user code never costs it.
//
// A panic is recovered and logged once, with its stack, then counted against
// the policy's [Budget]. While the budget lasts the policy's [Directive]
// applies, and the message being handled is dropped:
//
//   - [Resume] keeps the behaviour instance and its state.
//   - [Restart] replaces the instance with a fresh one from the producer:
//     the old one receives *actor.Restarting, the new one *actor.Started,
//     then the owner's Restarted hook runs. Panics during that sequence are
//     counted (and can exhaust the budget) but restart nothing.
//   - [Stop] gives up at the first panic.
//
// Giving up (under Stop, past the budget, or when the producer panics)
// happens once: the host calls GiveUp and [Host.Failed] reports true. The
// host then still delivers what its owner passes it, to the instance it
// has, so the owner decides what the behaviour still sees (a connection
// still gets *actors.Closed and its lifecycle messages); a panic then is
// logged and changes nothing. [Host.Revive] clears the state.
//
// The budget counts panics over a sliding window: Budget.Max panics within
// Budget.Within are within budget, the next one is past it. So at most
// Max+1 panics are logged before the host gives up.
//
// The behaviour is made by the producer on the first delivery (the owner's
// *actor.Started). Receive, Deliver and Reset run on the owner's actor;
// Call, Failed, Revive and SetLogger are safe from any goroutine.
type Host struct {
	producer actor.Producer
	policy   Policy
	name     string
	owner    HostOwner // nil: nobody to tell
	onPanic  func(outcome string)
	counter  atomic.Pointer[Counter] // made at the first panic: most hosts never panic

	log        atomic.Pointer[zerolog.Logger]
	user       actor.Actor // the owner's actor only
	failed     atomic.Bool
	restarting bool // the owner's actor only; next to failed: 112 bytes, not 128
}

// NewHost returns a host for the behaviours made by producer. A nil
// producer hosts no behaviour: Receive and Deliver do nothing, and Call
// guards functions (a decoder on a connection's reader goroutine; there
// Restart acts as Resume, since there is no instance to replace).
func NewHost(producer actor.Producer, opts HostOptions) *Host {
	h := &Host{
		producer: producer,
		policy:   opts.Policy,
		name:     opts.Name,
		onPanic:  opts.Panicked,
		owner:    opts.Owner,
	}
	if h.owner == nil && (opts.GiveUp != nil || opts.Restarted != nil) {
		h.owner = &funcOwner{giveUp: opts.GiveUp, restarted: opts.Restarted}
	}
	if h.name == "" {
		h.name = "behaviour"
	}
	h.SetLogger(opts.Logger)
	return h
}

// SetLogger replaces the logger panics are logged to, e.g. with one that
// carries a connection's id once it is known. Safe from any goroutine.
func (h *Host) SetLogger(l zerolog.Logger) {
	if l.GetLevel() > zerolog.ErrorLevel {
		h.log.Store(nil) // writes no error line: keep no copy (hosts are per connection)
		return
	}
	h.log.Store(&l)
}

// Failed reports whether the host has given up.
func (h *Host) Failed() bool { return h.failed.Load() }

// Revive clears the given-up state, so that a new session (a reconnected
// client) can fail and give up again. The panics already counted stay in
// the budget's window.
func (h *Host) Revive() { h.failed.Store(false) }

// Reset forgets the behaviour instance: the next delivery makes a new one.
// The owner calls it when protoactor restarts the owner itself (after
// delivering *actor.Restarting to the old instance).
func (h *Host) Reset() { h.user = nil }

// Receive runs the behaviour's Receive with ctx's current message.
func (h *Host) Receive(ctx actor.Context) { h.deliver(ctx, ctx.Message(), false) }

// Deliver runs the behaviour's Receive with msg presented as the current
// message (ctx.Message() returns msg): for messages the owner makes up, such
// as a connection's Opened or a room's Tick.
func (h *Host) Deliver(ctx actor.Context, msg any) { h.deliver(ctx, msg, true) }

func (h *Host) deliver(ctx actor.Context, msg any, wrap bool) {
	if h.producer == nil {
		return
	}
	if h.user == nil && !h.make() {
		return
	}
	u := h.user
	defer func() {
		if r := recover(); r != nil {
			h.panicked(ctx, u, &PanicError{Value: r, Message: msg, Stack: debug.Stack()})
		}
	}()
	if wrap {
		u.Receive(withMessage{ctx, msg})
		return
	}
	u.Receive(ctx)
}

// Call runs f, recovering a panic in it as Receive does (Restart acts as
// Resume). msg is what f handles, for the PanicError and the log (a string
// such as "decode" names itself). It reports whether f returned normally.
func (h *Host) Call(msg any, f func()) (ok bool) {
	defer func() {
		if r := recover(); r != nil {
			h.panicked(nil, nil, &PanicError{Value: r, Message: msg, Stack: debug.Stack()})
			ok = false
		}
	}()
	f()
	return true
}

// make calls the producer; a panic in it gives up (there is nothing to run).
func (h *Host) make() (ok bool) {
	if h.failed.Load() {
		return false // the producer failed before: nothing to run
	}
	defer func() {
		if r := recover(); r != nil {
			pe := &PanicError{Value: r, Stack: debug.Stack()}
			h.event(pe).Msg(h.name + " producer panicked; giving up")
			h.fail(pe)
			ok = false
		}
	}()
	h.user = h.producer()
	return h.user != nil
}

// budget returns the host's failure counter, made on first use.
func (h *Host) budget() *Counter {
	if c := h.counter.Load(); c != nil {
		return c
	}
	h.counter.CompareAndSwap(nil, NewCounter(h.policy.Budget))
	return h.counter.Load()
}

// nopLogger stands for a host's logger that writes no error line.
var nopLogger = zerolog.Nop()

func (h *Host) event(pe *PanicError) *zerolog.Event {
	l := h.log.Load()
	if l == nil {
		l = &nopLogger
	}
	return l.Error().Str("panic", fmt.Sprint(pe.Value)).Str("handling", describe(pe.Message)).
		Str("policy", h.policy.Directive.String()).Bytes("stack", pe.Stack)
}

func (h *Host) fail(pe *PanicError) {
	if h.failed.Swap(true) {
		return
	}
	if h.owner != nil {
		h.owner.GiveUp(pe)
	}
}

// panicked applies the policy to pe, recovered from instance u (nil for
// Call).
func (h *Host) panicked(ctx actor.Context, u actor.Actor, pe *PanicError) {
	ev := h.event(pe)
	outcome := "resumed"
	switch {
	case h.failed.Load():
		ev.Msg(h.name + " panicked after its host gave up")
		outcome = "gave_up"
	case h.policy.Directive == Stop:
		ev.Msg(h.name + " panicked; stopping")
		outcome = "gave_up"
		defer h.fail(pe)
	case !h.budget().Fail(time.Now()):
		ev.Msg(h.name + " panicked past its budget; giving up")
		outcome = "gave_up"
		defer h.fail(pe)
	case h.policy.Directive == Restart && u != nil && !h.restarting && u == h.user:
		ev.Msg(h.name + " panicked; restarting it, message dropped")
		outcome = "restarted"
		defer h.restart(ctx, pe)
	case h.restarting:
		ev.Msg(h.name + " panicked while restarting; going on")
	default:
		ev.Msg(h.name + " panicked; resuming, message dropped")
	}
	if h.onPanic != nil {
		h.onPanic(outcome)
	}
}

// restart replaces the instance: Restarting to the old one, Started to a
// fresh one, then the owner's hook.
func (h *Host) restart(ctx actor.Context, pe *PanicError) {
	h.restarting = true
	defer func() { h.restarting = false }()
	h.Deliver(ctx, &actor.Restarting{})
	if h.failed.Load() {
		return
	}
	h.user = nil
	if !h.make() {
		return
	}
	h.Deliver(ctx, &actor.Started{})
	if h.failed.Load() || h.owner == nil {
		return
	}
	h.owner.Restarted(ctx, pe)
}

// withMessage presents a message the owner made up as the current message.
type withMessage struct {
	actor.Context
	msg any
}

func (c withMessage) Message() any { return c.msg }
