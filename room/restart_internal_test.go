package room

import (
	"context"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"

	"github.com/wsactor/wsactor/actors"
	"github.com/wsactor/wsactor/supervisor"
)

// TestSupervisorRestartKeepsMembership: when a supervisor restarts the room
// actor (not the tree's rooms branch, which resumes, but a parent of the
// user's own), the room keeps its members and its watches, and the
// behaviour is made anew.
func TestSupervisorRestartKeepsMembership(t *testing.T) {
	logger := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel)
	system := actors.NewSystem(logger.Level(zerolog.WarnLevel))
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
	}, &actors.HandlerOptions{Tree: tree, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	url := "ws" + strings.TrimPrefix(srv.URL, "http")

	var starts, restarts atomic.Int32
	left := make(chan *Left, 4)
	behavior := func(*State) actor.Actor {
		return actor.ReceiveFunc(func(ctx actor.Context) {
			switch m := ctx.Message().(type) {
			case *actor.Started:
				starts.Add(1)
			case *actor.Restarting:
				restarts.Add(1)
			case *Left:
				left <- m
			}
		})
	}
	// Middleware outside the room's own recovery: its panic is a failure of
	// the room actor, which the parent below restarts.
	crash := actor.WithReceiverMiddleware(func(next actor.ReceiverFunc) actor.ReceiverFunc {
		return func(c actor.ReceiverContext, env *actor.MessageEnvelope) {
			if env.Message == "crash" {
				panic("crash requested")
			}
			next(c, env)
		}
	})
	r := &Room{name: "restartable", system: system, done: make(chan struct{})}
	c := newCore(r, Options{Logger: logger, Behavior: behavior, Props: []actor.PropsOption{crash}}, nil)
	spawned := make(chan *actor.PID, 1)
	restart := actor.NewOneForOneStrategy(10, time.Minute, func(any) actor.Directive { return actor.RestartDirective })
	parent := system.Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
		if _, ok := ctx.Message().(*actor.Started); ok {
			pid, err := ctx.SpawnNamed(actor.PropsFromProducer(func() actor.Actor { return c }, c.opts.Props...), r.name)
			if err != nil {
				t.Error(err)
			}
			spawned <- pid
		}
	}, actor.WithSupervisor(restart)))
	r.pid = <-spawned

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var clients []*websocket.Conn
	var conns []*actors.Conn
	for range 2 {
		cl, _, err := websocket.DefaultDialer.Dial(url, nil)
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, cl)
		conn := <-opened
		conns = append(conns, conn)
		if _, err := r.Join(ctx, &Join{Conn: conn}); err != nil {
			t.Fatal(err)
		}
	}

	r.Tell("crash")
	ms, err := r.Members(ctx) // handled after the restart
	if err != nil || len(ms) != 2 {
		t.Fatalf("members after restart: %d, %v; want 2", len(ms), err)
	}
	if s, rs := starts.Load(), restarts.Load(); s != 2 || rs != 1 {
		t.Fatalf("behaviour saw %d Started and %d Restarting, want 2 and 1", s, rs)
	}

	// The watch survived the restart: a member that stops still leaves.
	system.Root.Stop(conns[0].PID())
	select {
	case l := <-left:
		if !l.Member.PID().Equal(conns[0].PID()) || l.Reason != LeftStopped {
			t.Fatalf("Left = %+v, want conn 0 stopped", l)
		}
	case <-ctx.Done():
		t.Fatal("no Left after a member stopped: the watch was lost in the restart")
	}
	if ms, _ := r.Members(ctx); len(ms) != 1 {
		t.Fatalf("%d members, want 1", len(ms))
	}

	system.Root.Stop(parent)
	select {
	case <-r.Done():
	case <-ctx.Done():
		t.Fatal("room did not stop with its parent")
	}
	for _, cl := range clients {
		cl.Close()
	}
	if err := h.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := tree.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	srv.Close()
}
