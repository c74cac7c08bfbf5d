package cluster

import (
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"sync"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/wsactor/wsactor/channel"
	"github.com/wsactor/wsactor/cluster/wire"
)

// Channels carries channel topics between the nodes of the cluster: give it
// to channel.NewHub as Options.Cluster on every node, and topics work as in
// one process, with the same API and the same clients. Each topic has an
// owner node (rendezvous hashing of the topic's name over the live
// members), which runs its behaviour and keeps its history and presence;
// its history is replicated to the next node of the ranking before any of
// it reaches a member, so the node that takes over when the owner dies
// continues the same stream and clients recover with nothing missing.
// docs/cluster.md has the design, the guarantees and the measurements.
//
//	channels := node.Channels()
//	hub, err := channel.NewHub(system, &channel.Options{Cluster: channels, Topics: ...})
type Channels struct {
	n *Node

	mu   sync.Mutex
	pid  *actor.PID
	port *channel.ClusterPort
}

// channelsActorName is the channels actor's name on every node.
const channelsActorName = "wsactor-channels"

// Channels returns the node's side of channel topics on the cluster, for
// one channel.Hub (Options.Cluster).
func (n *Node) Channels() *Channels { return &Channels{n: n} }

// Attach implements channel.Cluster: it starts the node's channels actor,
// which hands the other nodes' topic messages to port, and tells port of
// every topology change.
func (c *Channels) Attach(port *channel.ClusterPort) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.port != nil {
		return errors.New("cluster: Channels already attached to a hub")
	}
	props := actor.PropsFromProducer(func() actor.Actor { return &channelsActor{port: port, n: c.n} })
	pid, err := c.n.system.Root.SpawnNamed(props, channelsActorName)
	if err != nil {
		return fmt.Errorf("cluster: channels: %w", err)
	}
	c.pid, c.port = pid, port
	c.n.mu.Lock()
	c.n.topoHook = port.TopologyChanged
	c.n.mu.Unlock()
	return nil
}

// Detach implements channel.Cluster: the node stops taking topic messages.
func (c *Channels) Detach() {
	c.mu.Lock()
	pid := c.pid
	c.pid = nil
	c.mu.Unlock()
	if pid == nil {
		return
	}
	c.n.mu.Lock()
	c.n.topoHook = nil
	c.n.mu.Unlock()
	_ = c.n.system.Root.StopFuture(pid).Wait()
}

// Self implements channel.Cluster: the node's address.
func (c *Channels) Self() string { return c.n.Address() }

// Rank implements channel.Cluster: the members of the last topology,
// ordered by a rendezvous hash of (topic, member address).
func (c *Channels) Rank(topic string) []string {
	return rankMembers(topic, c.n.Members())
}

func rankMembers(topic string, members []string) []string {
	type scored struct {
		addr  string
		score uint64
	}
	s := make([]scored, len(members))
	for i, a := range members {
		h := fnv.New64a()
		_, _ = h.Write([]byte(topic))
		_, _ = h.Write([]byte{0})
		_, _ = h.Write([]byte(a))
		s[i] = scored{a, mix64(h.Sum64())}
	}
	slices.SortFunc(s, func(a, b scored) int {
		switch {
		case a.score > b.score:
			return -1
		case a.score < b.score:
			return 1
		}
		return strings.Compare(a.addr, b.addr)
	})
	out := make([]string, len(s))
	for i := range s {
		out[i] = s[i].addr
	}
	return out
}

// mix64 spreads FNV's output (whose high bits move little for inputs that
// differ only at the end) over all 64 bits.
func mix64(x uint64) uint64 {
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}

// Send implements channel.Cluster: one remote message to node's channels
// actor (protoactor keeps the order of one sender's messages to one node).
func (c *Channels) Send(node string, msg []byte) error {
	c.n.stats.topicSent.Add(1)
	c.n.stats.topicBytes.Add(int64(len(msg)))
	c.n.system.Root.Send(actor.NewPID(node, channelsActorName), &wire.TopicMsg{From: c.n.Address(), Body: msg})
	return nil
}

// channelsActor receives the other nodes' topic messages, one at a time.
type channelsActor struct {
	port *channel.ClusterPort
	n    *Node
}

func (a *channelsActor) Receive(ctx actor.Context) {
	if m, ok := ctx.Message().(*wire.TopicMsg); ok {
		a.n.stats.topicReceived.Add(1)
		a.port.Receive(m.From, m.Body)
	}
}
