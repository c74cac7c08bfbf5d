package metrics_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"

	"github.com/wsactor/wsactor/actors"
	"github.com/wsactor/wsactor/metrics"
	"github.com/wsactor/wsactor/room"
	"github.com/wsactor/wsactor/supervisor"
	"github.com/wsactor/wsactor/transport"
)

// The Registry's collector reads its rooms' counters: a room, two members,
// a broadcast; then one member leaving and the room stopping. Two
// registries share one prometheus.Registry by their label.
func TestRegistryCollector(t *testing.T) {
	system := actors.NewSystem(zerolog.Nop())
	tree, err := supervisor.New(system)
	if err != nil {
		t.Fatal(err)
	}
	opened := make(chan *actors.Conn, 2)
	h, err := actors.NewHandler(system, func() actor.Actor {
		return actor.ReceiveFunc(func(ctx actor.Context) {
			if m, ok := ctx.Message().(*actors.Opened); ok {
				opened <- m.Conn
			}
		})
	}, &actors.HandlerOptions{Logger: zerolog.Nop(), Tree: tree})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), statusWait)
		defer cancel()
		if err := h.Shutdown(ctx); err != nil {
			t.Errorf("handler shutdown: %v", err)
		}
		if err := tree.Shutdown(ctx); err != nil {
			t.Errorf("tree shutdown: %v", err)
		}
		srv.Close()
	})

	chat := room.NewRegistry(tree, nil)
	reg := prometheus.NewRegistry()
	reg.MustRegister(metrics.NewRegistryCollector(chat, "chat"))
	reg.MustRegister(metrics.NewRegistryCollector(room.NewRegistry(tree, nil), "idle"))

	ctx, cancel := context.WithTimeout(context.Background(), statusWait)
	defer cancel()
	var clients []*websocket.Conn
	var conns []*actors.Conn
	var lobby *room.Room
	for range 2 {
		c, _, err := statusDial(t, statusWS(srv.URL), nil)
		if err != nil {
			t.Fatal(err)
		}
		clients, conns = append(clients, c), append(conns, <-opened)
		if lobby, _, err = chat.Join(ctx, "lobby", &room.Join{Conn: conns[len(conns)-1]}); err != nil {
			t.Fatal(err)
		}
	}
	lobby.Broadcast(transport.MessageText, []byte("hi"))
	for _, c := range clients {
		_ = c.SetReadDeadline(time.Now().Add(statusWait))
		if _, p, err := c.ReadMessage(); err != nil || string(p) != "hi" {
			t.Fatalf("broadcast: %q, %v", p, err)
		}
	}
	// The room handles Members after the broadcast: it has counted it.
	if ms, err := lobby.Members(ctx); err != nil || len(ms) != 2 {
		t.Fatalf("members: %v, %v", ms, err)
	}
	idle := map[string]float64{
		"wsactor_rooms": 0, "wsactor_room_members": 0, "wsactor_room_joins_total": 0,
		"wsactor_room_leaves_total": 0, "wsactor_room_broadcasts_total": 0, "wsactor_room_deliveries_total": 0,
	}
	checkRegistryMetrics(t, reg, map[string]map[string]float64{
		"chat": {
			"wsactor_rooms": 1, "wsactor_room_members": 2, "wsactor_room_joins_total": 2,
			"wsactor_room_leaves_total": 0, "wsactor_room_broadcasts_total": 1, "wsactor_room_deliveries_total": 2,
		},
		"idle": idle,
	})

	// One member leaves (Members is handled after the Leave), then the room
	// stops with the other, who leaves with it.
	lobby.Leave(conns[0].PID())
	if ms, err := lobby.Members(ctx); err != nil || len(ms) != 1 {
		t.Fatalf("members after a leave: %v, %v", ms, err)
	}
	if err := lobby.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	checkRegistryMetrics(t, reg, map[string]map[string]float64{
		"chat": {
			"wsactor_rooms": 0, "wsactor_room_members": 0, "wsactor_room_joins_total": 2,
			"wsactor_room_leaves_total": 2, "wsactor_room_broadcasts_total": 1, "wsactor_room_deliveries_total": 2,
		},
		"idle": idle,
	})

	problems, err := testutil.CollectAndLint(metrics.NewRegistryCollector(chat, "chat"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

// checkRegistryMetrics gathers reg and compares every value, by registry
// label, with want: exactly these metrics, with these values; those named
// _total are counters, the others gauges.
func checkRegistryMetrics(t *testing.T, reg *prometheus.Registry, want map[string]map[string]float64) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var registry string
			for _, l := range m.GetLabel() {
				if l.GetName() == "registry" {
					registry = l.GetValue()
				}
			}
			if got[registry] == nil {
				got[registry] = map[string]float64{}
			}
			v := m.GetGauge().GetValue()
			if counter := strings.HasSuffix(mf.GetName(), "_total"); counter != (m.Counter != nil) || counter == (m.Gauge != nil) {
				t.Errorf("%s is a %v", mf.GetName(), mf.GetType())
			} else if counter {
				v = m.GetCounter().GetValue()
			}
			got[registry][mf.GetName()] = v
		}
	}
	for registry, names := range want {
		for name, v := range names {
			if g, ok := got[registry][name]; !ok || g != v {
				t.Errorf("%s{registry=%q} = %v (present %v), want %v", name, registry, g, ok, v)
			}
		}
		if len(got[registry]) != len(names) {
			t.Errorf("registry %q has %d metrics, want %d: %v", registry, len(got[registry]), len(names), got[registry])
		}
	}
	if len(got) != len(want) {
		t.Errorf("metrics for %d registries, want %d: %v", len(got), len(want), got)
	}
}
