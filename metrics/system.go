package metrics

import (
	"sync"
	"sync/atomic"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/eventstream"
	"github.com/prometheus/client_golang/prometheus"
)

// SystemCollector collects an actor system's own numbers: the actors it
// runs, its dead letters and its supervision decisions. Register one per
// actor system.
//
// It replaces protoactor's OpenTelemetry metrics (actor.WithMetricProviders),
// which wsactor does not turn on: at the pinned version they register a
// callback per spawned actor with the global meter and never remove it, so
// a server whose connections are actors would keep about 2.4 KB for every
// connection it ever had (measured: 20,000 actors spawned and stopped, heap
// +47 MB with them on, nothing with them off). Here the actor count is read
// from the process registry at scrape time and the events are counted from
// the system's event stream.
type SystemCollector struct {
	system *actor.ActorSystem

	mu  sync.Mutex
	sub *eventstream.Subscription

	deadUser, deadSystem atomic.Uint64
	directives           [4]atomic.Uint64 // by actor.Directive: Resume, Restart, Stop, Escalate

	actors, deadLetters, failures *prometheus.Desc
}

// NewSystemCollector returns the collector of system. It subscribes to the
// system's event stream to count dead letters and supervision events from
// now on; Close ends that.
func NewSystemCollector(system *actor.ActorSystem) *SystemCollector {
	c := &SystemCollector{
		system: system,
		actors: prometheus.NewDesc("wsactor_actors",
			"Actors registered in the actor system: connections, rooms, topics, the supervision tree, and requests in flight (futures).", nil, nil),
		deadLetters: prometheus.NewDesc("wsactor_dead_letters_total",
			"Messages sent to actors that had stopped, by kind: user (a behaviour's message, often a send racing a close) or system (stop, watch: normal during shutdown).", []string{"kind"}, nil),
		failures: prometheus.NewDesc("wsactor_actor_failures_total",
			"Failures that reached protoactor's supervision (wsactor's own host recovers behaviours' panics first: see wsactor_panics_total), by the directive applied.", []string{"directive"}, nil),
	}
	c.sub = system.EventStream.Subscribe(c.onEvent)
	return c
}

func (c *SystemCollector) onEvent(evt any) {
	switch e := evt.(type) {
	case *actor.DeadLetterEvent:
		if _, ok := e.Message.(actor.SystemMessage); ok {
			c.deadSystem.Add(1)
		} else {
			c.deadUser.Add(1)
		}
	case *actor.SupervisorEvent:
		if d := int(e.Directive); d >= 0 && d < len(c.directives) {
			c.directives[d].Add(1)
		}
	}
}

// Close unsubscribes the collector from the event stream: the counters
// stop moving. It is safe to call more than once.
func (c *SystemCollector) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sub != nil {
		c.system.EventStream.Unsubscribe(c.sub)
		c.sub = nil
	}
}

// Describe implements prometheus.Collector.
func (c *SystemCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.actors
	ch <- c.deadLetters
	ch <- c.failures
}

// Collect implements prometheus.Collector. Counting the actors takes the
// registry's 1,024 buckets in turn (about a millisecond), never all at once.
func (c *SystemCollector) Collect(ch chan<- prometheus.Metric) {
	n := 0
	for _, m := range c.system.ProcessRegistry.LocalPIDs.LocalPIDs {
		n += m.Count()
	}
	ch <- prometheus.MustNewConstMetric(c.actors, prometheus.GaugeValue, float64(n))
	ch <- prometheus.MustNewConstMetric(c.deadLetters, prometheus.CounterValue, float64(c.deadUser.Load()), "user")
	ch <- prometheus.MustNewConstMetric(c.deadLetters, prometheus.CounterValue, float64(c.deadSystem.Load()), "system")
	for d := range c.directives {
		ch <- prometheus.MustNewConstMetric(c.failures, prometheus.CounterValue, float64(c.directives[d].Load()), directiveNames[d])
	}
}

var directiveNames = [...]string{"resume", "restart", "stop", "escalate"}
