package cluster_test

import (
	"fmt"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wsactor/wsactor/cluster"
)

// scrape gathers n's collector from a registry of its own and returns the
// values by series ("name" or "name{label=value}"), with the Stats read
// just before and just after (equal when nothing moved meanwhile).
func scrape(t *testing.T, n *cluster.Node) (map[string]float64, cluster.Stats, cluster.Stats) {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(cluster.NewCollector(n))
	before := n.Stats()
	families, err := reg.Gather()
	after := n.Stats()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	got := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			key := f.GetName()
			for _, l := range m.GetLabel() {
				key += fmt.Sprintf("{%s=%s}", l.GetName(), l.GetValue())
			}
			got[key] = m.GetCounter().GetValue()
		}
	}
	return got, before, after
}

// want is what the collector must report for st.
func want(st cluster.Stats) map[string]float64 {
	return map[string]float64{
		"wsactor_cluster_rooms_activated_total":                    float64(st.RoomsActivated),
		"wsactor_cluster_published_total":                          float64(st.Published),
		"wsactor_cluster_delivers_sent_total{scope=local}":         float64(st.DeliversSent - st.DeliversSentRemote),
		"wsactor_cluster_delivers_sent_total{scope=remote}":        float64(st.DeliversSentRemote),
		"wsactor_cluster_delivers_received_total":                  float64(st.DeliversReceived),
		"wsactor_cluster_frames_queued_total":                      float64(st.FramesQueued),
		"wsactor_cluster_duplicates_total":                         float64(st.Duplicates),
		"wsactor_cluster_buffered_total":                           float64(st.Buffered),
		"wsactor_cluster_replayed_total":                           float64(st.Replayed),
		"wsactor_cluster_dropped_total":                            float64(st.Dropped),
		"wsactor_cluster_restores_total":                           float64(st.Restores),
		"wsactor_cluster_history_sent_total":                       float64(st.HistorySent),
		"wsactor_cluster_topic_messages_total{direction=sent}":     float64(st.TopicMessagesSent),
		"wsactor_cluster_topic_messages_total{direction=received}": float64(st.TopicMessagesReceived),
		"wsactor_cluster_topic_bytes_sent_total":                   float64(st.TopicBytesSent),
	}
}

// scrapeExact scrapes n until the scrape is taken while its counters stand
// still, checks it reports exactly n.Stats(), and returns it.
func scrapeExact(t *testing.T, n *cluster.Node) map[string]float64 {
	t.Helper()
	for range 100 {
		got, before, after := scrape(t, n)
		if before != after {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		if w := want(before); !reflect.DeepEqual(got, w) {
			t.Fatalf("node %s: scraped %v, want %v (Stats %+v)", n.Address(), got, w, before)
		}
		return got
	}
	t.Fatalf("node %s: counters never stood still", n.Address())
	return nil
}

// A room on three nodes, its grain on node 0, members on nodes 0 (one), 1
// (two) and 2 (one): each node's collector reports exactly its Stats, and
// the broadcasts move published and delivers as the fan-out says: one local
// and two remote Delivers per broadcast on the grain's node, one Deliver
// received per broadcast on each node, one frame per member.
func TestCollector(t *testing.T) {
	nodes := nodesOf(t, "shared", serveOptions{})
	roomName := roomOwnedBy(t, nodes, 0, fmt.Sprintf("metrics-%d", time.Now().UnixNano()))
	clients := []*client{
		dialClient(t, nodes[0].url, roomName, "n0c0", nil),
		dialClient(t, nodes[1].url, roomName, "n1c0", nil),
		dialClient(t, nodes[1].url, roomName, "n1c1", nil),
		dialClient(t, nodes[2].url, roomName, "n2c0", nil),
	}
	before := make([]map[string]float64, len(nodes))
	for i, tn := range nodes {
		before[i] = scrapeExact(t, tn.node)
	}

	const b = 5
	sent := sendAll(t, clients[1:2], 0, b) // from node 1: through its shard to the grain
	waitFor(t, 20*time.Second, "every client has every message", func() bool {
		for _, c := range clients {
			if c.count() < b {
				return false
			}
		}
		return true
	})
	checkAll(t, clients, sent)

	moved := func(i int, series string) float64 {
		return scrapeExact(t, nodes[i].node)[series] - before[i][series]
	}
	for _, c := range []struct {
		node   int
		series string
		want   float64
	}{
		{0, "wsactor_cluster_published_total", b},
		{0, "wsactor_cluster_delivers_sent_total{scope=local}", b},
		{0, "wsactor_cluster_delivers_sent_total{scope=remote}", 2 * b},
		{0, "wsactor_cluster_delivers_received_total", b},
		{0, "wsactor_cluster_frames_queued_total", b},
		{1, "wsactor_cluster_published_total", 0},
		{1, "wsactor_cluster_delivers_sent_total{scope=remote}", 0},
		{1, "wsactor_cluster_delivers_received_total", b},
		{1, "wsactor_cluster_frames_queued_total", 2 * b},
		{2, "wsactor_cluster_delivers_received_total", b},
		{2, "wsactor_cluster_frames_queued_total", b},
		{2, "wsactor_cluster_dropped_total", 0},
	} {
		if got := moved(c.node, c.series); got != c.want {
			t.Errorf("node %d: %s moved by %v, want %v", c.node, c.series, got, c.want)
		}
	}

	for _, tn := range nodes {
		c := cluster.NewCollector(tn.node)
		if problems, err := testutil.CollectAndLint(c); err != nil || len(problems) > 0 {
			t.Errorf("lint: %v %v", problems, err)
		}
		if n := testutil.CollectAndCount(c); n != 15 {
			t.Errorf("%d series, want 15", n)
		}
	}
}

// docs/operations.md describes every metric the collector exports, and
// names no cluster metric it does not.
func TestCollectorNamesInDocs(t *testing.T) {
	descs := make(chan *prometheus.Desc, 32)
	cluster.NewCollector(nil).Describe(descs)
	close(descs)
	names := map[string]bool{}
	fq := regexp.MustCompile(`fqName: "([a-z_]+)"`)
	for d := range descs {
		if m := fq.FindStringSubmatch(d.String()); m != nil {
			names[m[1]] = true
		}
	}
	doc, err := os.ReadFile("../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	for n := range names {
		if !strings.Contains(string(doc), "`"+n) {
			t.Errorf("docs/operations.md does not describe %s", n)
		}
	}
	for _, ref := range regexp.MustCompile(`wsactor_cluster_[a-z_]+`).FindAllString(string(doc), -1) {
		if !names[ref] {
			t.Errorf("docs/operations.md names %s, which the collector does not export", ref)
		}
	}
}
