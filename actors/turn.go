package actors

import (
	"sync/atomic"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/wsactor/wsactor/internal/turns"
	"github.com/wsactor/wsactor/transport"
)

// readerCtx is the context a behaviour gets while its turn runs on the
// reader: a Send to a room whose mailbox is idle catches the room's turn,
// which the reader runs after this turn (internal/turns).
type readerCtx struct {
	actor.Context
	m *turnMailbox
}

// Send implements actor.SenderContext.
func (c *readerCtx) Send(pid *actor.PID, msg any) {
	m := c.m
	if !m.onReader() || pid == nil {
		c.Context.Send(pid, msg)
		return
	}
	slot := &m.rt.Load().slot
	mb := turns.Begin(slot, c.ActorSystem(), pid) // nil if the slot holds a turn already
	c.Context.Send(pid, msg)
	if mb != nil {
		turns.End(slot, mb)
	}
}

// A connection's reader runs its actor's turn itself when it finds the
// actor idle. Posting a received message to an idle actor makes protoactor
// schedule the mailbox on the dispatcher, a hand-off to a worker goroutine:
// in the echo benchmark one of the two goroutine hand-offs per message
// (the other is the room's). With a turn-taking mailbox, the reader marks
// that it is posting; the dispatch its post causes is handed back to it
// instead of to a worker, and the reader runs the mailbox (its message and
// whatever else is queued) before it reads on. The reader waited for the
// actor anyway once the inbox was full; now it waits from the first
// message, which is the same backpressure without the hand-off.
//
// protoactor runs a turn until the mailbox is empty; a reader whose turn
// goes on past readerTurnMessages (others keep the actor busy) hands its
// connection's reading to a new reader goroutine
// (transport.Conn.HandOffReading) and finishes the turn as a worker.
//
// A dispatch that another goroutine causes while the reader is marked
// (it posted first, to the idle actor) is handed to the reader just the
// same: Schedule never runs the turn on the caller's goroutine, so sending
// to a connection never blocks. Other dispatches go to the Handler's
// dispatcher as before.

// turnMailbox wraps a connection actor's protoactor mailbox and stands as
// its dispatcher.
type turnMailbox struct {
	actor.Mailbox
	disp actor.Dispatcher // the Handler's dispatcher, for the turns the reader does not take
	// state: turnNone, turnWanted (the reader is posting), turnHanded (fn
	// holds the turn for the reader).
	state atomic.Int32
	// handled counts the messages of the reader's turn under way, -1 when
	// none is. A dispatch to a worker sets it to -1 first: the reader's
	// turn may still be returning when the mailbox, idle again, is
	// dispatched, and the worker's turn must not pass for the reader's
	// (onReader).
	handled atomic.Int32
	fn      func()
	// rt is made the first time the reader runs a turn (an idle
	// connection never has one). Used inside the reader's turns, and by
	// post right after one; atomic, since the actor's next turn may start
	// on another goroutine meanwhile.
	rt atomic.Pointer[readerTurn]
}

// readerTurn is what a reader's turn needs to run the turns of the rooms
// its actor sends to: slot catches such a turn and holds it until the
// actor's turn is over; rctx is the context that opens it.
type readerTurn struct {
	slot turns.Slot
	rctx readerCtx
}

// readerContext returns the context for a behaviour's Receive of ctx's
// message on the reader.
func (m *turnMailbox) readerContext(ctx actor.Context) actor.Context {
	rt := m.rt.Load()
	if rt == nil { // turns run one at a time: no other can make one now
		rt = &readerTurn{}
		rt.rctx.m = m
		m.rt.Store(rt)
	}
	rt.rctx.Context = ctx
	return &rt.rctx
}

// readerTurnMessages is how many messages a reader handles in one turn
// before it hands its connection's reading to a new reader goroutine and
// goes on as the actor's worker: protoactor runs a turn until the mailbox is
// empty, and an actor that others keep busy would otherwise keep its
// reader from the socket.
const readerTurnMessages = 32

const (
	turnNone int32 = iota
	turnWanted
	turnHanded
)

// turnMailboxProducer wraps produce's mailboxes.
func turnMailboxProducer(produce actor.MailboxProducer) actor.MailboxProducer {
	return func() actor.Mailbox {
		m := &turnMailbox{Mailbox: produce()}
		m.handled.Store(-1)
		return m
	}
}

// RegisterHandlers implements actor.Mailbox: the mailbox becomes its own
// dispatcher, and a connection actor learns of it (connActor.turns).
func (m *turnMailbox) RegisterHandlers(invoker actor.MessageInvoker, d actor.Dispatcher) {
	m.disp = d
	if ctx, ok := invoker.(actor.Context); ok {
		if a, ok := ctx.Actor().(*connActor); ok {
			a.turns = m
		}
	}
	m.Mailbox.RegisterHandlers(invoker, m)
}

// Schedule implements actor.Dispatcher: the turn goes to the reader if it
// is posting, else to the dispatcher. It never runs fn itself.
func (m *turnMailbox) Schedule(fn func()) {
	if m.state.Load() == turnWanted {
		// Only one dispatch of a mailbox is under way at a time, so fn is
		// written by one goroutine at a time; the reader reads it only
		// after the swap below made it visible.
		m.fn = fn
		if m.state.CompareAndSwap(turnWanted, turnHanded) {
			return
		}
	}
	m.handled.Store(-1)
	m.disp.Schedule(fn)
}

// Throughput implements actor.Dispatcher.
func (m *turnMailbox) Throughput() int { return m.disp.Throughput() }

// post sends msg to pid, taking the turn the post causes (if the actor was
// idle) and running it on the calling goroutine, the reader of conn; then
// it runs the turn of a room the actor posted to, if it caught one.
func (m *turnMailbox) post(root *actor.RootContext, pid *actor.PID, msg any, conn *transport.Conn) {
	m.want()
	root.Send(pid, msg)
	if fn := m.take(); fn != nil {
		token := conn.ReadingToken() // this HandleMessage call's
		m.handled.Store(0)
		fn()
		m.handled.Store(-1)
		// A room turn this turn caught. After a hand-off (a long turn) the
		// new reader may take the actor's next turn and try too: one of
		// them runs it; and a goroutine that handed the reading off
		// already does not hand off the new reader's (the token).
		if rt := m.rt.Load(); rt != nil {
			rt.slot.RunHeld(conn, token)
		}
	}
}

// onReader reports whether the reader's turn is under way: true only on
// the reader's goroutine, inside post (a worker's turn starts with
// handled at -1, see Schedule).
func (m *turnMailbox) onReader() bool { return m.handled.Load() >= 0 }

// received counts a message the actor handles and reports whether the
// reader's turn under way has now handled readerTurnMessages: then the
// caller hands the connection's reading to a new reader goroutine
// (transport.Conn.HandOffReading) and this one finishes the turn as a
// worker.
func (m *turnMailbox) received() bool {
	return m.handled.Load() >= 0 && m.handled.Add(1) == readerTurnMessages+1
}

// want marks the reader as posting: a turn scheduled from now on is
// handed to it.
func (m *turnMailbox) want() { m.state.Store(turnWanted) }

// take ends want and returns the turn handed over meanwhile, or nil if
// none was (the actor was busy: its worker takes the message).
func (m *turnMailbox) take() func() {
	if m.state.CompareAndSwap(turnWanted, turnNone) || m.state.Load() != turnHanded {
		return nil
	}
	fn := m.fn
	m.state.Store(turnNone)
	return fn
}
