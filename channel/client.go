package channel

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"

	"github.com/wsactor/wsactor/actors"
	"github.com/wsactor/wsactor/transport"
)

// The Go client of the channels protocol (docs/channels-protocol.md).
//
// A Client is three small parts, one per goroutine or role:
//
//   - clActor is the connection actor's behaviour (actors.Dial): it owns
//     every piece of protocol state (the subscriptions and their positions,
//     the requests waiting for a reply, the offline buffer) and is the only
//     one to write to the socket;
//   - clCallbacks is one goroutine per Client that runs the application's
//     callbacks in the order the actor queued them, so a callback may call
//     any Client method (they wait for the actor, which never waits for a
//     callback);
//   - the exported methods run on the caller's goroutine: each sends the
//     actor a request and waits for its answer, the caller's context or the
//     client's end.

// Errors of the Client; branch with errors.Is. Error replies from the
// server are *Error values (errors.As); a request that got no reply in time
// returns an error wrapping ErrTimeout (and the context's error).
var (
	// ErrClientClosed: the Client was closed, or stopped (see Client.Err).
	ErrClientClosed = errors.New("channel: client closed")
	// ErrBufferFull: a push waiting in the offline buffer was pushed out
	// by a newer one (ClientOptions.Buffer).
	ErrBufferFull = errors.New("channel: offline buffer full")
	// ErrNotJoined: the subscription has ended (Leave, the server removed
	// it, a failed rejoin); see Subscription.Err.
	ErrNotJoined = errors.New("channel: not joined")
	// ErrDisconnected: the connection ended after the request was sent and
	// before its reply came. The server may or may not have handled it.
	ErrDisconnected = errors.New("channel: connection lost before the reply")
	// ErrRemoved: the server ended the membership with a "left" message
	// (the topic's code removed the connection); Subscription.Err wraps
	// it with the reason.
	ErrRemoved = errors.New("channel: removed from the topic")
)

// ClientOptions configures a Client. A nil *ClientOptions is valid and
// means all defaults.
//
// Every setting is one level deep: the connection's are fields of the
// embedded actors.DialOptions (Header for a token, Proxy, TLSConfig,
// Heartbeat, Reconnect's Backoff, Logger, ReadLimit, ...). The client's
// logs go to DialOptions.Logger; the zero value logs nothing of the
// client's own (the connection's logs follow actors.DialOptions).
// ReadLimit (1 MiB by default) bounds every message from the server, join
// replies with their history included; a larger one closes the connection
// with 1009 and stops the Client.
type ClientOptions struct {
	actors.DialOptions

	// Binary offers SubprotocolBinary instead of Subprotocol: messages
	// travel in the protocol's compact binary encoding, bytes payloads as
	// raw bytes (docs/channels-protocol.md, "Binary encoding"). The API is
	// the same in both encodings. A server that accepts the connection
	// without choosing a subprotocol speaks JSON (the protocol's default),
	// and so does the client on that connection.
	Binary bool

	// NoReconnect turns reconnecting off: the Client stops when its
	// connection ends. By default it reconnects (DialOptions.Reconnect, nil
	// meaning its defaults: backoff with full jitter from 100ms up to 30s,
	// no limit on attempts) after every close except 1000, 1003, 1008,
	// 1009, 4400 and 4429 and a handshake refused with a 4xx status.
	NoReconnect bool

	// Timeout bounds Join, Push, Leave and Ping when their context has no
	// deadline. Zero means 10s.
	Timeout time.Duration

	// Buffer is how many pushes may wait while the connection is down (or
	// their topic is being rejoined); they are sent, in order, once the
	// topic is joined again. Past it, the oldest waiting push fails with
	// ErrBufferFull. Zero means 100; negative means no buffer (a push
	// while disconnected fails at once with ErrBufferFull).
	Buffer int

	// OnPush handles the server's pushes to this connection on topics
	// whose JoinOptions.OnPush is nil. The push comes as an Event (Topic,
	// Event, and Data or Bin; no Offset). For a push with a ref, its
	// result is the reply, a payload as Subscription.Push takes it; an
	// error becomes an error reply with the *Error's code (or "error" and
	// the error's text). A push without a ref that no OnPush takes goes to
	// the topic's Handler as an Event. Nil answers pushes with a ref with
	// the error "no_handler".
	OnPush func(push Event) (reply any, err error)

	// OnConnect is called after every connection is made but the first
	// (which Dial returns with), before the rejoins' replies are handled.
	// OnDisconnect is called when a connection ends, with why (an error
	// wrapping a transport.CloseError, or the I/O error). Both run on the
	// callback goroutine (see JoinOptions).
	OnConnect    func()
	OnDisconnect func(err error)
}

const (
	defaultClientTimeout = 10 * time.Second
	defaultClientBuffer  = 100
)

// JoinOptions configures one subscription. A nil *JoinOptions is valid.
//
// Every callback runs on the Client's callback goroutine, one at a time, in
// the order the server's messages arrived (events, presence, pushes,
// rejoins of every topic of the Client), so they need no locks of their
// own and may call any method of the Client. A slow callback delays the
// ones after it (they wait in memory); a panic in one is logged and the
// next one runs.
type JoinOptions struct {
	// Params is sent with the join (and every rejoin): any JSON value, for
	// the server's Authorize (a token, say).
	Params any
	// History asks for the topic's last History events with the join.
	History int

	// Handler receives the topic's events, oldest first, each once: the
	// join reply's history (Event.Replayed), then the live events. After a
	// reconnect, the events missed meanwhile are replayed first; an event
	// whose offset was already delivered is dropped.
	Handler func(Event)

	// OnRejoin is called after every automatic rejoin (after a reconnect,
	// or when the server stopped the topic), before the history it
	// brought is delivered. When reply.Recovered is false the stream could
	// not be resumed (reply.Reason says why): reload what you derived from
	// it. A failed rejoin passes a nil reply and the error (an *Error);
	// the subscription has then ended.
	OnRejoin func(reply *JoinReply, err error)

	// OnPush, if set, handles the server's pushes on this topic instead of
	// ClientOptions.OnPush.
	OnPush func(push Event) (reply any, err error)

	// Presence hooks, called as presence_state and presence_diff messages
	// are applied. OnPresenceJoin gets the key's metas before the change
	// (nil for a key that was not present) and those that joined;
	// OnPresenceLeave the metas left after the change (empty when the key
	// has gone) and those that left. OnPresenceSync follows every applied
	// message with the whole list, as Subscription.Presence returns it.
	OnPresenceJoin  func(key string, current, joined []PresenceMeta)
	OnPresenceLeave func(key string, current, left []PresenceMeta)
	OnPresenceSync  func(list []PresenceKey)
}

// Event is one event of a topic, as JoinOptions.Handler receives it (and
// a server push, as OnPush receives it).
type Event struct {
	Topic string
	Event string
	// The payload (docs/channels-protocol.md, "Payloads"): Data for JSON,
	// Bin for bytes; at most one is set (neither for an event without
	// one).
	Data json.RawMessage
	Bin  []byte
	// Offset is the event's place in the topic's history (see Position);
	// zero for an event the topic does not keep.
	Offset uint64
	// Replayed is true for an event of a join reply's history (a join's
	// History, or the events a rejoin recovered).
	Replayed bool
}

// PresenceKey is one key of a topic's presence and its connections.
type PresenceKey struct {
	Key   string
	Metas []PresenceMeta
}

// Client is a channels client: one WebSocket connection, reconnected with
// backoff, carrying any number of subscriptions. Its methods are safe from
// any goroutine, callbacks included. Make one with Dial; Close it.
type Client struct {
	root    *actor.RootContext
	pid     *actor.PID
	timeout time.Duration
	ids     atomic.Uint64 // request ids, for cancelling

	stopped chan struct{} // closed when the actor has stopped; err is set
	err     error
	done    chan struct{} // closed once the last callback has returned
}

// Dial connects to url (ws:// or wss://, offering Subprotocol, or
// SubprotocolBinary with ClientOptions.Binary) and returns a running
// Client. Dial returns an error if the first connection fails; after that,
// the Client reconnects by itself (see ClientOptions).
//
// The connection is an actor on system, which should come from
// actors.NewSystem.
func Dial(ctx context.Context, system *actor.ActorSystem, url string, opts *ClientOptions) (*Client, error) {
	if system == nil {
		return nil, errors.New("channel: Dial needs an actor system")
	}
	var o ClientOptions
	if opts != nil {
		o = *opts
	}
	if o.Timeout <= 0 {
		o.Timeout = defaultClientTimeout
	}
	if o.Buffer == 0 {
		o.Buffer = defaultClientBuffer
	}
	d := o.DialOptions
	offer := Subprotocol
	if o.Binary {
		offer = SubprotocolBinary
	}
	if !slices.Contains(d.Subprotocols, offer) {
		d.Subprotocols = append([]string{offer}, d.Subprotocols...)
	}
	switch {
	case o.NoReconnect:
		d.Reconnect = nil
	case d.Reconnect == nil:
		d.Reconnect = &actors.ReconnectOptions{}
	}
	c := &Client{
		root:    system.Root,
		timeout: o.Timeout,
		stopped: make(chan struct{}),
		done:    make(chan struct{}),
	}
	a := &clActor{
		c:       c,
		log:     o.Logger,
		binary:  o.Binary,
		buffer:  o.Buffer,
		onPush:  o.OnPush,
		onConn:  o.OnConnect,
		onDisc:  o.OnDisconnect,
		subs:    map[string]*clSub{},
		pending: map[uint64]*clRequest{},
		byID:    map[uint64]*clRequest{},
		cb:      newClCallbacks(o.Logger, c.done),
	}
	if _, _, err := actors.Dial(ctx, system, url, func() actor.Actor { return a }, &d); err != nil {
		return nil, fmt.Errorf("channel: dial %s: %w", url, err)
	}
	return c, nil
}

// Done is closed once the Client has stopped (Close, a close code that
// forbids reconnecting, reconnecting given up) and its last callback has
// returned.
func (c *Client) Done() <-chan struct{} { return c.done }

// Err returns nil while the Client runs; once it has stopped, why. It is
// or wraps ErrClientClosed: ErrClientClosed itself after Close; with a
// transport.CloseError for a close code that forbids reconnecting
// (transport.CloseStatus reads it); with the last connection error when
// reconnecting stopped (ReconnectOptions.MaxAttempts, a refused handshake)
// or NoReconnect is set.
func (c *Client) Err() error {
	select {
	case <-c.stopped:
		return c.err
	default:
		return nil
	}
}

// Close closes the connection with 1000 (no reconnect), fails every request
// still waiting with ErrClientClosed, ends every subscription, and waits
// until the connection actor has stopped. Callbacks already queued still
// run; Done is closed after the last one. Close is safe to call more than
// once and from a callback.
func (c *Client) Close() error {
	c.root.Send(c.pid, &clClose{})
	<-c.stopped
	return nil
}

// Join joins topic and returns the subscription and the server's reply.
// The reply's history is delivered to opts.Handler too, before any later
// event. A refused join returns an *Error (errors.As): e.g. CodeUnauthorized,
// CodeAlreadyJoined (this Client already has a subscription to topic).
// While the connection is down, the join waits for it, within ctx or
// ClientOptions.Timeout.
func (c *Client) Join(ctx context.Context, topic string, opts *JoinOptions) (*Subscription, *JoinReply, error) {
	var o JoinOptions
	if opts != nil {
		o = *opts
	}
	if err := checkName("topic", topic); err != nil {
		return nil, nil, fmt.Errorf("channel: join: %w", err)
	}
	if o.History < 0 {
		return nil, nil, errors.New("channel: join: negative History")
	}
	params, err := clientJSON(o.Params)
	if err != nil {
		return nil, nil, fmt.Errorf("channel: join %s: %w", topic, err)
	}
	sub := &Subscription{c: c, topic: topic, done: make(chan struct{})}
	req := &clRequest{kind: clJoin, topic: topic, join: &clJoinReq{sub: sub, opts: o, params: params}}
	r, err := c.call(ctx, req)
	if err != nil {
		return nil, nil, fmt.Errorf("channel: join %s: %w", topic, err)
	}
	return sub, r.join, nil
}

// Ping sends the protocol's ping and returns the round trip: from the
// actor writing it to the actor reading the reply. It fails at once with
// ErrDisconnected while the connection is down.
func (c *Client) Ping(ctx context.Context) (time.Duration, error) {
	r, err := c.call(ctx, &clRequest{kind: clPing})
	if err != nil {
		return 0, fmt.Errorf("channel: ping: %w", err)
	}
	return r.rtt, nil
}

// call sends req to the actor and waits for its result, ctx (with the
// client's Timeout when ctx has no deadline) or the actor's end.
func (c *Client) call(ctx context.Context, req *clRequest) (clResult, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	req.id = c.ids.Add(1)
	res := make(chan clResult, 1)
	req.res = res // the actor's from now on
	c.root.Send(c.pid, req)
	select {
	case r := <-res:
		return r, r.err
	case <-ctx.Done():
		c.root.Send(c.pid, &clCancel{id: req.id, cause: ctx.Err()})
		select {
		case r := <-res: // answered meanwhile
			return r, r.err
		default:
		}
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return clResult{}, fmt.Errorf("%w: %w", ErrTimeout, ctx.Err())
		}
		return clResult{}, ctx.Err()
	case <-c.stopped:
		select {
		case r := <-res:
			return r, r.err
		default:
		}
		return clResult{}, ErrClientClosed
	}
}

// Subscription is a Client's membership in one topic, kept across
// reconnects until Leave, the server's removal, a failed rejoin or the
// Client's end. Its methods are safe from any goroutine.
type Subscription struct {
	c     *Client
	topic string

	// Written on the callback goroutine, in order with the callbacks.
	mu       sync.Mutex
	pos      Position
	presence []PresenceKey
	err      error
	done     chan struct{}
}

// Topic returns the subscription's topic.
func (s *Subscription) Topic() string { return s.topic }

// Position returns the position of the last event delivered to the
// Handler, or of the join when none has been since. It moves on the
// callback goroutine, in order with the Handler: read from a callback, it
// is the position that callback is at; read right after Join returns, it
// may not have caught up yet. (Rejoins recover from the last event
// received, which the Handler is sure to get.)
func (s *Subscription) Position() Position {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pos
}

// Presence returns the topic's presence (for a topic that tracks it), by
// key in ascending order, as of the last presence callback run. The
// slice is the caller's; the metas are shared and must not be modified.
func (s *Subscription) Presence() []PresenceKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.presence)
}

// Done is closed when the subscription has ended, after its last
// callback.
func (s *Subscription) Done() <-chan struct{} { return s.done }

// Err returns nil while the subscription lasts and after Leave; otherwise
// why it ended: an error wrapping ErrRemoved with the server's reason, the
// *Error of a failed rejoin, or the Client's end (ErrClientClosed or
// Client.Err).
func (s *Subscription) Err() error {
	select {
	case <-s.done:
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.err
	default:
		return nil
	}
}

// Push sends event with data to the topic and returns the reply's payload
// (a *Reply even when the reply has none). data is a payload
// (docs/channels-protocol.md, "Payloads"): a []byte is bytes, sent as they
// are; a json.RawMessage is JSON (it must be valid); nil is none; anything
// else is marshalled to JSON. A []byte or json.RawMessage is copied: the
// caller may reuse it once Push returns. An error reply is an *Error; no reply within
// ctx (or ClientOptions.Timeout) is an error wrapping ErrTimeout; a
// connection lost after sending it, ErrDisconnected. While the connection
// is down the push waits in the offline buffer.
func (s *Subscription) Push(ctx context.Context, event string, data any) (*Reply, error) {
	req, err := s.pushRequest(event, data, true)
	if err != nil {
		return nil, err
	}
	r, err := s.c.call(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("channel: push %s %s: %w", s.topic, event, err)
	}
	return &Reply{Data: r.data, Bin: r.bin}, nil
}

// PushNoReply sends event with data (a payload, as Push takes it) and asks
// for no reply: it returns once the push is written to the connection's
// queue or waits in the offline buffer. The server reports nothing back,
// errors included.
func (s *Subscription) PushNoReply(ctx context.Context, event string, data any) error {
	req, err := s.pushRequest(event, data, false)
	if err != nil {
		return err
	}
	if _, err := s.c.call(ctx, req); err != nil {
		return fmt.Errorf("channel: push %s %s: %w", s.topic, event, err)
	}
	return nil
}

func (s *Subscription) pushRequest(event string, data any, wantReply bool) (*clRequest, error) {
	if err := checkName("event", event); err != nil {
		return nil, fmt.Errorf("channel: push: %w", err)
	}
	raw, bin, err := clientPayload(data)
	if err != nil {
		return nil, fmt.Errorf("channel: push %s %s: %w", s.topic, event, err)
	}
	return &clRequest{kind: clPush, topic: s.topic, sub: s, event: event, data: raw, bin: bin, wantReply: wantReply}, nil
}

// clientPayload turns a payload from the application into a message's
// data: a []byte is a bytes payload (bin; nil is none), a json.RawMessage
// JSON (checked), nil none, anything else is marshalled to JSON. The
// result does not share memory with v: it may wait in the offline buffer
// while the application reuses its slice.
func clientPayload(v any) (json.RawMessage, []byte, error) {
	switch d := v.(type) {
	case nil:
		return nil, nil, nil
	case []byte:
		if len(d) == 0 {
			return nil, nil, nil // an empty bytes payload is none
		}
		return nil, slices.Clone(d), nil
	case json.RawMessage:
		if len(d) == 0 {
			return nil, nil, nil
		}
		if !json.Valid(d) {
			return nil, nil, errors.New("channel: data is not valid JSON")
		}
		return slices.Clone(d), nil, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, nil, fmt.Errorf("channel: encoding data: %w", err)
	}
	return b, nil, nil
}

// clientJSON turns a JSON value from the application (a join's Params)
// into JSON: a json.RawMessage or []byte holding JSON is used as is (after
// a validity check), nil becomes absent, anything else is marshalled.
func clientJSON(v any) (json.RawMessage, error) {
	switch d := v.(type) {
	case nil:
		return nil, nil
	case json.RawMessage:
		if d == nil {
			return nil, nil
		}
		if !json.Valid(d) {
			return nil, errors.New("channel: params are not valid JSON")
		}
		return slices.Clone(d), nil
	case []byte:
		if !json.Valid(d) {
			return nil, errors.New("channel: params are not valid JSON")
		}
		return json.RawMessage(slices.Clone(d)), nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("channel: encoding params: %w", err)
	}
	return b, nil
}

// Leave leaves the topic: no callback of the subscription runs after the
// ones already queued, and pushes waiting in the offline buffer fail with
// ErrNotJoined. It waits for the server's reply when connected; an error
// reply is an *Error (the subscription has ended anyway). Leaving a
// subscription that has ended returns ErrNotJoined.
func (s *Subscription) Leave(ctx context.Context) error {
	if _, err := s.c.call(ctx, &clRequest{kind: clLeave, topic: s.topic, sub: s}); err != nil {
		return fmt.Errorf("channel: leave %s: %w", s.topic, err)
	}
	return nil
}

// ---- requests between the caller and the actor ----

type clKind int

const (
	clJoin clKind = iota + 1
	clPush
	clLeave
	clPing
)

// clRequest is a caller's request, and the actor's record of it while it
// waits: in byID (to be cancelled), in the offline buffer, and in pending
// once sent with a ref. Rejoins and leaves nobody waits for have no res.
type clRequest struct {
	id    uint64
	kind  clKind
	topic string
	res   chan clResult // buffered: the actor never waits on it

	sub       *Subscription // push, leave
	event     string
	data      json.RawMessage // push: a JSON payload
	bin       []byte          // push: a bytes payload
	wantReply bool
	join      *clJoinReq

	// The actor's.
	ref  uint64
	sent time.Time
	st   *clSub // join: the subscription being joined
}

type clJoinReq struct {
	sub    *Subscription
	opts   JoinOptions
	params json.RawMessage
}

type clResult struct {
	data json.RawMessage // a push's reply: a JSON payload
	bin  []byte          // or a bytes one
	join *JoinReply
	rtt  time.Duration
	err  error
}

// clCancel tells the actor that the caller of request id stopped waiting.
type clCancel struct {
	id    uint64
	cause error
}

// clClose asks the actor to close the client.
type clClose struct{}

// clPushAnswer is the application's answer to a server push with a ref,
// from the callback goroutine. session tells a reply meant for an earlier
// connection, which is dropped.
type clPushAnswer struct {
	session uint64
	ref     uint64
	topic   string
	data    json.RawMessage
	bin     []byte
	err     *Error
}

func (*clRequest) IgnoreDeadLetterLogging()    {}
func (*clCancel) IgnoreDeadLetterLogging()     {}
func (*clClose) IgnoreDeadLetterLogging()      {}
func (*clPushAnswer) IgnoreDeadLetterLogging() {}

// ---- the actor ----

// clSub is the actor's state of one subscription.
type clSub struct {
	sub    *Subscription
	opts   JoinOptions
	params json.RawMessage
	seq    uint64 // join order, for rejoining in order

	joined   bool       // joined on the current connection
	joining  *clRequest // the join in flight or waiting for a connection
	wasIn    bool       // a join has succeeded once: rejoins recover
	pos      Position   // last event received (the recover position)
	presence map[string][]PresenceMeta
}

// clActor is the client's connection actor behaviour. Everything in it is
// the actor's alone.
type clActor struct {
	c      *Client
	self   *actor.PID
	log    zerolog.Logger
	buffer int
	binary bool // ClientOptions.Binary: SubprotocolBinary was offered
	onPush func(Event) (any, error)
	onConn func()
	onDisc func(error)
	cb     *clCallbacks

	conn    *actors.Conn // nil while disconnected
	bin     bool         // the current connection speaks the binary encoding
	session uint64       // counts connections
	nextRef uint64
	seq     uint64

	subs    map[string]*clSub
	pending map[uint64]*clRequest // by ref, on the current connection
	byID    map[uint64]*clRequest // by caller id, every request waited for
	waiting []*clRequest          // the offline buffer: pushes not yet sent

	closing bool  // Close was called, or a close code forbids reconnecting
	endErr  error // the Client's Err
	lastErr error // the last connection error, for Err when reconnecting stops
}

func (a *clActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		a.self = ctx.Self()
		a.c.pid = a.self // before Dial returns (it waits for Opened) and before any callback
		a.cb.start()
	case *actors.Opened:
		a.opened(m.Conn)
	case *actors.Message:
		a.received(m)
	case *actors.Closed:
		a.closed(ctx, m)
	case *actors.Reconnecting:
		a.log.Debug().Int("attempt", m.Attempt).Dur("delay", m.Delay).AnErr("cause", m.Err).Msg("channel client: reconnecting")
		if m.Err != nil {
			a.lastErr = m.Err
		}
	case *clRequest:
		a.request(m)
	case *clCancel:
		a.cancel(m)
	case *clPushAnswer:
		if m.session != a.session || a.conn == nil {
			return // meant for an earlier connection
		}
		reply := &wireMsg{T: typeReply, Ref: m.ref, Topic: m.topic, Status: "ok", Data: m.data, Bin: m.bin}
		if m.err != nil {
			reply.Status, reply.Data, reply.Bin, reply.Error = "error", nil, nil, m.err
		}
		_ = a.send(reply)
	case *clClose:
		if a.closing {
			return // already on its way out
		}
		a.closing = true
		a.endErr = ErrClientClosed
		if a.conn != nil {
			a.conn.Close(actors.StatusNormalClosure, "")
			return // the actor stops after Closed
		}
		ctx.Stop(ctx.Self())
	case *actor.Stopping:
		a.stopping()
	case *actor.Stopped:
		a.c.err = a.endErr
		close(a.c.stopped)
		a.cb.close()
	}
}

func (a *clActor) opened(conn *actors.Conn) {
	a.conn = conn
	// The server's choice decides the encoding; none means JSON.
	a.bin = conn.Subprotocol() == SubprotocolBinary
	if a.binary && !a.bin {
		a.log.Warn().Str("subprotocol", conn.Subprotocol()).Msg("channel client: the server does not speak the binary encoding: using JSON")
	}
	a.session++
	a.pending = map[uint64]*clRequest{}
	a.nextRef = 0
	if a.session > 1 {
		a.log.Debug().Uint64("session", a.session).Msg("channel client: reconnected")
		if f := a.onConn; f != nil {
			a.cb.push(f)
		}
	}
	subs := make([]*clSub, 0, len(a.subs))
	for _, st := range a.subs {
		subs = append(subs, st)
	}
	sort.Slice(subs, func(i, j int) bool { return subs[i].seq < subs[j].seq })
	for _, st := range subs {
		a.sendJoin(st)
	}
}

func (a *clActor) closed(ctx actor.Context, m *actors.Closed) {
	a.conn = nil
	if m.Err != nil {
		a.lastErr = fmt.Errorf("channel: connection lost: %w", m.Err)
	} else {
		a.lastErr = fmt.Errorf("channel: connection closed: %w", transport.CloseError{Code: m.Code, Reason: m.Reason})
	}
	if f := a.onDisc; f != nil {
		err := a.lastErr
		a.cb.push(func() { f(err) })
	}
	// Requests sent on this connection get no reply now. A join is sent
	// again on the next connection.
	for ref, r := range a.pending {
		delete(a.pending, ref)
		if r.kind == clJoin && r.st != nil && r.st.joining == r {
			r.ref = 0
			continue
		}
		if r.kind == clLeave {
			a.finish(r, clResult{}) // nothing to leave on a new connection
			continue
		}
		a.finish(r, clResult{err: ErrDisconnected})
	}
	for _, st := range a.subs {
		st.joined = false
	}
	if !a.closing && noReconnect(m.Code) {
		a.closing = true
		a.endErr = fmt.Errorf("%w: connection closed, not reconnecting: %w", ErrClientClosed, transport.CloseError{Code: m.Code, Reason: m.Reason})
		a.log.Warn().Int("code", int(m.Code)).Str("reason", m.Reason).Msg("channel client: closed by the server, not reconnecting")
	}
	if a.closing {
		ctx.Stop(ctx.Self())
	}
}

// noReconnect reports the close codes after which the protocol forbids
// reconnecting automatically.
func noReconnect(code transport.StatusCode) bool {
	switch code {
	case transport.StatusNormalClosure, transport.StatusUnsupportedData, transport.StatusPolicyViolation,
		transport.StatusMessageTooBig, StatusMalformed, StatusRateAbuse:
		return true
	}
	return false
}

func (a *clActor) stopping() {
	if a.endErr == nil {
		a.endErr = fmt.Errorf("%w: reconnecting stopped: %w", ErrClientClosed, a.lastErr)
		if a.lastErr == nil {
			a.endErr = ErrClientClosed
		}
	}
	for id, r := range a.byID {
		delete(a.byID, id)
		a.reply(r, clResult{err: a.endErr})
	}
	a.waiting = nil
	a.pending = map[uint64]*clRequest{}
	for topic, st := range a.subs {
		delete(a.subs, topic)
		a.end(st, a.endErr)
	}
}

// request handles a caller's request.
func (a *clActor) request(r *clRequest) {
	if r.res != nil {
		a.byID[r.id] = r
	}
	if a.closing {
		a.finish(r, clResult{err: ErrClientClosed})
		return
	}
	switch r.kind {
	case clJoin:
		j := r.join
		if _, ok := a.subs[r.topic]; ok {
			a.finish(r, clResult{err: &Error{Code: CodeAlreadyJoined, Message: "this client has joined " + r.topic}})
			return
		}
		a.seq++
		st := &clSub{sub: j.sub, opts: j.opts, params: j.params, seq: a.seq, joining: r}
		r.st = st
		a.subs[r.topic] = st
		if a.conn != nil {
			a.sendJoin(st)
		}
	case clPush:
		st := a.subs[r.topic]
		if st == nil || st.sub != r.sub {
			a.finish(r, clResult{err: ErrNotJoined})
			return
		}
		if a.conn != nil && st.joined {
			a.sendPush(r)
			return
		}
		if a.buffer < 0 {
			a.finish(r, clResult{err: ErrBufferFull})
			return
		}
		if len(a.waiting) >= a.buffer {
			oldest := a.waiting[0]
			a.waiting = a.waiting[1:]
			a.finish(oldest, clResult{err: ErrBufferFull})
		}
		if !r.wantReply {
			a.finish(r, clResult{}) // its caller waits only until it is queued
		}
		a.waiting = append(a.waiting, r)
	case clLeave:
		st := a.subs[r.topic]
		if st == nil || st.sub != r.sub {
			a.finish(r, clResult{err: ErrNotJoined})
			return
		}
		delete(a.subs, r.topic)
		a.dropWaiting(r.topic, ErrNotJoined)
		a.end(st, nil)
		switch {
		case a.conn != nil && st.joined:
			if err := a.sendRef(r, &wireMsg{T: typeLeave, Topic: r.topic}); err != nil {
				a.finish(r, clResult{err: err})
			}
			return
		case st.joining != nil && st.joining.ref != 0:
			// The join is in flight: leave once it is answered.
			st.joining.st = nil
			a.finish(st.joining, clResult{err: ErrNotJoined})
		case st.joining != nil:
			a.finish(st.joining, clResult{err: ErrNotJoined})
		}
		a.finish(r, clResult{})
	case clPing:
		if a.conn == nil {
			a.finish(r, clResult{err: ErrDisconnected})
			return
		}
		r.sent = time.Now()
		if err := a.sendRef(r, &wireMsg{T: typePing}); err != nil {
			a.finish(r, clResult{err: err})
		}
	}
}

// cancel forgets a request whose caller stopped waiting: a reply that
// comes later is dropped; a buffered push is not sent; a join is undone.
func (a *clActor) cancel(m *clCancel) {
	r := a.byID[m.id]
	if r == nil {
		return
	}
	delete(a.byID, m.id)
	r.res = nil
	switch r.kind {
	case clPush:
		if i := slices.Index(a.waiting, r); i >= 0 {
			a.waiting = slices.Delete(a.waiting, i, i+1)
		}
	case clJoin:
		st := r.st
		if st == nil || a.subs[r.topic] != st {
			return
		}
		delete(a.subs, r.topic)
		a.dropWaiting(r.topic, ErrNotJoined)
		a.end(st, m.cause)
		if r.ref != 0 {
			r.st = nil // in flight: leave once it is answered
		}
	}
	// A sent request stays in pending so that its reply is recognised.
}

// finish answers r's caller, if any, and forgets it.
func (a *clActor) finish(r *clRequest, res clResult) {
	if r.res != nil {
		delete(a.byID, r.id)
	}
	a.reply(r, res)
}

func (a *clActor) reply(r *clRequest, res clResult) {
	if r.res != nil {
		r.res <- res
		r.res = nil
	}
}

// send writes m to the current connection.
func (a *clActor) send(m *wireMsg) error {
	if a.conn == nil {
		return ErrDisconnected
	}
	typ, p := actors.Text, []byte(nil)
	if a.bin {
		typ, p = actors.Binary, encodeBin(m)
	} else {
		p = encode(m)
	}
	if err := a.conn.Send(typ, p); err != nil {
		return fmt.Errorf("%w: %w", ErrDisconnected, err)
	}
	return nil
}

// sendRef gives r a ref, records it as pending and writes m with it.
func (a *clActor) sendRef(r *clRequest, m *wireMsg) error {
	a.nextRef++
	r.ref = a.nextRef
	m.Ref = r.ref
	a.pending[r.ref] = r
	if err := a.send(m); err != nil {
		delete(a.pending, r.ref)
		r.ref = 0
		return err
	}
	return nil
}

func (a *clActor) sendJoin(st *clSub) {
	r := st.joining
	if r == nil {
		r = &clRequest{kind: clJoin, topic: st.sub.topic, st: st}
		st.joining = r
	}
	m := &wireMsg{T: typeJoin, Topic: st.sub.topic, Params: st.params, History: st.opts.History}
	if st.wasIn {
		pos := st.pos
		m.Recover = &pos
	}
	if err := a.sendRef(r, m); err != nil {
		a.log.Debug().Err(err).Str("topic", st.sub.topic).Msg("channel client: join not sent")
	}
}

func (a *clActor) sendPush(r *clRequest) {
	m := &wireMsg{T: typePush, Topic: r.topic, Event: r.event, Data: r.data, Bin: r.bin}
	if !r.wantReply {
		err := a.send(m)
		a.finish(r, clResult{err: err})
		return
	}
	if err := a.sendRef(r, m); err != nil {
		a.finish(r, clResult{err: err})
	}
}

// flush sends the buffered pushes of topic, in order.
func (a *clActor) flush(topic string) {
	var keep []*clRequest
	for _, r := range a.waiting {
		if r.topic == topic {
			a.sendPush(r)
		} else {
			keep = append(keep, r)
		}
	}
	a.waiting = keep
}

// dropWaiting fails the buffered pushes of topic.
func (a *clActor) dropWaiting(topic string, err error) {
	var keep []*clRequest
	for _, r := range a.waiting {
		if r.topic == topic {
			a.finish(r, clResult{err: err})
		} else {
			keep = append(keep, r)
		}
	}
	a.waiting = keep
}

// end ends a subscription already taken out of subs: after its queued
// callbacks, Err is set and Done closed.
func (a *clActor) end(st *clSub, err error) {
	s := st.sub
	a.cb.push(func() {
		s.mu.Lock()
		s.err = err
		s.mu.Unlock()
		close(s.done)
	})
}

// received decodes one WebSocket message from the server in the
// connection's encoding. A message of the other kind is ignored.
func (a *clActor) received(msg *actors.Message) {
	var m wireMsg
	var err error
	switch {
	case a.bin && msg.Type == actors.Binary:
		m, err = decodeBin(msg.Data)
	case !a.bin && msg.Type == actors.Text:
		m, err = decode(msg.Data)
	case a.bin:
		a.log.Warn().Msg("channel client: text message on a binary connection ignored")
		return
	default:
		a.log.Warn().Msg("channel client: binary message on a JSON connection ignored")
		return
	}
	if err != nil {
		a.log.Warn().Err(err).Msg("channel client: bad message from the server")
		return
	}
	a.message(&m)
}

// message handles one protocol message from the server.
func (a *clActor) message(m *wireMsg) {
	switch m.T {
	case typeReply:
		a.onReply(m)
	case typeEvent:
		st := a.subs[m.Topic]
		if st == nil || !st.joined {
			return
		}
		a.deliver(st, Event{Topic: m.Topic, Event: m.Event, Data: m.Data, Bin: m.Bin, Offset: m.Offset})
	case typePresenceState:
		if st := a.subs[m.Topic]; st != nil && st.joined {
			a.presenceState(st, m.State)
		}
	case typePresenceDiff:
		if st := a.subs[m.Topic]; st != nil && st.joined {
			a.presenceDiff(st, m.Joins, m.Leaves)
		}
	case typePush:
		a.onServerPush(m)
	case typeLeft:
		a.onLeft(m)
	default:
		a.log.Warn().Str("t", m.T).Msg("channel client: unexpected message from the server")
	}
}

// deliver queues ev for the subscription's Handler unless its offset was
// delivered already, and moves the position.
func (a *clActor) deliver(st *clSub, ev Event) {
	if ev.Offset != 0 {
		if ev.Offset <= st.pos.Offset {
			return // a duplicate
		}
		st.pos.Offset = ev.Offset
	}
	s, h, pos := st.sub, st.opts.Handler, st.pos
	a.cb.push(func() {
		if ev.Offset != 0 {
			s.mu.Lock()
			s.pos = pos
			s.mu.Unlock()
		}
		if h != nil {
			h(ev)
		}
	})
}

func (a *clActor) onReply(m *wireMsg) {
	r := a.pending[m.Ref]
	if r == nil {
		a.log.Debug().Uint64("ref", m.Ref).Msg("channel client: reply to no request")
		return
	}
	delete(a.pending, m.Ref)
	var replyErr error
	if m.Status != "ok" {
		replyErr = m.Error
	}
	switch r.kind {
	case clJoin:
		a.onJoinReply(r, m, replyErr)
	case clPing:
		a.finish(r, clResult{rtt: time.Since(r.sent), err: replyErr})
	default:
		a.finish(r, clResult{data: m.Data, bin: m.Bin, err: replyErr})
	}
}

func (a *clActor) onJoinReply(r *clRequest, m *wireMsg, replyErr error) {
	st := r.st
	if st == nil || a.subs[r.topic] != st || st.joining != r {
		// Left or cancelled while in flight: undo a join that succeeded.
		if replyErr == nil {
			_ = a.sendRef(&clRequest{kind: clLeave, topic: r.topic}, &wireMsg{T: typeLeave, Topic: r.topic})
		}
		return
	}
	st.joining = nil
	var jr JoinReply
	if replyErr == nil {
		if err := json.Unmarshal(m.Data, &jr); err != nil {
			replyErr = fmt.Errorf("channel: join reply: %w", err)
			_ = a.sendRef(&clRequest{kind: clLeave, topic: r.topic}, &wireMsg{T: typeLeave, Topic: r.topic})
		}
	}
	rejoin := st.wasIn
	if replyErr != nil {
		delete(a.subs, r.topic)
		a.dropWaiting(r.topic, ErrNotJoined)
		if rejoin {
			a.log.Warn().Err(replyErr).Str("topic", r.topic).Msg("channel client: rejoin failed")
			if f := st.opts.OnRejoin; f != nil {
				a.cb.push(func() { f(nil, replyErr) })
			}
		}
		a.end(st, replyErr)
		a.finish(r, clResult{err: replyErr})
		return
	}
	st.joined = true
	st.wasIn = true
	if jr.Recovered && jr.Epoch == st.pos.Epoch {
		// Every event after st.pos; anything at or before it is a
		// duplicate, dropped by deliver.
	} else {
		st.pos = Position{Epoch: jr.Epoch} // a new stream: deliver all of history
	}
	if rejoin {
		if f := st.opts.OnRejoin; f != nil {
			reply := jr
			a.cb.push(func() { f(&reply, nil) })
		}
	}
	for _, h := range jr.History {
		a.deliver(st, Event{Topic: r.topic, Event: h.Event, Data: h.Data, Bin: h.Bin, Offset: h.Offset, Replayed: true})
	}
	if jr.Offset > st.pos.Offset {
		st.pos.Offset = jr.Offset // the join took effect here: nothing before it is owed
	}
	s, pos := st.sub, st.pos
	a.cb.push(func() {
		s.mu.Lock()
		s.pos = pos
		s.mu.Unlock()
	})
	a.finish(r, clResult{join: &jr})
	a.flush(r.topic)
}

func (a *clActor) onServerPush(m *wireMsg) {
	st := a.subs[m.Topic]
	h := a.onPush
	if st != nil && st.opts.OnPush != nil {
		h = st.opts.OnPush
	}
	push := Event{Topic: m.Topic, Event: m.Event, Data: m.Data, Bin: m.Bin}
	if m.Ref == 0 {
		switch {
		case h != nil:
			a.cb.push(func() { _, _ = h(push) })
		case st != nil && st.joined:
			a.deliver(st, push)
		}
		return
	}
	if h == nil {
		_ = a.send(&wireMsg{T: typeReply, Ref: m.Ref, Topic: m.Topic, Status: "error",
			Error: &Error{Code: CodeNoHandler, Message: "the client takes no pushes"}})
		return
	}
	root, self := a.c.root, a.self
	ans := &clPushAnswer{session: a.session, ref: m.Ref, topic: m.Topic}
	a.cb.push(func() {
		defer func() {
			if p := recover(); p != nil {
				ans.data, ans.bin, ans.err = nil, nil, &Error{Code: CodeInternal, Message: "the client's handler failed"}
				root.Send(self, ans)
				panic(p) // logged by the callback goroutine
			}
		}()
		v, err := h(push)
		if err == nil {
			ans.data, ans.bin, err = clientPayload(v)
			if err != nil {
				err = &Error{Code: CodeInternal, Message: err.Error()}
			}
		}
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				e = &Error{Code: "error", Message: err.Error()}
			}
			ans.data, ans.bin, ans.err = nil, nil, e
		}
		root.Send(self, ans)
	})
}

func (a *clActor) onLeft(m *wireMsg) {
	st := a.subs[m.Topic]
	if st == nil || !st.joined {
		return
	}
	st.joined = false
	switch m.Reason {
	case leftShutdown:
		// The server is going away: the rejoin follows the reconnect.
	case leftStopped:
		// A new topic starts on the next join: rejoin now.
		if a.conn != nil {
			a.sendJoin(st)
		}
	default:
		delete(a.subs, m.Topic)
		a.dropWaiting(m.Topic, ErrNotJoined)
		a.end(st, fmt.Errorf("%w: %s", ErrRemoved, m.Reason))
	}
}

// ---- presence ----

func (a *clActor) presenceState(st *clSub, state map[string]*PresenceEntry) {
	old := st.presence
	next := make(map[string][]PresenceMeta, len(state))
	for k, e := range state {
		if e != nil && len(e.Metas) > 0 {
			next[k] = slices.Clone(e.Metas)
		}
	}
	// The changes from what we had (nothing, or the state before a
	// rejoin): metas gone leave, metas new join.
	joins := map[string]*PresenceEntry{}
	leaves := map[string]*PresenceEntry{}
	for k, metas := range old {
		for _, m := range metas {
			if !hasMeta(next[k], m.ID) {
				addEntry(leaves, k, m)
			}
		}
	}
	for k, metas := range next {
		for _, m := range metas {
			if !hasMeta(old[k], m.ID) {
				addEntry(joins, k, m)
			}
		}
	}
	st.presence = old
	a.applyPresence(st, joins, leaves)
}

func (a *clActor) presenceDiff(st *clSub, joins, leaves map[string]*PresenceEntry) {
	a.applyPresence(st, joins, leaves)
}

// applyPresence applies a diff to st.presence and queues the callbacks and
// the new snapshot.
func (a *clActor) applyPresence(st *clSub, joins, leaves map[string]*PresenceEntry) {
	if st.presence == nil {
		st.presence = map[string][]PresenceMeta{}
	}
	var calls []func()
	o := st.opts
	for _, k := range sortedKeys(joins) {
		e := joins[k]
		if e == nil || len(e.Metas) == 0 {
			continue
		}
		before := st.presence[k]
		after := slices.Clone(before)
		for _, m := range e.Metas {
			if i := slices.IndexFunc(after, func(x PresenceMeta) bool { return x.ID == m.ID }); i >= 0 {
				after[i] = m
			} else {
				after = append(after, m)
			}
		}
		st.presence[k] = after
		if f := o.OnPresenceJoin; f != nil {
			key, joined := k, slices.Clone(e.Metas)
			calls = append(calls, func() { f(key, before, joined) })
		}
	}
	for _, k := range sortedKeys(leaves) {
		e := leaves[k]
		if e == nil || len(e.Metas) == 0 {
			continue
		}
		before := st.presence[k]
		var after []PresenceMeta
		var left []PresenceMeta
		for _, m := range before {
			if hasMeta(e.Metas, m.ID) {
				left = append(left, m)
			} else {
				after = append(after, m)
			}
		}
		if len(left) == 0 {
			continue
		}
		if len(after) == 0 {
			delete(st.presence, k)
		} else {
			st.presence[k] = after
		}
		if f := o.OnPresenceLeave; f != nil {
			key, remaining := k, after
			calls = append(calls, func() { f(key, remaining, left) })
		}
	}
	list := make([]PresenceKey, 0, len(st.presence))
	for _, k := range sortedKeys(st.presence) {
		list = append(list, PresenceKey{Key: k, Metas: st.presence[k]})
	}
	s, onSync := st.sub, o.OnPresenceSync
	a.cb.push(func() {
		s.mu.Lock()
		s.presence = list
		s.mu.Unlock()
		for _, f := range calls {
			f()
		}
		if onSync != nil {
			onSync(slices.Clone(list))
		}
	})
}

func hasMeta(metas []PresenceMeta, id string) bool {
	return slices.ContainsFunc(metas, func(m PresenceMeta) bool { return m.ID == id })
}

func addEntry(to map[string]*PresenceEntry, key string, m PresenceMeta) {
	e := to[key]
	if e == nil {
		e = &PresenceEntry{}
		to[key] = e
	}
	e.Metas = append(e.Metas, m)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// ---- callbacks ----

// clCallbacks runs the application's callbacks, one at a time and in
// order, on its own goroutine. The actor queues them and never waits; the
// queue is unbounded (it holds what the application has not handled yet).
type clCallbacks struct {
	log  zerolog.Logger
	done chan struct{} // closed when the goroutine has returned

	mu     sync.Mutex
	q      []func()
	closed bool
	wake   chan struct{} // capacity 1
}

func newClCallbacks(log zerolog.Logger, done chan struct{}) *clCallbacks {
	return &clCallbacks{log: log, done: done, wake: make(chan struct{}, 1)}
}

func (q *clCallbacks) start() { go q.run() }

func (q *clCallbacks) push(f func()) {
	q.mu.Lock()
	q.q = append(q.q, f)
	q.mu.Unlock()
	q.signal()
}

// close lets the goroutine return once the queue is empty.
func (q *clCallbacks) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.signal()
}

func (q *clCallbacks) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *clCallbacks) run() {
	defer close(q.done)
	for {
		q.mu.Lock()
		batch, closed := q.q, q.closed
		q.q = nil
		q.mu.Unlock()
		for i, f := range batch {
			q.call(f)
			batch[i] = nil
		}
		if len(batch) > 0 {
			continue
		}
		if closed {
			return
		}
		<-q.wake
	}
}

func (q *clCallbacks) call(f func()) {
	defer func() {
		if p := recover(); p != nil {
			q.log.Error().Interface("panic", p).Bytes("stack", debug.Stack()).Msg("channel client: callback panicked")
		}
	}()
	f()
}
