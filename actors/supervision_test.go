package actors_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"

	"github.com/wsactor/wsactor/actors"
	"github.com/wsactor/wsactor/supervisor"
	"github.com/wsactor/wsactor/transport"
	"github.com/wsactor/wsactor/wsactortest"
)

// counter replies with how many messages it has handled, and panics on
// "panic": its state must survive a resumed panic.
type counter struct{ n int }

func (c *counter) Receive(ctx actor.Context) {
	if m, ok := ctx.Message().(*actors.Message); ok {
		if m.Text() == "panic" {
			panic("asked to")
		}
		c.n++
		_ = m.Conn.SendText(strconv.Itoa(c.n))
	}
}

func TestHandlerPanicResumesWithinBudgetThenCloses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, srv, _ := fakeServer(t, func() actor.Actor { return &counter{} }, &actors.HandlerOptions{
			HandlerPanic: supervisor.Policy{Budget: supervisor.Budget{Max: 2, Within: time.Hour}},
		})
		c, other := fakeDial(t, srv), fakeDial(t, srv)
		send := func(s string) { _ = c.WriteMessage(websocket.TextMessage, []byte(s)) }

		send("a")
		if got := readText(t, c); got != "1" {
			t.Fatalf("got %q", got)
		}
		for i := range 2 { // within budget: resumed, state kept
			send("panic")
			send("b")
			if got, want := readText(t, c), strconv.Itoa(i+2); got != want {
				t.Fatalf("after panic %d: count %q, want %q (state lost or connection gone)", i+1, got, want)
			}
		}
		send("panic") // third panic: past the budget
		if code, _ := readClose(t, c); code != int(transport.StatusInternalError) {
			t.Fatalf("past budget: close %d, want 1011", code)
		}
		_ = other.WriteMessage(websocket.TextMessage, []byte("x"))
		if got := readText(t, other); got != "1" {
			t.Fatalf("other connection disturbed: %q", got)
		}
	})
}

func TestDecodeHook(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		events := make(chan any, 16)
		values := make(chan any, 16)
		_, srv, _ := fakeServer(t, func() actor.Actor {
			return actor.ReceiveFunc(func(ctx actor.Context) {
				switch m := ctx.Message().(type) {
				case *actors.Message:
					values <- m.Value
				case *actors.Closed:
					events <- m
				}
			})
		}, &actors.HandlerOptions{
			Decode: func(_ actors.MessageType, p []byte) (any, error) {
				switch string(p) {
				case "boom":
					panic("decoder bug")
				case "junk":
					return nil, errors.New("not a number")
				}
				return strconv.Atoi(string(p))
			},
			DecodePanic: supervisor.Policy{Budget: supervisor.Budget{Max: 1, Within: time.Hour}},
		})

		c := fakeDial(t, srv)
		for _, s := range []string{"1", "boom", "2"} {
			_ = c.WriteMessage(websocket.TextMessage, []byte(s))
		}
		for _, want := range []int{1, 2} { // "boom" was dropped, reading went on
			select {
			case v := <-values:
				if v != want {
					t.Fatalf("value %v, want %d", v, want)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("decoded value missing")
			}
		}
		_ = c.WriteMessage(websocket.TextMessage, []byte("boom")) // past the budget
		if code, _ := readClose(t, c); code != 1011 {
			t.Fatalf("decoder panic past budget: close %d, want 1011", code)
		}
		waitFor[*actors.Closed](t, events)

		c2 := fakeDial(t, srv)
		_ = c2.WriteMessage(websocket.TextMessage, []byte("junk"))
		if code, _ := readClose(t, c2); code != int(transport.StatusInvalidFramePayloadData) {
			t.Fatalf("decode error: close %d, want 1007", code)
		}
		if closed := waitFor[*actors.Closed](t, events); !errors.Is(closed.Err, actors.ErrDecode) {
			t.Fatalf("Closed.Err = %v, want ErrDecode", closed.Err)
		}
	})
}

func TestHeartbeatKillsSilentClientOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		events := make(chan any, 16)
		hb := supervisor.HeartbeatOptions{Interval: 100 * time.Millisecond, Timeout: 400 * time.Millisecond}
		h, srv, _ := fakeServer(t, echoProducer(events), &actors.HandlerOptions{Heartbeat: hb})

		// A client that completes the handshake and then never reads: gorilla
		// answers pings only while reading, so this peer is silent.
		silent := fakeDial(t, srv)
		waitFor[*actors.Opened](t, events)

		// A client that reads answers every ping and must survive.
		alive := fakeDial(t, srv)
		waitFor[*actors.Opened](t, events)
		aliveErr := make(chan error, 1)
		go func() {
			for {
				if _, _, err := alive.ReadMessage(); err != nil {
					aliveErr <- err
					return
				}
			}
		}()

		closed := waitFor[*actors.Closed](t, events)
		if !errors.Is(closed.Err, supervisor.ErrHeartbeatTimeout) || closed.ByPeer {
			t.Fatalf("Closed = %+v, want ErrHeartbeatTimeout, not by peer", closed)
		}
		// Three more intervals: the reading client stays, no second Closed.
		select {
		case m := <-events:
			t.Fatalf("unexpected event %#v", m)
		case err := <-aliveErr:
			t.Fatalf("answering client was dropped: %v", err)
		case <-time.After(3 * hb.Interval):
		}
		if h.Len() != 1 {
			t.Fatalf("Len = %d, want 1", h.Len())
		}
		_ = silent
	})
}

func TestClientHeartbeatAndReconnect(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// The server closes each of the first two sessions right after it opens
		// (a restarting server), then echoes.
		var sessions atomic.Int32
		_, srv, system := fakeServer(t, func() actor.Actor {
			return actor.ReceiveFunc(func(ctx actor.Context) {
				switch m := ctx.Message().(type) {
				case *actors.Opened:
					if sessions.Add(1) <= 2 {
						m.Conn.Close(transport.StatusServiceRestart, "restarting")
					}
				case *actors.Message:
					_ = m.Conn.Send(m.Type, m.Data)
				}
			})
		}, nil)

		events := make(chan any, 32)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		first, _, err := actors.Dial(ctx, system, srv.URL, func() actor.Actor {
			return actor.ReceiveFunc(func(ctx actor.Context) {
				switch m := ctx.Message().(type) {
				case *actors.Opened, *actors.Closed, *actors.Reconnecting:
					events <- m
				case *actors.Message:
					events <- m.Text()
				}
			})
		}, &actors.DialOptions{
			DialOptions: transport.DialOptions{NetDialContext: srv.Net.Dial},
			Reconnect:   &actors.ReconnectOptions{Backoff: supervisor.Backoff{Min: 5 * time.Millisecond, Max: 20 * time.Millisecond}},
		})
		if err != nil {
			t.Fatal(err)
		}
		// On failure the client would go on reconnecting (and logging to the
		// system's test logger) after the test: stop it first.
		t.Cleanup(func() { system.Root.StopFuture(first.PID()).Wait() })
		var last *actors.Conn
		for i := range 2 {
			waitFor[*actors.Opened](t, events)
			closed := waitFor[*actors.Closed](t, events)
			if closed.Code != transport.StatusServiceRestart {
				t.Fatalf("session %d closed with %d", i+1, closed.Code)
			}
			if r := waitFor[*actors.Reconnecting](t, events); r.Attempt != 1 {
				t.Fatalf("Reconnecting.Attempt = %d, want 1 (reset after a successful reconnect)", r.Attempt)
			}
		}
		last = waitFor[*actors.Opened](t, events).Conn
		if last == first || last.PID().Id != first.PID().Id {
			t.Fatal("a reconnect must keep the actor (same PID) and give a new Conn")
		}
		_ = last.SendText("after reconnects")
		if got := waitFor[string](t, events); got != "after reconnects" {
			t.Fatalf("echo %q", got)
		}
		// Our own clean close ends it: no reconnect.
		last.Close(transport.StatusNormalClosure, "bye")
		waitFor[*actors.Closed](t, events)
		select {
		case m := <-events:
			if _, ok := m.(*actors.Reconnecting); ok {
				t.Fatal("reconnected after our own clean close")
			}
		case <-time.After(100 * time.Millisecond):
		}
		if n := sessions.Load(); n != 3 {
			t.Fatalf("server saw %d sessions, want 3", n)
		}
	})
}

// silentServer upgrades every request with gorilla on an in-memory network
// and then never reads, so it never answers a ping. Call it inside
// synctest.Test.
func silentServer(t *testing.T) *wsactortest.Server {
	t.Helper()
	held := make(chan *websocket.Conn, 4)
	srv := wsactortest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, err := (&websocket.Upgrader{}).Upgrade(w, r, nil); err == nil {
			held <- c
		}
	}))
	t.Cleanup(func() {
		srv.Close()
		for {
			select {
			case c := <-held:
				c.Close()
			default:
				return
			}
		}
	})
	return srv
}

// dialSilent dials srv with actors.Dial and returns when the client saw
// its connection close, and why.
func dialSilent(t *testing.T, srv *wsactortest.Server, opts actors.DialOptions) (*actors.Closed, time.Duration) {
	t.Helper()
	settleDeadLetters(t)
	system := actors.NewSystem(zerolog.Nop())
	closed := make(chan *actors.Closed, 1)
	opts.NetDialContext = srv.Net.Dial
	start := time.Now()
	_, _, err := actors.Dial(context.Background(), system, srv.URL, func() actor.Actor {
		return actor.ReceiveFunc(func(ctx actor.Context) {
			if m, ok := ctx.Message().(*actors.Closed); ok {
				closed <- m
			}
		})
	}, &opts)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-closed:
		return m, time.Since(start)
	case <-time.After(time.Hour):
		t.Fatal("silent server not detected in an hour")
		return nil, 0
	}
}

func TestClientHeartbeatDetectsSilentServer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		hb := supervisor.HeartbeatOptions{Interval: 50 * time.Millisecond, Timeout: 50 * time.Millisecond}
		m, after := dialSilent(t, silentServer(t), actors.DialOptions{Heartbeat: hb})
		if !errors.Is(m.Err, supervisor.ErrHeartbeatTimeout) {
			t.Fatalf("Closed.Err = %v, want ErrHeartbeatTimeout", m.Err)
		}
		if lo, hi := hb.Interval+hb.Timeout, hb.Interval+hb.Timeout+hb.Interval/10+time.Millisecond*5; after < lo || after > hi {
			t.Fatalf("terminated after %v, want between %v and %v", after, lo, hi)
		}
	})
}

// The client's heartbeat is on with zero options (the ws README's client
// heartbeat is opt-in code; here it is the default): a server that stops
// answering is dropped after 30s unheard plus 30s to answer the ping.
func TestClientHeartbeatOnByDefault(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, after := dialSilent(t, silentServer(t), actors.DialOptions{})
		if !errors.Is(m.Err, supervisor.ErrHeartbeatTimeout) {
			t.Fatalf("Closed.Err = %v, want ErrHeartbeatTimeout", m.Err)
		}
		if lo, hi := 60*time.Second, 63*time.Second; after < lo || after > hi {
			t.Fatalf("terminated after %v, want between %v and %v (default 30s + 30s, tick 3s)", after, lo, hi)
		}
	})
}

func TestShutdownThousandConnections(t *testing.T) {
	if testing.Short() {
		t.Skip("1,000 sockets")
	}
	system := actors.NewSystem(zerolog.Nop())
	var closedN atomic.Int32
	h, err := actors.NewHandler(system, func() actor.Actor {
		return actor.ReceiveFunc(func(ctx actor.Context) {
			if _, ok := ctx.Message().(*actors.Closed); ok {
				closedN.Add(1)
			}
		})
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	url := "ws://" + ln.Addr().String()
	const n = 1000
	done := make(chan int, n)
	for i := range n {
		c, _, err := websocket.DefaultDialer.Dial(url, nil)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		go func() {
			defer c.Close()
			for {
				if _, _, err := c.ReadMessage(); err != nil {
					var ce *websocket.CloseError
					if errors.As(err, &ce) {
						done <- ce.Code
					} else {
						done <- -1
					}
					return
				}
			}
		}()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := h.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	for range n {
		if code := <-done; code != 1001 {
			t.Fatalf("client saw %d, want 1001", code)
		}
	}
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if h.Len() != 0 || closedN.Load() != n {
		t.Fatalf("Len %d, Closed %d times; want 0 and %d", h.Len(), closedN.Load(), n)
	}
}

// A reader held back by InboxLimit (a slow actor, not a silent peer) must not
// be killed by the heartbeat. This one stays on loopback TCP: what spares the
// peer is the kernel's record of data reaching the socket (LastHeard), which
// an in-memory pipe does not have.
func TestHeartbeatSparesPeerOfSlowActor(t *testing.T) {
	events := make(chan any, 16)
	release := make(chan struct{})
	hb := supervisor.HeartbeatOptions{Interval: 50 * time.Millisecond, Timeout: 100 * time.Millisecond}
	_, url, _ := testServer(t, func() actor.Actor {
		return actor.ReceiveFunc(func(ctx actor.Context) {
			switch m := ctx.Message().(type) {
			case *actors.Message:
				<-release
				events <- m.Text()
			case *actors.Closed:
				events <- m
			}
		})
	}, &actors.HandlerOptions{Heartbeat: hb, InboxLimit: 1})
	c := dial(t, url)
	go func() {
		for {
			if _, _, err := c.ReadMessage(); err != nil { // answers pings
				return
			}
		}
	}()
	for i := range 3 {
		_ = c.WriteMessage(websocket.TextMessage, []byte(strconv.Itoa(i)))
	}
	// The actor holds the first message, the mailbox the second, the reader
	// waits with the third: many heartbeat timeouts pass.
	time.Sleep(10 * (hb.Interval + hb.Timeout))
	close(release)
	for i := range 3 {
		switch m := waitFor[any](t, events).(type) {
		case string:
			if m != strconv.Itoa(i) {
				t.Fatalf("message %q, want %d", m, i)
			}
		case *actors.Closed:
			t.Fatalf("connection closed while its actor was slow: %+v", m)
		}
	}
}

func TestReconnectStopsOnRefusal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var sessions atomic.Int32
		_, srv, system := fakeServer(t, func() actor.Actor {
			return actor.ReceiveFunc(func(ctx actor.Context) {
				if m, ok := ctx.Message().(*actors.Opened); ok {
					m.Conn.Close(transport.StatusServiceRestart, "restarting")
				}
			})
		}, &actors.HandlerOptions{AcceptOptions: transport.AcceptOptions{
			Authenticate: func(*http.Request) (any, error) {
				if sessions.Add(1) == 1 {
					return "ok", nil
				}
				return nil, errors.New("token expired")
			},
		}})
		events := make(chan any, 16)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, _, err := actors.Dial(ctx, system, srv.URL, func() actor.Actor {
			return actor.ReceiveFunc(func(ctx actor.Context) {
				switch m := ctx.Message().(type) {
				case *actors.Reconnecting, *actor.Stopped:
					events <- m
				}
			})
		}, &actors.DialOptions{
			DialOptions: transport.DialOptions{NetDialContext: srv.Net.Dial},
			Reconnect:   &actors.ReconnectOptions{Backoff: supervisor.Backoff{Min: time.Millisecond, Max: 5 * time.Millisecond}},
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { system.Root.StopFuture(conn.PID()).Wait() })
		waitFor[*actors.Reconnecting](t, events) // after the 1012
		waitFor[*actor.Stopped](t, events)       // the 401 ends it
		if n := sessions.Load(); n != 2 {
			t.Fatalf("server saw %d handshakes, want 2 (no retry after 401)", n)
		}
	})
}

// restartable counts messages like counter and tells its peer when it was
// made by a restart.
type restartable struct {
	counter
	opened chan<- *actors.Opened
}

func (r *restartable) Receive(ctx actor.Context) {
	if m, ok := ctx.Message().(*actors.Opened); ok {
		r.opened <- m
		if m.Restarted != nil {
			_ = m.Conn.SendText("restarted")
		}
		return
	}
	r.counter.Receive(ctx)
}

// TestHandlerPanicRestartKeepsSocket: under supervisor.Restart a panic
// replaces the behaviour with a fresh one (its state starts over) on the
// same socket; the fresh behaviour gets *actors.Opened again, for the same
// Conn, with Restarted set. Past the budget the connection closes with 1011.
func TestHandlerPanicRestartKeepsSocket(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		opened := make(chan *actors.Opened, 8)
		var made atomic.Int32
		_, srv, _ := fakeServer(t, func() actor.Actor {
			made.Add(1)
			return &restartable{opened: opened}
		}, &actors.HandlerOptions{
			HandlerPanic: supervisor.Policy{Directive: supervisor.Restart, Budget: supervisor.Budget{Max: 1, Within: time.Hour}},
		})
		c := fakeDial(t, srv)
		send := func(s string) { _ = c.WriteMessage(websocket.TextMessage, []byte(s)) }
		first := <-opened
		if first.Restarted != nil {
			t.Fatal("a new session's Opened has Restarted set")
		}
		send("a")
		send("b")
		if got := readText(t, c) + readText(t, c); got != "12" {
			t.Fatalf("got %q", got)
		}
		send("panic")
		send("c")
		if got := readText(t, c); got != "restarted" {
			t.Fatalf("got %q, want the fresh behaviour's greeting", got)
		}
		if got := readText(t, c); got != "1" {
			t.Fatalf("count after restart %q, want 1 (a fresh instance)", got)
		}
		again := <-opened
		var pe *actors.PanicError
		if again.Conn != first.Conn || again.Restarted == nil || !errors.As(error(again.Restarted), &pe) || pe.Value != "asked to" {
			t.Fatalf("Opened after restart = %+v, want the same Conn and the panic", again)
		}
		if n := made.Load(); n != 2 {
			t.Fatalf("producer called %d times, want 2", n)
		}
		send("panic") // the second panic within the hour: past the budget
		if code, _ := readClose(t, c); code != int(transport.StatusInternalError) {
			t.Fatalf("past budget: close %d, want 1011", code)
		}
	})
}
