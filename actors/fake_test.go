package actors_test

import (
	"context"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"

	"github.com/wsactor/wsactor/actors"
	"github.com/wsactor/wsactor/wsactortest"
)

// fakeServer is testServer on an in-memory network: inside a
// testing/synctest bubble, everything the handler, its heartbeat and its
// actors wait for runs on fake time, so a test of a minute's timeouts takes
// milliseconds and never depends on the machine's load. Call it inside
// synctest.Test; clients connect with fakeDial or with srv.Net.Dial as their
// NetDialContext.
func fakeServer(t *testing.T, producer actor.Producer, opts *actors.HandlerOptions) (*actors.Handler, *wsactortest.Server, *actor.ActorSystem) {
	t.Helper()
	settleDeadLetters(t)
	system := actors.NewSystem(zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.DebugLevel))
	if opts == nil {
		opts = &actors.HandlerOptions{}
	}
	opts.Logger = zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.DebugLevel)
	h, err := actors.NewHandler(system, producer, opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := wsactortest.NewServer(h)
	t.Cleanup(func() { // runs inside the bubble
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := h.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		srv.Close()
	})
	return h, srv, system
}

// fakeDial connects a gorilla client to srv.
func fakeDial(t *testing.T, srv *wsactortest.Server) *websocket.Conn {
	t.Helper()
	d := websocket.Dialer{NetDialContext: srv.Net.Dial}
	c, _, err := d.Dial(srv.URL, nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// settleDeadLetters lets protoactor's dead-letter throttle (a goroutine that
// waits one second after a dead letter is logged) end before the bubble
// does: registered first, this cleanup runs last, and its sleep costs no
// real time.
func settleDeadLetters(t *testing.T) {
	t.Cleanup(func() { time.Sleep(2 * time.Second) })
}
