package actors_test

import (
	"runtime"
	"testing"
	"testing/synctest"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/gorilla/websocket"

	"github.com/wsactor/wsactor/actors"
)

// TestInboundFloodMemoryBounded: a peer that sends far faster than its actor
// handles is paused by the reader (InboxLimit), so the server's heap does not
// grow with what the peer sends.
func TestInboundFloodMemoryBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const (
			inbox   = 16
			msgSize = 16 << 10
			total   = 2000 // 32 MB offered
		)
		handled := make(chan struct{}, total)
		release := make(chan struct{})
		_, srv, _ := fakeServer(t, func() actor.Actor {
			return actor.ReceiveFunc(func(ctx actor.Context) {
				if _, ok := ctx.Message().(*actors.Message); ok {
					<-release
					handled <- struct{}{}
				}
			})
		}, &actors.HandlerOptions{InboxLimit: inbox, DisableReaderTurns: true}) // the inbox, read ahead
		c := fakeDial(t, srv)
		waiting := make(chan struct{}, 1)
		defer actors.SetInboxWaitHook(func(*actors.Conn, int, int) {
			select {
			case waiting <- struct{}{}:
			default:
			}
		})()

		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)

		payload := make([]byte, msgSize)
		writeErr := make(chan error, 1)
		go func() {
			for range total {
				_ = c.SetWriteDeadline(time.Now().Add(10 * time.Second))
				if err := c.WriteMessage(websocket.BinaryMessage, payload); err != nil {
					writeErr <- err
					return
				}
			}
			writeErr <- nil
		}()
		// The actor is stuck on the first message; wait until the reader has
		// filled the inbox and waits for room.
		select {
		case <-waiting:
		case <-time.After(10 * time.Second):
			t.Fatal("the reader never waited for inbox room")
		}
		runtime.GC()
		var during runtime.MemStats
		runtime.ReadMemStats(&during)
		growth := int64(during.HeapAlloc) - int64(before.HeapAlloc)
		// Bound: the inbox plus the message being read, plus slack for the
		// client side of this test and the in-memory network's buffer (both
		// live in this process).
		limit := int64((inbox+2)*msgSize*2 + 4<<20)
		t.Logf("heap growth while flooded: %d KB (bound %d KB)", growth>>10, limit>>10)
		if growth > limit {
			t.Fatalf("heap grew %d bytes under a flood, bound %d", growth, limit)
		}
		close(release)
		for i := range total {
			select {
			case <-handled:
			case <-time.After(10 * time.Second):
				t.Fatalf("only %d of %d messages handled after release", i, total)
			}
		}
		if err := <-writeErr; err != nil {
			t.Fatalf("client write: %v", err)
		}
	})
}
