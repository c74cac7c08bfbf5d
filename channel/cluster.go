package channel

import (
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// Cluster carries a Hub's topics between the nodes of a cluster, so that
// topics work the same whether the server is one process or several: each
// topic has one owner node, which runs its behaviour and keeps its history
// and presence, and replicates the history to a second node; connections
// join the topic on whatever node they are on. Package cluster's
// Node.Channels returns one on protoactor's cluster; docs/cluster.md has
// the design and its guarantees.
//
// A Cluster is given to NewHub in Options.Cluster; NewHub calls Attach once.
type Cluster interface {
	// Attach connects the Hub's side. From then on the Cluster hands every
	// message another node sends to this one to port.Receive, in the order
	// each sending node sent them, and calls port.TopologyChanged whenever
	// the set of live nodes changes.
	Attach(port *ClusterPort) error
	// Self returns this node's address, as Rank and Send name nodes.
	Self() string
	// Rank returns the live nodes, this one included, in the order that
	// places topic: its owner first, then the node that takes over if the
	// owner goes. Every node must rank alike for the same set of nodes
	// (rendezvous hashing, say).
	Rank(topic string) []string
	// Send sends msg to node's port without blocking. Messages from one
	// node to another must arrive in the order they were sent, or not at
	// all (a broken link).
	Send(node string, msg []byte) error
	// Detach is called once by Hub.Close: deliver nothing more to the port.
	Detach()
}

// ClusterPort is a Hub's side of its Cluster: where the Cluster delivers
// the other nodes' messages and tells of topology changes.
type ClusterPort struct {
	h    *Hub
	c    Cluster
	self string

	mu      sync.Mutex
	owners  map[string]*actor.PID  // topic → the owner actor running here
	backups map[string]*backupCopy // topic → the copy of its history kept here

	fragID atomic.Uint64 // numbers this node's fragmented messages
	fmu    sync.Mutex
	frags  map[fragKey][]byte // fragmented messages being received
}

type fragKey struct {
	from string
	id   uint64
}

// backupCopy is the copy of a topic's history that its owner replicates
// to this node.
type backupCopy struct {
	term   uint64
	epoch  string
	last   uint64
	keep   int
	events []StoredEvent
}

// Link message kinds. Members' nodes ("edges") send join, leave, push and
// publish to the topic's owner, which answers with out, remove, answer,
// published (or redirect from a node that is not the owner). The owner
// replicates to its backup node with repl (acknowledged by replack) and
// tells nodes to forget their copy with drop. A new owner asks every node
// for its copy with gather, answered by state.
const (
	linkJoin      = "join"
	linkLeave     = "leave"
	linkPush      = "push"
	linkPublish   = "publish"
	linkOut       = "out"
	linkRemove    = "remove"
	linkAnswer    = "answer"
	linkPublished = "published"
	linkRedirect  = "redirect"
	linkRepl      = "repl"
	linkReplAck   = "replack"
	linkDrop      = "drop"
	linkGather    = "gather"
	linkState     = "state"
	linkResync    = "resync"
	linkCheck     = "check"
	linkFrag      = "frag"
)

// fragBytes is the most of a message one fragment carries: an encoded
// message longer than that (a join reply with a long history, say) goes as
// several fragments, each well under gRPC's default 4 MiB limit after
// base64.
const fragBytes = 512 << 10

// linkCheckInterval is how soon after sending anything to a node an owner
// or edge sends it a numbered check: a message lost at the end of a burst
// shows as a gap then, not only at the next message.
// (A variable for this package's tests, which make it short.)
var linkCheckInterval = 2 * time.Second

// linkMsg is every message between nodes' hubs, as JSON.
type linkMsg struct {
	K     string `json:"k"`
	Topic string `json:"topic"`
	Term  uint64 `json:"term,omitempty"`
	// ID is a member: the one joining, leaving, pushing; the target of
	// out/remove/answer; with All, the member out skips.
	ID  string `json:"id,omitempty"`
	All bool   `json:"all,omitempty"`
	Ref uint64 `json:"ref,omitempty"`
	// Of is the kind a redirect refuses.
	Of string `json:"of,omitempty"`
	// Inc and Seq number the messages between an owner and an edge: Inc
	// names the sender's incarnation (an owner's term; an edge's random
	// number, new for each owner it follows), Seq counts its messages to
	// that node from 1. A gap means a lost message (a broken link): the
	// edge's members rejoin (resync).
	Inc uint64 `json:"inc,omitempty"`
	Seq uint64 `json:"seq,omitempty"`

	// out: the message for members speaking JSON (Text, embedded as is:
	// it is a JSON object) and binary (Bin).
	Text json.RawMessage `json:"text,omitempty"`
	Bin  []byte          `json:"bin,omitempty"`

	// push, publish, answer: an event and its payload.
	Event string          `json:"event,omitempty"`
	Data  json.RawMessage `json:"data,omitempty"`
	Bytes []byte          `json:"bytes,omitempty"`
	Err   *Error          `json:"err,omitempty"`

	// join
	Member  *linkMember     `json:"member,omitempty"`
	Params  json.RawMessage `json:"params,omitempty"`
	Recover *Position       `json:"recover,omitempty"`
	History int             `json:"history,omitempty"`
	Reply   json.RawMessage `json:"reply,omitempty"`
	Reason  string          `json:"reason,omitempty"`

	// repl, state, published: a stream's position and events.
	OK     bool          `json:"ok,omitempty"`
	Have   bool          `json:"have,omitempty"`
	More   bool          `json:"more,omitempty"` // state: more of the copy's events follow
	Reset  bool          `json:"reset,omitempty"`
	Epoch  string        `json:"epoch,omitempty"`
	Last   uint64        `json:"last,omitempty"`
	Keep   int           `json:"keep,omitempty"`
	Events []StoredEvent `json:"events,omitempty"`
}

type linkMember struct {
	ID     string          `json:"id"`
	User   string          `json:"user,omitempty"`
	Meta   json.RawMessage `json:"meta,omitempty"`
	Binary bool            `json:"binary,omitempty"`
}

// seqCheck follows one sender's numbered messages.
type seqCheck struct{ inc, seq uint64 }

// next says whether m follows the messages seen so far without a gap, and
// records it. A new incarnation must start at 1, unless fresh (the first
// message ever seen from that sender) accepts any start.
func (c *seqCheck) next(m *linkMsg, fresh bool) bool {
	ok := m.Inc == c.inc && m.Seq == c.seq+1 || m.Inc != c.inc && (m.Seq == 1 || fresh)
	c.inc, c.seq = m.Inc, m.Seq
	return ok
}

// linkIn is a link message delivered to a local actor.
type linkIn struct {
	from    string
	m       *linkMsg
	checked bool // its number was checked (it waited for a gather)
}

// topologyChanged tells owners and edges to look at the ranking again.
type topologyChanged struct{}

// reasonNotOwner refuses a gather from a node that is not the topic's owner
// in the answering node's view.
const reasonNotOwner = "not owner"

// errUnavailable answers requests that were on their way to an owner that
// went away; the client may send them again.
var errUnavailable = &Error{Code: CodeUnavailable, Message: "the topic moved to another node; try again"}

// ErrMoved: a Hub.Publish on a cluster was on its way to the topic's owner
// when the owner changed (a node died or joined). The event may or may not
// have been kept; publish again if it must be.
var ErrMoved = errors.New("channel: the topic's owner changed")

func newClusterPort(h *Hub, c Cluster) *ClusterPort {
	return &ClusterPort{h: h, c: c, self: c.Self(), owners: map[string]*actor.PID{}, backups: map[string]*backupCopy{}}
}

// Receive hands the port a message from node from. The Cluster calls it,
// in the order from sent its messages; it does not block.
func (p *ClusterPort) Receive(from string, msg []byte) {
	m := new(linkMsg)
	if err := json.Unmarshal(msg, m); err != nil || m.Topic == "" {
		p.h.log.Warn().Err(err).Str("from", from).Msg("cluster: a malformed topic message was dropped")
		return
	}
	if m.K == linkFrag {
		if msg = p.defrag(from, m); msg != nil {
			p.Receive(from, msg)
		}
		return
	}
	p.route(from, m)
}

// defrag adds a fragment and returns the whole message once its last
// fragment came. A sender's fragments of one message come in order (one
// actor sends them one after the other); other messages may come between.
func (p *ClusterPort) defrag(from string, m *linkMsg) []byte {
	p.fmu.Lock()
	defer p.fmu.Unlock()
	if p.frags == nil {
		p.frags = map[fragKey][]byte{}
	}
	k := fragKey{from, m.Ref}
	b := append(p.frags[k], m.Bytes...)
	if m.More {
		p.frags[k] = b
		return nil
	}
	delete(p.frags, k)
	return b
}

// forgetFrags drops the fragments of nodes that left: the rest of their
// messages will not come.
func (p *ClusterPort) forgetFrags(live []string) {
	p.fmu.Lock()
	defer p.fmu.Unlock()
	for k := range p.frags {
		if !slices.Contains(live, k.from) {
			delete(p.frags, k)
		}
	}
}

// TopologyChanged tells the port that the set of live nodes changed. The
// Cluster calls it; it does not block.
func (p *ClusterPort) TopologyChanged() {
	p.forgetFrags(p.c.Rank(""))
	root := p.h.system.Root
	for _, pid := range p.ownerPIDs() {
		root.Send(pid, &topologyChanged{})
	}
	for _, r := range p.h.topics.Rooms() {
		r.Tell(&topologyChanged{})
	}
}

// ownerPIDs returns the owner actors running on this node.
func (p *ClusterPort) ownerPIDs() []*actor.PID {
	p.mu.Lock()
	defer p.mu.Unlock()
	pids := make([]*actor.PID, 0, len(p.owners))
	for _, o := range p.owners {
		pids = append(pids, o)
	}
	return pids
}

// send sends m to node: to this node's own actors without encoding.
func (p *ClusterPort) send(node string, m *linkMsg) {
	if node == p.self || node == "" {
		cp := *m // the sender may number it again (a resent join)
		p.route(p.self, &cp)
		return
	}
	b, err := json.Marshal(m)
	switch {
	case err != nil:
	case len(b) <= fragBytes:
		err = p.c.Send(node, b)
	default:
		id := p.fragID.Add(1)
		for len(b) > 0 && err == nil {
			n := min(len(b), fragBytes)
			var f []byte
			if f, err = json.Marshal(&linkMsg{K: linkFrag, Topic: m.Topic, Ref: id, More: n < len(b), Bytes: b[:n]}); err == nil {
				err = p.c.Send(node, f)
			}
			b = b[n:]
		}
	}
	if err != nil {
		p.h.log.Debug().Err(err).Str("to", node).Str("kind", m.K).Str("topic", m.Topic).Msg("cluster: send failed")
	}
}

// owner returns the node that owns topic, or this node if it knows none.
func (p *ClusterPort) owner(topic string) string {
	if r := p.c.Rank(topic); len(r) > 0 {
		return r[0]
	}
	return p.self
}

func (p *ClusterPort) route(from string, m *linkMsg) {
	switch m.K {
	case linkOut, linkRemove, linkAnswer, linkPublished, linkRedirect, linkResync:
		if r, ok := p.h.topics.Lookup(m.Topic); ok {
			r.Tell(&linkIn{from: from, m: m})
		}
	case linkCheck:
		// Both ways: to the owner actor if it runs here, else to the edge.
		if m.Of == "owner" && p.toOwner(from, m, false) {
			return
		}
		if r, ok := p.h.topics.Lookup(m.Topic); ok {
			r.Tell(&linkIn{from: from, m: m})
		}
	case linkJoin, linkLeave, linkPush, linkPublish, linkState, linkReplAck:
		start := m.K == linkJoin || m.K == linkPush || m.K == linkPublish
		if !p.toOwner(from, m, start) && start {
			p.send(from, &linkMsg{K: linkRedirect, Topic: m.Topic, Of: m.K, ID: m.ID, Ref: m.Ref})
		}
	case linkRepl:
		p.send(from, p.repl(m))
	case linkDrop:
		p.mu.Lock()
		if b := p.backups[m.Topic]; b != nil && b.term <= m.Term {
			delete(p.backups, m.Topic)
		}
		p.mu.Unlock()
	case linkGather:
		p.gather(from, m)
	}
}

// toOwner hands m to the owner actor of its topic on this node, starting
// it when this node owns the topic and m may start it; false if there is
// none. It sends under the lock that ownerDone takes, so a message is
// either in a stopping owner's mailbox before its poison pill (and
// answered with a redirect) or goes to the next owner.
func (p *ClusterPort) toOwner(from string, m *linkMsg, start bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	o := p.owners[m.Topic]
	if o == nil {
		if !start || p.h.isClosed() || p.owner(m.Topic) != p.self {
			return false
		}
		o = p.h.system.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return newOwner(p, m.Topic) }))
		p.owners[m.Topic] = o
	}
	p.h.system.Root.Send(o, &linkIn{from: from, m: m})
	return true
}

// ownerDone forgets the owner actor pid of topic (it is stopping).
func (p *ClusterPort) ownerDone(topic string, pid *actor.PID) {
	p.mu.Lock()
	if o := p.owners[topic]; o != nil && o.Equal(pid) {
		delete(p.owners, topic)
	}
	p.mu.Unlock()
}

// repl applies a replication message to this node's copy and returns the
// acknowledgement: the copy's last offset, or not OK when the sender was
// fenced by a newer owner's gather or the copy has a gap (the owner then
// sends the whole history).
func (p *ClusterPort) repl(m *linkMsg) *linkMsg {
	p.mu.Lock()
	defer p.mu.Unlock()
	ack := &linkMsg{K: linkReplAck, Topic: m.Topic, Term: m.Term}
	b := p.backups[m.Topic]
	if b != nil && m.Term < b.term {
		ack.Term, ack.OK = b.term, false
		return ack
	}
	if m.Reset || b == nil {
		if !m.Reset {
			return ack // a gap: ask for everything
		}
		b = &backupCopy{}
		p.backups[m.Topic] = b
		b.epoch, b.last, b.events = m.Epoch, m.Last, append([]StoredEvent(nil), m.Events...)
	} else {
		if m.Epoch != b.epoch || len(m.Events) == 0 || m.Events[0].Offset != b.last+1 {
			ack.Last = b.last
			return ack
		}
		b.events = append(b.events, m.Events...)
		b.last = m.Events[len(m.Events)-1].Offset
	}
	b.term, b.keep = m.Term, m.Keep
	if b.keep >= 0 && len(b.events) > b.keep {
		b.events = append(b.events[:0], b.events[len(b.events)-b.keep:]...)
	}
	ack.OK, ack.Last = true, b.last
	return ack
}

// gather answers a new owner's request for this node's copy of a topic.
// A gather with a newer term fences older owners: this node refuses their
// replication from then on, and an owner running here hands over (it
// answers with its own history and stops).
func (p *ClusterPort) gather(from string, m *linkMsg) {
	p.mu.Lock()
	b := p.backups[m.Topic]
	var local *actor.PID
	if o := p.owners[m.Topic]; o != nil && from != p.self {
		local = o
	}
	st := &linkMsg{K: linkState, Topic: m.Topic, Term: m.Term, OK: true}
	var events []StoredEvent
	switch {
	case p.owner(m.Topic) != from:
		// Not the owner as this node sees the cluster: its view (or ours)
		// is behind. Answering would let a node with a stale view take the
		// topic from its owner; it tries again when the views agree.
		st.OK, st.Reason = false, reasonNotOwner
		local = nil
	case b != nil && b.term > m.Term:
		st.OK, st.Term = false, b.term
	case b != nil:
		b.term = m.Term
		st.Have, st.Epoch, st.Last, st.Keep = true, b.epoch, b.last, b.keep
		events = append([]StoredEvent(nil), b.events...)
	}
	if local != nil && st.OK {
		// The owner running here answers with its history, which is newer
		// than any copy here. Under the lock, as toOwner: before a stopping
		// owner's pill.
		p.h.system.Root.Send(local, &linkIn{from: from, m: m})
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	p.sendState(from, st, events)
}

// sendState sends a gather's answer, its events in chunks (chunkEvents).
func (p *ClusterPort) sendState(to string, st *linkMsg, events []StoredEvent) {
	chunks := chunkEvents(events)
	for i, c := range chunks {
		m := *st
		m.Events, m.More = c, i < len(chunks)-1
		p.send(to, &m)
	}
}

// chunkBytes bounds the events' data in one message between nodes, well
// under gRPC's default 4 MiB message limit (JSON, with base64 for bytes):
// a whole history goes as several messages.
const chunkBytes = 512 << 10

// chunkEvents splits events into runs of at most chunkBytes of data (at
// least one event each); none gives one empty chunk.
func chunkEvents(events []StoredEvent) [][]StoredEvent {
	var out [][]StoredEvent
	start, size := 0, 0
	for i, e := range events {
		n := len(e.Data) + len(e.Bin)*4/3 + len(e.Event) + 64
		if i > start && size+n > chunkBytes {
			out = append(out, events[start:i])
			start, size = i, 0
		}
		size += n
	}
	return append(out, events[start:])
}

// stopOwners stops every owner actor on this node (Hub.Close).
func (p *ClusterPort) stopOwners() {
	for _, pid := range p.ownerPIDs() {
		_ = p.h.system.Root.StopFuture(pid).Wait()
	}
}
