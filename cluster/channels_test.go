package cluster_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/wsactor/wsactor/actors"
	"github.com/wsactor/wsactor/channel"
	"github.com/wsactor/wsactor/cluster"
)

// topicNode is a node of a group serving a channel Hub whose topics live
// on the cluster (Options.Cluster = node.Channels()).
type topicNode struct {
	node *cluster.Node
	hub  *channel.Hub
	url  string
	srv  *httptest.Server
}

func topicHubs(t testing.TB, group string, topics func(string) *channel.TopicOptions) []*topicNode {
	t.Helper()
	var out []*topicNode
	for _, tn := range nodesOf(t, group, serveOptions{}) {
		hub, err := channel.NewHub(tn.node.System(), &channel.Options{
			Cluster: tn.node.Channels(),
			Authenticate: func(r *http.Request) (channel.Identity, error) {
				u := r.URL.Query().Get("user")
				return channel.Identity{User: u, Meta: u}, nil
			},
			Topics: topics,
			Logger: testLogger(t),
		})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(hub)
		out = append(out, &topicNode{node: tn.node, hub: hub, srv: srv, url: "ws" + strings.TrimPrefix(srv.URL, "http")})
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			srv.Close()
			if err := hub.Close(ctx); err != nil {
				t.Errorf("hub close: %v", err)
			}
		})
	}
	return out
}

// topicClient is a Go channel client joined to one topic.
type topicClient struct {
	c        *channel.Client
	sub      *channel.Subscription
	events   chan channel.Event
	rejoined chan *channel.JoinReply
	name     string
}

func dialTopic(t *testing.T, tn *topicNode, user, topic string, binary bool) *topicClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	system := actors.NewSystem(zerolog.Nop())
	c, err := channel.Dial(ctx, system, tn.url+"/?user="+user, &channel.ClientOptions{Binary: binary})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	tc := &topicClient{c: c, events: make(chan channel.Event, 8192), rejoined: make(chan *channel.JoinReply, 8), name: user}
	sub, _, err := c.Join(ctx, topic, &channel.JoinOptions{
		Handler: func(e channel.Event) { tc.events <- e },
		OnRejoin: func(r *channel.JoinReply, err error) {
			if err != nil {
				t.Errorf("%s: rejoin: %v", user, err)
				return
			}
			tc.rejoined <- r
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	tc.sub = sub
	return tc
}

func (tc *topicClient) next(t *testing.T) channel.Event {
	t.Helper()
	select {
	case e := <-tc.events:
		return e
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: no event within 10s", tc.name)
	}
	return channel.Event{}
}

// A topic with members on three protoactor nodes: one stream whatever node
// publishes, presence of every node's members, the history for a late
// joiner.
func TestChannelsAcrossNodes(t *testing.T) {
	nodes := topicHubs(t, "shared", func(string) *channel.TopicOptions {
		return &channel.TopicOptions{ClientPublish: true, Presence: true, History: 100}
	})
	const topic = "lobby"
	var cs []*topicClient
	for i, tn := range nodes {
		cs = append(cs, dialTopic(t, tn, fmt.Sprint("user", i), topic, i == 1))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i, c := range cs {
		r, err := c.sub.Push(ctx, "say", fmt.Sprint("from ", i))
		if err != nil {
			t.Fatalf("push from node %d: %v", i, err)
		}
		if want := fmt.Sprintf(`{"offset":%d}`, i+1); string(r.Data) != want {
			t.Fatalf("push reply %s, want %s", r.Data, want)
		}
	}
	for _, tn := range nodes {
		if _, err := tn.hub.Publish(ctx, topic, "note", tn.node.Address()); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range cs {
		for off := uint64(1); off <= 6; off++ {
			if e := c.next(t); e.Offset != off {
				t.Fatalf("%s: event %+v, want offset %d", c.name, e, off)
			}
		}
	}
	waitFor(t, 10*time.Second, "presence of the three users on every node", func() bool {
		for _, c := range cs {
			var keys []string
			for _, k := range c.sub.Presence() {
				keys = append(keys, k.Key)
			}
			slices.Sort(keys)
			if !slices.Equal(keys, []string{"user0", "user1", "user2"}) {
				return false
			}
		}
		return true
	})
	// A late joiner asks for the history.
	late := dialTopicHistory(t, nodes[0], "reader", topic, 6)
	for off := uint64(1); off <= 6; off++ {
		if e := late.next(t); e.Offset != off || !e.Replayed {
			t.Fatalf("late joiner's history: %+v, want offset %d replayed", e, off)
		}
	}

	// Network messages per kept event published on the owner's node, with
	// members on all three nodes: one to each other node, one replication
	// to the backup, one acknowledgement back.
	owner := nodes[0]
	for _, tn := range nodes {
		if tn.node.Address() == tn.node.Channels().Rank(topic)[0] {
			owner = tn
		}
	}
	sent := func() (n int64) {
		for _, tn := range nodes {
			n += tn.node.Stats().TopicMessagesSent
		}
		return n
	}
	before, start := sent(), time.Now()
	const k = 100
	for i := range k {
		if _, err := owner.hub.Publish(ctx, topic, "n", i); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range append(cs, late) {
		for range k {
			c.next(t)
		}
	}
	// Besides, each node may send each other node with traffic one
	// numbered check per check interval (2 s): at most 6 directed pairs.
	checks := 6 * int64(time.Since(start)/(2*time.Second)+2)
	if got := sent() - before; got < 4*k || got > 4*k+checks {
		t.Fatalf("%d network messages for %d events, want 4 per event and at most %d checks", got, k, checks)
	}
}

func dialTopicHistory(t *testing.T, tn *topicNode, user, topic string, history int) *topicClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := channel.Dial(ctx, actors.NewSystem(zerolog.Nop()), tn.url+"/?user="+user, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	tc := &topicClient{c: c, events: make(chan channel.Event, 64), name: user}
	if tc.sub, _, err = c.Join(ctx, topic, &channel.JoinOptions{History: history, Handler: func(e channel.Event) { tc.events <- e }}); err != nil {
		t.Fatal(err)
	}
	return tc
}

// The topic's owner node dies (its remote stops and it leaves the
// provider) during a steady publish from another node: Go clients on the
// two survivors rejoin by themselves and recover; every acknowledged
// publish reaches each of them once, in order.
func TestChannelsOwnerKilled(t *testing.T) {
	if topicsKilled {
		t.Skip("the topics group's node was killed by an earlier run (-count > 1)")
	}
	topicsKilled = true
	nodes := topicHubs(t, "topics", func(string) *channel.TopicOptions {
		return &channel.TopicOptions{History: 5000}
	})
	const topic = "feed"
	ranked := nodes[0].node.Channels().Rank(topic)
	byAddr := map[string]*topicNode{}
	for _, tn := range nodes {
		byAddr[tn.node.Address()] = tn
	}
	owner, backup, other := byAddr[ranked[0]], byAddr[ranked[1]], byAddr[ranked[2]]
	subs := []*topicClient{dialTopic(t, backup, "b", topic, false), dialTopic(t, other, "o", topic, true)}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	acked := map[uint64]int{}
	var last uint64
	moved, v := 0, 0
	publish := func() {
		pos, err := other.hub.Publish(ctx, topic, "n", v)
		switch {
		case errors.Is(err, channel.ErrMoved):
			moved++
		case err != nil:
			t.Fatalf("publish %d: %v", v, err)
		default:
			if pos.Offset <= last {
				t.Fatalf("publish %d acknowledged at offset %d after %d", v, pos.Offset, last)
			}
			acked[pos.Offset], last = v, pos.Offset
		}
		v++
	}
	for len(acked) < 200 {
		publish()
	}
	killed := time.Now()
	killTopicNode(t, owner)
	var firstAfter time.Duration
	for n := len(acked); len(acked) < n+200; {
		publish()
		if firstAfter == 0 && len(acked) > n {
			firstAfter = time.Since(killed)
		}
	}
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
			e := s.next(t)
			if e.Offset <= prev {
				t.Fatalf("%s: offset %d after %d", s.name, e.Offset, prev)
			}
			var n int
			if err := json.Unmarshal(e.Data, &n); err != nil {
				t.Fatalf("%s: %+v: %v", s.name, e, err)
			}
			got[e.Offset], prev = n, e.Offset
		}
		for off, n := range acked {
			if g, ok := got[off]; !ok || g != n {
				t.Fatalf("%s: acknowledged offset %d (value %d) arrived as %d, %v", s.name, off, n, g, ok)
			}
		}
	}
	t.Logf("acknowledged %d publishes (last offset %d), %d failed with ErrMoved; first acknowledgement %v after the kill",
		len(acked), last, moved, firstAfter)
}

// topicsKilled: TestChannelsOwnerKilled killed a node of the "topics" group.
var topicsKilled bool

// killTopicNode makes tn's node unreachable, as tn.kill does for the
// rooms' test nodes.
func killTopicNode(t *testing.T, tn *topicNode) {
	t.Helper()
	if v, ok := probes.Load(tn.node.Address()); ok {
		v.(*probeState).release()
	}
	tn.node.Cluster().Remote.Shutdown(false)
	if err := providers[tn.node].Shutdown(false); err != nil {
		t.Fatalf("provider shutdown: %v", err)
	}
}

// A one-node cluster: the node owns every topic and has no backup; events
// are published at once.
func TestChannelsOneNode(t *testing.T) {
	nodes := topicHubs(t, "single", nil)
	c := dialTopic(t, nodes[0], "solo", "alone", false)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pos, err := nodes[0].hub.Publish(ctx, "alone", "e", 1)
	if err != nil || pos.Offset != 1 {
		t.Fatalf("publish: %+v %v", pos, err)
	}
	if e := c.next(t); e.Offset != 1 || string(e.Data) != "1" {
		t.Fatalf("event %+v", e)
	}
}
