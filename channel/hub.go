package channel

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"

	"github.com/wsactor/wsactor/actors"
	"github.com/wsactor/wsactor/room"
	"github.com/wsactor/wsactor/supervisor"
	"github.com/wsactor/wsactor/transport"
)

// Identity is who a connection is, as Options.Authenticate says.
type Identity struct {
	// User groups the connections of one user: presence key, user index
	// (SendUser, DisconnectUser), the per-user rate limit. Empty means an
	// anonymous connection, its own key.
	User string
	// Meta is the connection's presence meta unless Authorize gives another
	// (a display name, say). Any JSON-marshallable value.
	Meta any
}

// JoinRequest is a join as Options.Authorize sees it.
type JoinRequest struct {
	Topic  string
	Params json.RawMessage
	// Member is the joining connection, its Meta from Identity.Meta.
	Member Member
}

// Authorization is what Authorize grants a join: a reply for the client
// (any JSON value, nil for none) and, if not nil, the connection's presence
// meta in this topic.
type Authorization struct {
	Reply any
	Meta  any
}

// Options configures a Hub. A nil *Options is valid: anyone may connect
// and join any topic, with the defaults of TopicOptions.
//
// Every setting is one level deep: the handshake's and the socket's are
// fields of the embedded transport.AcceptOptions (origins, compression,
// ReadLimit, queue policy, timeouts); set Options.Authenticate, not
// AcceptOptions.Authenticate (an error), and leave Subprotocols to the Hub.
type Options struct {
	transport.AcceptOptions

	// Authenticate runs before the upgrade and says who the connection is;
	// an error refuses it (401, or the status of a *transport.HTTPError).
	// Nil lets everyone in, anonymous.
	Authenticate func(r *http.Request) (Identity, error)
	// Authorize runs for every join, on the joining connection's actor
	// (keep it quick: the connection's other messages wait). An error
	// refuses the join: its code when it is an *Error, else "unauthorized".
	// Nil allows every join.
	Authorize func(j *JoinRequest) (Authorization, error)
	// Topics returns the options of topic name; it is called once when the
	// topic starts, and may return nil for defaults. Nil means defaults for
	// every topic.
	Topics func(name string) *TopicOptions

	// Store keeps the topics' history outside their memory, so that it
	// survives a topic's stop and the process's restart (NewFileStore). Nil
	// keeps history in memory only: a topic that stops loses it, and its
	// next incarnation starts a new epoch.
	Store Store

	// Cluster spreads the topics over the nodes of a cluster (package
	// cluster's Node.Channels): each topic's behaviour, history and
	// presence live on one owner node, its history is replicated to a
	// second, and connections join it from any node; clients recover across
	// the owner's death. It excludes Store. Nil: one process.
	Cluster Cluster

	// Logger receives the hub's logs. The zero value means the actor
	// system's logger; zerolog.Nop() logs nothing.
	Logger zerolog.Logger
	// Heartbeat is as in actors.HandlerOptions: on by default.
	Heartbeat supervisor.HeartbeatOptions
	// MaxConnections refuses upgrades past this many open connections (503).
	MaxConnections int
	// MaxConnectionsPerIP, UpgradesPerIP and MaxConnectionsPerUser are as
	// in actors.HandlerOptions (429 with Retry-After); the user is
	// Identity.User.
	MaxConnectionsPerIP   int
	UpgradesPerIP         actors.Rate
	MaxConnectionsPerUser int

	// MaxTopics is how many topics one connection may be in. Zero means
	// 100.
	MaxTopics int
	// MaxLiveTopics bounds the topics running at once: a join that would
	// start one more is refused with "unavailable" (clients retry later).
	// It stops clients from filling memory with topics nobody else uses.
	// Hub.Publish is not bounded by it. Zero means 100,000; negative, no
	// bound.
	MaxLiveTopics int
	// MaxPending is how many of a connection's requests may wait for a
	// topic's answer at once; past it they are refused with rate_limited.
	// Zero means 100.
	MaxPending int
	// PushTimeout is how long a topic has to answer a push before the
	// client is told "timeout". Zero means 10s.
	PushTimeout time.Duration
	// Rate is each connection's budget of requests (joins, leaves, pushes).
	// Zero means 50 a second, bursts of 100; a negative Rate, no limit.
	Rate Limit
	// UserRate is the budget shared by all connections of one user. Zero
	// means 100 a second, bursts of 200; a negative Rate, no limit.
	UserRate Limit
	// AbuseLimit closes a connection whose requests were refused for its
	// rate limits this many times within a minute (4429), or that sent this
	// many malformed messages within a minute (4400). Zero means 20;
	// negative, never.
	AbuseLimit int
}

// Close codes of the channels protocol (docs/channels-protocol.md).
const (
	// StatusMalformed closes a connection that sent too many malformed
	// messages.
	StatusMalformed transport.StatusCode = 4400
	// StatusRateAbuse closes a connection whose requests were refused for
	// its rate limits too often.
	StatusRateAbuse transport.StatusCode = 4429
)

// Errors a Hub returns; branch with errors.Is.
var (
	// ErrClosed: the Hub was closed.
	ErrClosed = errors.New("channel: hub closed")
	// ErrNoSession: no open connection has that id.
	ErrNoSession = errors.New("channel: no such connection")
	// ErrTimeout: the peer (a client for Hub.Request, the server for a
	// client's Push) did not answer a request in time.
	ErrTimeout = errors.New("channel: timed out")
)

// Hub is a channels server: an http.Handler that upgrades requests to
// channel connections, and the topics they join. Mount it on any mux.
//
// The topics (their history and presence) belong to the Hub, not to the
// connections: Shutdown closes every connection and keeps the topics, so a
// Reopen (or a new listener on the same Hub) lets clients reconnect and
// recover what was published meanwhile. Close ends everything.
type Hub struct {
	system *actor.ActorSystem
	opts   Options
	log    zerolog.Logger
	tree   *supervisor.Tree
	topics *room.Registry
	users  users

	handler atomic.Pointer[actors.Handler]
	hopts   actors.HandlerOptions

	port       *ClusterPort // nil in one process
	topicOpts  sync.Map     // name -> TopicOptions, as the running topic got them
	liveTopics atomic.Int64 // topics running
	counters   hubCounters
	shared     sync.Map // name -> *roomShared of the topic's latest room

	mu       sync.Mutex
	sessions map[string]*session // by connection id
	retired  []*actors.Handler   // handlers before the last Reopen, for Stats
	closed   bool
}

const (
	defaultMaxTopics     = 100
	defaultMaxLiveTopics = 100_000
	defaultMaxPending    = 100
	defaultPushTimeout   = 10 * time.Second
	defaultAbuseLimit    = 20
)

var (
	defaultRate     = Limit{Rate: 50, Burst: 100}
	defaultUserRate = Limit{Rate: 100, Burst: 200}
)

// NewHub returns a Hub on system, which should come from actors.NewSystem.
// It checks opts and applies its defaults once.
func NewHub(system *actor.ActorSystem, opts *Options) (*Hub, error) {
	if system == nil {
		return nil, errors.New("channel: NewHub needs an actor system")
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.AcceptOptions.Authenticate != nil {
		return nil, errors.New("channel: set Options.Authenticate, not AcceptOptions.Authenticate")
	}
	if o.Cluster != nil && o.Store != nil {
		return nil, errors.New("channel: Options.Store is for one process; on a cluster (Options.Cluster) history is replicated between nodes")
	}
	if o.MaxTopics == 0 {
		o.MaxTopics = defaultMaxTopics
	}
	if o.MaxPending == 0 {
		o.MaxPending = defaultMaxPending
	}
	if o.MaxLiveTopics == 0 {
		o.MaxLiveTopics = defaultMaxLiveTopics
	}
	if o.PushTimeout <= 0 {
		o.PushTimeout = defaultPushTimeout
	}
	if o.AbuseLimit == 0 {
		o.AbuseLimit = defaultAbuseLimit
	}
	o.Rate = o.Rate.orDefault(defaultRate)
	o.UserRate = o.UserRate.orDefault(defaultUserRate)
	if o.ReadLimit == 0 {
		o.ReadLimit = 1 << 20
	}
	tree, err := supervisor.New(system)
	if err != nil {
		return nil, fmt.Errorf("channel: %w", err)
	}
	h := &Hub{system: system, opts: o, tree: tree, sessions: map[string]*session{}}
	h.users.rate = o.UserRate
	h.log = o.Logger
	if o.Cluster != nil {
		h.port = newClusterPort(h, o.Cluster)
	}
	h.topics = room.NewRegistry(tree, &room.RegistryOptions{
		Logger:          o.Logger,
		MaxRoomsPerConn: -1, // MaxTopics is checked by the session
		Options:         h.roomOptions,
	})

	accept := o.AcceptOptions
	accept.Subprotocols = []string{Subprotocol, SubprotocolBinary}
	if o.Authenticate != nil {
		auth := o.Authenticate
		accept.Authenticate = func(r *http.Request) (any, error) {
			id, err := auth(r)
			if err != nil {
				return nil, err
			}
			return &id, nil
		}
	}
	h.hopts = actors.HandlerOptions{
		AcceptOptions:         accept,
		Logger:                o.Logger,
		Tree:                  tree,
		Heartbeat:             o.Heartbeat,
		MaxConnections:        o.MaxConnections,
		MaxConnectionsPerIP:   o.MaxConnectionsPerIP,
		UpgradesPerIP:         o.UpgradesPerIP,
		MaxConnectionsPerUser: o.MaxConnectionsPerUser,
		UserOf: func(p any) string {
			if id, ok := p.(*Identity); ok && id != nil {
				return id.User
			}
			return ""
		},
		// The session is this package's code; user hooks it runs recover
		// their own panics. A panic in it is a bug that leaves its state
		// unknown: close the connection (1011), the client reconnects.
		HandlerPanic: supervisor.Policy{Directive: supervisor.Stop},
	}
	if err := h.Reopen(); err != nil {
		_ = tree.Shutdown(context.Background())
		return nil, err
	}
	if h.port != nil {
		if err := o.Cluster.Attach(h.port); err != nil {
			_ = h.Close(context.Background())
			return nil, fmt.Errorf("channel: cluster: %w", err)
		}
	}
	return h, nil
}

func (h *Hub) roomOptions(name string) *room.Options {
	var to *TopicOptions
	if h.opts.Topics != nil {
		to = h.opts.Topics(name)
	}
	t := to.withDefaults()
	h.topicOpts.Store(name, t)
	idle := t.IdleTimeout
	if idle < 0 {
		idle = 0
	}
	if h.port != nil {
		// The behaviour runs on the topic's owner node; this node's room
		// relays for its members.
		return &room.Options{Behavior: newEdge(h, name), IdleTimeout: idle}
	}
	return &room.Options{
		Behavior:      newTopicActor(h, name, t, loadHistory(h.opts.Store, name, t.History, t.HistoryTTL, t.HistoryBytes, h.log)),
		TickInterval:  t.TickInterval,
		IdleTimeout:   idle,
		MaxMembers:    t.MaxMembers,
		BehaviorPanic: t.HandlerPanic,
	}
}

func (h *Hub) topicOptions(name string) (TopicOptions, bool) {
	v, ok := h.topicOpts.Load(name)
	if !ok {
		return TopicOptions{}, false
	}
	return v.(TopicOptions), true
}

// ServeHTTP upgrades the request to a channel connection.
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.handler.Load().ServeHTTP(w, r)
}

// Shutdown closes every connection with 1001 and waits for them to end, or
// for ctx (see actors.Handler.Shutdown). Topics and their history stay;
// until Reopen, upgrades are refused with 503.
func (h *Hub) Shutdown(ctx context.Context) error {
	return h.handler.Load().Shutdown(ctx)
}

// Reopen accepts connections again after Shutdown (a restart of the
// network side: clients reconnect and recover from the topics' history).
func (h *Hub) Reopen() error {
	h.mu.Lock()
	closed := h.closed
	h.mu.Unlock()
	if closed {
		return ErrClosed
	}
	hd, err := actors.NewHandler(h.system, func() actor.Actor { return newSession(h) }, &h.hopts)
	if err != nil {
		return fmt.Errorf("channel: %w", err)
	}
	if old := h.handler.Swap(hd); old != nil {
		// Connections of the old handler (if any are left) stay until
		// they end; new ones go to hd. Its counts stay in Stats.
		h.mu.Lock()
		h.retired = append(h.retired, old)
		h.mu.Unlock()
	}
	return nil
}

// Close shuts the connections down (as Shutdown), then stops every topic.
func (h *Hub) Close(ctx context.Context) error {
	err := h.Shutdown(ctx)
	h.mu.Lock()
	h.closed = true
	h.mu.Unlock()
	if h.port != nil {
		h.opts.Cluster.Detach()
		h.port.stopOwners()
	}
	return errors.Join(err, h.tree.Shutdown(ctx))
}

func (h *Hub) isClosed() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.closed
}

// Len returns the number of open connections.
func (h *Hub) Len() int { return h.handler.Load().Len() }

// Publish keeps event in topic's history and sends it to the topic's
// members, making the topic if it is not running. It waits for the topic
// to take it: on a cluster (Options.Cluster), until the topic's backup node
// has it too; a publish on its way when the topic's owner changed returns
// ErrMoved (it may or may not have been kept).
func (h *Hub) Publish(ctx context.Context, topic, event string, data any) (Position, error) {
	if err := checkName("topic", topic); err != nil {
		return Position{}, fmt.Errorf("channel: publish: %w", err)
	}
	if err := checkName("event", event); err != nil {
		return Position{}, fmt.Errorf("channel: publish: %w", err)
	}
	pl, err := toPayload(data)
	if err != nil {
		return Position{}, err
	}
	for {
		r, err := h.topics.Get(ctx, topic)
		if err != nil {
			return Position{}, fmt.Errorf("channel: publish: %w", err)
		}
		req := &publishReq{event: event, data: pl, done: make(chan publishResult, 1)}
		r.Tell(req)
		select {
		case res := <-req.done:
			return res.pos, res.err
		case <-r.Done():
			// Stopped before it took ours, or after: the answer decides.
			select {
			case res := <-req.done:
				return res.pos, res.err
			default:
			}
			if ctx.Err() == nil {
				continue // the next Get makes a new topic
			}
			return Position{}, fmt.Errorf("channel: publish: %w", ctx.Err())
		case <-ctx.Done():
			return Position{}, fmt.Errorf("channel: publish: %w", ctx.Err())
		}
	}
}

// Handler returns the Hub's current actors.Handler (a new one after each
// Reopen): its connections, Stats and RecentCloses.
func (h *Hub) Handler() *actors.Handler { return h.handler.Load() }

// TopicCounts returns the members of every running topic.
func (h *Hub) TopicCounts() map[string]int {
	rooms := h.topics.Rooms()
	out := make(map[string]int, len(rooms))
	for _, r := range rooms {
		n := 0
		if v, ok := h.shared.Load(r.Name()); ok {
			n = int(v.(*roomShared).members.Load())
		}
		out[r.Name()] = n
	}
	return out
}

// Topics returns the names of the running topics, sorted.
func (h *Hub) Topics() []string {
	rooms := h.topics.Rooms()
	out := make([]string, len(rooms))
	for i, r := range rooms {
		out[i] = r.Name()
	}
	return out
}

// SessionInfo describes one open connection.
type SessionInfo struct {
	ID     string
	User   string
	Topics []string
	Conn   *actors.Conn
}

// Sessions returns the open connections of user, sorted by id.
func (h *Hub) Sessions(user string) []SessionInfo {
	var out []SessionInfo
	for _, s := range h.users.sessions(user) {
		out = append(out, s.info())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// SendUser sends a push (no reply expected) on topic to every connection of
// user, whether or not it joined topic. It returns how many connections
// took it. The browser and Go clients deliver a push to their channel of
// its topic and drop it where they have none: have each client join a
// per-user topic ("user:alice", which Authorize keeps others out of) and
// send on it.
func (h *Hub) SendUser(user, topic, event string, data any) (int, error) {
	fr, err := pushFrame(topic, event, data, 0)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, s := range h.users.sessions(user) {
		if s.conn.SendFrame(fr.get(s.binary)) == nil {
			n++
		}
	}
	return n, nil
}

// DisconnectUser closes every connection of user with 1008 and reason (a
// client does not reconnect by itself after 1008). It returns how many.
func (h *Hub) DisconnectUser(user, reason string) int {
	ss := h.users.sessions(user)
	for _, s := range ss {
		s.conn.Close(transport.StatusPolicyViolation, reason)
	}
	return len(ss)
}

// Reply is the data of a reply: a JSON payload or a bytes payload (at most
// one is set; neither when the reply had no data).
type Reply struct {
	Data json.RawMessage
	Bin  []byte
}

// Request sends a push on topic to connection id and waits for its reply,
// or for ctx. data is as in Topic.Publish. An error reply is an *Error.
func (h *Hub) Request(ctx context.Context, id, topic, event string, data any) (*Reply, error) {
	h.mu.Lock()
	s := h.sessions[id]
	h.mu.Unlock()
	if s == nil {
		return nil, ErrNoSession
	}
	pl, err := toPayload(data)
	if err != nil {
		return nil, err
	}
	if err := checkName("topic", topic); err != nil {
		return nil, fmt.Errorf("channel: request: %w", err)
	}
	if err := checkName("event", event); err != nil {
		return nil, fmt.Errorf("channel: request: %w", err)
	}
	answer := make(chan outAnswer, 1)
	h.system.Root.Send(s.conn.PID(), &outRequest{topic: topic, event: event, data: pl, answer: answer, ctx: ctx})
	select {
	case a := <-answer:
		if a.err != nil {
			return nil, a.err
		}
		return &Reply{Data: a.p.json, Bin: a.p.bin}, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("channel: request: %w", ctx.Err())
	case <-s.done:
		return nil, fmt.Errorf("channel: request: %w", transport.ErrClosed)
	}
}

func pushFrame(topic, event string, data any, ref uint64) (*frames, error) {
	if err := checkName("topic", topic); err != nil {
		return nil, fmt.Errorf("channel: %w", err)
	}
	if err := checkName("event", event); err != nil {
		return nil, fmt.Errorf("channel: %w", err)
	}
	pl, err := toPayload(data)
	if err != nil {
		return nil, err
	}
	return msgFrames(&wireMsg{T: typePush, Ref: ref, Topic: topic, Event: event, Data: pl.json, Bin: pl.bin}), nil
}

func (h *Hub) addSession(s *session) {
	h.mu.Lock()
	h.sessions[s.id] = s
	h.mu.Unlock()
	h.users.add(s)
}

func (h *Hub) removeSession(s *session) {
	h.mu.Lock()
	if h.sessions[s.id] == s {
		delete(h.sessions, s.id)
	}
	h.mu.Unlock()
	h.users.remove(s)
}

// users is the user index: the open connections of each user, and each
// user's shared rate bucket.
type users struct {
	mu   sync.Mutex
	rate Limit
	m    map[string]*userEntry
}

type userEntry struct {
	sessions map[*session]struct{}
	bucket   *bucket
}

func (u *users) add(s *session) {
	if s.user == "" {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.m == nil {
		u.m = map[string]*userEntry{}
	}
	e := u.m[s.user]
	if e == nil {
		e = &userEntry{sessions: map[*session]struct{}{}, bucket: newBucket(u.rate, time.Now())}
		u.m[s.user] = e
	}
	e.sessions[s] = struct{}{}
	s.userBucket = e.bucket
}

func (u *users) remove(s *session) {
	if s.user == "" {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if e := u.m[s.user]; e != nil {
		delete(e.sessions, s)
		if len(e.sessions) == 0 {
			delete(u.m, s.user)
		}
	}
}

func (u *users) sessions(user string) []*session {
	u.mu.Lock()
	defer u.mu.Unlock()
	e := u.m[user]
	if e == nil {
		return nil
	}
	out := make([]*session, 0, len(e.sessions))
	for s := range e.sessions {
		out = append(out, s)
	}
	return out
}
