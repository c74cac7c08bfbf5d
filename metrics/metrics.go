// Package metrics exposes wsactor's counters to Prometheus
// (github.com/prometheus/client_golang, already in wsactor's module graph
// through protoactor). It is pull-based: the collectors read counters that
// the connections keep anyway (an uncontended atomic add per message read
// and per write system call) when Prometheus scrapes, so a server without
// metrics pays nothing more, and one with them pays per scrape, not per
// message.
//
//	reg := prometheus.NewRegistry()
//	reg.MustRegister(metrics.NewHandlerCollector(h, "/ws"))
//	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
//
// NewHubCollector does the same for a channel.Hub (its connections and its
// topics), NewProcessCollector for the process-wide counters, and
// NewSystemCollector for the actor system (actors, dead letters); a
// cluster node has cluster.NewCollector. Latencies (round trips, channel
// joins, pushes and acks) are histograms with one bucket set, 250µs to 5s.
//
// Names start with wsactor_; labels have bounded values (an endpoint name
// you choose, a direction, an HTTP status): no per-connection, per-user or
// per-room labels.
package metrics

import (
	"sort"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wsactor/wsactor/actors"
	"github.com/wsactor/wsactor/channel"
	"github.com/wsactor/wsactor/internal/probe"
)

// HandlerCollector collects one actors.Handler's metrics, labelled with
// its endpoint name.
type HandlerCollector struct {
	h        *actors.Handler
	current  func() *actors.Handler // a Hub's, which Reopen replaces
	endpoint string

	open, upgrades, messages, bytes, wire, writes, frames, refused, conflated, closes, hbKills, panics, rtt, rttHist *prometheus.Desc
}

// NewHandlerCollector returns the collector of h; endpoint names it in the
// "endpoint" label (the path it is mounted at, say), so that several
// Handlers can be registered in one registry.
func NewHandlerCollector(h *actors.Handler, endpoint string) *HandlerCollector {
	l := prometheus.Labels{"endpoint": endpoint}
	return &HandlerCollector{
		h: h, endpoint: endpoint,
		open: prometheus.NewDesc("wsactor_connections_open",
			"WebSocket connections open (upgrades admitted and not yet ended).", nil, l),
		upgrades: prometheus.NewDesc("wsactor_upgrades_total",
			"Upgrade requests by the HTTP status they got: 101 upgraded; 400, 405, 426 bad handshake; 401, 403 refused by authentication or origin; 429 by an admission limit; 503 at capacity or shutting down.", []string{"status"}, l),
		messages: prometheus.NewDesc("wsactor_messages_total",
			"Data messages read (in) and written (out).", []string{"direction"}, l),
		bytes: prometheus.NewDesc("wsactor_payload_bytes_total",
			"Data message payload bytes before compression: read (in, after inflating) and written (out, before deflating).", []string{"direction"}, l),
		wire: prometheus.NewDesc("wsactor_wire_bytes_total",
			"Bytes on the wire: message payloads as they arrived (in, compressed when deflate is on) and everything written to sockets (out: headers, compressed payloads, control frames). Against wsactor_payload_bytes_total, what compression saves.", []string{"direction"}, l),
		writes: prometheus.NewDesc("wsactor_write_syscalls_total",
			"Write system calls (writev) made by connection writers.", nil, l),
		frames: prometheus.NewDesc("wsactor_frames_written_total",
			"Frames written; divided by wsactor_write_syscalls_total it is the frames per writev.", nil, l),
		refused: prometheus.NewDesc("wsactor_queue_overflows_total",
			"Sends that found the send queue full, by the overflow policy that answered: disconnect (the connection closed with 1013), drop_newest (the send refused), drop_oldest (the oldest queued message dropped).", []string{"policy"}, l),
		conflated: prometheus.NewDesc("wsactor_conflated_total",
			"Queued keyed frames replaced by a newer one (conflation).", nil, l),
		closes: prometheus.NewDesc("wsactor_closes_total",
			"Connections ended, by close code (1000-1015 one by one; 3xxx, 4xxx ranges; other) and side (peer or server). 1006 is a connection that ended without a close handshake.", []string{"code", "side"}, l),
		hbKills: prometheus.NewDesc("wsactor_heartbeat_terminations_total",
			"Connections terminated because the peer was silent past the heartbeat's Interval+Timeout.", nil, l),
		panics: prometheus.NewDesc("wsactor_panics_total",
			"Panics recovered from connection behaviours and decoders, by outcome: resumed, restarted, gave_up (closed with 1011).", []string{"outcome"}, l),
		rtt: prometheus.NewDesc("wsactor_connections_by_rtt",
			"Open connections whose last measured round-trip time (ping to pong) is at most le seconds, cumulative as in a histogram; le=\"+Inf\" counts those measured, not those without a pong yet.", []string{"le"}, l),
		rttHist: prometheus.NewDesc("wsactor_rtt_seconds",
			"Round-trip times measured by heartbeat pings, one observation per pong, of every connection since the Handler started.", nil, l),
	}
}

// Describe implements prometheus.Collector.
func (c *HandlerCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.open, c.upgrades, c.messages, c.bytes, c.wire, c.writes, c.frames, c.refused, c.conflated, c.closes, c.hbKills, c.panics, c.rtt, c.rttHist} {
		ch <- d
	}
}

// Collect implements prometheus.Collector: it reads the Handler's counters
// (actors.Handler.Stats) once per scrape.
func (c *HandlerCollector) Collect(ch chan<- prometheus.Metric) { c.collect(ch, c.h.Stats()) }

func (c *HandlerCollector) collect(ch chan<- prometheus.Metric, st actors.HandlerStats) {
	ch <- prometheus.MustNewConstMetric(c.open, prometheus.GaugeValue, float64(st.Open))
	for status, n := range st.Upgrades {
		ch <- prometheus.MustNewConstMetric(c.upgrades, prometheus.CounterValue, float64(n), strconv.Itoa(status))
	}
	t := st.Traffic
	ch <- prometheus.MustNewConstMetric(c.messages, prometheus.CounterValue, float64(t.MessagesIn), "in")
	ch <- prometheus.MustNewConstMetric(c.messages, prometheus.CounterValue, float64(t.MessagesOut), "out")
	ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.CounterValue, float64(t.BytesIn), "in")
	ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.CounterValue, float64(t.PayloadBytesOut), "out")
	ch <- prometheus.MustNewConstMetric(c.wire, prometheus.CounterValue, float64(t.WireBytesIn), "in")
	ch <- prometheus.MustNewConstMetric(c.wire, prometheus.CounterValue, float64(t.BytesOut), "out")
	ch <- prometheus.MustNewConstMetric(c.writes, prometheus.CounterValue, float64(t.Writes))
	ch <- prometheus.MustNewConstMetric(c.frames, prometheus.CounterValue, float64(t.Frames))
	ch <- prometheus.MustNewConstMetric(c.refused, prometheus.CounterValue, float64(t.OverflowCloses), "disconnect")
	ch <- prometheus.MustNewConstMetric(c.refused, prometheus.CounterValue, float64(t.Refused-t.OverflowCloses-t.Evicted), "drop_newest")
	ch <- prometheus.MustNewConstMetric(c.refused, prometheus.CounterValue, float64(t.Evicted), "drop_oldest")
	ch <- prometheus.MustNewConstMetric(c.conflated, prometheus.CounterValue, float64(t.Conflated))
	for k, n := range st.Closes {
		ch <- prometheus.MustNewConstMetric(c.closes, prometheus.CounterValue, float64(n), k.Code, k.Side)
	}
	ch <- prometheus.MustNewConstMetric(c.hbKills, prometheus.CounterValue, float64(st.HeartbeatKills))
	for k, n := range st.Panics {
		ch <- prometheus.MustNewConstMetric(c.panics, prometheus.CounterValue, float64(n), k)
	}
	ch <- constHistogram(c.rttHist, st.RTT)
	if h := c.handler(); h != nil {
		counts := make([]int, len(rttBuckets)+1)
		h.Range(func(conn *actors.Conn) bool {
			if d := conn.RTT(); d > 0 {
				i := sort.SearchFloat64s(rttBuckets, d.Seconds())
				counts[i]++
			}
			return true
		})
		cum := 0
		for i, le := range rttBuckets {
			cum += counts[i]
			ch <- prometheus.MustNewConstMetric(c.rtt, prometheus.GaugeValue, float64(cum), strconv.FormatFloat(le, 'g', -1, 64))
		}
		ch <- prometheus.MustNewConstMetric(c.rtt, prometheus.GaugeValue, float64(cum+counts[len(rttBuckets)]), "+Inf")
	}
}

// constHistogram is h as a Prometheus histogram, in seconds.
func constHistogram(d *prometheus.Desc, h actors.Histogram) prometheus.Metric {
	buckets := make(map[float64]uint64, len(h.Bounds))
	var cum uint64
	for i, b := range h.Bounds {
		cum += h.Counts[i]
		buckets[b.Seconds()] = cum
	}
	return prometheus.MustNewConstHistogram(d, h.Count(), h.Sum.Seconds(), buckets)
}

// rttBuckets are the upper bounds of wsactor_connections_by_rtt, seconds.
var rttBuckets = []float64{0.001, 0.005, 0.02, 0.05, 0.1, 0.25, 1}

// handler is the Handler whose connections the RTT gauge reads.
func (c *HandlerCollector) handler() *actors.Handler {
	if c.current != nil {
		return c.current()
	}
	return c.h
}

// HubCollector collects a channel.Hub's metrics: its connections (as
// HandlerCollector, across Reopen) and its topics.
type HubCollector struct {
	hub  *channel.Hub
	conn *HandlerCollector

	topics, members, joins, recoveries, refused, pushes, published, broadcasts *prometheus.Desc
	joinLatency, pushLatency, requestLatency                                   *prometheus.Desc
}

// NewHubCollector returns the collector of hub, labelled endpoint.
func NewHubCollector(hub *channel.Hub, endpoint string) *HubCollector {
	l := prometheus.Labels{"endpoint": endpoint}
	conn := NewHandlerCollector(nil, endpoint)
	if hub != nil {
		conn.current = hub.Handler
	}
	return &HubCollector{
		hub:  hub,
		conn: conn,
		topics: prometheus.NewDesc("wsactor_channel_topics",
			"Channel topics running.", nil, l),
		members: prometheus.NewDesc("wsactor_channel_members",
			"Memberships in running topics.", nil, l),
		joins: prometheus.NewDesc("wsactor_channel_joins_total",
			"Joins answered ok.", nil, l),
		recoveries: prometheus.NewDesc("wsactor_channel_recoveries_total",
			"Joins that asked to recover, by outcome: ok, or why not (epoch, expired, ahead).", []string{"outcome"}, l),
		refused: prometheus.NewDesc("wsactor_channel_refused_total",
			"Requests answered with an error reply, by code (protocol codes; custom for the application's own).", []string{"code"}, l),
		pushes: prometheus.NewDesc("wsactor_channel_pushes_total",
			"Client pushes handed to topics.", nil, l),
		published: prometheus.NewDesc("wsactor_channel_published_total",
			"Events kept in history and broadcast (Topic.Publish, Hub.Publish, ClientPublish).", nil, l),
		broadcasts: prometheus.NewDesc("wsactor_channel_broadcasts_total",
			"Events broadcast without keeping them (Topic.Broadcast).", nil, l),
		joinLatency: prometheus.NewDesc("wsactor_channel_join_seconds",
			"Time from a join request to its ok reply (authorization, the topic's start, the history sent).", nil, l),
		pushLatency: prometheus.NewDesc("wsactor_channel_push_seconds",
			"Time from a client push that asked for a reply to the topic's answer, ok or error (the topic's handler time, deferred answers included).", nil, l),
		requestLatency: prometheus.NewDesc("wsactor_channel_request_seconds",
			"Time from a server push sent by Hub.Request to the client's reply (the client's ack).", nil, l),
	}
}

// Describe implements prometheus.Collector.
func (c *HubCollector) Describe(ch chan<- *prometheus.Desc) {
	c.conn.Describe(ch)
	for _, d := range []*prometheus.Desc{c.topics, c.members, c.joins, c.recoveries, c.refused, c.pushes, c.published, c.broadcasts, c.joinLatency, c.pushLatency, c.requestLatency} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *HubCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.hub.Stats()
	c.conn.collect(ch, st.Connections)
	ch <- prometheus.MustNewConstMetric(c.topics, prometheus.GaugeValue, float64(st.Topics))
	ch <- prometheus.MustNewConstMetric(c.members, prometheus.GaugeValue, float64(st.Members))
	ch <- prometheus.MustNewConstMetric(c.joins, prometheus.CounterValue, float64(st.Joins))
	for k, n := range st.Recoveries {
		ch <- prometheus.MustNewConstMetric(c.recoveries, prometheus.CounterValue, float64(n), k)
	}
	for k, n := range st.Refused {
		ch <- prometheus.MustNewConstMetric(c.refused, prometheus.CounterValue, float64(n), k)
	}
	ch <- prometheus.MustNewConstMetric(c.pushes, prometheus.CounterValue, float64(st.Pushes))
	ch <- prometheus.MustNewConstMetric(c.published, prometheus.CounterValue, float64(st.Published))
	ch <- prometheus.MustNewConstMetric(c.broadcasts, prometheus.CounterValue, float64(st.Broadcasts))
	ch <- constHistogram(c.joinLatency, st.JoinLatency)
	ch <- constHistogram(c.pushLatency, st.PushLatency)
	ch <- constHistogram(c.requestLatency, st.RequestLatency)
}

// ProcessCollector collects counters that are the process's, not one
// Handler's: register it once per process.
type ProcessCollector struct {
	compressions *prometheus.Desc
}

// NewProcessCollector returns the collector of the process-wide counters:
// wsactor_compressions_total, messages compressed with permessage-deflate
// (a broadcast is compressed once, whatever its members: divide by the
// broadcasts to see it).
func NewProcessCollector() *ProcessCollector {
	return &ProcessCollector{
		compressions: prometheus.NewDesc("wsactor_compressions_total",
			"Messages compressed with permessage-deflate in this process (once per broadcast and compression level, however many members).", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *ProcessCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.compressions }

// Collect implements prometheus.Collector.
func (c *ProcessCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(c.compressions, prometheus.CounterValue, float64(probe.Compressions.Load()))
}
