package cluster_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsactor/wsactor/cluster"
	internalprobe "github.com/wsactor/wsactor/internal/probe"
	"github.com/wsactor/wsactor/transport"
)

// checkAll fails unless every client received exactly the messages sent,
// each once, and each sender's messages in the order it sent them.
func checkAll(t *testing.T, clients []*client, sent map[string][]string) {
	t.Helper()
	total := 0
	for _, msgs := range sent {
		total += len(msgs)
	}
	for _, c := range clients {
		got := c.messages()
		if len(got) != total {
			t.Errorf("client %s: got %d messages, want %d", c.name, len(got), total)
		}
		bySender := map[string][]string{}
		seen := map[string]bool{}
		for _, m := range got {
			if seen[m] {
				t.Errorf("client %s: %q delivered twice", c.name, m)
			}
			seen[m] = true
			sender, _, _ := strings.Cut(m, "#")
			bySender[sender] = append(bySender[sender], m)
		}
		for sender, want := range sent {
			if fmt.Sprint(bySender[sender]) != fmt.Sprint(want) {
				t.Errorf("client %s: from %s got %d messages %v, want %d in order", c.name, sender, len(bySender[sender]), abbrev(bySender[sender]), len(want))
			}
		}
	}
}

func abbrev(s []string) []string {
	if len(s) > 6 {
		return append(append(s[:3:3], "..."), s[len(s)-3:]...)
	}
	return s
}

// sendAll makes every client send n numbered messages ("name#i") and
// returns them by sender.
func sendAll(t *testing.T, clients []*client, from, n int) map[string][]string {
	t.Helper()
	sent := map[string][]string{}
	for i := from; i < from+n; i++ {
		for _, c := range clients {
			msg := fmt.Sprintf("%s#%03d", c.name, i)
			c.send(t, msg)
			sent[c.name] = append(sent[c.name], msg)
		}
	}
	return sent
}

func merge(a, b map[string][]string) map[string][]string {
	out := map[string][]string{}
	for k, v := range a {
		out[k] = append(out[k], v...)
	}
	for k, v := range b {
		out[k] = append(out[k], v...)
	}
	return out
}

// Clients on three nodes in one room: every message reaches every member
// once and in order, and each broadcast crosses the network once per node
// with members, not once per member.
func TestBroadcastOneMessagePerNode(t *testing.T) {
	nodes := nodesOf(t, "shared", serveOptions{})
	roomName := roomOwnedBy(t, nodes, 0, "lobby")
	perNode := []int{1, 2, 5} // uneven on purpose
	var clients []*client
	for i, k := range perNode {
		for j := range k {
			clients = append(clients, dialClient(t, nodes[i].url, roomName, fmt.Sprintf("n%dc%d", i, j), nil))
		}
	}
	mem, err := nodes[1].node.Room(roomName).Members(context.Background())
	if err != nil {
		t.Fatalf("members: %v", err)
	}
	if mem.Host != nodes[0].node.Address() || len(mem.Members) != len(clients) {
		t.Fatalf("members: host %s with %d members, want %s with %d", mem.Host, len(mem.Members), nodes[0].node.Address(), len(clients))
	}
	before := make([]cluster.Stats, len(nodes))
	for i, tn := range nodes {
		before[i] = tn.node.Stats()
	}

	const perClient = 25
	sent := sendAll(t, clients, 0, perClient)
	b := int64(perClient * len(clients)) // broadcasts
	waitFor(t, 20*time.Second, "every client has every message", func() bool {
		for _, c := range clients {
			if c.count() < int(b) {
				return false
			}
		}
		return true
	})
	time.Sleep(50 * time.Millisecond) // let duplicates, if any, arrive
	checkAll(t, clients, sent)

	d := func(i int) cluster.Stats {
		s, o := nodes[i].node.Stats(), before[i]
		return cluster.Stats{
			Published: s.Published - o.Published, DeliversSent: s.DeliversSent - o.DeliversSent,
			DeliversSentRemote: s.DeliversSentRemote - o.DeliversSentRemote,
			DeliversReceived:   s.DeliversReceived - o.DeliversReceived, FramesQueued: s.FramesQueued - o.FramesQueued,
		}
	}
	host := d(0)
	if host.Published != b || host.DeliversSent != 3*b || host.DeliversSentRemote != 2*b {
		t.Errorf("grain node: published %d, delivers sent %d (remote %d); want %d, %d (%d)",
			host.Published, host.DeliversSent, host.DeliversSentRemote, b, 3*b, 2*b)
	}
	for i, k := range perNode {
		s := d(i)
		if s.DeliversReceived != b {
			t.Errorf("node %d (%d members): %d Delivers received for %d broadcasts, want one per broadcast", i, k, s.DeliversReceived, b)
		}
		if s.FramesQueued != int64(k)*b {
			t.Errorf("node %d: %d frames queued, want %d", i, s.FramesQueued, int64(k)*b)
		}
	}
	t.Logf("%d broadcasts to %d members on 3 nodes (%v): %d network messages of fan-out (%.1f per broadcast), %d frames queued",
		b, len(clients), perNode, host.DeliversSentRemote, float64(host.DeliversSentRemote)/float64(b), d(0).FramesQueued+d(1).FramesQueued+d(2).FramesQueued)
}

// With permessage-deflate, a broadcast is compressed once per node, however
// many members there are.
func TestCompressOncePerNode(t *testing.T) {
	accept := transport.AcceptOptions{}
	accept.Compression = transport.CompressionEnabled
	nodes := nodesOf(t, "shared", serveOptions{accept: accept})
	roomName := roomOwnedBy(t, nodes, 1, "deflate")
	d := &websocket.Dialer{EnableCompression: true}
	var clients []*client
	for i := range nodes {
		for j := range 3 {
			clients = append(clients, dialClient(t, nodes[i].url, roomName, fmt.Sprintf("n%dc%d", i, j), d))
		}
	}
	payload := strings.Repeat("compressible chat text ", 200) // 4.6 KB, over the 1 KB threshold
	const b = 10
	before := internalprobe.Compressions.Load()
	for i := range b {
		clients[0].send(t, fmt.Sprintf("%s#%03d %s", clients[0].name, i, payload))
	}
	waitFor(t, 20*time.Second, "every client has every message", func() bool {
		for _, c := range clients {
			if c.count() < b {
				return false
			}
		}
		return true
	})
	if got := internalprobe.Compressions.Load() - before; got != 3*b {
		t.Errorf("%d compressions for %d broadcasts to %d members on 3 nodes, want %d (once per node)", got, b, len(clients), 3*b)
	}
}

var failoverRan bool

// A node dies (in-process: its remote server stops and it leaves the
// provider). The room it hosted re-activates on a survivor, whose shards
// re-register; the room hosted elsewhere drops the dead node's members.
// Survivors keep chatting, and messages published during the failover are
// replayed, so every survivor receives every survivor's message once.
func TestNodeLossFailover(t *testing.T) {
	if failoverRan {
		t.Skip("the failover group's node was killed by an earlier run (-count > 1)")
	}
	failoverRan = true
	nodes := nodesOf(t, "failover", serveOptions{})
	moving := roomOwnedBy(t, nodes, 2, "moving") // grain on the node that dies
	staying := roomOwnedBy(t, nodes, 0, "staying")
	var survivorsMoving, survivorsStaying []*client
	for i := range nodes {
		for j := range 2 {
			cm := dialClient(t, nodes[i].url, moving, fmt.Sprintf("m%d%d", i, j), nil)
			cs := dialClient(t, nodes[i].url, staying, fmt.Sprintf("s%d%d", i, j), nil)
			if i != 2 {
				survivorsMoving = append(survivorsMoving, cm)
				survivorsStaying = append(survivorsStaying, cs)
			}
		}
	}
	ctx := context.Background()
	m, err := nodes[0].node.Room(moving).Members(ctx)
	if err != nil || m.Host != nodes[2].node.Address() || len(m.Members) != 6 {
		t.Fatalf("room %s before: %+v, %v", moving, m, err)
	}

	// Chat before, during and after the failover.
	sent := sendAll(t, survivorsMoving, 0, 10)
	sent = merge(sent, sendAll(t, survivorsStaying, 0, 10))
	waitFor(t, 10*time.Second, "messages before the failover", func() bool {
		return survivorsMoving[0].count() >= 40 && survivorsStaying[0].count() >= 40
	})
	killed := time.Now()
	nodes[2].kill(t)
	sent = merge(sent, sendAll(t, survivorsMoving, 10, 10)) // published while the grain is gone
	sent = merge(sent, sendAll(t, survivorsStaying, 10, 10))

	var moved time.Duration
	waitFor(t, 15*time.Second, "room re-activated on a survivor with the survivors' members", func() bool {
		m, err := nodes[1].node.Room(moving).Members(ctx)
		if err != nil || m.Host == nodes[2].node.Address() || len(m.Members) != 4 {
			return false
		}
		moved = time.Since(killed)
		return true
	})
	waitFor(t, 15*time.Second, "the other room drops the dead node's members", func() bool {
		m, err := nodes[1].node.Room(staying).Members(ctx)
		return err == nil && m.Host == nodes[0].node.Address() && len(m.Members) == 4
	})
	sent = merge(sent, sendAll(t, survivorsMoving, 20, 10))
	sent = merge(sent, sendAll(t, survivorsStaying, 20, 10))
	want := 4 * 30
	waitFor(t, 20*time.Second, "every survivor has every survivor's message", func() bool {
		for _, c := range append(survivorsMoving, survivorsStaying...) {
			if c.count() < want {
				return false
			}
		}
		return true
	})
	time.Sleep(100 * time.Millisecond)
	split := func(prefix string) map[string][]string {
		out := map[string][]string{}
		for k, v := range sent {
			if strings.HasPrefix(k, prefix) {
				out[k] = v
			}
		}
		return out
	}
	checkAll(t, survivorsMoving, split("m"))
	checkAll(t, survivorsStaying, split("s"))
	st := nodes[0].node.Stats()
	st1 := nodes[1].node.Stats()
	t.Logf("room re-activated and rebuilt %v after the kill; node0 restores=%d replayed=%d duplicates=%d, node1 restores=%d replayed=%d duplicates=%d",
		moved.Round(time.Millisecond), st.Restores, st.Replayed, st.Duplicates, st1.Restores, st1.Replayed, st1.Duplicates)
}

// Join, Leave, a closing connection and Members.
func TestMembership(t *testing.T) {
	nodes := nodesOf(t, "shared", serveOptions{})
	roomName := roomOwnedBy(t, nodes, 1, "members")
	a := dialClient(t, nodes[0].url, roomName, "alice", nil)
	dialClient(t, nodes[1].url, roomName, "bob", nil)
	ctx := context.Background()
	m, err := nodes[0].node.Room(roomName).Members(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, mem := range m.Members {
		names = append(names, mem.Meta+"@"+mem.Node)
	}
	sort.Strings(names)
	want := []string{"alice@" + nodes[0].node.Address(), "bob@" + nodes[1].node.Address()}
	sort.Strings(want)
	if fmt.Sprint(names) != fmt.Sprint(want) {
		t.Fatalf("members %v, want %v", names, want)
	}
	a.ws.Close()
	waitFor(t, 10*time.Second, "a closed connection leaves the room", func() bool {
		m, err := nodes[1].node.Room(roomName).Members(ctx)
		return err == nil && len(m.Members) == 1 && m.Members[0].Meta == "bob"
	})
	if err := nodes[0].node.Room("bad/name").Broadcast(transport.MessageText, nil); err != cluster.ErrInvalidName {
		t.Errorf("publish to bad name: %v", err)
	}
}
