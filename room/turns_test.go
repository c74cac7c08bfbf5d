package room_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/gorilla/websocket"

	"github.com/wsactor/wsactor/actors"
	"github.com/wsactor/wsactor/room"
	"github.com/wsactor/wsactor/transport"
)

// onReader reports whether the calling goroutine is a connection's reader.
func onReader() bool {
	buf := make([]byte, 64<<10)
	return strings.Contains(string(buf[:runtime.Stack(buf, false)]), "transport.(*Conn).readFrames")
}

// probeRoom reports, for every *input, whether the room handles it on a
// connection's reader.
type probeRoom struct{ got chan bool }

func (p *probeRoom) Receive(ctx actor.Context) {
	if _, ok := ctx.Message().(*input); ok {
		p.got <- onReader()
	}
}

// A member's message sent to an idle room (ctx.Send during the reader's
// turn) is handled by the room on the member's reader, with no hand-off to
// a worker; with DisableReaderTurns on a worker. Either way the room's
// broadcasts reach everyone.
func TestRoomTurnOnReader(t *testing.T) {
	for _, off := range []bool{false, true} {
		t.Run(fmt.Sprintf("DisableReaderTurns=%v", off), func(t *testing.T) {
			if !off && os.Getenv("WSACTOR_READER_TURNS") == "off" {
				t.Skip("WSACTOR_READER_TURNS=off")
			}
			got := make(chan bool, 10)
			e := newEnv(t, envConfig{
				handler: &actors.HandlerOptions{DisableReaderTurns: off},
				registry: &room.RegistryOptions{Options: func(string) *room.Options {
					return &room.Options{Behavior: func(*room.State) actor.Actor { return &probeRoom{got: got} }}
				}},
			})
			a, b := dial(t, e, "room=r&name=a", nil), dial(t, e, "room=r&name=b", nil)
			expect(t, a, "joined r")
			expect(t, b, "joined r")
			input := func(i int) bool {
				t.Helper()
				if err := a.WriteMessage(websocket.TextMessage, []byte("x")); err != nil {
					t.Fatal(err)
				}
				return <-got
			}
			if !off {
				// The joins' turns ran on workers, and one may still be
				// finishing when the first input comes (the room is then
				// busy, its worker takes the input): wait for one caught.
				for i := 0; !input(i); i++ {
					if i == 100 {
						t.Fatal("no input handled on the reader in 100")
					}
				}
			}
			// From here only a's reader drives the room: each input, and
			// each broadcast, finds the room idle, its previous turn run
			// to the end by the same reader before it read on.
			for i := range 5 {
				if r := input(i); r == off {
					t.Fatalf("input %d handled on a reader: %v, want %v", i, r, !off)
				}
				if err := a.WriteMessage(websocket.TextMessage, fmt.Appendf(nil, "all m%d", i)); err != nil {
					t.Fatal(err)
				}
				expect(t, a, fmt.Sprintf("m%d", i))
				expect(t, b, fmt.Sprintf("m%d", i))
			}
		})
	}
}

// floodRoom, told "start", sends itself 1,000 slow messages from another
// goroutine, so its turn (running on the reader of the member that sent
// "start") never finds the mailbox empty while the flood lasts.
type floodRoom struct{ handled *atomic.Int32 }

const flood = 1000

func (f *floodRoom) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *input:
		if m.text == "start" {
			self, root := ctx.Self(), ctx.ActorSystem().Root
			go func() {
				for i := range flood {
					root.Send(self, i)
				}
			}()
			time.Sleep(time.Millisecond) // let the flood begin
		}
	case int:
		time.Sleep(100 * time.Microsecond)
		f.handled.Add(1)
	}
}

// A room's turn taken by a member's reader is bounded: past 32 messages the
// reader hands its connection's reading to a new reader, so the member's
// ping is answered in the middle of a flood the room is still handling,
// not after it.
func TestRoomTurnOnReaderBounded(t *testing.T) {
	if os.Getenv("WSACTOR_READER_TURNS") == "off" {
		t.Skip("WSACTOR_READER_TURNS=off")
	}
	var handled atomic.Int32
	e := newEnv(t, envConfig{
		registry: &room.RegistryOptions{Options: func(string) *room.Options {
			return &room.Options{Behavior: func(*room.State) actor.Actor { return &floodRoom{handled: &handled} }}
		}},
	})
	c := dial(t, e, "room=r&name=a", nil)
	expect(t, c, "joined r")
	pong := make(chan int32, 1)
	c.SetPongHandler(func(string) error {
		pong <- handled.Load()
		return nil
	})
	go func() {
		for {
			if _, _, err := c.ReadMessage(); err != nil {
				return
			}
		}
	}()
	if err := c.WriteMessage(websocket.TextMessage, []byte("start")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the flood to be under way", func() bool { return handled.Load() > 64 })
	if err := c.WriteControl(websocket.PingMessage, []byte("p"), time.Now().Add(5*time.Second)); err != nil {
		t.Fatal(err)
	}
	select {
	case n := <-pong:
		if n >= flood {
			t.Fatalf("the ping was answered only after the whole flood (%d messages)", n)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no pong")
	}
	waitFor(t, "the flood to end", func() bool { return handled.Load() == flood })
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// relay sends everything it gets, from its peer or from anyone, on to its
// room as an *input.
type relay struct {
	e    *env
	room *actor.PID
}

func (r *relay) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actors.Opened:
		rm, err := r.e.reg.Get(context.Background(), "r")
		if err != nil {
			m.Conn.Close(transport.StatusInternalError, err.Error())
			return
		}
		r.room = rm.PID()
		r.e.opened <- m.Conn
	case *actors.Message:
		ctx.Send(r.room, &input{text: "peer"})
	case int:
		ctx.Send(r.room, &input{text: "other"})
	}
}

// countRoom counts the inputs it handles.
type countRoom struct{ n *atomic.Int64 }

func (c *countRoom) Receive(ctx actor.Context) {
	if _, ok := ctx.Message().(*input); ok {
		c.n.Add(1)
	}
}

// Members whose actors relay to one room both what their peers send (turns
// on the readers, catching the room's) and what other goroutines send them
// (turns on workers), all at once: the room handles every message, so no
// caught turn is left unrun when the traffic stops.
func TestRoomTurnsUnderMixedTraffic(t *testing.T) {
	var n atomic.Int64
	e := newEnv(t, envConfig{
		opened: 8,
		behave: func(e *env) actor.Actor { return &relay{e: e} },
		registry: &room.RegistryOptions{Options: func(string) *room.Options {
			return &room.Options{Behavior: func(*room.State) actor.Actor { return &countRoom{n: &n} }}
		}},
	})
	const conns, each = 3, 2000
	var clients []*websocket.Conn
	var pids []*actor.PID
	for range conns {
		clients = append(clients, dial(t, e, "", nil))
		pids = append(pids, (<-e.opened).PID())
	}
	var wg sync.WaitGroup
	for i := range conns {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for range each {
				if err := clients[i].WriteMessage(websocket.TextMessage, []byte("x")); err != nil {
					t.Error(err)
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			for j := range each {
				e.system.Root.Send(pids[i], j)
			}
		}()
	}
	wg.Wait()
	waitFor(t, fmt.Sprintf("the room to handle all %d messages", 2*conns*each), func() bool {
		return n.Load() == 2*conns*each
	})
}
