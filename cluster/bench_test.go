package cluster_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/gorilla/websocket"

	"github.com/wsactor/wsactor/actors"
	"github.com/wsactor/wsactor/channel"
	"github.com/wsactor/wsactor/cluster"
	"github.com/wsactor/wsactor/room"
	"github.com/wsactor/wsactor/supervisor"
	"github.com/wsactor/wsactor/transport"
)

// benchMembers is the room size of BenchmarkFanout.
const benchMembers = 300

// counter is a WebSocket client that only counts what it receives.
type counter struct {
	ws *websocket.Conn
	n  atomic.Int64
}

func dialCounter(b *testing.B, url string) *counter {
	b.Helper()
	ws, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		b.Fatal(err)
	}
	c := &counter{ws: ws}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				return
			}
			c.n.Add(1)
		}
	}()
	b.Cleanup(func() { ws.Close(); <-done })
	return c
}

// fanout publishes b.N broadcasts in windows of 64 (well under a member's
// 1024-message queue) and waits, after each window, until every member has
// everything: the time per broadcast is end to end, publisher to the last
// member's socket.
func fanout(b *testing.B, publish func([]byte), members []*counter, joinedMsgs int64) {
	b.Helper()
	payload := []byte(strings.Repeat("x", 64))
	const window = 64
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for sent := 0; sent < b.N; {
		n := min(window, b.N-sent)
		for range n {
			publish(payload)
		}
		sent += n
		want := joinedMsgs + int64(sent)
		deadline := time.Now().Add(30 * time.Second)
		for _, m := range members {
			for m.n.Load() < want {
				if time.Now().After(deadline) {
					b.Fatalf("member has %d of %d messages after 30s", m.n.Load(), want)
				}
				time.Sleep(50 * time.Microsecond)
			}
		}
	}
	el := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)*float64(len(members))/el.Seconds(), "deliveries/s")
}

// BenchmarkFanout broadcasts to a 300-member room: in one node's local room
// (package room, no cluster), in a cluster room on a one-node cluster, and
// in a cluster room whose members are spread over three nodes (100 each;
// the grain on one of them, the publisher on another). All nodes run in
// this process on loopback, so the three-node case measures the cost of
// the cluster path, not the capacity of three machines.
func BenchmarkFanout(b *testing.B) {
	b.Run("local-room", func(b *testing.B) {
		nodes := nodesOf(b, "single", serveOptions{})
		reg := room.NewRegistry(nodes[0].node.Tree(), nil)
		name := fmt.Sprintf("bench-local-%d", time.Now().UnixNano())
		r, err := reg.Get(context.Background(), name)
		if err != nil {
			b.Fatal(err)
		}
		// Members join the local room through a cluster-less handler.
		lh := localRoomServer(b, nodes[0], reg, name)
		var members []*counter
		for range benchMembers {
			members = append(members, dialCounter(b, lh))
		}
		waitFor(b, 20*time.Second, "members joined", func() bool {
			m, err := r.Members(context.Background())
			return err == nil && len(m) == benchMembers
		})
		fanout(b, func(p []byte) { r.Broadcast(transport.MessageText, p) }, members, 0)
	})
	for _, tc := range []struct {
		name  string
		group string
	}{{"cluster-1-node", "single"}, {"cluster-3-nodes", "shared"}} {
		b.Run(tc.name, func(b *testing.B) {
			nodes := nodesOf(b, tc.group, serveOptions{})
			name := fmt.Sprintf("bench-%s-%d", tc.name, time.Now().UnixNano())
			if len(nodes) > 1 {
				name = roomOwnedBy(b, nodes, 1, name) // grain on node 1, publisher on node 0
			}
			var members []*counter
			for i := range benchMembers {
				tn := nodes[i%len(nodes)]
				c := dialCounter(b, tn.url+"?room="+name+"&name=m")
				members = append(members, c)
			}
			waitFor(b, 30*time.Second, "members joined", func() bool {
				for _, m := range members {
					if m.n.Load() < 1 { // "joined"
						return false
					}
				}
				return true
			})
			before := nodes[len(nodes)-1].node.Stats()
			hostBefore := nodes[0].node.Stats()
			if len(nodes) > 1 {
				hostBefore = nodes[1].node.Stats()
			}
			r := nodes[0].node.Room(name)
			fanout(b, func(p []byte) { _ = r.Publish(&cluster.Broadcast{Data: p}) }, members, 1)
			host := nodes[0].node.Stats()
			if len(nodes) > 1 {
				host = nodes[1].node.Stats()
			}
			last := nodes[len(nodes)-1].node.Stats()
			b.ReportMetric(float64(host.DeliversSentRemote-hostBefore.DeliversSentRemote)/float64(b.N), "net-msgs/broadcast")
			b.ReportMetric(float64(last.FramesQueued-before.FramesQueued)/float64(last.DeliversReceived-before.DeliversReceived), "frames/deliver")
		})
	}
}

// localRoomServer serves connections that join the local room name of reg
// and returns its ws:// URL.
func localRoomServer(b *testing.B, tn *testNode, reg *room.Registry, name string) string {
	b.Helper()
	h, err := actors.NewHandler(tn.node.System(), func() actor.Actor { return &localMember{reg: reg, room: name} },
		&actors.HandlerOptions{Tree: tn.node.Tree(), Heartbeat: supervisor.HeartbeatOptions{Interval: -1}})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(h)
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_ = h.Shutdown(ctx)
		srv.Close()
	})
	return "ws" + strings.TrimPrefix(srv.URL, "http")
}

type localMember struct {
	reg  *room.Registry
	room string
}

func (m *localMember) Receive(ctx actor.Context) {
	if o, ok := ctx.Message().(*actors.Opened); ok {
		_, _, _ = m.reg.Join(context.Background(), m.room, &room.Join{Conn: o.Conn})
	}
}

// BenchmarkChannelsFanout publishes kept events (Hub.Publish, 64 in flight)
// to a 300-member channel topic: on a Hub in one process, on a one-node
// cluster, and on three nodes with 100 members each (the publisher's node
// is not the owner). End to end, as BenchmarkFanout; with three nodes it
// also reports the network messages per event (an event per other node with
// members, a replication to the backup, its acknowledgement, and the
// publish request and answer when the publisher is not on the owner).
func BenchmarkChannelsFanout(b *testing.B) {
	topics := func(string) *channel.TopicOptions { return &channel.TopicOptions{History: 1000} }
	for _, tc := range []struct {
		name  string
		group string
	}{{"hub-one-process", "single"}, {"cluster-1-node", "single"}, {"cluster-3-nodes", "shared"}} {
		b.Run(tc.name, func(b *testing.B) {
			var nodes []*topicNode
			if tc.name == "hub-one-process" {
				tn := nodesOf(b, tc.group, serveOptions{})[0]
				hub, err := channel.NewHub(tn.node.System(), &channel.Options{Topics: topics, Logger: testLogger(b)})
				if err != nil {
					b.Fatal(err)
				}
				srv := httptest.NewServer(hub)
				b.Cleanup(func() {
					srv.Close()
					_ = hub.Close(context.Background())
				})
				nodes = []*topicNode{{node: tn.node, hub: hub, srv: srv, url: "ws" + strings.TrimPrefix(srv.URL, "http")}}
			} else {
				nodes = topicHubs(b, tc.group, topics)
			}
			topic := fmt.Sprintf("bench-%s-%d", tc.name, time.Now().UnixNano())
			publisher := nodes[0]
			if len(nodes) > 1 {
				for _, tn := range nodes {
					if tn.node.Address() != tn.node.Channels().Rank(topic)[0] {
						publisher = tn
					}
				}
			}
			var members []*counter
			for i := range benchMembers {
				c := dialCounter(b, nodes[i%len(nodes)].url+fmt.Sprintf("?user=m%d", i)) // one user's joins are rate-limited together
				join := fmt.Sprintf(`{"t":"join","ref":1,"topic":%q}`, topic)
				if err := c.ws.WriteMessage(websocket.TextMessage, []byte(join)); err != nil {
					b.Fatal(err)
				}
				members = append(members, c)
			}
			waitFor(b, 30*time.Second, "members joined", func() bool {
				for _, m := range members {
					if m.n.Load() < 1 { // the join's reply
						return false
					}
				}
				return true
			})
			sent := func() (n int64) {
				for _, tn := range nodes {
					n += tn.node.Stats().TopicMessagesSent
				}
				return n
			}
			before := sent()
			var wg sync.WaitGroup
			ctx := context.Background()
			fanout(b, func(p []byte) {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if _, err := publisher.hub.Publish(ctx, topic, "m", p); err != nil {
						b.Error(err)
					}
				}()
			}, members, 1)
			wg.Wait()
			if len(nodes) > 1 {
				b.ReportMetric(float64(sent()-before)/float64(b.N), "net-msgs/event")
			}
		})
	}
}
