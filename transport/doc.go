// Package transport is wsactor's wire layer: the WebSocket handshake (server
// upgrade and client dial), frames that are encoded and compressed once and
// written to many connections, and the per-connection read and write loops
// with the RFC 6455 closing handshake.
//
// The package knows nothing about actors. [Accept] and [Dial] return a [Conn];
// [Conn.Start] runs its reader and hands every message to a [Handler]. The
// actors package builds connection actors on top of it, and [NetConn] turns a
// Conn into a stream.
//
// # Options
//
// [AcceptOptions] and [DialOptions] are flat: every setting is a field of
// the struct passed, and the connection settings (ReadLimit, the timeouts,
// the queue, compression) mean the same in both. [NewAcceptor] and
// [NewDialer] check them and apply their defaults once; an [Acceptor] or a
// [Dialer] then serves any number of connections. Accept and Dial do both
// on every call.
//
// # Frames
//
// A [Frame] is a message encoded for the wire. Server-side encodings (plain and
// permessage-deflate) are computed at most once per Frame and shared by every
// connection that writes it, so a broadcast to N members costs one encode and
// at most one compression per compression level in use (one, unless
// connections were given different CompressionLevels). Client frames are
// masked per write, as RFC 6455 requires.
//
// # Writes
//
// Every write, control frames included, goes through one writer per
// connection. Sends never block: they append to a bounded outbound queue
// (AcceptOptions.QueueMessages and QueueBytes) and a writer, started on
// demand and gone when the queue is empty, writes every queued frame with
// one writev call. The writers of an [Acceptor]'s or a [Dialer]'s
// connections run on a pool of long-lived goroutines, at most one per CPU
// draining the connections that have something to write, one after another
// (idle ones exit after 10s, or at [Acceptor.Close]); the package-level
// Accept and Dial start a goroutine per run. On Linux a batch is first
// written without blocking; a writer that must wait for the socket (under
// the write deadline) first hands the rest of the pool's work to another
// goroutine, so a slow peer delays only its own connection. What happens
// when the queue is full is the connection's [OverflowPolicy].
//
// One shortcut (Linux, a server connection on a plain socket): a Send that
// finds nothing queued and nothing being written writes its frame itself,
// with one non-blocking write, and leaves only what the socket did not take
// to the writer, which finishes that frame before anything else. A frame
// marked with [Frame.MarkShared] (a room's broadcast), a frame already sent
// once, a send with a callback, and every send while something is queued
// take the queue. [AcceptOptions.DisableDirectWrites] turns it off.
//
// # Reads
//
// The reader parses frames itself (RFC 6455, and RFC 7692 for
// permessage-deflate). Messages larger than the read limit are refused with
// 1009 without reading (or inflating) them into memory, as are messages of
// more than [AcceptOptions.MessageFrames] frames; a message not finished within
// [AcceptOptions.MessageTimeout] is refused with 1008; text that is not valid
// UTF-8 is refused with 1007 as soon as a fragment shows it; and protocol
// errors close with 1002. Every ping is answered with its own pong (under a
// flood of more than 16 owed, only the latest). After a close frame is sent the reader keeps draining the peer's
// frames until the peer's close frame arrives or the close timeout passes, so a
// peer that is still sending sees the close code rather than a reset.
//
// # Idle connections
//
// A connection whose peer has sent nothing for [AcceptOptions.IdleReader]
// (1s by default; a busy reader renews that deadline only when half of it
// is left, so between IdleReader/2 and IdleReader) parks its reader: between two messages, never in the
// middle of one and never while closing, the reader goroutine ends and its
// read buffer is let go, and the socket waits in one epoll set
// for the whole process. When the peer sends again (data, a pong, a close
// frame, its FIN), a new reader goroutine starts with a new buffer. An
// idle connection then holds neither a goroutine nor a buffer. Closing or
// terminating a parked connection, or a failed write, wakes its reader, so
// the close handshake and HandleClose happen as for a running one. This is
// Linux, for connections over a plain socket; TLS and in-memory
// connections, and other systems, keep a reader goroutine. The environment
// variable WSACTOR_IDLE_READER sets the default (a time.Duration; negative
// never parks), so that a test suite can run on either path.
//
// # Serving
//
// Serve WebSocket endpoints with the *http.Server that [NewServer] returns,
// not with http.ListenAndServe or http.Serve, whose servers have no timeouts
// and let slow clients hold connections for as long as they like. NewServer
// sets ReadHeaderTimeout to the default handshake timeout (10s), so that the
// handshake timeout bounds reading the upgrade request too, and sets
// ReadTimeout, IdleTimeout and MaxHeaderBytes. None of them applies to a
// connection once upgraded: net/http clears the deadlines of a hijacked
// connection.
//
// # Concurrency
//
// All methods of Conn are safe for concurrent use. A Handler's methods are
// called from the connection's reader goroutine, one at a time.
package transport
