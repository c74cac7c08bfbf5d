package guides_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"

	"github.com/wsactor/wsactor/actors"
	"github.com/wsactor/wsactor/room"
	"github.com/wsactor/wsactor/supervisor"
	"github.com/wsactor/wsactor/transport"
	"github.com/wsactor/wsactor/wsactortest"
)

// startGreeter serves the greeter behaviour on loopback for one test. The
// cleanup shuts the Handler down first (its WebSockets), then the HTTP
// server, and checks that no connection actor is left.
func startGreeter(t *testing.T) string {
	t.Helper()
	logger := zerolog.New(zerolog.NewTestWriter(t)) // logs attach to the test
	system := actors.NewSystem(logger.Level(zerolog.WarnLevel))
	h, err := actors.NewHandler(system, func() actor.Actor { return &greeter{} },
		&actors.HandlerOptions{Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Config = transport.NewServer("", h) // the timeouts your program serves with
	srv.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := h.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if n := h.Len(); n != 0 {
			t.Errorf("%d connections left", n)
		}
		srv.Close()
	})
	return "ws" + strings.TrimPrefix(srv.URL, "http")
}

func dialTest(t *testing.T, url string) *websocket.Conn {
	t.Helper()
	c, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func readTest(t *testing.T, c *websocket.Conn) string {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second)) // never hang a test
	_, p, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return string(p)
}

// The behaviour over real sockets: each client has its own count.
func TestGreeterCountsPerConnection(t *testing.T) {
	t.Parallel()
	url := startGreeter(t)
	tests := []struct {
		name string
		send []string
		want []string
	}{
		{"one", []string{"a"}, []string{"#1: a"}},
		{"three", []string{"a", "b", "c"}, []string{"#1: a", "#2: b", "#3: c"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := dialTest(t, url)
			if got := readTest(t, c); got != "welcome" {
				t.Fatalf("first message %q", got)
			}
			for i, s := range tt.send {
				_ = c.WriteMessage(websocket.TextMessage, []byte(s))
				if got := readTest(t, c); got != tt.want[i] {
					t.Fatalf("got %q, want %q", got, tt.want[i])
				}
			}
		})
	}
}

// relay is a behaviour that talks to another actor: it joins a lobby and
// sends it what its client says.
type relay struct {
	lobby *actor.PID
}

func (r *relay) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actors.Opened:
		ctx.Request(r.lobby, &room.Join{Conn: m.Conn})
	case *actors.Message:
		ctx.Send(r.lobby, &room.Broadcast{Data: m.Data, Except: m.Conn.PID()})
	}
}

// A probe actor stands in for the lobby: the test sees exactly what the
// behaviour sends, without a real room.
func TestRelayWithProbe(t *testing.T) {
	t.Parallel()
	system := actors.NewSystem(zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel))
	got := make(chan any, 8)
	probe := system.Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
		switch m := ctx.Message().(type) {
		case *room.Join, *room.Broadcast:
			got <- m
		}
	}))
	t.Cleanup(func() { system.Root.Stop(probe) })

	h, err := actors.NewHandler(system, func() actor.Actor { return &relay{lobby: probe} }, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = h.Shutdown(ctx)
		srv.Close()
	})
	c := dialTest(t, "ws"+strings.TrimPrefix(srv.URL, "http"))

	join := (<-got).(*room.Join)
	_ = c.WriteMessage(websocket.TextMessage, []byte("hi all"))
	select {
	case m := <-got:
		b := m.(*room.Broadcast)
		if string(b.Data) != "hi all" || !b.Except.Equal(join.Conn.PID()) {
			t.Fatalf("broadcast %q except %v, want %q except the sender %v", b.Data, b.Except, "hi all", join.Conn.PID())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no broadcast")
	}
}

// TestIdlePeerDroppedOnFakeTime runs a server with its default heartbeat (a
// ping after 30s unheard, a drop after 60s) on an in-memory network inside a
// synctest bubble: a minute passes on the fake clock in milliseconds.
func TestIdlePeerDroppedOnFakeTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		closed := make(chan *actors.Closed, 1)
		system := actors.NewSystem(zerolog.Nop())
		h, err := actors.NewHandler(system, func() actor.Actor {
			return actor.ReceiveFunc(func(ctx actor.Context) {
				if m, ok := ctx.Message().(*actors.Closed); ok {
					closed <- m
				}
			})
		}, nil)
		if err != nil {
			t.Fatal(err)
		}
		srv := wsactortest.NewServer(h) // no port: an in-memory network
		defer srv.Close()

		d := websocket.Dialer{NetDialContext: srv.Net.Dial}
		c, _, err := d.Dial(srv.URL, nil) // a client that never reads: it never answers a ping
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		start := time.Now() // the bubble's fake clock
		m := <-closed
		if !errors.Is(m.Err, supervisor.ErrHeartbeatTimeout) {
			t.Fatalf("closed by %v, want the heartbeat", m.Err)
		}
		if d := time.Since(start); d < time.Minute || d > time.Minute+3*time.Second {
			t.Fatalf("dropped after %v, want 60s (and at most one 3s tick more)", d)
		}
		if err := h.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		// A dead letter's throttle goroutine waits 1s: let it end in the bubble.
		time.Sleep(system.Config.DeadLetterThrottleInterval)
	})
}
