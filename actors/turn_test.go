package actors_test

import (
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
)

func readerTurnsOff() bool { return os.Getenv("WSACTOR_READER_TURNS") == "off" }

// stackHas reports whether the calling goroutine's stack mentions fn.
func stackHas(fn string) bool {
	buf := make([]byte, 64<<10)
	return strings.Contains(string(buf[:runtime.Stack(buf, false)]), fn)
}

// A received message posted to an idle actor is handled on the reader's
// goroutine (no hand-off to a worker); with DisableReaderTurns on a worker.
func TestReaderRunsIdleActorsTurn(t *testing.T) {
	for _, off := range []bool{false, true} {
		t.Run(fmt.Sprintf("DisableReaderTurns=%v", off), func(t *testing.T) {
			if !off && readerTurnsOff() {
				t.Skip("WSACTOR_READER_TURNS=off")
			}
			onReader := make(chan bool, 10)
			_, url, _ := testServer(t, func() actor.Actor {
				return actor.ReceiveFunc(func(ctx actor.Context) {
					if _, ok := ctx.Message().(*actors.Message); ok {
						onReader <- stackHas("transport.(*Conn).readFrames")
					}
				})
			}, &actors.HandlerOptions{DisableReaderTurns: off})
			c := dial(t, url)
			send := func() bool {
				if err := c.WriteMessage(websocket.TextMessage, []byte("x")); err != nil {
					t.Fatal(err)
				}
				return <-onReader
			}
			if !off {
				// The actor may still be busy on a worker with its start when
				// the first messages arrive (they then queue behind it, on
				// that worker); once it has been idle for one, it is for each.
				caught := false
				for range 100 {
					if caught = send(); caught {
						break
					}
				}
				if !caught {
					t.Fatal("100 messages sent one at a time, none handled on the reader")
				}
			}
			for i := range 5 {
				// One at a time, so the actor is idle when each arrives.
				if got := send(); got == off {
					t.Fatalf("message %d handled on the reader: %v, want %v", i, got, !off)
				}
			}
		})
	}
}

// sendFromOutside sends n messages to pid; its name marks the goroutine.
//
//go:noinline
func sendFromOutside(root *actor.RootContext, pid *actor.PID, n int) {
	for i := range n {
		root.Send(pid, i)
	}
}

// While the reader takes turns, messages sent to the connection actor by
// another goroutine are never handled on that goroutine (sending to a
// connection never blocks), whoever posts first to the idle actor; both
// streams arrive whole and each in its order.
func TestReaderTurnsNeverRunOnSenders(t *testing.T) {
	const n = 2000
	var (
		mu        sync.Mutex
		onSender  int
		fromPeer  []string
		fromOther []int
	)
	done := make(chan struct{})
	pids := make(chan *actor.PID, 1)
	_, url, system := testServer(t, func() actor.Actor {
		return actor.ReceiveFunc(func(ctx actor.Context) {
			switch m := ctx.Message().(type) {
			case *actors.Opened:
				pids <- ctx.Self()
			case *actors.Message:
				mu.Lock()
				fromPeer = append(fromPeer, m.Text())
				mu.Unlock()
			case int:
				mu.Lock()
				if stackHas("actors_test.sendFromOutside") {
					onSender++
				}
				fromOther = append(fromOther, m)
				if m == n-1 {
					close(done)
				}
				mu.Unlock()
			}
		})
	}, nil)
	c := dial(t, url)
	pid := <-pids
	writeErr := make(chan error, 1)
	go func() {
		for i := range n {
			if err := c.WriteMessage(websocket.TextMessage, []byte(fmt.Sprint(i))); err != nil {
				writeErr <- err
				return
			}
		}
		writeErr <- nil
	}()
	sendFromOutside(system.Root, pid, n)
	if err := <-writeErr; err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the outside messages did not all arrive")
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		got := len(fromPeer)
		mu.Unlock()
		if got == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d peer messages arrived", got, n)
		}
		time.Sleep(time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if onSender != 0 {
		t.Errorf("%d outside messages were handled on the sending goroutine", onSender)
	}
	for i := range n {
		if fromPeer[i] != fmt.Sprint(i) || fromOther[i] != i {
			t.Fatalf("message %d: peer %q, outside %d: out of order", i, fromPeer[i], fromOther[i])
		}
	}
}

// A Receive that blocks on the reader's turn holds the reader: nothing more
// is read (ReadPaused says since when) until it returns; then the rest
// arrives in order.
func TestReaderTurnHoldsReader(t *testing.T) {
	if readerTurnsOff() {
		t.Skip("WSACTOR_READER_TURNS=off")
	}
	release := make(chan struct{})
	got := make(chan string, 10)
	conns := make(chan *actors.Conn, 1)
	_, url, _ := testServer(t, func() actor.Actor {
		return actor.ReceiveFunc(func(ctx actor.Context) {
			switch m := ctx.Message().(type) {
			case *actors.Opened:
				conns <- m.Conn
			case *actors.Message:
				if m.Text() == "0" {
					<-release
				}
				got <- m.Text()
			}
		})
	}, nil)
	c := dial(t, url)
	conn := <-conns
	for i := range 4 {
		if err := c.WriteMessage(websocket.TextMessage, []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, "the reader paused", func() bool { return !conn.Transport().ReadPaused().IsZero() })
	time.Sleep(50 * time.Millisecond) // the reader would read the other three now if it could
	if n := conn.Transport().Stats().MessagesIn; n != 1 {
		t.Fatalf("%d messages read while the first was being handled, want 1", n)
	}
	close(release)
	for i := range 4 {
		select {
		case m := <-got:
			if m != fmt.Sprint(i) {
				t.Fatalf("message %d = %q", i, m)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("message %d never arrived", i)
		}
	}
}

// An actor that other actors keep busy does not keep its reader: once the
// reader's turn has handled a few dozen messages, the connection's reading
// goes to a new reader, so the peer's ping is answered while the flood is
// still being handled.
func TestReaderTurnBounded(t *testing.T) {
	if readerTurnsOff() {
		t.Skip("WSACTOR_READER_TURNS=off")
	}
	const flood = 1000
	var handled atomic.Int32
	_, url, _ := testServer(t, func() actor.Actor {
		return actor.ReceiveFunc(func(ctx actor.Context) {
			switch ctx.Message().(type) {
			case *actors.Message:
				// The reader's turn: start a flood that keeps the mailbox
				// from ever being empty while this turn runs.
				self, root := ctx.Self(), ctx.ActorSystem().Root
				go func() {
					for i := range flood {
						root.Send(self, i)
					}
				}()
				time.Sleep(time.Millisecond) // let the flood begin
			case int:
				time.Sleep(100 * time.Microsecond)
				handled.Add(1)
			}
		})
	}, nil)
	c := dial(t, url)
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
	waitUntil(t, "the flood to be handled", func() bool { return handled.Load() > actors.ReaderTurnBound })
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
	waitUntil(t, "the flood to end", func() bool { return handled.Load() == flood })
}
