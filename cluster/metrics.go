package cluster

import "github.com/prometheus/client_golang/prometheus"

// Collector exposes a Node's counters ([Node.Stats]) to Prometheus. It is
// pull-based, like wsactor's metrics package: it reads one snapshot of the
// counters the node keeps anyway per scrape, so metrics cost nothing per
// message. Register one per node, next to the metrics package's collectors:
//
//	reg := prometheus.NewRegistry()
//	reg.MustRegister(cluster.NewCollector(node))
//	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
//
// Names start with wsactor_cluster_. There are no per-room or per-node
// labels: each node is scraped on its own, and Prometheus labels its series
// with the instance; sum over instances for the cluster.
type Collector struct {
	n *Node

	rooms, published, delivers, received, frames, duplicates, buffered, replayed, dropped, restores, history *prometheus.Desc
	topicMsgs, topicBytes                                                                                    *prometheus.Desc
}

// NewCollector returns the collector of n.
func NewCollector(n *Node) *Collector {
	return &Collector{
		n: n,
		rooms: prometheus.NewDesc("wsactor_cluster_rooms_activated_total",
			"Room grains started on this node (first use of a room placed here, or a room re-activated here after its node was lost).", nil, nil),
		published: prometheus.NewDesc("wsactor_cluster_published_total",
			"Broadcasts handled by room grains on this node; summed over nodes it is the cluster's broadcasts.", nil, nil),
		delivers: prometheus.NewDesc("wsactor_cluster_delivers_sent_total",
			"Deliver messages sent by grains on this node, one per broadcast and node with members, by scope: local (to this node's shard) or remote (over the network). remote divided by wsactor_cluster_published_total is the network messages per broadcast, at most the nodes with members minus one.", []string{"scope"}, nil),
		received: prometheus.NewDesc("wsactor_cluster_delivers_received_total",
			"Deliver messages received by this node's shards, from local and remote grains.", nil, nil),
		frames: prometheus.NewDesc("wsactor_cluster_frames_queued_total",
			"Frames put in local connections' send queues by shards; divided by wsactor_cluster_delivers_received_total it is the local members reached per Deliver.", nil, nil),
		duplicates: prometheus.NewDesc("wsactor_cluster_duplicates_total",
			"Delivers dropped because their broadcast had already been delivered here (replays after a failover); rises with failovers, not in steady state.", nil, nil),
		buffered: prometheus.NewDesc("wsactor_cluster_buffered_total",
			"Broadcasts that waited in a shard while its room's grain was looked up (first use of a room, or failover).", nil, nil),
		replayed: prometheus.NewDesc("wsactor_cluster_replayed_total",
			"Broadcasts a shard sent again to its room's new grain after losing the old one (failover).", nil, nil),
		dropped: prometheus.NewDesc("wsactor_cluster_dropped_total",
			"Broadcasts lost because a shard's replay window was full while its room's grain was unreachable; alert on any increase.", nil, nil),
		restores: prometheus.NewDesc("wsactor_cluster_restores_total",
			"Shards that registered with a new grain after losing the one they knew (its node died, or the room moved).", nil, nil),
		history: prometheus.NewDesc("wsactor_cluster_history_sent_total",
			"Delivers that grains on this node sent again to shards re-registering after losing their grain (catch-up after a failover).", nil, nil),
		topicMsgs: prometheus.NewDesc("wsactor_cluster_topic_messages_total",
			"Channel topic messages (Node.Channels) this node sent to or received from other nodes, by direction: for a kept event, one per other node with members, one replication to the backup and its acknowledgement.", []string{"direction"}, nil),
		topicBytes: prometheus.NewDesc("wsactor_cluster_topic_bytes_sent_total",
			"Bytes of the channel topic messages this node sent to other nodes (bodies, without protoactor's framing).", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.rooms, c.published, c.delivers, c.received, c.frames, c.duplicates, c.buffered, c.replayed, c.dropped, c.restores, c.history, c.topicMsgs, c.topicBytes} {
		ch <- d
	}
}

// Collect implements prometheus.Collector: it reads the node's counters
// (Node.Stats) once per scrape.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	st := c.n.Stats()
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	counter(c.rooms, st.RoomsActivated)
	counter(c.published, st.Published)
	counter(c.delivers, st.DeliversSent-st.DeliversSentRemote, "local")
	counter(c.delivers, st.DeliversSentRemote, "remote")
	counter(c.received, st.DeliversReceived)
	counter(c.frames, st.FramesQueued)
	counter(c.duplicates, st.Duplicates)
	counter(c.buffered, st.Buffered)
	counter(c.replayed, st.Replayed)
	counter(c.dropped, st.Dropped)
	counter(c.restores, st.Restores)
	counter(c.history, st.HistorySent)
	counter(c.topicMsgs, st.TopicMessagesSent, "sent")
	counter(c.topicMsgs, st.TopicMessagesReceived, "received")
	counter(c.topicBytes, st.TopicBytesSent)
}
