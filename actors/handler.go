package actors

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"

	"github.com/wsactor/wsactor/internal/hist"
	"github.com/wsactor/wsactor/supervisor"
	"github.com/wsactor/wsactor/transport"
)

// HandlerOptions configures a Handler. A nil *HandlerOptions is valid and
// means all defaults. [NewHandler] checks it and applies its defaults once;
// changing it afterwards does not change the Handler.
//
// Every setting is one level deep: the handshake's and the socket's are
// fields of the embedded [transport.AcceptOptions], set as
// HandlerOptions{AcceptOptions: transport.AcceptOptions{ReadLimit: 64 << 10}}
// or opts.ReadLimit = 64 << 10; the connection actor's are fields of
// HandlerOptions. The fields HandlerOptions shares with [DialOptions]
// (Logger, InboxLimit, InboxBytes, Heartbeat, HandlerPanic, Props, and the
// transport connection fields) mean the same on both.
type HandlerOptions struct {
	// AcceptOptions configures the handshake and every connection: auth,
	// origins, subprotocols, read limit, queue policy, compression, timeouts.
	transport.AcceptOptions

	// Logger receives the handler's logs, panics with their stacks included;
	// each connection's logger adds its id. The zero value means the logger
	// the actor system was built with ([NewSystem] or [LoggerFactory]; for
	// another system, its slog logger). zerolog.Nop() logs nothing.
	Logger zerolog.Logger

	// Tree is the supervision tree connection actors are spawned in. Nil makes
	// a tree owned by this Handler, stopped by its Shutdown. Several Handlers
	// may share one tree; then the caller shuts the tree down.
	Tree *supervisor.Tree

	// InboxLimit is how many received messages a connection may hold before
	// its reader stops reading from the socket: posted to the mailbox and not
	// yet handled (the one being handled counts until its Receive returns).
	// Zero means 64. A reader that finds its actor idle runs the actor's
	// turn itself (DisableReaderTurns): it then holds one message and reads
	// the next once Receive has returned.
	InboxLimit int

	// InboxBytes is the byte budget of the same inbox: the reader stops
	// reading while the messages held would exceed it. A message counts the
	// capacity of its Data buffer, after inflation (a compressed message
	// counts what it inflated to): at least its length, more when the reader
	// grew the buffer by doubling, never more than ReadLimit+1. A message
	// that does not fit waits until earlier ones are handled; one larger
	// than the budget is admitted alone, into an empty inbox. So a
	// connection holds at most max(InboxBytes, ReadLimit+1) bytes of
	// received messages, plus the one message (at most ReadLimit+1 bytes) its
	// reader holds while it waits. Zero means 4 MiB; a negative value turns
	// the byte budget off (InboxLimit alone applies).
	InboxBytes int

	// MaxConnections refuses upgrades with 503 and Retry-After once this many
	// connections are open, before anything is spawned. Zero means no limit.
	MaxConnections int
	// MaxConnectionsPerIP refuses an upgrade with 429 and Retry-After while
	// its client's address (ClientIP, so behind TrustedProxies the
	// forwarded one) has this many connections open. Zero means no limit.
	MaxConnectionsPerIP int
	// UpgradesPerIP limits the upgrade attempts of one client address: a
	// token bucket, refused with 429 and Retry-After when empty, before any
	// other work (an attacker's flood costs a map lookup per request). The
	// zero value means no limit.
	UpgradesPerIP Rate
	// MaxConnectionsPerUser refuses an upgrade with 429 and Retry-After when
	// the user Authenticate accepted already has this many connections
	// open; UserOf names the user of a principal ("" counts as no user).
	// Zero, or a nil UserOf, means no limit.
	MaxConnectionsPerUser int
	UserOf                func(principal any) string

	// Heartbeat pings a peer not heard from for Interval and terminates the
	// connection when it has not been heard from for Interval+Timeout (its
	// Closed.Err is supervisor.ErrHeartbeatTimeout). The zero value pings
	// after 30s of silence and kills after 60s; a negative Interval disables
	// it. One goroutine serves every connection of the Handler.
	Heartbeat supervisor.HeartbeatOptions

	// HandlerPanic is the policy for a panic in the connection's behaviour
	// (or in the producer). The zero value resumes (the message is dropped,
	// the behaviour's state and the socket are kept) up to 3 times a minute,
	// then closes with 1011. supervisor.Restart replaces the behaviour with a
	// fresh one for the same socket (see [Opened]); supervisor.Stop closes
	// with 1011 at the first panic.
	HandlerPanic supervisor.Policy

	// Decode, if set, turns each message into a value (Message.Value) on the
	// connection's reader goroutine, before it reaches the actor. An error
	// closes the connection with 1007 (Closed.Err wraps ErrDecode and the
	// error). A panic is logged with its stack and, under DecodePanic, the
	// reader resumes with the next message (the failing one is dropped).
	Decode func(MessageType, []byte) (any, error)

	// DecodePanic is the policy for a panic in Decode. The zero value resumes
	// up to 3 times a minute, then closes with 1011; Restart acts as Resume
	// (a decoder has no instance to replace), Stop closes at the first panic.
	DecodePanic supervisor.Policy

	// Props lets the caller add protoactor props options (middleware, a
	// dispatcher) to every connection actor. The mailbox is protoactor's
	// lock-free unbounded one, wrapped so that the reader can take the
	// actor's turns (actor.WithMailbox here replaces it, and a mailbox of
	// yours has no reader turns); InboxLimit and InboxBytes bound it. By default the mailboxes run on
	// the Handler's pool of long-lived worker goroutines (see
	// docs/performance.md); actor.WithDispatcher here replaces it.
	Props []actor.PropsOption

	// DisableReaderTurns makes every received message go to the actor
	// through its dispatcher. By default a connection's reader that posts a
	// message to an idle actor runs the actor's turn itself, on the reader
	// goroutine, before it reads on: one goroutine hand-off less per message
	// (echo 1.18x the round trips per second, docs/performance.md). The
	// price: while a Receive runs there, the connection reads nothing, not
	// even the peer's pings (on Linux the server's own heartbeat still
	// hears the peer, Conn.LastHeard; elsewhere a Receive blocking past
	// Heartbeat.Interval+Timeout ends the connection as silent); with this
	// option the reader reads ahead up to
	// InboxLimit while the actor works. Set it for actors whose Receive
	// blocks for long, and never wait in Receive for something only the
	// reader can bring (Done after Close, a pong, the peer's next message):
	// with reader turns that wait never ends. A reader's turn that goes on
	// past 32 messages (an actor that others keep busy) hands the
	// connection's reading to a new reader goroutine and finishes as the
	// actor's worker. The same goes for a room (package room) the actor
	// sends to with ctx.Send during such a turn: if the room was idle, the
	// reader runs the room's turn after the actor's, instead of waking a
	// worker (a message's trip through a room at light load: 34 against
	// 58 µs at the median), so a room's behaviour that blocks stops that
	// member's reading too, and a room turn past 32 messages hands the
	// reading off the same way. Messages sent to an actor or a room are
	// never run on the sender's goroutine otherwise, and every ordering
	// guarantee holds. The environment variable WSACTOR_READER_TURNS=off
	// sets the default (CI runs both paths).
	DisableReaderTurns bool
}

// Handler is an http.Handler that upgrades requests to WebSocket connections
// and runs each as an actor made by its producer. Mount it on any mux or
// router; several Handlers with different options can share one http.Server.
type Handler struct {
	system   *actor.ActorSystem
	producer actor.Producer
	opts     HandlerOptions      // a copy; the defaults are in accept and conn
	accept   *transport.Acceptor // opts.AcceptOptions, checked once
	conn     connSettings
	tree     *supervisor.Tree
	ownsTree bool
	props    *actor.Props // the connection actors', shared
	// hooks are the func values every connection actor gets, made once: a
	// method value made per connection would cost each an allocation.
	hooks struct {
		policies failurePolicies
		onStop   func(*Conn)
		onClosed func(c *Conn, code StatusCode, reason string, byPeer bool, err error)
	}

	hb  *supervisor.Heartbeat
	adm *admission // nil without per-IP or per-user limits

	closedStats transport.Stats // of connections that ended, under mu
	upgrades    upgradeCounts
	closes      map[CloseKind]uint64 // under mu
	hbKills     atomic.Uint64
	disp        *supervisor.WarmPool      // the connection actors' mailboxes; stopped by Shutdown
	rtt         hist.H                    // round trips, from every connection's pongs
	recent      [recentCloses]CloseRecord // a ring, under mu
	recentN     int                       // closes recorded in all
	panics      map[string]uint64         // by outcome, under mu

	mu       sync.Mutex
	conns    map[*Conn]struct{}
	reserved int // upgrades admitted but not yet in conns
	draining bool
	empty    chan struct{} // closed when draining and conns is empty
}

// ErrTooManyConnections is why an upgrade is refused with 503 once
// HandlerOptions.MaxConnections connections are open.
var ErrTooManyConnections = errors.New("actors: connection limit reached")

// ErrDraining is returned (as an upgrade failure answered with 503) once
// Shutdown has started.
var ErrDraining = errors.New("actors: handler is shutting down")

// NewHandler returns a Handler that runs producer's actor for every
// connection. system should come from [NewSystem]: protoactor then logs to
// the same logger, and so does the Handler when opts leaves Logger zero.
//
// It checks opts and applies its defaults once, and makes the Handler's
// supervision tree when opts.Tree is nil. An error means no Handler: opts
// holds a value no upgrade could use (see [transport.NewAcceptor]), or the
// tree could not be spawned.
func NewHandler(system *actor.ActorSystem, producer actor.Producer, opts *HandlerOptions) (*Handler, error) {
	if system == nil || producer == nil {
		return nil, errors.New("actors: NewHandler needs an actor system and a producer")
	}
	h := &Handler{system: system, producer: producer, conns: map[*Conn]struct{}{}, empty: make(chan struct{})}
	if opts != nil {
		h.opts = *opts
	}
	h.adm = newAdmission(&h.opts)
	acceptOpts := h.opts.AcceptOptions
	if h.adm != nil && h.adm.userLimits() && acceptOpts.Authenticate != nil {
		acceptOpts.Authenticate = h.adm.authenticate(acceptOpts.Authenticate)
	}
	if user := acceptOpts.OnPong; user != nil {
		acceptOpts.OnPong = func(d time.Duration) { h.rtt.Observe(d); user(d) }
	} else {
		acceptOpts.OnPong = h.rtt.Observe
	}
	accept, err := transport.NewAcceptor(&acceptOpts)
	if err != nil {
		return nil, fmt.Errorf("actors: handler options: %w", err)
	}
	h.accept = accept
	h.disp = supervisor.NewWarmPool()
	props := append([]actor.PropsOption{actor.WithDispatcher(h.disp)}, h.opts.Props...) // the caller's dispatcher wins
	h.conn = newConnSettings(system, h.opts.Logger, h.opts.InboxLimit, h.opts.InboxBytes, h.opts.HandlerPanic, h.opts.DisableReaderTurns, props)
	h.hb = supervisor.NewHeartbeat(h.opts.Heartbeat)
	h.tree = h.opts.Tree
	if h.tree == nil {
		if h.tree, err = supervisor.New(system); err != nil {
			return nil, fmt.Errorf("actors: handler: %w", err)
		}
		h.ownsTree = true
	}
	h.props = h.tree.ConnectionProps(h.conn.props...) // one for every connection
	h.hooks.policies = failurePolicies{
		handlerPanic: h.conn.handlerPanic,
		decodeFail:   h.opts.DecodePanic,
		decode:       h.opts.Decode,
		onPanic:      h.countPanic,
	}
	h.hooks.onStop, h.hooks.onClosed = h.forget, h.countClose
	return h, nil
}

// Len returns the number of connections MaxConnections counts: open ones
// (actors not yet stopped) and upgrades admitted but not yet spawned. Once a
// client's handshake has succeeded, its connection is counted.
func (h *Handler) Len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.conns) + h.reserved
}

// ServeHTTP upgrades r and spawns its connection actor.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var ip netip.Addr
	if h.adm != nil && h.adm.ipLimits() {
		ip = transport.ClientIP(r, h.opts.TrustedProxies)
		if f := h.adm.enterIP(ip, time.Now()); f != nil {
			h.upgrades.count(f.status)
			f.write(w)
			h.conn.log.Debug().Err(f.err).Str("remote", r.RemoteAddr).Stringer("client", ip).Msg("upgrade refused")
			return
		}
	}
	if err := h.admit(); err != nil {
		h.upgrades.count(http.StatusServiceUnavailable)
		h.adm.leaveIP(ip)
		w.Header().Set("Retry-After", "5")
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		h.conn.log.Debug().Err(err).Str("remote", r.RemoteAddr).Msg("upgrade refused")
		return
	}
	r, slot := h.adm.withUserSlot(r)
	t, err := h.accept.Accept(w, r)
	h.upgrades.count(upgradeStatus(err))
	if err != nil {
		h.release()
		h.adm.leaveIP(ip)
		if slot != nil {
			h.adm.leaveUser(slot.user)
		}
		h.conn.log.Debug().Err(err).Str("remote", r.RemoteAddr).Msg("upgrade failed")
		return
	}
	if _, err := h.start(r.Context(), t); err != nil {
		t.CloseWithError(transport.StatusTryAgainLater, "server is shutting down", err)
		t.Start(discard{})
		h.conn.log.Warn().Err(err).Msg("spawning connection actor failed")
	}
}

// discard ends a connection whose actor could not be spawned.
type discard struct{}

func (discard) HandleMessage(*transport.Conn, transport.MessageType, []byte) {}
func (discard) HandleClose(*transport.Conn, transport.CloseInfo)             {}

// admit reserves a connection slot, or refuses: draining or at the limit.
func (h *Handler) admit() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.draining:
		return ErrDraining
	case h.opts.MaxConnections > 0 && len(h.conns)+h.reserved >= h.opts.MaxConnections:
		return fmt.Errorf("%w (%d)", ErrTooManyConnections, h.opts.MaxConnections)
	}
	h.reserved++
	return nil
}

func (h *Handler) release() {
	h.mu.Lock()
	h.reserved--
	h.checkEmptyLocked()
	h.mu.Unlock()
}

// checkEmptyLocked wakes Shutdown once draining leaves nothing open.
func (h *Handler) checkEmptyLocked() {
	if h.draining && len(h.conns) == 0 && h.reserved == 0 {
		select {
		case <-h.empty:
		default:
			close(h.empty)
		}
	}
}

func (h *Handler) start(ctx context.Context, t *transport.Conn) (*Conn, error) {
	c := &Conn{t: t}
	a := newConnActor(c, h.producer, h.hooks.policies, &h.conn.log, newInbox(h.conn.inboxLimit, h.conn.inboxBytes))
	a.root = h.system.Root
	a.onStop, a.onClosed = h.hooks.onStop, h.hooks.onClosed
	h.mu.Lock()
	h.reserved--
	h.conns[c] = struct{}{}
	draining := h.draining
	h.mu.Unlock()
	if draining {
		// Shutdown began during the handshake and did not see this one.
		t.Close(transport.StatusGoingAway, "server shutting down")
	}
	// Detach from the request: the connection outlives it.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	// Watched before the actor exists, so a Remove (in forget) can never
	// come before this Add.
	h.hb.Add(t)
	if _, err := h.tree.SpawnConnectionActor(ctx, h.props, a); err != nil {
		h.forget(c)
		return nil, err
	}
	return c, nil
}

func (h *Handler) forget(c *Conn) {
	h.hb.Remove(c.t)
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.conns[c]; !ok {
		return
	}
	delete(h.conns, c)
	h.closedStats = h.closedStats.Add(c.t.Stats())
	h.adm.leave(c.t)
	h.checkEmptyLocked()
}

// Shutdown stops accepting upgrades (503), closes every connection with 1001
// (going away), and waits until every connection actor has stopped and its
// socket is closed, or until ctx is done. If the Handler owns its supervision
// tree, the tree is shut down too.
//
// Each connection first writes the messages already queued for it, for as
// long as ctx lasts (every write is still bounded by WriteTimeout), then its
// 1001 close frame; the close timeout counts from that close frame being
// written, so a slow reader gets its whole backlog and then 1001.
//
// When ctx ends first, every connection still open drops the messages it has
// not written yet, finishes the frame it is writing (its peer never sees a
// partial frame) and sends its 1001 close frame next (see
// [transport.Conn.DiscardQueued]). Shutdown then returns at once a
// *ShutdownError, which says how many connections and messages were cut and
// wraps ctx's error. Those connections end in the background, within
// WriteTimeout (the rest of the frame in flight and the close frame) plus
// CloseTimeout; call Shutdown again with a new ctx to wait for them.
//
// Call it before http.Server.Shutdown, which does not wait for hijacked
// connections; actor.ActorSystem.Shutdown stops no actors.
func (h *Handler) Shutdown(ctx context.Context) error {
	defer h.disp.Stop() // the connection actors are gone, or cut short
	defer h.accept.Close()
	h.mu.Lock()
	h.draining = true
	h.checkEmptyLocked()
	conns := make([]*Conn, 0, len(h.conns))
	for c := range h.conns {
		conns = append(conns, c)
	}
	h.mu.Unlock()
	for _, c := range conns {
		c.t.Close(transport.StatusGoingAway, "server shutting down")
	}
	select {
	case <-h.empty:
	case <-ctx.Done():
		return h.cutShort(ctx.Err())
	}
	if h.ownsTree && h.tree != nil {
		return h.tree.Shutdown(ctx)
	}
	return nil
}

// cutShort ends the drain of every connection still open, once Shutdown's
// context is done, and reports what that cut.
func (h *Handler) cutShort(cause error) *ShutdownError {
	h.mu.Lock()
	conns := make([]*Conn, 0, len(h.conns))
	for c := range h.conns {
		conns = append(conns, c)
	}
	h.mu.Unlock()
	e := &ShutdownError{Open: len(conns), Err: cause}
	for _, c := range conns {
		if n := c.t.DiscardQueued(); n > 0 {
			e.Cut++
			e.Messages += n
		}
	}
	return e
}

// ShutdownError is the error [Handler.Shutdown] returns when its context
// ended before every connection had closed. It wraps the context's error, so
// errors.Is(err, context.DeadlineExceeded) holds; use errors.As to read the
// counts.
type ShutdownError struct {
	// Open is how many connections were still open when the context ended.
	Open int
	// Cut is how many of them still had messages queued and not written,
	// and Messages how many such messages they dropped in all. Their peers
	// get every message written before the cut, whole, and then the 1001
	// close frame.
	Cut      int
	Messages int
	// Err is the context's error.
	Err error
}

func (e *ShutdownError) Error() string {
	return fmt.Sprintf("actors: shutdown: %d connections still open, %d cut short with %d unwritten messages dropped: %v",
		e.Open, e.Cut, e.Messages, e.Err)
}

// Unwrap returns the context's error.
func (e *ShutdownError) Unwrap() error { return e.Err }
