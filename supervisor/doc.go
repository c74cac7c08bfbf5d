// Package supervisor holds wsactor's supervision: the tree that owns a
// server's actors, the [Host] that runs user code inside them, the failure
// policies and their budgets, and liveness (heartbeats) and retry timing
// (backoff). It knows nothing of WebSocket.
//
//	wsactor-tree (root, spawned from the actor system's root context)
//	├── connections   one child per WebSocket connection
//	└── rooms         one child per room
//
// Connections are never children of rooms, so a room that stops or restarts
// cannot take its members with it; a room learns of a member's end by
// watching it.
//
// # Failures
//
// Two kinds of failure are supervised, in two places:
//
//   - A panic in user code (a connection's behaviour or decoder, a room's
//     behaviour) never reaches protoactor: the library actor runs that code
//     through a [Host], which recovers the panic, logs it once with its
//     stack, and applies a [Policy] (below). protoactor would log it at Info
//     without a stack, and its restart would rebuild the library actor and
//     lose what it holds (a socket, a room's members).
//   - A failure that still reaches protoactor is a bug in wsactor itself, or
//     in receiver middleware a user added with Props. The tree's strategies
//     decide it: the connections branch stops the failing connection (a
//     restart would build a new connection actor and lose its socket); the
//     rooms branch resumes the failing room (its membership survives); the
//     root resumes a failing branch, because restarting a branch would stop
//     every child.
//
// protoactor's AllForOne strategy and the Escalate directive are never used:
// at a guardian they crash the process.
//
// # Policies
//
// A [Policy] is a [Directive] applied while a [Budget] lasts. The budget
// allows Max panics within any window of Within (the zero value: 3 per
// minute); past it, or at the first panic under [Stop], the host gives up,
// once, through the owner's GiveUp hook. In every case the message being
// handled is dropped. The budget spans restarts, so a behaviour that panics
// on every message is restarted Max times and then given up on; a panic in
// the producer gives up at once, since there is nothing to run.
//
//   - [Resume] (the default) keeps the behaviour instance and its state.
//   - [Restart] makes a fresh instance with the producer: the old one gets
//     *actor.Restarting, the new one *actor.Started, then what its owner
//     documents. The owner's own state (the socket, the members) is kept.
//   - [Stop] gives up at the first panic.
//
// What giving up means depends on the owner:
//
//   - A connection's behaviour (actors.HandlerOptions.HandlerPanic,
//     actors.DialOptions.HandlerPanic): the connection closes with 1011
//     after the replies already sent are written; Closed.Err is the
//     [*PanicError]. On Restart the fresh behaviour gets *actors.Opened
//     again for the same socket, with Opened.Restarted set.
//   - A decoder that runs on the connection's reader
//     (actors.HandlerOptions.DecodePanic): the panicking message is dropped
//     and the reader goes on with the next; Restart acts as Resume. Giving
//     up closes with 1011 once the messages read before it are handled.
//   - A room's behaviour (room.Options.BehaviorPanic): giving up stops the
//     room, as room.Room.Stop does; its members stay connected. On Restart
//     the fresh behaviour rebuilds from room.State.Members.
//
// Peer closes, protocol errors and decoder errors are not panics: they end
// the connection with their own close code.
//
// # Backoff
//
// [Backoff] is capped exponential backoff with full jitter (protoactor's own
// "exponential" backoff grows linearly). It stays here, next to the
// policies, because it is the other half of a restart decision: when to try
// again after a failure. Its user today is a dialed connection's reconnect
// (actors.ReconnectOptions.Backoff).
//
// # Heartbeats
//
// [Heartbeat] judges each connection by when its peer was last heard from:
// when a frame from it was last read, or, on Linux, when data from it last
// reached the socket, read or not (so pongs count even while a slow handler
// holds the reader). A connection not heard from for Interval is pinged; one
// not heard from for Interval+Timeout is terminated: the socket is closed,
// the actor stopped, and the handler's Closed carries [ErrHeartbeatTimeout];
// rooms drop the member when its actor stops. A dead peer is thus terminated
// on time whatever its handler does. Where the kernel does not report
// received data (other systems, sockets that are not TCP), a reader held for
// Interval+Timeout after the last frame is terminated even if the peer is
// alive; see [Heartbeat] for this and the peer that fills the receive buffer.
// One goroutine and one ticker serve all of a server's connections. It does
// not use protoactor's SetReceiveTimeout, which races at the pinned version.
//
// Heartbeat stays in this package, though only the actors package uses it,
// because it is supervision: it decides that a connection has failed (a
// silent peer) and terminates it. It sees connections only through [Peer],
// so it needs no WebSocket code, and servers (actors.HandlerOptions) and
// clients (actors.DialOptions) share it.
//
// # Where actors run
//
// protoactor's default dispatcher starts a goroutine for every batch of
// messages an idle actor receives, whose stack then grows through the
// actor's call chain. [WarmPool] runs mailboxes on long-lived workers
// instead; an actors.Handler runs its connections on one, and a Tree's
// rooms run on [Tree.Pool]. It is here because the tree is what ends it:
// the pool stops with the tree (or the Handler's Shutdown).
//
// # Shutdown
//
// protoactor's ActorSystem.Shutdown stops no actors. [Tree.Shutdown] stops the
// rooms branch, then the connections branch, and waits until both have
// stopped (with all their children) or the context is done.
package supervisor
