package channel

import (
	"sync"
	"sync/atomic"

	"github.com/wsactor/wsactor/actors"
	"github.com/wsactor/wsactor/internal/hist"
)

// HubStats is what a Hub has done since it was made, for metrics (see
// package metrics).
type HubStats struct {
	// Connections are the connection counters of every Handler the Hub has
	// had (Reopen makes a new one; the counts carry over).
	Connections actors.HandlerStats
	// Topics is the number of topics running; Members the memberships in
	// them.
	Topics, Members int64
	// Joins counts joins answered ok; Recoveries the joins that asked to
	// recover, by outcome: "ok", or the reason it failed (epoch, expired,
	// ahead).
	Joins      uint64
	Recoveries map[string]uint64
	// Refused counts requests answered with an error, by code (the
	// protocol's codes; "custom" for codes of your own).
	Refused map[string]uint64
	// Pushes counts client pushes handed to topics; Published the events
	// kept (Topic.Publish, Hub.Publish, ClientPublish); Broadcasts the events
	// sent without keeping them.
	Pushes, Published, Broadcasts uint64
	// JoinLatency is the time from a join request to its ok reply (the
	// authorization hook, the topic's start if it was not running, the
	// history sent); PushLatency from a client push with a ref to the
	// topic's answer, ok or error (its handler's time, Defer included);
	// RequestLatency from Hub.Request's push to the client's reply (the
	// client's ack). What the session refuses itself (a rate limit, a
	// request for a topic not joined) and what times out are not observed:
	// Refused counts them.
	JoinLatency, PushLatency, RequestLatency actors.Histogram
}

// hubCounters are the Hub's counters, bumped by sessions and topics.
type hubCounters struct {
	joins, pushes, published, broadcasts atomic.Uint64
	members                              atomic.Int64

	joinLatency, pushLatency, requestLatency hist.H

	mu         sync.Mutex
	recoveries map[string]uint64
	refused    map[string]uint64
}

var protocolCodes = map[string]bool{
	CodeBadRequest: true, CodeUnauthorized: true, CodeNotJoined: true, CodeAlreadyJoined: true,
	CodeTooManyTopics: true, CodeTopicFull: true, CodeRateLimited: true, CodeNoHandler: true,
	CodeTimeout: true, CodeUnavailable: true, CodeInternal: true,
}

func (c *hubCounters) refuse(code string) {
	if !protocolCodes[code] {
		code = "custom" // codes of the application's own: bounded cardinality
	}
	c.mu.Lock()
	if c.refused == nil {
		c.refused = map[string]uint64{}
	}
	c.refused[code]++
	c.mu.Unlock()
}

func (c *hubCounters) recovery(outcome string) {
	c.mu.Lock()
	if c.recoveries == nil {
		c.recoveries = map[string]uint64{}
	}
	c.recoveries[outcome]++
	c.mu.Unlock()
}

// Stats returns the Hub's counters. It reads every open connection's
// counters: call it at scrape time.
func (h *Hub) Stats() HubStats {
	c := &h.counters
	st := HubStats{
		Connections: addHandlerStats(h.oldHandlers(), h.handler.Load().Stats()),
		Topics:      h.liveTopics.Load(),
		Members:     c.members.Load(),
		Joins:       c.joins.Load(),
		Pushes:      c.pushes.Load(),
		Published:   c.published.Load(),
		Broadcasts:  c.broadcasts.Load(),
		Recoveries:  map[string]uint64{},
		Refused:     map[string]uint64{},

		JoinLatency:    histogram(&c.joinLatency),
		PushLatency:    histogram(&c.pushLatency),
		RequestLatency: histogram(&c.requestLatency),
	}
	c.mu.Lock()
	for k, v := range c.recoveries {
		st.Recoveries[k] = v
	}
	for k, v := range c.refused {
		st.Refused[k] = v
	}
	c.mu.Unlock()
	return st
}

func histogram(h *hist.H) actors.Histogram {
	counts, sum := h.Snapshot()
	return actors.Histogram{Bounds: hist.Bounds, Counts: counts, Sum: sum}
}

func (h *Hub) oldHandlers() actors.HandlerStats {
	h.mu.Lock()
	defer h.mu.Unlock()
	var sum actors.HandlerStats
	for _, old := range h.retired {
		sum = addHandlerStats(sum, old.Stats())
	}
	return sum
}

// addHandlerStats sums two Handlers' stats.
func addHandlerStats(a, b actors.HandlerStats) actors.HandlerStats {
	out := actors.HandlerStats{
		Open:           a.Open + b.Open,
		Traffic:        a.Traffic.Add(b.Traffic),
		HeartbeatKills: a.HeartbeatKills + b.HeartbeatKills,
		RTT:            a.RTT.Add(b.RTT),
		Upgrades:       map[int]uint64{},
		Closes:         map[actors.CloseKind]uint64{},
		Panics:         map[string]uint64{},
	}
	for _, m := range []map[string]uint64{a.Panics, b.Panics} {
		for k, v := range m {
			out.Panics[k] += v
		}
	}
	for _, m := range []map[int]uint64{a.Upgrades, b.Upgrades} {
		for k, v := range m {
			out.Upgrades[k] += v
		}
	}
	for _, m := range []map[actors.CloseKind]uint64{a.Closes, b.Closes} {
		for k, v := range m {
			out.Closes[k] += v
		}
	}
	return out
}
