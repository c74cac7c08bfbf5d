package actors_test

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/wsactor/wsactor/actors"
	"github.com/wsactor/wsactor/supervisor"
)

// Handler.Stats counts a heartbeat termination and its close (1006 by the
// server), and a normal close by the peer, on fake time.
func TestStatsCountClosesAndHeartbeatKills(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		events := make(chan any, 16)
		hb := supervisor.HeartbeatOptions{Interval: time.Second, Timeout: time.Second}
		h, srv, _ := fakeServer(t, echoProducer(events), &actors.HandlerOptions{Heartbeat: hb})
		silent := fakeDial(t, srv) // never reads: never answers a ping
		waitFor[*actors.Opened](t, events)
		waitFor[*actors.Closed](t, events)
		alive := fakeDial(t, srv)
		waitFor[*actors.Opened](t, events)
		alive.Close() // no close frame: 1006 by the peer
		waitFor[*actors.Closed](t, events)
		synctest.Wait()
		st := h.Stats()
		if st.HeartbeatKills != 1 {
			t.Errorf("HeartbeatKills = %d, want 1", st.HeartbeatKills)
		}
		want := map[actors.CloseKind]uint64{{Code: "1006", Side: "server"}: 1, {Code: "1006", Side: "peer"}: 1}
		if len(st.Closes) != len(want) || st.Closes[actors.CloseKind{Code: "1006", Side: "server"}] != 1 || st.Closes[actors.CloseKind{Code: "1006", Side: "peer"}] != 1 {
			t.Errorf("Closes = %v, want %v", st.Closes, want)
		}
		if st.Upgrades[101] != 2 || st.Open != 0 {
			t.Errorf("Upgrades %v, Open %d; want two 101s and none open", st.Upgrades, st.Open)
		}
		recent := h.RecentCloses()
		if len(recent) != 2 || !recent[0].ByPeer || recent[1].ByPeer || recent[0].Code != 1006 || recent[0].At.Before(recent[1].At) {
			t.Errorf("RecentCloses %+v, want the peer's close, then the heartbeat's", recent)
		}
		n := 0
		h.Range(func(*actors.Conn) bool { n++; return true })
		if n != 0 {
			t.Errorf("Range visited %d, want none open", n)
		}
		_ = silent
	})
}
