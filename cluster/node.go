package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	pcluster "github.com/asynkron/protoactor-go/cluster"
	"github.com/asynkron/protoactor-go/cluster/identitylookup/disthash"
	"github.com/asynkron/protoactor-go/eventstream"
	"github.com/asynkron/protoactor-go/remote"
	"github.com/rs/zerolog"

	"github.com/wsactor/wsactor/room"
	"github.com/wsactor/wsactor/supervisor"
)

// Kind is the protoactor cluster kind of room grains. Every node of a
// cluster registers it.
const Kind = "wsactor-room"

// Errors returned by Node and Room.
var (
	// ErrInvalidName: a room name must be non-empty and must not contain '/'.
	ErrInvalidName = errors.New("cluster: invalid room name")
	// ErrStopped: the node is shutting down.
	ErrStopped = errors.New("cluster: node stopped")
	// ErrNotMember is returned by Join when the connection left (or closed)
	// before the room's grain acknowledged it.
	ErrNotMember = errors.New("cluster: not a member")
	// ErrNoOwner: the cluster has no member able to host rooms (yet).
	ErrNoOwner = errors.New("cluster: no member hosts rooms")
)

// Config configures a Node. Name and Provider are required; every other
// field has a default.
type Config struct {
	// Name is the cluster's name: nodes with the same Name and provider
	// backend form one cluster.
	Name string

	// Provider finds the other members: protoactor's etcd provider
	// (cluster/clusterproviders/etcd) in production and in multi-process
	// tests, its in-memory test provider for several nodes in one process,
	// or its k8s provider (see docs/cluster.md).
	Provider pcluster.ClusterProvider

	// NewProvider, if set instead of Provider, makes the provider when the
	// member starts, after protoactor's remote has started. Use it for the
	// etcd provider: its constructor starts a grpc client, and remote.Start
	// then replaces grpc's global logger under that client's goroutines (a
	// data race under -race).
	NewProvider func() (pcluster.ClusterProvider, error)

	// Host and Port are where the node's remote (gRPC) listens. Port 0 picks
	// a free port. Empty Host means 127.0.0.1.
	Host string
	Port int
	// AdvertisedHost is the address other nodes dial ("host:port"), when it
	// differs from Host:Port (a pod IP behind a 0.0.0.0 listener).
	AdvertisedHost string

	// Logger receives the node's logs and protoactor's (pass the same logger
	// to actors.NewSystem). The zero value logs nothing.
	Logger zerolog.Logger

	// Tree is the supervision tree whose rooms branch holds this node's
	// shards (one local room per cluster room with members here). Nil makes
	// a tree owned by the node.
	Tree *supervisor.Tree

	// CheckInterval is how often a shard asks its grain whether it still
	// knows the shard's members, and how often a grain checks that its node
	// still owns it. Zero means 5s.
	CheckInterval time.Duration

	// LookupTimeout bounds one activation request to the owner of a room.
	// Zero means 2s.
	LookupTimeout time.Duration

	// SuspectTTL is how long a node whose connection broke is skipped as a
	// room owner while the provider still lists it. Zero means 10s.
	SuspectTTL time.Duration

	// ReplayWindow and ReplayAge bound the broadcasts a shard keeps to send
	// again to a room's new grain after a failover (at most ReplayWindow
	// messages, of which those already sent are kept for ReplayAge), and
	// the history a grain sends a shard that registers again after losing
	// its grain (at most ReplayWindow, none older than 2×ReplayAge). Zero
	// means 1024 and 5s.
	ReplayWindow int
	ReplayAge    time.Duration

	// ShardIdle stops a node's shard of a room once it has had no members
	// for this long. Zero means 30s.
	ShardIdle time.Duration

	// ConnectRetries is how often a node tries to connect to another before
	// it gives up on it (protoactor sleeps 2s between tries). Zero means 2.
	ConnectRetries int

	// Gossip turns protoactor's cluster gossip on. It is off by default:
	// wsactor's rooms take membership from the provider and use nothing
	// gossip provides (topology consensus, heartbeat-expiry blocking), and
	// at the pinned version the gossip actor reads the member list and the
	// block list without the locks that topology updates take (data races
	// under -race, seen with three etcd nodes), and the informer shuffles
	// with a package-level math/rand.Rand (a race with two nodes in one
	// process).
	Gossip bool

	// RemoteOptions and ClusterOptions are passed to protoactor's
	// remote.Configure and cluster.Configure.
	RemoteOptions  []remote.ConfigOption
	ClusterOptions []pcluster.ConfigOption
}

func (c *Config) setDefaults() {
	if c.Host == "" {
		c.Host = "127.0.0.1"
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.CheckInterval, 5*time.Second)
	def(&c.LookupTimeout, 2*time.Second)
	def(&c.SuspectTTL, 10*time.Second)
	def(&c.ReplayAge, 5*time.Second)
	def(&c.ShardIdle, 30*time.Second)
	if c.ReplayWindow <= 0 {
		c.ReplayWindow = 1024
	}
	if c.ConnectRetries <= 0 {
		c.ConnectRetries = 2
	}
}

// Node is one member of a wsactor cluster: protoactor's remote and cluster
// member running in an actor system, the room grains placed on it, and its
// shards (the per-node fan-out of each room with members here). Make it with
// [Start]; it is safe for concurrent use.
type Node struct {
	cfg     Config
	system  *actor.ActorSystem
	cluster *pcluster.Cluster
	log     zerolog.Logger
	tree    *supervisor.Tree
	owns    bool
	shards  *room.Registry
	address string
	sub     *eventstream.Subscription

	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.RWMutex
	rdv      *pcluster.Rendezvous
	members  []string             // addresses, from the last topology
	suspects map[string]time.Time // address → when its connection broke
	topoWake chan struct{}        // closed and replaced on every topology change
	topoHook func()               // called after every topology change (Channels)
	shutOnce sync.Once
	stats    counters
}

// Start makes system a member of the cluster cfg describes: it starts
// protoactor's remote and cluster member (which sleeps 1s by itself) with
// the room grain kind and disthash placement. The system should come from
// actors.NewSystem with the same logger.
//
// protoactor panics on provider errors while starting; Start returns them
// as errors instead (the node is then unusable; shut the system down).
func Start(system *actor.ActorSystem, cfg Config) (*Node, error) {
	if cfg.Name == "" || (cfg.Provider == nil) == (cfg.NewProvider == nil) {
		return nil, errors.New("cluster: Config.Name and one of Config.Provider and Config.NewProvider are required")
	}
	if cfg.NewProvider != nil {
		cfg.Provider = &lazyProvider{make: cfg.NewProvider}
	}
	cfg.setDefaults()
	n := &Node{
		cfg:      cfg,
		system:   system,
		log:      cfg.Logger.With().Str("lib", "wsactor/cluster").Logger(),
		rdv:      pcluster.NewRendezvous(),
		suspects: map[string]time.Time{},
		topoWake: make(chan struct{}),
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())

	rcfg := remote.Configure(cfg.Host, cfg.Port, cfg.RemoteOptions...)
	if cfg.AdvertisedHost != "" {
		rcfg.AdvertisedHost = cfg.AdvertisedHost
	}
	rcfg.MaxRetryCount = cfg.ConnectRetries
	kind := pcluster.NewKind(Kind, actor.PropsFromProducer(func() actor.Actor { return newGrain(n) }))
	opts := []pcluster.ConfigOption{pcluster.WithKinds(kind)}
	if !cfg.Gossip {
		// The gossip loop is a ticker; protoactor has no off switch.
		opts = append(opts, func(c *pcluster.Config) { c.GossipInterval = 100 * 365 * 24 * time.Hour })
	}
	opts = append(opts, cfg.ClusterOptions...)
	ccfg := pcluster.Configure(cfg.Name, cfg.Provider, disthash.New(), rcfg, opts...)

	if err := protect("cluster.New", func() { n.cluster = pcluster.New(system, ccfg) }); err != nil {
		return nil, err
	}
	// Subscribe before the member starts: the provider publishes the first
	// topology from StartMember.
	n.sub = system.EventStream.Subscribe(n.onEvent)
	if err := protect("StartMember", n.cluster.StartMember); err != nil {
		system.EventStream.Unsubscribe(n.sub)
		return nil, err
	}
	n.address = system.Address()
	n.log = n.log.With().Str("node", n.address).Logger()

	n.tree = cfg.Tree
	if n.tree == nil {
		t, err := supervisor.New(system)
		if err != nil {
			n.cluster.Shutdown(false)
			return nil, fmt.Errorf("cluster: %w", err)
		}
		n.tree, n.owns = t, true
	}
	n.shards = room.NewRegistry(n.tree, &room.RegistryOptions{
		Logger: cfg.Logger,
		Options: func(name string) *room.Options {
			return &room.Options{
				Behavior:    func(s *room.State) actor.Actor { return newShard(n, name, s) },
				IdleTimeout: n.cfg.ShardIdle,
			}
		},
	})
	n.log.Info().Msg("cluster node started")
	return n, nil
}

// lazyProvider makes its provider when the member (or client) starts.
type lazyProvider struct {
	make func() (pcluster.ClusterProvider, error)
	p    pcluster.ClusterProvider
}

func (l *lazyProvider) StartMember(c *pcluster.Cluster) error {
	p, err := l.make()
	if err != nil {
		return err
	}
	l.p = p
	return p.StartMember(c)
}

func (l *lazyProvider) StartClient(c *pcluster.Cluster) error {
	p, err := l.make()
	if err != nil {
		return err
	}
	l.p = p
	return p.StartClient(c)
}

func (l *lazyProvider) Shutdown(graceful bool) error {
	if l.p == nil {
		return nil
	}
	return l.p.Shutdown(graceful)
}

// protect runs f and turns a panic into an error.
func protect(what string, f func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("cluster: %s: %v", what, r)
		}
	}()
	f()
	return nil
}

// Address returns the node's remote address (host:port), which identifies it
// in the cluster.
func (n *Node) Address() string { return n.address }

// System returns the node's actor system.
func (n *Node) System() *actor.ActorSystem { return n.system }

// Tree returns the supervision tree the node's shards live in; give it to
// actors.HandlerOptions.Tree so connections and shards share one tree.
func (n *Node) Tree() *supervisor.Tree { return n.tree }

// Cluster returns protoactor's cluster, for what this package does not wrap.
// Do not call its RequestFuture: it mutates a process-wide default (see
// docs/cluster.md).
func (n *Node) Cluster() *pcluster.Cluster { return n.cluster }

// Members returns the addresses of the cluster's members as this node last
// saw them, sorted.
func (n *Node) Members() []string {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return append([]string(nil), n.members...)
}

// Owner returns the address of the member that owns the room name under the
// current topology (disthash's rendezvous hashing), or "" if none.
func (n *Node) Owner(name string) string {
	n.mu.RLock()
	rdv := n.rdv
	n.mu.RUnlock()
	return rdv.GetByClusterIdentity(&pcluster.ClusterIdentity{Identity: name, Kind: Kind})
}

// Shutdown stops the node: its shards leave their grains, then protoactor's
// cluster member shuts down. Graceful deregisters from the provider first
// (and waits 2s for grains to hand over, as protoactor does), so other nodes
// see the member leave at once instead of after its lease expires.
// Connections are not closed: shut the actors.Handler down first. Shutdown
// returns when ctx ends even if protoactor's shutdown has not finished (it
// waits forever for an unreachable etcd).
func (n *Node) Shutdown(ctx context.Context, graceful bool) error {
	var err error
	n.shutOnce.Do(func() {
		n.cancel()
		if n.owns {
			err = n.tree.Shutdown(ctx)
		} else {
			for _, r := range n.shards.Rooms() {
				_ = r.Stop(ctx)
			}
		}
		n.system.EventStream.Unsubscribe(n.sub)
		// protoactor's Shutdown has no deadline: with etcd unreachable, the
		// etcd provider's deregistration waits forever.
		done := make(chan struct{})
		go func() { n.cluster.Shutdown(graceful); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			err = errors.Join(err, fmt.Errorf("cluster: protoactor's cluster shutdown still running: %w", ctx.Err()))
		}
	})
	return err
}

// onEvent runs on the publisher's goroutine: it only updates state.
func (n *Node) onEvent(ev any) {
	switch e := ev.(type) {
	case *pcluster.ClusterTopology:
		rdv := pcluster.NewRendezvous()
		rdv.UpdateMembers(e.Members)
		addrs := make([]string, 0, len(e.Members))
		for _, m := range e.Members {
			addrs = append(addrs, m.Address())
		}
		slices.Sort(addrs)
		n.mu.Lock()
		n.rdv, n.members = rdv, addrs
		for _, m := range e.Joined {
			delete(n.suspects, m.Address())
		}
		for _, m := range e.Left {
			delete(n.suspects, m.Address())
		}
		close(n.topoWake)
		n.topoWake = make(chan struct{})
		hook := n.topoHook
		n.mu.Unlock()
		n.log.Debug().Strs("members", addrs).Msg("topology")
		if hook != nil {
			hook()
		}
	case *remote.EndpointTerminatedEvent:
		n.suspect(e.Address)
	case *remote.EndpointConnectedEvent:
		n.mu.Lock()
		delete(n.suspects, e.Address)
		n.mu.Unlock()
	}
}

// suspect marks address as unreachable: it is not asked to host rooms until
// the provider drops it, it connects again, or SuspectTTL passes.
func (n *Node) suspect(address string) {
	if address == n.address {
		return
	}
	n.mu.Lock()
	n.suspects[address] = time.Now()
	n.mu.Unlock()
}

func (n *Node) isSuspect(address string) bool {
	n.mu.RLock()
	at, ok := n.suspects[address]
	n.mu.RUnlock()
	return ok && time.Since(at) < n.cfg.SuspectTTL
}

// topologyChanged returns a channel closed at the next topology change.
func (n *Node) topologyChanged() <-chan struct{} {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.topoWake
}

var errSuspect = errors.New("cluster: owner unreachable")

// lookup returns the PID of the room's grain, activating it on its owner if
// needed. It asks disthash's placement actor on the owner directly (what
// disthash's IdentityLookup.Get does), with the node's own view of the
// topology: Get blocks up to 5s on a dead owner and reads a field that
// topology changes write without a lock.
func (n *Node) lookup(ctx context.Context, name string) (*actor.PID, error) {
	owner := n.Owner(name)
	if owner == "" {
		return nil, ErrNoOwner
	}
	if n.isSuspect(owner) {
		return nil, fmt.Errorf("%w: %s", errSuspect, owner)
	}
	timeout := n.cfg.LookupTimeout
	if d, ok := ctx.Deadline(); ok && time.Until(d) < timeout {
		timeout = time.Until(d)
	}
	if timeout <= 0 {
		return nil, context.DeadlineExceeded
	}
	req := &pcluster.ActivationRequest{ClusterIdentity: pcluster.NewClusterIdentity(name, Kind)}
	res, err := n.system.Root.RequestFuture(actor.NewPID(owner, disthash.PartitionActivatorActorName), req, timeout).Result()
	if err != nil {
		return nil, fmt.Errorf("cluster: activate %q on %s: %w", name, owner, err)
	}
	r, ok := res.(*pcluster.ActivationResponse)
	if !ok || r.Pid == nil || r.Failed {
		return nil, fmt.Errorf("cluster: activate %q on %s: answer %T", name, owner, res)
	}
	return r.Pid, nil
}

func validName(name string) bool { return name != "" && !strings.ContainsRune(name, '/') }
