// Package room provides the room actor: a named set of connections that
// receive the same broadcasts, with presence, and optionally a behaviour of
// its own (a game's world state, say).
//
// A room is a protoactor actor living under the supervision tree's rooms
// branch. Connection actors (package actors) talk to it with small messages
// sent to its PID: [Join], [Leave], [Broadcast], [Send] (to one member) and
// [Members]. A [Registry] finds rooms by name and makes them on first use
// ([Registry.JoinAsync] does it from a connection actor without blocking its
// mailbox, answering with a [*JoinResult]);
// [Room] is a handle with the same operations for code outside actors.
//
//	func (c *chat) Receive(ctx actor.Context) {
//		switch m := ctx.Message().(type) {
//		case *actors.Opened:
//			ctx.Request(c.lobby, &room.Join{Conn: m.Conn, Meta: "alice"})
//		case *room.JoinResult:
//			// m.Err is nil, or says why not (e.g. ErrTooManyRooms)
//		case *actors.Message:
//			ctx.Send(c.lobby, &room.Broadcast{Data: m.Data, Except: m.Conn.PID()})
//		}
//	}
//
// A room watches each member, so a connection that stops (closed by the
// peer, killed, or its actor stopped) leaves every room it joined without
// sending Leave; with presence on, the others see a [Left] with reason
// [LeftStopped].
//
// # Broadcast cost
//
// A broadcast is one [transport.Frame], encoded once; with permessage-deflate
// it is compressed at most once, on the first write to a member that
// negotiated it, and those bytes are shared by every such member (wsactor
// negotiates deflate without context takeover, which is what makes sharing
// valid); members without deflate, or below the compression threshold, get
// the plain encoding of the same frame. The room puts the frame straight
// into each member's bounded outbound queue ([actors.Conn.SendFrame]): there
// is no actor message per member (protoactor's Send costs about 600 ns),
// only a queue append under the connection's lock and, for a member whose
// writer is idle, the start of its writer goroutine; the writers then write
// in parallel. BenchmarkBroadcast measures this against an actor message
// per member. What a full queue does is the member connection's
// transport.OverflowPolicy; the room never waits for a member's socket.
//
// # Ordering
//
// Each member receives a room's broadcasts in the order the room handled
// them. The room handles its mailbox one message at a time, and a broadcast
// is in every member's outbound queue, which is written in order, before the
// room handles its next message. The room handles messages from one sender
// (an actor, or a goroutine using a [Room]) in the order they were sent;
// broadcasts from different senders are interleaved in one order, the same
// for every member. [Send] and [State.Broadcast] are part of the same
// sequence.
//
// A member can miss a broadcast only if its queue refused or evicted it
// (transport.OverflowDropNewest or OverflowDropOldest), a keyed frame was
// replaced by a newer one with the same key (transport.NewKeyedFrame), or its
// connection closed. With the default policy, transport.OverflowDisconnect,
// and no keyed frames, a member receives every broadcast, in order, or is
// disconnected. A keyed frame that replaces a queued one takes that one's
// place in the queue, so it can overtake frames queued after the one it
// replaced; keep keyed frames to "latest state" streams where that is what
// you want.
// Presence events are actor messages to the connection actors, ordered among
// themselves but not with the frames on the wire.
//
// # Presence
//
// [Join] carries the member's metadata (Meta, e.g. a display name) and an
// optional User that groups several connections of one user (tabs,
// devices). With [Options.Presence], every member's connection actor
// receives [*Joined] and [*Left]; First and Last say when a user's first
// connection arrives and its last one goes. A Join with Snapshot set is
// answered with the member list. Presence costs one actor message per
// member per event, so leave it off in very large rooms.
//
// # Stateful rooms
//
// [Options.Behavior] gives a room a behaviour of its own: an ordinary
// actor.Actor made with the room's [State]. It receives the room's
// lifecycle, every [*Joined] and [*Left], a [*Tick] every
// [Options.TickInterval], and every message the room does not handle itself,
// such as game inputs that connection actors send to the room's PID. It
// keeps its state in its own fields (touched only by its Receive, like any
// actor) and uses State to list members and to broadcast. A game room
// broadcasts one snapshot per tick with a keyed frame, so that a slow
// client's queue holds the latest state rather than a backlog:
//
//	case *room.Tick:
//		g.state.Broadcast(transport.NewKeyedFrame(transport.MessageBinary, g.world.Encode(), "world"), nil)
//
// # Registry
//
// [Registry.Get] returns the room of a name, making it if needed; concurrent
// calls for one new name make one room. A room with [Options.IdleTimeout]
// stops once it has been empty that long, and the registry forgets it (the
// next Get makes a new one; [Registry.Join] never joins a room that is going
// away). A Registry limits how many of its rooms one connection may be in
// ([RegistryOptions.MaxRoomsPerConn], 128 by default); past it, a Join fails
// with [ErrTooManyRooms]. [Registry.Stats] counts its rooms, their members
// and their broadcasts as they go, so that reading the counts asks no room
// anything (package metrics exports them to Prometheus); rooms made by
// [Spawn] are counted nowhere.
//
// # Concurrency
//
// A room's state is touched only by its own actor: membership, the
// behaviour and [State] live on the room's goroutine, one turn at a time.
// Which goroutine that is changes from turn to turn: a worker of the tree's
// pool, or, when a member's actor sends to the idle room with ctx.Send while
// its turn runs on its connection's reader, that reader, right after the
// member's turn (actors.HandlerOptions.DisableReaderTurns; a behaviour that
// blocks then also stops that member's reading). Any goroutine may
// send to a room's PID or use a [Room]; Room's methods that take a context
// block until the room answers, the others never block. Rooms run in
// parallel with each other and with connections, and a room never waits
// for a member's socket (only, briefly, for its queue's lock). A message
// sent to a room that is stopping may be lost: a Join sent with a request
// is then answered with ErrStopped or, once the room is gone, with
// protoactor's *actor.DeadLetterResponse.
//
// # Failures
//
// The room runs its behaviour through a [supervisor.Host]. A panic in the
// behaviour (or in [Options.Behavior] itself) is recovered by the room,
// logged once at error level with its stack on the room's logger, and the
// message being handled is dropped; the members, their watches, the timers
// and the room's registration are kept. [Options.BehaviorPanic] then
// applies: supervisor.Resume (the default) keeps the behaviour and its
// state; supervisor.Restart replaces it with a fresh one that receives
// *actor.Started and can rebuild from [State.Members]. Both count against
// the policy's budget (3 panics a minute by default). Past the budget, at
// the first panic under supervisor.Stop, or when Options.Behavior itself
// panics (nothing is left to run), the room stops as [Room.Stop] stops it: a Registry forgets it at once (the next Get makes a new room), joins
// still in its mailbox are refused with ErrStopped, and the behaviour gets
// only *actor.Stopping and *actor.Stopped. So a behaviour that panics on
// every Tick logs Max+1 stacks and its room stops, instead of logging at the
// tick rate forever.
//
// A failure outside the behaviour (a bug in this package, or in receiver
// middleware given in Options.Props) reaches the supervisor. The tree's rooms
// branch resumes the room, so nothing is lost but the message. If a
// supervision policy restarts the room instead (the tree's does not today),
// membership is still kept: members, watches and timers belong to the room,
// not to the actor instance, so the restarted room continues with the same
// members (and still sees them stop), while the behaviour is made anew and
// receives *actor.Started as after a supervisor.Restart. Resume and Restart
// both keep a room's members; only stopping the room (a Stop directive, a
// behaviour past its budget, [Room.Stop], the idle timeout, the tree's
// shutdown) ends its membership.
//
// When a room stops, its members stay connected; they are simply no longer
// in it, and no presence events are sent.
//
// # Testing
//
// A member is a [Conn]: a PID and a non-blocking SendFrame. On a server it
// is the *actors.Conn of an Opened or Message; in a test it can be a fake,
// such as wsactortest.Conn (a probe actor that records the presence events
// sent to it, and the frames the room hands it). A room, its behaviour and
// fake members then need no socket, and run inside a testing/synctest
// bubble on fake time: ticks, idle timeouts and panic budgets are checked
// to the nanosecond without sleeping, and synctest.Wait returns once every
// actor is idle. wsactortest.VerifyTestMain checks that nothing is left
// running afterwards.
package room
