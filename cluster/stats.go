package cluster

import "sync/atomic"

// Stats counts what a node's grains and shards did since it started. The
// fan-out counters are the evidence for "one network message per node":
// each broadcast handled by a grain adds one to DeliversSent per node with
// members in the room, however many members that node has.
type Stats struct {
	// RoomsActivated counts room grains started on this node.
	RoomsActivated int64
	// Published counts broadcasts handled by grains on this node.
	Published int64
	// DeliversSent counts Deliver messages sent by grains on this node: one
	// per broadcast and node with members.
	DeliversSent int64
	// DeliversSentRemote is the part of DeliversSent that went to other
	// nodes: the network messages of fan-out.
	DeliversSentRemote int64
	// DeliversReceived counts Deliver messages received by shards on this
	// node (from local and remote grains).
	DeliversReceived int64
	// FramesQueued counts frames put in local connections' queues by
	// shards: one transport.Frame per Deliver, shared by all of them.
	FramesQueued int64
	// Duplicates counts Delivers dropped because their broadcast had already
	// been delivered here (replays after a failover).
	Duplicates int64
	// Buffered counts broadcasts that waited in a shard because its room's
	// grain was being looked up (first use, or failover).
	Buffered int64
	// Replayed counts broadcasts a shard sent again to a room's new grain
	// after losing the old one.
	Replayed int64
	// Dropped counts broadcasts a shard dropped because its replay window
	// was full while its room's grain was unreachable.
	Dropped int64
	// Restores counts shards that registered with a new grain after losing
	// the one they knew (its node died, or it moved).
	Restores int64
	// HistorySent counts Delivers that grains on this node sent again to
	// shards registering after they lost their grain.
	HistorySent int64
	// TopicMessagesSent and TopicMessagesReceived count the channel topic
	// messages (Node.Channels) this node sent to and received from other
	// nodes: for a kept event, one to each other node with members of the
	// topic, one to the backup node (replication) and its acknowledgement.
	// TopicBytesSent is their bodies' size.
	TopicMessagesSent, TopicMessagesReceived, TopicBytesSent int64
}

type counters struct {
	roomsActivated, published, deliversSentLocal, deliversSentRemote atomic.Int64
	deliversReceived, framesQueued, duplicates                       atomic.Int64
	buffered, replayed, dropped, restores, historySent               atomic.Int64
	topicSent, topicReceived, topicBytes                             atomic.Int64
}

// Stats returns a snapshot of the node's counters.
func (n *Node) Stats() Stats {
	c := &n.stats
	// DeliversSent is local+remote, each read once: a grain adds to both
	// as it fans out, and the two parts never go down, whatever a read
	// sees in between.
	local, remote := c.deliversSentLocal.Load(), c.deliversSentRemote.Load()
	return Stats{
		RoomsActivated:     c.roomsActivated.Load(),
		Published:          c.published.Load(),
		DeliversSent:       local + remote,
		DeliversSentRemote: remote,
		DeliversReceived:   c.deliversReceived.Load(),
		FramesQueued:       c.framesQueued.Load(),
		Duplicates:         c.duplicates.Load(),
		Buffered:           c.buffered.Load(),
		Replayed:           c.replayed.Load(),
		Dropped:            c.dropped.Load(),
		Restores:           c.restores.Load(),
		HistorySent:        c.historySent.Load(),

		TopicMessagesSent:     c.topicSent.Load(),
		TopicMessagesReceived: c.topicReceived.Load(),
		TopicBytesSent:        c.topicBytes.Load(),
	}
}
