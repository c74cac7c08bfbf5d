package guides_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"

	"github.com/wsactor/wsactor/actors"
	"github.com/wsactor/wsactor/room"
	"github.com/wsactor/wsactor/transport"
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
