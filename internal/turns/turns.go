// Package turns lets a connection's reader run the turn of a room its actor
// posts to, as it runs the connection actor's own turn (actors/turn.go).
//
// A post to an idle actor makes protoactor dispatch the actor's mailbox to
// a worker goroutine: for a message that a member sends to its room, a
// wake-up of another core for each message. A room's mailbox is wrapped
// (Mailbox) to be its own dispatcher; while a connection actor's behaviour
// runs on the reader and sends to such a room, the reader holds a Slot open
// on the room's mailbox (Begin, End), and a dispatch of that mailbox meanwhile
// is caught in the slot instead of going to a worker. The reader runs the
// caught turn (Slot.RunHeld) once its actor's turn is over, before it reads on.
//
// Nothing else changes: the mailbox, so the order of the room's messages, is
// the same, and a caught turn is always run. A dispatch caused by another
// goroutine while the slot is open is caught too (and run by the reader at
// once after): the dispatcher never runs a turn on the goroutine that
// schedules it, so sending to a room never blocks. A turn that handles more
// than Bound messages on the reader (others keep the room busy) hands the
// connection's reading to a new reader goroutine
// (transport.Conn.HandOffReading) and finishes as the room's worker.
package turns

import (
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/wsactor/wsactor/transport"
)

// Bound is how many messages a caught turn handles on the reader before the
// reader hands off its connection's reading.
const Bound = 32

const (
	slotClosed int32 = iota
	slotOpen
	slotClaiming
	slotCaught
	slotHolding // caught, and closed: the reader will run it
	slotRunning // RunHeld took it
)

// Slot is where a connection's reader catches a room's turn. The zero
// value is ready; it belongs to one connection.
type Slot struct {
	state atomic.Int32
	fn    func()   // the caught turn, while slotCaught or slotHolding
	from  *Mailbox // whose turn fn is
	// reader is the connection whose reading a long turn hands off, and
	// token the HandleMessage call whose reading it is (ReadingToken).
	reader  atomic.Pointer[transport.Conn]
	token   atomic.Uint32
	handled atomic.Int32
}

func (s *Slot) catch(m *Mailbox, fn func()) bool {
	if !s.state.CompareAndSwap(slotOpen, slotClaiming) {
		return false
	}
	s.fn, s.from = fn, m
	s.state.Store(slotCaught)
	return true
}

// close ends the slot's opening and reports whether it caught a turn
// meanwhile, which it then holds until Run.
func (s *Slot) close() bool {
	if s.state.CompareAndSwap(slotOpen, slotClosed) {
		return false
	}
	for s.state.Load() == slotClaiming {
		runtime.Gosched() // a dispatch is storing its turn: two stores away
	}
	s.state.Store(slotHolding)
	return true
}

// Holding reports whether s holds a caught turn, which must be run
// (RunHeld) before s catches another.
func (s *Slot) Holding() bool { return s.state.Load() == slotHolding }

// RunHeld runs the turn s holds, if it holds one, on the calling goroutine,
// the reader of conn inside the HandleMessage call token names: a turn
// longer than Bound messages hands that call's reading off
// (transport.Conn.HandOffReadingAt; a nil conn: none). It reports whether
// it ran one. Only one caller runs a held turn, however many try.
func (s *Slot) RunHeld(conn *transport.Conn, token uint32) bool {
	if !s.state.CompareAndSwap(slotHolding, slotRunning) {
		return false
	}
	fn, m := s.fn, s.from
	s.fn, s.from = nil, nil
	s.state.Store(slotClosed)
	if s.reader.Load() != conn {
		s.reader.Store(conn)
	}
	s.token.Store(token)
	s.handled.Store(0)
	m.runner.Store(s)
	defer m.runner.CompareAndSwap(s, nil)
	fn()
	return true
}

// Mailbox is a mailbox whose turns a connection's reader may catch.
type Mailbox struct {
	actor.Mailbox
	disp    actor.Dispatcher
	catcher atomic.Pointer[Slot] // open on this mailbox, if any
	runner  atomic.Pointer[Slot] // whose reader runs this mailbox's turn, if any (cleared by a dispatch to a worker)
}

// mailboxes indexes the Mailboxes by their actor (a process may run several
// actor systems, whose ids repeat).
var mailboxes sync.Map

type key struct {
	system *actor.ActorSystem
	id     string
}

// Producer wraps produce's mailboxes. The actor using one must call Forget
// with its id when it stops.
func Producer(produce actor.MailboxProducer) actor.MailboxProducer {
	return func() actor.Mailbox { return &Mailbox{Mailbox: produce()} }
}

// RegisterHandlers implements actor.Mailbox: the mailbox becomes its own
// dispatcher and is indexed under its actor's id.
func (m *Mailbox) RegisterHandlers(invoker actor.MessageInvoker, d actor.Dispatcher) {
	m.disp = d
	if ctx, ok := invoker.(actor.Context); ok && ctx.Self() != nil {
		mailboxes.Store(key{ctx.ActorSystem(), ctx.Self().Id}, m)
	}
	m.Mailbox.RegisterHandlers(countingInvoker{invoker, m}, m)
}

// Forget drops the mailbox of system's stopped actor id from the index.
func Forget(system *actor.ActorSystem, id string) { mailboxes.Delete(key{system, id}) }

// Schedule implements actor.Dispatcher: an open slot catches the turn,
// else the dispatcher runs it. It never runs fn itself.
func (m *Mailbox) Schedule(fn func()) {
	if s := m.catcher.Load(); s != nil && s.catch(m, fn) {
		return
	}
	// A reader's run of the previous turn may still be returning: the
	// worker's turn must not count as the reader's.
	m.runner.Store(nil)
	m.disp.Schedule(fn)
}

// Throughput implements actor.Dispatcher.
func (m *Mailbox) Throughput() int { return m.disp.Throughput() }

// countingInvoker counts the messages of a turn run on a reader.
type countingInvoker struct {
	actor.MessageInvoker
	m *Mailbox
}

func (c countingInvoker) InvokeUserMessage(msg any) {
	if s := c.m.runner.Load(); s != nil && s.handled.Add(1) == Bound+1 {
		if conn := s.reader.Load(); conn != nil {
			conn.HandOffReadingAt(s.token.Load())
		}
	}
	c.MessageInvoker.InvokeUserMessage(msg)
}

// Begin opens s on the mailbox of pid, an actor of system, if it is a
// Mailbox no other reader is catching; the caller then posts to pid and
// calls End with the Mailbox returned (nil: there is nothing to end).
func Begin(s *Slot, system *actor.ActorSystem, pid *actor.PID) *Mailbox {
	if s.state.Load() != slotClosed || pid.Address != system.Address() {
		return nil
	}
	v, ok := mailboxes.Load(key{system, pid.Id})
	if !ok {
		return nil
	}
	m := v.(*Mailbox)
	if !m.catcher.CompareAndSwap(nil, s) {
		return nil
	}
	// Only from closed: the slot may hold a turn, or be running one on the
	// goroutine that ran the actor's previous turn (after a hand-off the
	// actor's next turn may start on the new reader meanwhile).
	if !s.state.CompareAndSwap(slotClosed, slotOpen) {
		m.catcher.CompareAndSwap(s, nil)
		return nil
	}
	return m
}

// End closes s on m after the post and reports whether it caught a turn
// meanwhile, which the caller must then Run (false: the actor was busy, its
// worker takes the message).
func End(s *Slot, m *Mailbox) bool {
	m.catcher.CompareAndSwap(s, nil)
	return s.close()
}
