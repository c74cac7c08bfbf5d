package channel_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"

	"github.com/wsactor/wsactor/actors"
	"github.com/wsactor/wsactor/channel"
	"github.com/wsactor/wsactor/supervisor"
)

// memNet is an in-memory cluster for channel.Hubs: each node's messages
// are delivered in order by one goroutine per receiving node; kill cuts a
// node off (nothing in or out) and tells the others. It lets these tests
// drive the topic protocol (owners, replication, failover) without
// protoactor; package cluster runs the same protocol over its remote.
type memNet struct {
	mu    sync.Mutex
	nodes map[string]*memNode
	// maxMsg, if positive, refuses larger messages, as gRPC's 4 MiB
	// default limit does in package cluster.
	maxMsg int
}

type memNode struct {
	net   *memNet
	addr  string
	port  *channel.ClusterPort
	alive bool
	// lose, if set, is asked about every message this node sends: true
	// drops it, as a broken link does.
	lose func(to string, msg []byte) bool

	qmu   sync.Mutex
	queue []memPacket
	wake  chan struct{}
	quit  chan struct{}
	done  chan struct{}
}

type memPacket struct {
	from string
	msg  []byte
}

func (n *memNode) Attach(p *channel.ClusterPort) error {
	n.port = p
	go n.loop()
	return nil
}

func (n *memNode) Self() string { return n.addr }

func (n *memNode) Detach() {}

// Rank orders the live nodes by a rendezvous hash of (topic, node).
func (n *memNode) Rank(topic string) []string {
	n.net.mu.Lock()
	defer n.net.mu.Unlock()
	var out []string
	for a, m := range n.net.nodes {
		if m.alive {
			out = append(out, a)
		}
	}
	return rankNodes(topic, out)
}

func rankNodes(topic string, nodes []string) []string {
	score := func(a string) uint64 {
		h := fnv.New64a()
		h.Write([]byte(topic + "\x00" + a))
		return h.Sum64()
	}
	slices.SortFunc(nodes, func(a, b string) int {
		sa, sb := score(a), score(b)
		switch {
		case sa > sb:
			return -1
		case sa < sb:
			return 1
		}
		return strings.Compare(a, b)
	})
	return nodes
}

func (n *memNode) Send(node string, msg []byte) error {
	n.net.mu.Lock()
	to := n.net.nodes[node]
	ok := n.alive && to != nil && to.alive
	lose := n.lose
	maxMsg := n.net.maxMsg
	n.net.mu.Unlock()
	if maxMsg > 0 && len(msg) > maxMsg {
		return fmt.Errorf("memnet: a %d-byte message is over the %d-byte limit", len(msg), maxMsg)
	}
	if lose != nil && lose(node, msg) {
		return nil
	}
	if !ok {
		return fmt.Errorf("memnet: %s unreachable from %s", node, n.addr)
	}
	to.qmu.Lock()
	to.queue = append(to.queue, memPacket{from: n.addr, msg: msg})
	to.qmu.Unlock()
	select {
	case to.wake <- struct{}{}:
	default:
	}
	return nil
}

func (n *memNode) loop() {
	defer close(n.done)
	for {
		select {
		case <-n.quit:
			return
		case <-n.wake:
		}
		for {
			n.qmu.Lock()
			q := n.queue
			n.queue = nil
			n.qmu.Unlock()
			if len(q) == 0 {
				break
			}
			for _, p := range q {
				n.net.mu.Lock()
				alive := n.alive
				n.net.mu.Unlock()
				if alive {
					n.port.Receive(p.from, p.msg)
				}
			}
		}
	}
}

// clusterEnv is hubs on a memNet, each served on loopback.
type clusterEnv struct {
	net  *memNet
	envs []*hubEnv
	srvs []*httptest.Server
	lns  []*trackingListener
}

// trackingListener remembers the connections it accepted, so that a test
// can drop them all at once (httptest forgets upgraded connections).
type trackingListener struct {
	net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.mu.Lock()
		l.conns = append(l.conns, c)
		l.mu.Unlock()
	}
	return c, err
}

func (l *trackingListener) dropAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.conns {
		_ = c.Close()
	}
	l.conns = nil
}

func newClusterEnv(t *testing.T, n int, opts func() *channel.Options) *clusterEnv {
	t.Helper()
	ce := &clusterEnv{net: &memNet{nodes: map[string]*memNode{}}}
	var nodes []*memNode
	for i := range n {
		node := &memNode{net: ce.net, addr: fmt.Sprintf("node%d", i), alive: true,
			wake: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{})}
		ce.net.nodes[node.addr] = node
		nodes = append(nodes, node)
	}
	for _, node := range nodes {
		o := opts()
		o.Cluster = node
		o.Logger = zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
		if o.Authenticate == nil {
			o.Authenticate = func(r *http.Request) (channel.Identity, error) {
				u := r.URL.Query().Get("user")
				return channel.Identity{User: u, Meta: map[string]string{"name": strings.ToUpper(u)}}, nil
			}
		}
		system := actors.NewSystem(o.Logger)
		h, err := channel.NewHub(system, o)
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewUnstartedServer(h)
		ln := &trackingListener{Listener: srv.Listener}
		srv.Listener = ln
		srv.Start()
		ce.lns = append(ce.lns, ln)
		node := node
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			srv.Close()
			if err := h.Close(ctx); err != nil && !errors.Is(err, channel.ErrClosed) {
				t.Errorf("close: %v", err)
			}
			close(node.quit)
			<-node.done
		})
		ce.envs = append(ce.envs, &hubEnv{hub: h, url: "ws" + strings.TrimPrefix(srv.URL, "http"), srv: srv})
		ce.srvs = append(ce.srvs, srv)
	}
	return ce
}

// rank returns the node indexes ranked for topic among the live nodes.
func (ce *clusterEnv) rank(topic string) []int {
	var live []string
	ce.net.mu.Lock()
	for a, m := range ce.net.nodes {
		if m.alive {
			live = append(live, a)
		}
	}
	ce.net.mu.Unlock()
	var out []int
	for _, a := range rankNodes(topic, live) {
		var i int
		fmt.Sscanf(a, "node%d", &i)
		out = append(out, i)
	}
	return out
}

// add brings node i (made with alive false) into the cluster.
func (ce *clusterEnv) add(i int) {
	ce.net.mu.Lock()
	ce.net.nodes[fmt.Sprintf("node%d", i)].alive = true
	var all []*memNode
	for _, m := range ce.net.nodes {
		if m.alive {
			all = append(all, m)
		}
	}
	ce.net.mu.Unlock()
	for _, m := range all {
		m.port.TopologyChanged()
	}
}

// kill cuts node i off the cluster, as a kill -9 does: its links break,
// its clients' connections drop, and the others see the topology change.
func (ce *clusterEnv) kill(i int) {
	ce.net.mu.Lock()
	ce.net.nodes[fmt.Sprintf("node%d", i)].alive = false
	var others []*memNode
	for _, m := range ce.net.nodes {
		if m.alive {
			others = append(others, m)
		}
	}
	ce.net.mu.Unlock()
	ce.lns[i].dropAll()
	for _, m := range others {
		m.port.TopologyChanged()
	}
}

func clusterTopics() *channel.Options {
	return &channel.Options{Topics: func(string) *channel.TopicOptions {
		return &channel.TopicOptions{ClientPublish: true, Presence: true, History: 50}
	}}
}

// presenceKeys reads a presence_state and returns its keys, sorted.
func presenceKeys(m msg) []string {
	var keys []string
	for k := range m.State {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// A topic with members on three nodes: one stream (offsets and history
// from the owner), presence across nodes, pushes from any node published to
// all, Hub.Publish from any node.
func TestClusterTopicAcrossNodes(t *testing.T) {
	ce := newClusterEnv(t, 3, clusterTopics)
	const topic = "lobby"
	var cs []*tclient
	for i, user := range []string{"alice", "bob", "carol"} {
		c := ce.envs[i].dial(t, user)
		r := c.join(1, topic, nil)
		if r.Epoch == "" || r.Offset != 0 {
			t.Fatalf("%s's join: %+v", user, r)
		}
		st := c.expect("presence_state")
		if got := presenceKeys(st); len(got) != i+1 {
			t.Fatalf("%s's presence state %v, want %d keys", user, got, i+1)
		}
		for j, o := range cs {
			d := o.expect("presence_diff")
			if _, ok := d.Joins[user]; !ok {
				t.Fatalf("client %d saw diff %s, want %s joining", j, d.raw, user)
			}
		}
		cs = append(cs, c)
	}
	// A push from bob (node 1) reaches everyone as offset 1.
	cs[1].send(map[string]any{"t": "push", "ref": 2, "topic": topic, "event": "say", "data": "hi"})
	for i, c := range cs {
		m := c.expect("event")
		if m.Offset != 1 || string(m.Data) != `"hi"` {
			t.Fatalf("client %d: %s", i, m.raw)
		}
	}
	if r := cs[1].reply(2); r.Status != "ok" || string(r.Data) != `{"offset":1}` {
		t.Fatalf("push reply %s", r.raw)
	}
	// Hub.Publish on every node: the same stream.
	for i, e := range ce.envs {
		pos, err := e.hub.Publish(context.Background(), topic, "note", i)
		if err != nil || pos.Offset != uint64(2+i) {
			t.Fatalf("publish on node %d: %+v, %v", i, pos, err)
		}
		for j, c := range cs {
			if m := c.expect("event"); m.Offset != uint64(2+i) || string(m.Data) != fmt.Sprint(i) {
				t.Fatalf("client %d: %s", j, m.raw)
			}
		}
	}
	// A late joiner on any node gets the whole history.
	d := ce.envs[2].dial(t, "dan")
	r := d.join(1, topic, map[string]any{"history": 10})
	if r.Offset != 4 || len(r.History) != 4 || r.History[0].Offset != 1 || string(r.History[0].Data) != `"hi"` {
		t.Fatalf("late join: %+v", r)
	}
	d.expect("presence_state")
	// Bob leaves: the others see him go.
	cs[1].send(map[string]any{"t": "leave", "ref": 3, "topic": topic})
	// (dan's arrival may reach bob's node after bob left it there)
	if r := cs[1].readUntil("reply"); r.Ref != 3 || r.Status != "ok" {
		t.Fatalf("leave reply %s", r.raw)
	}
	for _, c := range []*tclient{cs[0], cs[2]} {
		c.expect("presence_diff") // dan joining
		m := c.expect("presence_diff")
		if _, ok := m.Leaves["bob"]; !ok {
			t.Fatalf("want bob leaving, got %s", m.raw)
		}
	}
}

// joinPresent dials e as user and joins topic (a topic with presence):
// the join reply, then the presence state.
func joinPresent(t *testing.T, e *hubEnv, user, topic string) (*tclient, channel.JoinReply) {
	t.Helper()
	c := e.dial(t, user)
	r := c.join(1, topic, nil)
	c.expect("presence_state")
	return c, r
}

// readUntil reads messages until one of type typ, returning it.
func (c *tclient) readUntil(typ string) msg {
	c.t.Helper()
	for {
		if m := c.read(); m.T == typ {
			return m
		}
	}
}

// The owner node dies: members elsewhere are told to rejoin ("left",
// "stopped"), rejoin with their position and recover with nothing missing
// from the backup's copy (same epoch, same offsets); the dead node's member
// has left presence; the stream goes on from the next offset.
func TestClusterOwnerDiesHistorySurvives(t *testing.T) {
	ce := newClusterEnv(t, 3, clusterTopics)
	const topic = "news"
	rank := ce.rank(topic)
	owner, backup, other := rank[0], rank[1], rank[2]
	a, ja := joinPresent(t, ce.envs[backup], "alice", topic)
	b, _ := joinPresent(t, ce.envs[other], "bob", topic)
	joinPresent(t, ce.envs[owner], "carol", topic) // dies with the owner
	const n = 20
	for i := 1; i <= n; i++ {
		b.send(map[string]any{"t": "push", "ref": 10 + i, "topic": topic, "event": "say", "data": i})
		if r := b.readUntil("reply"); r.Status != "ok" || string(r.Data) != fmt.Sprintf(`{"offset":%d}`, i) {
			t.Fatalf("push %d: %s", i, r.raw)
		}
	}
	for i := 1; i <= n; i++ { // bob's were read with the replies
		if m := a.readUntil("event"); m.Offset != uint64(i) {
			t.Fatalf("event %d: %s", i, m.raw)
		}
	}
	ce.kill(owner)
	for _, cl := range []*tclient{a, b} {
		if m := cl.readUntil("left"); m.Reason != "stopped" {
			t.Fatalf("want left stopped, got %s", m.raw)
		}
		r := cl.join(2, topic, map[string]any{"recover": channel.Position{Epoch: ja.Epoch, Offset: n}})
		if !r.Recovered || r.Epoch != ja.Epoch || r.Offset != n || len(r.History) != 0 {
			t.Fatalf("rejoin after the owner died: %+v", r)
		}
	}
	if keys := presenceKeys(b.readUntil("presence_state")); !slices.Equal(keys, []string{"alice", "bob"}) {
		t.Fatalf("presence after the owner died: %v", keys)
	}
	// A client that was behind recovers what it missed from the new owner.
	d := ce.envs[other].dial(t, "dan")
	r := d.join(1, topic, map[string]any{"recover": channel.Position{Epoch: ja.Epoch, Offset: n - 5}})
	if !r.Recovered || len(r.History) != 5 || r.History[0].Offset != n-4 || string(r.History[4].Data) != fmt.Sprint(n) {
		t.Fatalf("recovery of 5 missed events: %+v", r)
	}
	// The stream goes on.
	a.send(map[string]any{"t": "push", "ref": 3, "topic": topic, "event": "say", "data": "after"})
	for _, cl := range []*tclient{a, b, d} {
		if m := cl.readUntil("event"); m.Offset != n+1 || string(m.Data) != `"after"` {
			t.Fatalf("after the failover: %s", m.raw)
		}
	}
}

// The owner and its backup die together: the history is gone, and clients
// are told (another epoch), never given a stream with a hole.
func TestClusterHistoryLostChangesEpoch(t *testing.T) {
	ce := newClusterEnv(t, 3, clusterTopics)
	const topic = "fragile"
	rank := ce.rank(topic)
	b := ce.envs[rank[2]].dial(t, "bob")
	jb := b.join(1, topic, nil)
	b.expect("presence_state")
	for i := 1; i <= 3; i++ {
		if _, err := ce.envs[rank[2]].hub.Publish(context.Background(), topic, "e", i); err != nil {
			t.Fatal(err)
		}
	}
	ce.kill(rank[0])
	ce.kill(rank[1])
	if m := b.readUntil("left"); m.Reason != "stopped" {
		t.Fatalf("want left stopped, got %s", m.raw)
	}
	r := b.join(2, topic, map[string]any{"recover": channel.Position{Epoch: jb.Epoch, Offset: 3}})
	if r.Recovered || r.Reason != channel.ReasonEpoch || r.Epoch == jb.Epoch || r.Offset != 0 {
		t.Fatalf("rejoin after losing owner and backup: %+v", r)
	}
}

// gameMaster is a topic behaviour for the cluster tests: it answers
// "who" with the members it sees (on every node), "kick" by removing the
// member named in the data, "whisper" by sending the pusher a private
// event, and publishes "joined"/"left" notes.
type gameMaster struct{ t *channel.Topic }

func (g *gameMaster) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *channel.Joined:
		_, _ = g.t.Publish("joined", m.Member.User)
	case *channel.Left:
		_, _ = g.t.Publish("left", m.Member.User+":"+m.Reason.String())
	case *channel.Push:
		switch m.Event {
		case "who":
			var users []string
			for _, mem := range g.t.Members() {
				users = append(users, mem.User)
			}
			slices.Sort(users)
			m.Reply(users)
		case "kick":
			var user string
			_ = json.Unmarshal(m.Data, &user)
			for _, mem := range g.t.Members() {
				if mem.User == user {
					m.Reply(g.t.Remove(mem.ID))
					return
				}
			}
			m.Reply(false)
		case "whisper":
			ok, err := g.t.Send(m.From.ID, "secret", "for "+m.From.User)
			if err != nil || !ok {
				m.Fail(fmt.Errorf("send: %v %v", ok, err))
			}
		}
	}
}

// A topic behaviour runs once, on the owner, and sees and reaches members
// on every node: Members, Send to one member, Remove, Joined and Left.
func TestClusterTopicBehaviour(t *testing.T) {
	ce := newClusterEnv(t, 3, func() *channel.Options {
		return &channel.Options{Topics: func(string) *channel.TopicOptions {
			return &channel.TopicOptions{Handler: func(t *channel.Topic) actor.Actor { return &gameMaster{t: t} }}
		}}
	})
	const topic = "game"
	var cs []*tclient
	for i, user := range []string{"alice", "bob", "carol"} {
		c := ce.envs[i].dial(t, user)
		c.join(1, topic, nil)
		cs = append(cs, c)
		for _, o := range cs {
			if m := o.readUntil("event"); m.Event != "joined" || string(m.Data) != `"`+user+`"` {
				t.Fatalf("want %s joined, got %s", user, m.raw)
			}
		}
	}
	cs[0].send(map[string]any{"t": "push", "ref": 2, "topic": topic, "event": "who"})
	if r := cs[0].reply(2); string(r.Data) != `["alice","bob","carol"]` {
		t.Fatalf("who: %s", r.raw)
	}
	cs[1].send(map[string]any{"t": "push", "ref": 3, "topic": topic, "event": "whisper"})
	if m := cs[1].expect("event"); m.Event != "secret" || string(m.Data) != `"for bob"` || m.Offset != 0 {
		t.Fatalf("whisper: %s", m.raw)
	}
	cs[1].reply(3)
	// alice kicks carol (on another node): carol is told, everyone sees her go.
	// (A reply goes through the pusher's session, events straight to its
	// connection: alice may read the "left" note first.)
	cs[0].send(map[string]any{"t": "push", "ref": 4, "topic": topic, "event": "kick", "data": "carol"})
	if m := cs[2].readUntil("left"); m.Reason != "removed" {
		t.Fatalf("carol: %s", m.raw)
	}
	var reply, note msg
	for reply.T == "" || note.T == "" {
		switch m := cs[0].read(); m.T {
		case "reply":
			reply = m
		case "event":
			note = m
		}
	}
	if reply.Ref != 4 || string(reply.Data) != "true" {
		t.Fatalf("kick: %s", reply.raw)
	}
	for _, m := range []msg{note, cs[1].readUntil("event")} {
		if m.Event != "left" || string(m.Data) != `"carol:removed"` {
			t.Fatalf("want carol's leaving, got %s", m.raw)
		}
	}
	// carol's pushes are refused now.
	cs[2].send(map[string]any{"t": "push", "ref": 5, "topic": topic, "event": "who"})
	cs[2].errorReply(5, channel.CodeNotJoined)
}

// The owner dies during a steady publish: Go clients on the other nodes
// rejoin by themselves and recover (recovered=true); every publish that was
// acknowledged reaches each of them exactly once, in offset order, with its
// data; publishes on their way when the owner died fail with ErrMoved.
func TestClusterFailoverUnderLoad(t *testing.T) {
	// History holds more than a subscriber can fall behind while the
	// publisher runs flat out.
	ce := newClusterEnv(t, 3, func() *channel.Options {
		return &channel.Options{Topics: func(string) *channel.TopicOptions { return &channel.TopicOptions{History: 1000} }}
	})
	const topic = "feed"
	rank := ce.rank(topic)
	owner, backup, other := rank[0], rank[1], rank[2]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	type sub struct {
		name     string
		events   chan channel.Event
		rejoined chan *channel.JoinReply
	}
	var subs []*sub
	for _, tc := range []struct {
		node   int
		binary bool
	}{{backup, false}, {other, true}} {
		s := &sub{name: fmt.Sprintf("node%d binary=%v", tc.node, tc.binary), events: make(chan channel.Event, 4096), rejoined: make(chan *channel.JoinReply, 8)}
		system := actors.NewSystem(zerolog.Nop())
		c, err := channel.Dial(ctx, system, ce.envs[tc.node].url+"?user=sub", &channel.ClientOptions{Binary: tc.binary})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if _, _, err := c.Join(ctx, topic, &channel.JoinOptions{
			Handler: func(e channel.Event) { s.events <- e },
			OnRejoin: func(r *channel.JoinReply, err error) {
				if err != nil {
					t.Errorf("%s: rejoin: %v", s.name, err)
					return
				}
				s.rejoined <- r
			},
		}); err != nil {
			t.Fatal(err)
		}
		subs = append(subs, s)
	}

	acked := map[uint64]int{} // offset → value
	var last uint64
	moved := 0
	publish := func(v int) {
		pos, err := ce.envs[other].hub.Publish(ctx, topic, "n", v)
		switch {
		case errors.Is(err, channel.ErrMoved):
			moved++
		case err != nil:
			t.Fatalf("publish %d: %v", v, err)
		default:
			if _, dup := acked[pos.Offset]; dup || pos.Offset <= last {
				t.Fatalf("publish %d acknowledged at offset %d after %d", v, pos.Offset, last)
			}
			acked[pos.Offset], last = v, pos.Offset
		}
	}
	v := 0
	for ; v < 100; v++ {
		publish(v)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		time.Sleep(5 * time.Millisecond)
		ce.kill(owner)
	}()
	for ; len(acked) < 300; v++ {
		publish(v)
	}
	<-done
	for _, s := range subs {
		select {
		case r := <-s.rejoined:
			if !r.Recovered {
				t.Fatalf("%s rejoined without recovering: %+v", s.name, r)
			}
		case <-ctx.Done():
			t.Fatalf("%s never rejoined", s.name)
		}
		got := map[uint64]int{}
		var prev uint64
		for prev < last {
			select {
			case e := <-s.events:
				if e.Offset <= prev {
					t.Fatalf("%s: offset %d after %d", s.name, e.Offset, prev)
				}
				var n int
				if err := json.Unmarshal(e.Data, &n); err != nil {
					t.Fatalf("%s: event %+v: %v", s.name, e, err)
				}
				got[e.Offset], prev = n, e.Offset
			case <-ctx.Done():
				t.Fatalf("%s: stuck at offset %d of %d", s.name, prev, last)
			}
		}
		for off, n := range acked {
			if g, ok := got[off]; !ok || g != n {
				t.Fatalf("%s: acknowledged offset %d (value %d) arrived as %d, %v", s.name, off, n, g, ok)
			}
		}
	}
	t.Logf("acknowledged %d publishes, last offset %d, %d failed with ErrMoved", len(acked), last, moved)
}

// The backup dies first: the owner replicates everything to the next
// node; then the owner dies and clients still recover every event.
func TestClusterBackupThenOwnerDie(t *testing.T) {
	ce := newClusterEnv(t, 4, clusterTopics)
	const topic = "twice"
	rank := ce.rank(topic)
	owner, backup, third, fourth := rank[0], rank[1], rank[2], rank[3]
	c, jc := joinPresent(t, ce.envs[fourth], "carol", topic)
	pub := func(from, to int) {
		for i := from; i <= to; i++ {
			pos, err := ce.envs[fourth].hub.Publish(context.Background(), topic, "e", i)
			if err != nil || pos.Offset != uint64(i) {
				t.Fatalf("publish %d: %+v %v", i, pos, err)
			}
		}
	}
	pub(1, 10)
	ce.kill(backup)
	pub(11, 20) // acknowledged only once the new backup (the third node) has them
	ce.kill(owner)
	if m := c.readUntil("left"); m.Reason != "stopped" {
		t.Fatalf("want left stopped, got %s", m.raw)
	}
	r := c.join(2, topic, map[string]any{"recover": channel.Position{Epoch: jc.Epoch, Offset: 0}})
	if !r.Recovered || r.Offset != 20 || len(r.History) != 20 || string(r.History[19].Data) != "20" {
		t.Fatalf("recovery after the backup, then the owner died: %+v", r)
	}
	if got := ce.rank(topic)[0]; got != third {
		t.Fatalf("owner now %d, want %d", got, third)
	}
}

// A node joins and the topic's ranking puts it first: the topic moves to
// it (the old owner hands its history over), members rejoin and recover,
// and the stream continues without a gap.
func TestClusterTopicMovesToNewNode(t *testing.T) {
	// Find a topic that the fourth node would own.
	topic := ""
	for i := 0; topic == ""; i++ {
		name := fmt.Sprintf("room-%d", i)
		if rankNodes(name, []string{"node0", "node1", "node2", "node3"})[0] == "node3" {
			topic = name
		}
	}
	ce := newClusterEnv(t, 4, clusterTopics)
	ce.net.mu.Lock()
	ce.net.nodes["node3"].alive = false
	ce.net.mu.Unlock()
	ce.kill(3) // out of the cluster from the start
	var cs []*tclient
	var epoch string
	for i := range 3 {
		c := ce.envs[i].dial(t, fmt.Sprint("u", i))
		epoch = c.join(1, topic, nil).Epoch
		c.readUntil("presence_state")
		cs = append(cs, c)
	}
	for i := 1; i <= 5; i++ {
		if _, err := ce.envs[0].hub.Publish(context.Background(), topic, "e", i); err != nil {
			t.Fatal(err)
		}
	}
	ce.add(3)
	for i, c := range cs {
		if m := c.readUntil("left"); m.Reason != "stopped" {
			t.Fatalf("client %d: want left stopped, got %s", i, m.raw)
		}
		r := c.join(2, topic, map[string]any{"recover": channel.Position{Epoch: epoch, Offset: 0}})
		if !r.Recovered || r.Epoch != epoch || r.Offset != 5 || len(r.History) != 5 {
			t.Fatalf("client %d after the move: %+v", i, r)
		}
	}
	pos, err := ce.envs[1].hub.Publish(context.Background(), topic, "e", 6)
	if err != nil || pos.Offset != 6 || pos.Epoch != epoch {
		t.Fatalf("publish after the move: %+v %v", pos, err)
	}
	for _, c := range cs {
		if m := c.readUntil("event"); m.Offset != 6 {
			t.Fatalf("after the move: %s", m.raw)
		}
	}
}

// The browser client (under Node, with the ws package) on a node that is
// not the topic's owner: the owner dies, the client is told "stopped",
// rejoins by itself and recovers (recovered=true), and gets every event
// once, in order, across the failover.
func TestClusterBrowserClient(t *testing.T) {
	node, modules := jsNode(t)
	ce := newClusterEnv(t, 3, clusterTopics)
	const topic = "js"
	rank := ce.rank(topic)
	owner, other := rank[0], rank[2]
	cmd := exec.Command(node, filepath.Join("testdata", "cluster_sub.js"), ce.envs[other].url+"?user=js", topic)
	cmd.Env = append(os.Environ(), "NODE_PATH="+modules)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan map[string]json.RawMessage, 256)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var m map[string]json.RawMessage
			if json.Unmarshal(sc.Bytes(), &m) == nil {
				lines <- m
			}
		}
	}()
	t.Cleanup(func() {
		stdin.Close()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(jsTimeout):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	next := func(key string) json.RawMessage {
		t.Helper()
		for {
			select {
			case m, ok := <-lines:
				if !ok {
					t.Fatalf("the client ended before %q; stderr:\n%s", key, stderr.String())
				}
				if e, bad := m["error"]; bad {
					t.Fatalf("client error: %s", e)
				}
				if v, found := m[key]; found {
					return v
				}
			case <-time.After(jsTimeout):
				t.Fatalf("no %q from the client within %v", key, jsTimeout)
			}
		}
	}
	next("ready")
	nextEvent := func(want int) {
		t.Helper()
		v := next("event")
		if string(v) != fmt.Sprint(want) {
			t.Fatalf("event %s, want %d", v, want)
		}
	}
	ctx := context.Background()
	for i := 1; i <= 5; i++ {
		if _, err := ce.envs[other].hub.Publish(ctx, topic, "n", i); err != nil {
			t.Fatal(err)
		}
		nextEvent(i)
	}
	ce.kill(owner)
	if v := next("left"); string(v) != `"stopped"` {
		t.Fatalf("left %s, want stopped", v)
	}
	var j struct {
		Recovered bool
		Offset    uint64
	}
	if err := json.Unmarshal(next("join"), &j); err != nil || !j.Recovered || j.Offset != 5 {
		t.Fatalf("rejoin %+v (%v), want recovered at offset 5", j, err)
	}
	for i := 6; i <= 10; i++ {
		if _, err := ce.envs[other].hub.Publish(ctx, topic, "n", i); err != nil {
			t.Fatal(err)
		}
		nextEvent(i)
	}
}

// A node that is neither the owner nor the backup dies: its members leave
// presence (the owner sees the node leave the topology) and the others
// stay in the topic without a break.
func TestClusterMemberNodeDies(t *testing.T) {
	ce := newClusterEnv(t, 3, clusterTopics)
	const topic = "survive"
	rank := ce.rank(topic)
	a := ce.envs[rank[0]].dial(t, "alice")
	a.join(1, topic, nil)
	a.expect("presence_state")
	b := ce.envs[rank[1]].dial(t, "bob")
	b.join(1, topic, nil)
	b.expect("presence_state")
	a.expect("presence_diff")
	c := ce.envs[rank[2]].dial(t, "carol")
	c.join(1, topic, nil)
	c.expect("presence_state")
	for _, cl := range []*tclient{a, b} {
		cl.expect("presence_diff")
	}
	ce.kill(rank[2])
	for _, cl := range []*tclient{a, b} {
		if m := cl.expect("presence_diff"); m.Leaves["carol"].Metas == nil {
			t.Fatalf("want carol leaving, got %s", m.raw)
		}
	}
	if _, err := ce.envs[rank[1]].hub.Publish(context.Background(), topic, "e", 1); err != nil {
		t.Fatal(err)
	}
	for _, cl := range []*tclient{a, b} {
		if m := cl.expect("event"); m.Offset != 1 {
			t.Fatalf("after carol's node died: %s", m.raw)
		}
	}
}

// Store and Cluster do not go together: history is replicated instead.
func TestClusterRefusesStore(t *testing.T) {
	store, err := channel.NewFileStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	node := &memNode{net: &memNet{nodes: map[string]*memNode{}}, addr: "x"}
	_, err = channel.NewHub(actors.NewSystem(zerolog.Nop()), &channel.Options{Store: store, Cluster: node})
	if err == nil || !strings.Contains(err.Error(), "Store") {
		t.Fatalf("NewHub with Store and Cluster: %v", err)
	}
}

// loseOnce makes node i drop the first message of kind k it sends to node
// to, and returns a function reporting whether it has.
func (ce *clusterEnv) loseOnce(i int, k string, to int) func() bool {
	var (
		mu   sync.Mutex
		done bool
	)
	ce.net.mu.Lock()
	ce.net.nodes[fmt.Sprintf("node%d", i)].lose = func(node string, msg []byte) bool {
		var m struct{ K string }
		_ = json.Unmarshal(msg, &m)
		mu.Lock()
		defer mu.Unlock()
		if done || m.K != k || node != fmt.Sprintf("node%d", to) {
			return false
		}
		done = true
		return true
	}
	ce.net.mu.Unlock()
	return func() bool {
		mu.Lock()
		defer mu.Unlock()
		return done
	}
}

// An event to a node is lost on the way (a broken link): the node's edge
// sees the gap at the next message and ends its members' memberships; they
// rejoin and recover the lost event. Nothing is skipped silently.
func TestClusterLostEventResyncs(t *testing.T) {
	ce := newClusterEnv(t, 3, clusterTopics)
	const topic = "lossy"
	rank := ce.rank(topic)
	owner, other := rank[0], rank[2]
	b, jb := joinPresent(t, ce.envs[other], "bob", topic)
	pub := func(i int) {
		if _, err := ce.envs[owner].hub.Publish(context.Background(), topic, "e", i); err != nil {
			t.Fatal(err)
		}
	}
	pub(1)
	if m := b.expect("event"); m.Offset != 1 {
		t.Fatalf("event %s", m.raw)
	}
	lost := ce.loseOnce(owner, "out", other)
	pub(2) // lost on the way to bob's node
	if !lost() {
		t.Fatal("the event was not sent to bob's node")
	}
	pub(3)
	if m := b.readUntil("left"); m.Reason != "stopped" {
		t.Fatalf("want left stopped after the gap, got %s", m.raw)
	}
	r := b.join(2, topic, map[string]any{"recover": channel.Position{Epoch: jb.Epoch, Offset: 1}})
	if !r.Recovered || len(r.History) != 2 || r.History[0].Offset != 2 || r.History[1].Offset != 3 {
		t.Fatalf("rejoin after the lost event: %+v", r)
	}
}

// A leave from a node is lost: the owner sees the gap at that node's next
// message, takes all its members out (presence) and has the node's members
// rejoin; the one that left does not come back.
func TestClusterLostLeaveResyncs(t *testing.T) {
	ce := newClusterEnv(t, 3, clusterTopics)
	const topic = "ghosts"
	rank := ce.rank(topic)
	owner, other := rank[0], rank[2]
	joinPresent(t, ce.envs[owner], "alice", topic) // in presence, on the owner node
	b, _ := joinPresent(t, ce.envs[other], "bob", topic)
	c, jc := joinPresent(t, ce.envs[other], "carol", topic)
	lost := ce.loseOnce(other, "leave", owner)
	b.send(map[string]any{"t": "leave", "ref": 2, "topic": topic})
	b.readUntil("reply")
	if !lost() {
		t.Fatal("bob's leave was not sent")
	}
	// Carol's push is the next message from her node: the owner sees the gap.
	c.send(map[string]any{"t": "push", "ref": 2, "topic": topic, "event": "say", "data": "hi"})
	if m := c.readUntil("left"); m.Reason != "stopped" {
		t.Fatalf("carol: want left stopped, got %s", m.raw)
	}
	c.errorReply(2, channel.CodeUnavailable) // her push: she may send it again
	r := c.join(3, topic, map[string]any{"recover": channel.Position{Epoch: jc.Epoch, Offset: 0}})
	if !r.Recovered {
		t.Fatalf("carol's rejoin: %+v", r)
	}
	if keys := presenceKeys(c.readUntil("presence_state")); !slices.Equal(keys, []string{"alice", "carol"}) {
		t.Fatalf("presence after the resync: %v (bob left)", keys)
	}
}

// Clients join on a node that is not the owner while events are being
// published: each gets its join reply first, then every event after the
// reply's offset, contiguous — nothing from before its join, nothing
// skipped (the protocol's order, as in one process).
func TestClusterJoinOrderUnderPublishing(t *testing.T) {
	ce := newClusterEnv(t, 3, func() *channel.Options {
		return &channel.Options{Topics: func(string) *channel.TopicOptions { return &channel.TopicOptions{History: 1000} }}
	})
	const topic, total = "busy", 400
	rank := ce.rank(topic)
	done := make(chan error, 1)
	go func() {
		for i := 1; i <= total; i++ {
			if _, err := ce.envs[rank[0]].hub.Publish(context.Background(), topic, "e", i); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for k := range 10 {
		c := ce.envs[rank[2]].dial(t, fmt.Sprint("j", k))
		c.send(map[string]any{"t": "join", "ref": 1, "topic": topic})
		first := c.read()
		if first.T != "reply" {
			t.Fatalf("joiner %d: first message %s, want the join reply", k, first.raw)
		}
		next := first.join(t).Offset + 1
		for next <= total && next < first.join(t).Offset+20 {
			if m := c.expect("event"); m.Offset != next {
				t.Fatalf("joiner %d: event at offset %d, want %d", k, m.Offset, next)
			}
			next++
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// fragile is a topic behaviour that counts "count" pushes in a field and
// panics on "boom".
type fragile struct{ n int }

func (f *fragile) Receive(ctx actor.Context) {
	if p, ok := ctx.Message().(*channel.Push); ok {
		switch p.Event {
		case "count":
			f.n++
			p.Reply(f.n)
		case "boom":
			panic("boom")
		}
	}
}

// HandlerPanic applies on a cluster as in one process: Restart replaces
// the behaviour (its state starts anew), Stop ends the topic — every member
// on every node is told "stopped", and the history goes (rejoining clients
// are told: another epoch).
func TestClusterBehaviourPanicPolicy(t *testing.T) {
	for _, tc := range []struct {
		name   string
		policy supervisor.Policy
	}{{"restart", supervisor.Policy{Directive: supervisor.Restart}}, {"stop", supervisor.Policy{Directive: supervisor.Stop}}} {
		t.Run(tc.name, func(t *testing.T) {
			ce := newClusterEnv(t, 3, func() *channel.Options {
				return &channel.Options{Topics: func(string) *channel.TopicOptions {
					return &channel.TopicOptions{HandlerPanic: tc.policy, Handler: func(*channel.Topic) actor.Actor { return &fragile{} }}
				}}
			})
			const topic = "fragile"
			rank := ce.rank(topic)
			a := ce.envs[rank[1]].dial(t, "alice")
			ja := a.join(1, topic, nil)
			b := ce.envs[rank[2]].dial(t, "bob")
			b.join(1, topic, nil)
			for i := 1; i <= 2; i++ {
				a.send(map[string]any{"t": "push", "ref": 10 + i, "topic": topic, "event": "count"})
				if r := a.reply(uint64(10 + i)); string(r.Data) != fmt.Sprint(i) {
					t.Fatalf("count %d: %s", i, r.raw)
				}
			}
			a.send(map[string]any{"t": "push", "ref": 20, "topic": topic, "event": "boom"})
			if tc.policy.Directive == supervisor.Restart {
				a.errorReply(20, channel.CodeInternal)
				a.send(map[string]any{"t": "push", "ref": 21, "topic": topic, "event": "count"})
				if r := a.reply(21); string(r.Data) != "1" {
					t.Fatalf("count after a restart: %s, want a fresh behaviour's 1", r.raw)
				}
				return
			}
			var sawError, sawLeft bool
			for !sawError || !sawLeft {
				switch m := a.read(); m.T {
				case "reply":
					sawError = m.Ref == 20 && m.Error != nil && m.Error.Code == channel.CodeInternal
				case "left":
					sawLeft = m.Reason == "stopped"
				}
			}
			if m := b.readUntil("left"); m.Reason != "stopped" {
				t.Fatalf("bob: %s", m.raw)
			}
			r := b.join(2, topic, map[string]any{"recover": channel.Position{Epoch: ja.Epoch, Offset: 0}})
			if r.Recovered || r.Reason != channel.ReasonEpoch {
				t.Fatalf("rejoin after the topic stopped: %+v", r)
			}
		})
	}
}

// The last event of a burst is lost on the way to a node: nothing follows
// it, but the owner's check (linkCheckInterval after it sent anything)
// shows the gap, and the node's members rejoin and recover it.
func TestClusterLostLastEventDetected(t *testing.T) {
	ce := newClusterEnv(t, 3, clusterTopics)
	const topic = "tail"
	rank := ce.rank(topic)
	owner, other := rank[0], rank[2]
	b, jb := joinPresent(t, ce.envs[other], "bob", topic)
	lost := ce.loseOnce(owner, "out", other)
	if _, err := ce.envs[owner].hub.Publish(context.Background(), topic, "e", 1); err != nil {
		t.Fatal(err)
	}
	if !lost() {
		t.Fatal("the event was not sent to bob's node")
	}
	if m := b.readUntil("left"); m.Reason != "stopped" {
		t.Fatalf("want left stopped after the check, got %s", m.raw)
	}
	r := b.join(2, topic, map[string]any{"recover": channel.Position{Epoch: jb.Epoch, Offset: 0}})
	if !r.Recovered || len(r.History) != 1 || r.History[0].Offset != 1 {
		t.Fatalf("rejoin after the lost event: %+v", r)
	}
}

// A node's last message, a leave, is lost: the node's check shows the gap
// to the owner, which takes the node's members out of presence (the one
// who left stays out; the others rejoin).
func TestClusterLostLastLeaveDetected(t *testing.T) {
	ce := newClusterEnv(t, 3, clusterTopics)
	const topic = "quiet"
	rank := ce.rank(topic)
	owner, other := rank[0], rank[2]
	a, _ := joinPresent(t, ce.envs[owner], "alice", topic)
	b, _ := joinPresent(t, ce.envs[other], "bob", topic)
	a.expect("presence_diff")
	lost := ce.loseOnce(other, "leave", owner)
	b.send(map[string]any{"t": "leave", "ref": 2, "topic": topic})
	b.readUntil("reply")
	if !lost() {
		t.Fatal("bob's leave was not sent")
	}
	if m := a.expect("presence_diff"); m.Leaves["bob"].Metas == nil {
		t.Fatalf("want bob leaving, got %s", m.raw)
	}
}

// A history far larger than one message may be (the network refuses
// messages over 1 MiB here, as gRPC does over 4 MiB) still moves whole: the
// backup's copy and the new owner's gather go in chunks, and clients
// recover every event after the owner dies.
func TestClusterBigHistoryFailover(t *testing.T) {
	ce := newClusterEnv(t, 3, func() *channel.Options {
		return &channel.Options{Topics: func(string) *channel.TopicOptions {
			return &channel.TopicOptions{History: 100, HistoryBytes: 16 << 20}
		}}
	})
	ce.net.mu.Lock()
	ce.net.maxMsg = 1 << 20
	ce.net.mu.Unlock()
	const topic, n = "big", 40
	rank := ce.rank(topic)
	b := ce.envs[rank[2]].dial(t, "bob")
	jb := b.join(1, topic, nil)
	payload := strings.Repeat("x", 100<<10)
	for i := 1; i <= n; i++ {
		if _, err := ce.envs[rank[2]].hub.Publish(context.Background(), topic, "e", fmt.Sprint(i, payload)); err != nil {
			t.Fatal(err)
		}
		b.expect("event")
	}
	ce.kill(rank[0])
	if m := b.readUntil("left"); m.Reason != "stopped" {
		t.Fatalf("want left stopped, got %s", m.raw)
	}
	r := b.join(2, topic, map[string]any{"recover": channel.Position{Epoch: jb.Epoch, Offset: 0}})
	if !r.Recovered || r.Epoch != jb.Epoch || len(r.History) != n {
		t.Fatalf("recovery of %d events of 100 KB: recovered %v, epoch %s (was %s), %d events", n, r.Recovered, r.Epoch, jb.Epoch, len(r.History))
	}
	for i, h := range r.History {
		var s string
		if json.Unmarshal(h.Data, &s) != nil || s != fmt.Sprint(i+1, payload) {
			t.Fatalf("event %d damaged", i+1)
		}
	}
}
