package cluster_test

import (
	"context"
	"fmt"
	"net"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	pcluster "github.com/asynkron/protoactor-go/cluster"
	testprovider "github.com/asynkron/protoactor-go/cluster/clusterproviders/test"
	"github.com/asynkron/protoactor-go/remote"
	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/wsactor/wsactor/actors"
	"github.com/wsactor/wsactor/cluster"
	"github.com/wsactor/wsactor/supervisor"
	"github.com/wsactor/wsactor/transport"
)

// The nodes of this package's tests are started once, all before any of
// them can see another, because two things in protoactor are not safe with
// several nodes in one process (one node per process, as in production and
// in the examples/cluster test, is not affected):
//
//   - remote.Start sets grpc's global logger (grpclog.SetLoggerV2) without
//     synchronisation, while the grpc servers of nodes started before read
//     it. So each node's remote starts behind a gated provider (it sees no
//     other node yet), and before the next one starts, a probe connection
//     reaches the node's grpc server and waits in its TLS-less handshake
//     (probeCreds): that orders everything the server goroutine did before
//     the next write. Only when all nodes are up do the groups of nodes join
//     their clusters (one in-memory agent per group).
//   - the gossip informer shuffles with a package-level math/rand.Rand;
//     cluster.Config.Gossip is off by default (see its documentation).
var pool struct {
	once   sync.Once
	err    error
	groups map[string][]*cluster.Node
}

// groups of nodes: tests that keep their nodes alive share "shared"; the
// failover test kills one of "failover", the channels failover test one of
// "topics"; benchmarks use "single" too.
var groupSizes = []struct {
	name string
	n    int
}{{"shared", 3}, {"failover", 3}, {"topics", 3}, {"single", 1}}

func TestMain(m *testing.M) {
	code := m.Run()
	releaseProbes()
	if pool.groups != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		for _, g := range pool.groups {
			for _, n := range g {
				_ = n.Shutdown(ctx, false)
			}
		}
		cancel()
	}
	os.Exit(code)
}

// gatedProvider defers joining the cluster until open is called.
type gatedProvider struct {
	c    *pcluster.Cluster
	real *testprovider.Provider
}

func (g *gatedProvider) StartMember(c *pcluster.Cluster) error { g.c = c; return nil }
func (g *gatedProvider) StartClient(c *pcluster.Cluster) error { g.c = c; return nil }
func (g *gatedProvider) Shutdown(graceful bool) error {
	if g.real == nil {
		return nil
	}
	return g.real.Shutdown(graceful)
}

func (g *gatedProvider) open(agent *testprovider.InMemAgent) error {
	g.real = testprovider.NewTestProvider(agent)
	return g.real.StartMember(g.c)
}

var providers = map[*cluster.Node]*gatedProvider{}

func poolLogger() zerolog.Logger {
	lvl, err := zerolog.ParseLevel(os.Getenv("WSACTOR_TEST_LOG"))
	if err != nil || lvl == zerolog.NoLevel {
		lvl = zerolog.WarnLevel
	}
	return zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr}).Level(lvl).With().Timestamp().Logger()
}

func startPool() error {
	logger := poolLogger()
	pool.groups = map[string][]*cluster.Node{}
	for _, g := range groupSizes {
		for range g.n {
			gate := &gatedProvider{}
			system := actors.NewSystem(logger.Level(max(logger.GetLevel(), zerolog.ErrorLevel)))
			node, err := cluster.Start(system, cluster.Config{
				Name: "test-" + g.name, Provider: gate, Logger: logger,
				CheckInterval: time.Second, ShardIdle: time.Minute,
				RemoteOptions: []remote.ConfigOption{remote.WithServerOptions(grpc.Creds(probeCreds{insecure.NewCredentials()}))},
			})
			if err != nil {
				return err
			}
			if err := probe(node.Address()); err != nil {
				return err
			}
			providers[node] = gate
			pool.groups[g.name] = append(pool.groups[g.name], node)
		}
	}
	for _, g := range groupSizes {
		agent := testprovider.NewInMemAgent()
		for _, n := range pool.groups[g.name] {
			if err := providers[n].open(agent); err != nil {
				return err
			}
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, g := range groupSizes {
		for _, n := range pool.groups[g.name] {
			for len(n.Members()) != g.n {
				if time.Now().After(deadline) {
					return fmt.Errorf("group %s: node %s sees %v", g.name, n.Address(), n.Members())
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
	}
	return nil
}

// probes holds, by the address of the node being probed, the channels of
// the probe's handshake: it signals on the first, then waits until the
// second is closed (when the node is killed, or when the tests end; after
// that the server goroutine logs again, now ordered after every write).
var probes sync.Map // address → *probeState

type probeState struct {
	used atomic.Bool
	seen chan struct{}
	hold chan struct{}
	once sync.Once
}

func (p *probeState) release() { p.once.Do(func() { close(p.hold) }) }

func releaseProbes() {
	probes.Range(func(_, v any) bool { v.(*probeState).release(); return true })
}

// probeCreds is grpc's insecure transport credentials, except that the
// handshake of a probe connection signals the prober and then waits.
type probeCreds struct {
	credentials.TransportCredentials
}

func (c probeCreds) ServerHandshake(conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	if v, ok := probes.Load(conn.LocalAddr().String()); ok {
		if p := v.(*probeState); !p.used.Swap(true) { // the first connection is the probe
			p.seen <- struct{}{}
			<-p.hold
		}
	}
	return c.TransportCredentials.ServerHandshake(conn)
}

func (c probeCreds) Clone() credentials.TransportCredentials {
	return probeCreds{c.TransportCredentials.Clone()}
}

// probe connects to a node's grpc server and returns once the server has
// handed the connection to its handshake: everything the server's goroutine
// did until then happens before what the caller does next.
func probe(address string) error {
	p := &probeState{seen: make(chan struct{}, 1), hold: make(chan struct{})}
	probes.Store(address, p)
	d := net.Dialer{Timeout: 5 * time.Second}
	if _, err := d.Dial("tcp", address); err != nil {
		return fmt.Errorf("probe %s: %w", address, err)
	}
	select {
	case <-p.seen:
		return nil // the connection stays open, held by the handshake
	case <-time.After(10 * time.Second):
		return fmt.Errorf("probe %s: no handshake", address)
	}
}

// testNode is a node of the pool with a WebSocket server of the test's own:
// connections join the room named in their URL (?room=) and publish every
// message they receive to it.
type testNode struct {
	node *cluster.Node
	h    *actors.Handler
	srv  *httptest.Server
	url  string
}

type serveOptions struct {
	accept transport.AcceptOptions
}

// nodesOf returns the pool's group with a WebSocket server on each node,
// shut down when the test ends.
func nodesOf(t testing.TB, group string, opts serveOptions) []*testNode {
	t.Helper()
	pool.once.Do(func() { pool.err = startPool() })
	if pool.err != nil {
		t.Fatalf("starting the nodes: %v", pool.err)
	}
	logger := testLogger(t)
	var out []*testNode
	for _, node := range pool.groups[group] {
		tn := &testNode{node: node}
		h, err := actors.NewHandler(node.System(), func() actor.Actor { return &member{n: tn.node} },
			&actors.HandlerOptions{AcceptOptions: opts.accept, Tree: node.Tree(), Logger: logger,
				Heartbeat: supervisor.HeartbeatOptions{Interval: -1}})
		if err != nil {
			t.Fatal(err)
		}
		tn.h = h
		tn.srv = httptest.NewServer(tn.h)
		tn.url = "ws" + strings.TrimPrefix(tn.srv.URL, "http")
		out = append(out, tn)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		for _, tn := range out {
			if err := tn.h.Shutdown(ctx); err != nil {
				t.Errorf("handler shutdown: %v", err)
			}
			tn.srv.Close()
		}
	})
	return out
}

// kill makes tn unreachable, as if its process had died: its remote server
// stops (peers see their streams break: AddressTerminated), it leaves the
// provider (peers drop it from the topology), and its WebSocket connections
// go away. (Its actors still run in this process: its own outgoing streams
// stay up, so it is a gentler death than kill -9; the multi-process test in
// examples/cluster does the real one.)
func (tn *testNode) kill(t testing.TB) {
	t.Helper()
	if v, ok := probes.Load(tn.node.Address()); ok {
		v.(*probeState).release() // grpc's Stop waits for the handshake
	}
	tn.node.Cluster().Remote.Shutdown(false)
	if err := providers[tn.node].Shutdown(false); err != nil {
		t.Fatalf("provider shutdown: %v", err)
	}
	tn.srv.CloseClientConnections()
}

// member is the server side of a test connection: it joins ?room= with
// ?name= as Meta, tells its client "joined", and publishes every message it
// receives to the room (the sender gets its own messages back).
type member struct {
	n    *cluster.Node
	room *cluster.Room
}

func (m *member) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actors.Opened:
		q := msg.Conn.Request().URL.Query()
		m.room = m.n.Room(q.Get("room"))
		conn, r := msg.Conn, m.room
		go func() {
			jctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if err := r.Join(jctx, conn, &cluster.JoinOptions{Meta: q.Get("name")}); err != nil {
				_ = conn.SendText("error " + err.Error())
				return
			}
			_ = conn.SendText("joined")
		}()
	case *actors.Message:
		_ = m.room.Publish(&cluster.Broadcast{Type: msg.Type, Data: msg.Data})
	case *cluster.RoomMoved:
		_ = msg // the test clients count chat messages only
	}
}

// client is a test WebSocket client that records every message after
// "joined".
type client struct {
	name   string
	ws     *websocket.Conn
	joined chan struct{}
	done   chan struct{}

	mu  sync.Mutex
	got []string
	err error
}

func dialClient(t testing.TB, url, roomName, name string, d *websocket.Dialer) *client {
	t.Helper()
	if d == nil {
		d = websocket.DefaultDialer
	}
	ws, _, err := d.Dial(url+"?room="+roomName+"&name="+name, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	c := &client{name: name, ws: ws, joined: make(chan struct{}), done: make(chan struct{})}
	go c.read()
	t.Cleanup(func() { ws.Close(); <-c.done })
	select {
	case <-c.joined:
	case <-c.done:
		t.Fatalf("client %s: closed before joining: %v", name, c.err)
	case <-time.After(20 * time.Second):
		t.Fatalf("client %s: not joined after 20s", name)
	}
	return c
}

func (c *client) read() {
	defer close(c.done)
	first := true
	for {
		_, p, err := c.ws.ReadMessage()
		if err != nil {
			c.mu.Lock()
			c.err = err
			c.mu.Unlock()
			return
		}
		s := string(p)
		if first {
			first = false
			if s != "joined" {
				c.mu.Lock()
				c.err = fmt.Errorf("first message %q", s)
				c.mu.Unlock()
				return
			}
			close(c.joined)
			continue
		}
		c.mu.Lock()
		c.got = append(c.got, s)
		c.mu.Unlock()
	}
}

func (c *client) messages() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.got...)
}

func (c *client) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.got)
}

func (c *client) send(t testing.TB, s string) {
	t.Helper()
	if err := c.ws.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
		t.Fatalf("client %s: send: %v", c.name, err)
	}
}

// waitFor polls cond every 10ms until it holds or d passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for: %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// testLogger logs to t at warn level until the test ends; protoactor and
// the nodes' goroutines may log after that, which t.Log does not allow.
func testLogger(t testing.TB) zerolog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(func() { w.mu.Lock(); w.done = true; w.mu.Unlock() })
	return zerolog.New(w).Level(zerolog.WarnLevel).With().Timestamp().Logger()
}

type testWriter struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

// roomOwnedBy returns a room name whose owner is node want (by the
// cluster's rendezvous hashing), so tests can put a room's grain where they
// need it.
func roomOwnedBy(t testing.TB, nodes []*testNode, want int, prefix string) string {
	t.Helper()
	for i := 0; i < 10000; i++ {
		name := fmt.Sprintf("%s-%d", prefix, i)
		if nodes[0].node.Owner(name) == nodes[want].node.Address() {
			return name
		}
	}
	t.Fatalf("no room name owned by node %d", want)
	return ""
}

func sumStats(nodes []*testNode, f func(cluster.Stats) int64) int64 {
	var s int64
	for _, tn := range nodes {
		s += f(tn.node.Stats())
	}
	return s
}
