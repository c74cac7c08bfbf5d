package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wsactor/wsactor/room"
)

// RegistryCollector collects one room.Registry's metrics, labelled with its
// registry name. Rooms made by room.Spawn belong to no Registry and are not
// collected.
type RegistryCollector struct {
	g *room.Registry

	rooms, members, joins, leaves, broadcasts, deliveries *prometheus.Desc
}

// NewRegistryCollector returns the collector of g; name goes in the
// "registry" label, so that several Registries can be registered in one
// prometheus.Registry. A scrape reads g's counters (room.Registry.Stats):
// it asks no room anything, whatever the number of rooms.
func NewRegistryCollector(g *room.Registry, name string) *RegistryCollector {
	l := prometheus.Labels{"registry": name}
	return &RegistryCollector{
		g: g,
		rooms: prometheus.NewDesc("wsactor_rooms",
			"Rooms the registry holds (made and not stopped).", nil, l),
		members: prometheus.NewDesc("wsactor_room_members",
			"Memberships in the registry's rooms (a connection in three rooms counts three times).", nil, l),
		joins: prometheus.NewDesc("wsactor_room_joins_total",
			"Memberships begun: joins that added a connection to a room.", nil, l),
		leaves: prometheus.NewDesc("wsactor_room_leaves_total",
			"Memberships ended: by Leave, by the member's connection stopping, by State.Remove, or by the room stopping.", nil, l),
		broadcasts: prometheus.NewDesc("wsactor_room_broadcasts_total",
			"Broadcasts sent by the registry's rooms (Broadcast messages and State.Broadcast; Send to one member excluded).", nil, l),
		deliveries: prometheus.NewDesc("wsactor_room_deliveries_total",
			"Frames those broadcasts put into member queues; divided by wsactor_room_broadcasts_total it is the members reached per broadcast.", nil, l),
	}
}

// Describe implements prometheus.Collector.
func (c *RegistryCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.rooms, c.members, c.joins, c.leaves, c.broadcasts, c.deliveries} {
		ch <- d
	}
}

// Collect implements prometheus.Collector: it reads the Registry's
// counters (room.Registry.Stats) once per scrape.
func (c *RegistryCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.g.Stats()
	ch <- prometheus.MustNewConstMetric(c.rooms, prometheus.GaugeValue, float64(st.Rooms))
	ch <- prometheus.MustNewConstMetric(c.members, prometheus.GaugeValue, float64(st.Members))
	ch <- prometheus.MustNewConstMetric(c.joins, prometheus.CounterValue, float64(st.Joins))
	ch <- prometheus.MustNewConstMetric(c.leaves, prometheus.CounterValue, float64(st.Leaves))
	ch <- prometheus.MustNewConstMetric(c.broadcasts, prometheus.CounterValue, float64(st.Broadcasts))
	ch <- prometheus.MustNewConstMetric(c.deliveries, prometheus.CounterValue, float64(st.Deliveries))
}
