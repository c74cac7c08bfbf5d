// Package actors makes every WebSocket connection a protoactor actor.
//
// A connection's behaviour is an ordinary actor.Actor written by the user. It
// receives protoactor's lifecycle messages, then [*Opened] once (a fresh
// behaviour made by a restart gets its own, see Failures), a [*Message] for
// every data message from the peer, and [*Closed] exactly once when the
// connection ends; after Closed the actor stops. Anything other actors send to
// the connection's PID arrives too, so per-client state lives in the user's
// struct and is touched only by its Receive.
//
//	type echo struct{}
//
//	func (echo) Receive(ctx actor.Context) {
//		if m, ok := ctx.Message().(*actors.Message); ok {
//			_ = m.Conn.Send(m.Type, m.Data)
//		}
//	}
//
//	h := actors.NewHandler(system, func() actor.Actor { return echo{} }, nil)
//	http.Handle("/ws", h)
//
// # Sending
//
// [Conn] methods send directly into the connection's bounded outbound queue;
// they never block and are safe from any goroutine. Other actors can also send
// [*Send] and [*Close] to the connection's PID; a Send with ReplyTo set is
// answered with [*Sent] once the frame is written or has failed (ws's send
// callback). A broadcast should build one [transport.Frame] and send it to
// every member: it is encoded and compressed once.
//
// Which to use:
//
//   - [Conn.SendText] and [Conn.Send]: from your behaviour (or any goroutine
//     holding the Conn), one message to this connection. The common case.
//   - [Conn.SendFrame]: the same with a prepared [transport.Frame], when one
//     frame goes to many connections (encoded and compressed once), or a
//     keyed frame for conflation ([transport.NewKeyedFrame]).
//   - [Conn.SendNotify]: when you must know that a frame reached the socket
//     or why it was lost (a callback, run by the writer or by whoever drops
//     the frame; it must not block).
//   - [*Send] to the connection's PID: from another actor that has only the
//     PID (no Conn); with ReplyTo, the outcome comes back as [*Sent], a
//     message, so the sender needs no callback or lock.
//   - room.Send to a room's PID: to one member of a room, ordered with the
//     room's broadcasts (a private reply that must not overtake them).
//
// # Failures
//
// The user's behaviour runs inside the connection actor through a
// [supervisor.Host]. A panic in its Receive (or in the producer) is
// recovered and logged once with its stack, to HandlerOptions.Logger or,
// when that is left zero, to the logger the actor system was built with
// ([NewSystem]); the message being handled is dropped. Then
// HandlerOptions.HandlerPanic applies: by default the behaviour resumes
// (state and socket kept) up to 3 times a minute; supervisor.Restart
// replaces it with a fresh one from the producer, for the same socket, which
// receives *actor.Started and then [*Opened] again with Opened.Restarted set;
// supervisor.Stop gives up at the first panic. Past the budget the
// connection closes with 1011 and Closed.Err is the [*PanicError]; a panic
// in the producer closes it at once, since nothing is left to run. Replies
// sent before the fatal panic (with Conn methods, or as [*Send] messages
// already in the actor's mailbox) are written before the close frame;
// received messages still waiting are dropped. A panic in
// HandlerOptions.Decode is handled the same way under DecodePanic, on the
// reader goroutine. The process and every other connection carry on.
//
// # Heartbeats and reconnects
//
// Servers ping connections idle for HandlerOptions.Heartbeat.Interval (30s)
// and terminate those silent for Interval+Timeout; Closed.Err is then
// supervisor.ErrHeartbeatTimeout. Dialed connections do the same
// (DialOptions.Heartbeat, the same field with the same default; a negative
// Interval turns it off on either side) and can reconnect
// (DialOptions.Reconnect): the actor
// lives on, gets *Reconnecting before each attempt and *Opened with a new
// Conn after it.
//
// # Reads and backpressure
//
// Each connection has one reader goroutine. It delivers messages into the
// actor's mailbox in order. A message holds room in the connection's inbox
// from the moment the reader posts it until the actor's Receive for it
// returns. The reader stops reading from the socket while the inbox holds
// [HandlerOptions.InboxLimit] messages (64) or while the next message would
// take it past [HandlerOptions.InboxBytes] (4 MiB), so a peer that sends
// faster than its actor handles is slowed down by TCP instead of growing
// memory.
//
// A reader that posts a message to an idle actor runs the actor's turn
// itself, on the reader goroutine, and reads on when Receive has returned:
// one goroutine hand-off less per message. While the actor is busy on a
// worker (handling what others sent it), the reader posts and reads ahead
// up to the inbox's bounds as above. A Receive that blocks therefore stops
// the reading at once; [HandlerOptions.DisableReaderTurns] makes every
// turn go through the dispatcher, so the reader reads ahead while the
// actor works. A reader's turn that goes on past a few dozen messages
// (others keep the actor busy) hands the reading to a new reader goroutine.
// A room the actor sends to with ctx.Send during the reader's turn, if it
// is idle, has its turn run by the reader too, right after the actor's: a
// member's message goes through its actor and its room to every member's
// socket with no goroutine hand-off. Messages others send to the actor are
// never handled on the sender's goroutine.
//
// Bytes are counted after inflation, by the capacity of each message's Data
// buffer. A message larger than InboxBytes is admitted alone, into an empty
// inbox. The received messages a connection holds therefore stay under
// max(InboxBytes, ReadLimit+1) + ReadLimit+1 bytes: the inbox, plus the one
// message its reader holds while it waits. With the defaults (ReadLimit 1
// MiB) that is 5 MiB + 1 byte, whether the peer sends 1 MiB or, with
// permessage-deflate, 1 KiB per message. The bound counts live memory
// (what is left after a garbage collection): Go's collector lets the heap grow
// to about twice the live heap by default (GOGC=100), and a message being
// read or inflated makes short-lived copies. It does not count a Decode
// hook's Value, data a Receive keeps after it returns (e.g. in a room's
// queue), or the outbound queue (QueueBytes, 4 MiB by default).
package actors
