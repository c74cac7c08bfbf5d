package actors_test

import (
	"testing"
	"testing/synctest"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/wsactor/wsactor/actors"
)

// watcher spawns an actor that reports every *actor.Terminated it gets.
func watcher(system *actor.ActorSystem) (*actor.PID, <-chan *actor.PID) {
	got := make(chan *actor.PID, 8)
	pid := system.Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
		if m, ok := ctx.Message().(*actor.Terminated); ok {
			got <- m.Who
		}
	}))
	return pid, got
}

// TestNotifyStopped: a connection tells each actor that asked, once, when
// its actor stops, whichever way it stops; not one that stopped asking; and
// refuses to watch once stopped.
func TestNotifyStopped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		events := make(chan any, 16)
		_, srv, system := fakeServer(t, echoProducer(events), nil)
		a, aGot := watcher(system)
		b, bGot := watcher(system)

		// Stopped from outside.
		_ = fakeDial(t, srv)
		conn := waitFor[*actors.Opened](t, events).Conn
		if !conn.NotifyStopped(a) || !conn.NotifyStopped(a) || !conn.NotifyStopped(b) {
			t.Fatal("NotifyStopped refused a live connection")
		}
		conn.StopNotifying(b)
		system.Root.Stop(conn.PID())
		if who := <-aGot; !who.Equal(conn.PID()) {
			t.Fatalf("Terminated names %v, want %v", who, conn.PID())
		}
		synctest.Wait()
		if len(aGot) != 0 || len(bGot) != 0 {
			t.Fatalf("after one stop: %d more Terminated to a, %d to b (unwatched); want none", len(aGot), len(bGot))
		}
		if conn.NotifyStopped(b) {
			t.Fatal("NotifyStopped accepted a stopped connection")
		}

		// Closed by the peer.
		c2 := fakeDial(t, srv)
		conn2 := waitFor[*actors.Opened](t, events).Conn
		if !conn2.NotifyStopped(b) {
			t.Fatal("NotifyStopped refused a live connection")
		}
		_ = c2.Close()
		if who := <-bGot; !who.Equal(conn2.PID()) {
			t.Fatalf("Terminated names %v, want %v", who, conn2.PID())
		}

		var none *actors.Conn
		if none.NotifyStopped(a) {
			t.Fatal("a nil Conn accepted a watcher")
		}
		none.StopNotifying(a)
		system.Root.Stop(a)
		system.Root.Stop(b)
	})
}
