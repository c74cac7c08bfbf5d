// Package supervisor owns a server's actors: a tree with one root actor and
// two branches, one for connection actors and one for room actors.
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
//   - A connection actor's failures are its own: the actors package recovers
//     panics in user handlers, logs them with their stack and closes the
//     connection with 1011. A failure that still reaches the connections
//     branch (a bug in wsactor itself) stops that connection, never restarts
//     it: a restart would build a new instance and lose the socket it holds.
//   - A room's failure resumes the room by default (its membership survives);
//     see the room package.
//   - The branches themselves hold no state but their children; a failure of
//     a branch resumes it, because restarting a branch would stop every child.
//
// # Policies
//
// Failures of user code are handled by named, configurable policies
// ([Policy]: a [Directive] and a restart [Budget]):
//
//   - A panic in a connection's behaviour (actors.HandlerOptions.HandlerPanic):
//     by default Resume — the message is dropped, the actor's state and the
//     socket are kept — up to 3 times a minute; past the budget the
//     connection closes with 1011. Every panic is logged once with its stack.
//   - A panic in a user-supplied decoder that runs on the connection's reader
//     (actors.HandlerOptions.DecodePanic): the reader resumes with the next
//     message under the same kind of budget, then 1011. Peer closes and
//     protocol errors are not failures: they end the connection.
//
// [Backoff] is capped exponential backoff with full jitter, used for client
// reconnects (protoactor's own "exponential" backoff grows linearly).
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
// protoactor's AllForOne strategy and the Escalate directive are never used:
// at a guardian they crash the process.
//
// # Shutdown
//
// protoactor's ActorSystem.Shutdown stops no actors. [Tree.Shutdown] stops the
// rooms branch, then the connections branch, and waits until both have
// stopped (with all their children) or the context is done.
package supervisor
