package room_test

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"

	"github.com/wsactor/wsactor/room"
	"github.com/wsactor/wsactor/supervisor"
	"github.com/wsactor/wsactor/transport"
)

// game is a stateful room behaviour: players' positions, moved by inputs,
// broadcast as one keyed snapshot per tick.
type game struct {
	s   *room.State
	pos map[string]int
}

func newGame(s *room.State) actor.Actor { return &game{s: s} }

func (g *game) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		// Also after a restart: rebuild from the members.
		g.pos = map[string]int{}
		for _, mem := range g.s.Members() {
			g.pos[mem.User] = 0
		}
	case *room.Joined:
		if m.First {
			g.pos[m.Member.User] = 0
		}
	case *room.Left:
		if m.Last {
			delete(g.pos, m.Member.User)
		}
	case *input:
		switch m.text {
		case "move":
			g.pos[m.user]++
		case "state":
			_ = g.s.Send(m.conn.PID(), transport.NewFrame(transport.MessageText, []byte(g.world())))
		case "boom":
			panic("game bug")
		}
	case *room.Tick:
		snap := fmt.Sprintf("tick %d %s", m.Seq, g.world())
		g.s.Broadcast(transport.NewKeyedFrame(transport.MessageText, []byte(snap), "world"), nil)
	}
}

func (g *game) world() string {
	var ps []string
	for u, p := range g.pos {
		ps = append(ps, fmt.Sprintf("%s=%d", u, p))
	}
	sort.Strings(ps)
	return strings.Join(ps, ",")
}

// TestGameRoomTicks: a room behaviour holds the world, takes inputs from the
// connections, and broadcasts a snapshot per tick. End to end (handshakes,
// connection actors, the room, its ticker) on an in-memory network in a
// synctest bubble, so ticks come on fake time: every one arrives, numbered
// in order, and the inputs sent between two ticks show in the next.
func TestGameRoomTicks(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		const iv = 50 * time.Millisecond
		// A one-byte socket buffer: a peer that does not read holds the
		// server's next write at once, as a full socket would.
		e := newEnv(t, envConfig{pipe: true, pipeBuffer: 1, registry: &room.RegistryOptions{
			Options: func(string) *room.Options {
				return &room.Options{Behavior: newGame, TickInterval: iv}
			},
		}})
		start := time.Now()
		// The room starts with alice's join; its first tick comes one
		// interval later.
		alice := dial(t, e, "room=game&user=alice", nil)
		expect(t, alice, "joined game")
		write(t, alice, "move")
		expect(t, alice, "tick 1 alice=1")
		if d := time.Since(start); d != iv {
			t.Errorf("first tick after %v, want %v", d, iv)
		}

		bob := dial(t, e, "room=game&user=bob", nil)
		expect(t, bob, "joined game")
		write(t, bob, "move")
		write(t, bob, "move")
		expect(t, alice, "tick 2 alice=1,bob=2")
		expect(t, bob, "tick 2 alice=1,bob=2")

		// Both read: every tick comes, on time.
		for seq := 3; seq <= 6; seq++ {
			want := fmt.Sprintf("tick %d alice=1,bob=2", seq)
			expect(t, alice, want)
			expect(t, bob, want)
			if d := time.Since(start); d != time.Duration(seq)*iv {
				t.Errorf("tick %d after %v", seq, d)
			}
		}
		// Neither reads for ten ticks: each gets the latest snapshot, not a
		// backlog. The pipe holds one byte, so tick 7 waits in the write,
		// and ticks 8 to 16, keyed frames, replace one another in the queue.
		time.Sleep(10*iv + iv/2)
		for _, c := range []*websocket.Conn{alice, bob} {
			expect(t, c, "tick 7 alice=1,bob=2")
			expect(t, c, "tick 16 alice=1,bob=2")
		}
		r, _ := e.reg.Lookup("game")
		if err := r.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestBehaviourPanic: a panic in the room's behaviour is logged with its
// stack; the room keeps its members and goes on. supervisor.Resume keeps the
// behaviour's state, supervisor.Restart starts a fresh behaviour.
func TestBehaviourPanic(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		policy supervisor.Directive
		after  string // the world after the panic
	}{
		{supervisor.Resume, "alice=1"},
		{supervisor.Restart, "alice=0"}, // rebuilt from the members
	} {
		t.Run(tc.policy.String(), func(t *testing.T) {
			t.Parallel()
			logs := &syncBuffer{}
			logger := zerolog.New(logs)
			e := newEnv(t, envConfig{logger: &logger, registry: &room.RegistryOptions{
				Options: func(string) *room.Options {
					return &room.Options{Behavior: newGame, BehaviorPanic: supervisor.Policy{Directive: tc.policy}}
				},
			}})
			alice := dial(t, e, "room=g&user=alice", nil)
			expect(t, alice, "joined g")
			bob := dial(t, e, "room=g&user=bob", nil)
			expect(t, bob, "joined g")
			write(t, alice, "move")
			write(t, alice, "state")
			expect(t, alice, "alice=1,bob=0")

			write(t, alice, "boom")
			write(t, alice, "state")
			want := tc.after + ",bob=0"
			expect(t, alice, want)

			// Members survived; broadcasts still flow.
			r, _ := e.reg.Lookup("g")
			ms, err := r.Members(testCtx(t))
			if err != nil || len(ms) != 2 {
				t.Fatalf("members after panic: %v, %v", ms, err)
			}
			write(t, bob, "all after-panic")
			expect(t, alice, "after-panic")
			expect(t, bob, "after-panic")

			log := logs.String()
			for _, s := range []string{`"room":"g"`, "room behaviour panicked", `"panic":"game bug"`, `"policy":"` + tc.policy.String(), "runtime/debug.Stack"} {
				if !strings.Contains(log, s) {
					t.Errorf("log lacks %s:\n%s", s, log)
				}
			}
		})
	}
}

// inspector is a room behaviour that answers its members' questions with
// the State API.
type inspector struct{ s *room.State }

func (in *inspector) Receive(ctx actor.Context) {
	m, ok := ctx.Message().(*input)
	if !ok {
		return
	}
	pid := m.conn.PID()
	switch m.text {
	case "who":
		me, _ := in.s.Member(pid)
		var metas []string
		in.s.Range(func(mem room.Member) bool {
			metas = append(metas, fmt.Sprint(mem.Meta))
			return true
		})
		sort.Strings(metas)
		text := fmt.Sprintf("%s/%s n=%d me=%v all=%s", in.s.Name(), in.s.Room().Name(), in.s.Len(), me.Meta, strings.Join(metas, ","))
		_ = in.s.Send(pid, transport.NewFrame(transport.MessageText, []byte(text)))
	case "kick-me":
		removed := in.s.Remove(pid)
		again := in.s.Remove(pid)
		err := in.s.Send(pid, transport.NewFrame(transport.MessageText, []byte("unreachable")))
		_, still := in.s.Member(pid)
		in.s.Logger().Info().Msg("kicked")
		_ = m.conn.SendText(fmt.Sprintf("removed=%v again=%v member=%v send=%v", removed, again, still, err))
	}
}

func TestStateAPI(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envConfig{registry: &room.RegistryOptions{
		Options: func(string) *room.Options {
			return &room.Options{Presence: true, Behavior: func(s *room.State) actor.Actor { return &inspector{s: s} }}
		},
	}})
	a := dial(t, e, "room=s&name=ann", nil)
	expect(t, a, "joined s")
	expect(t, a, "+ann first=true")
	b := dial(t, e, "room=s&name=ben", nil)
	expect(t, b, "joined s")
	expect(t, b, "+ben first=true")
	expect(t, a, "+ben first=true")

	write(t, a, "who")
	expect(t, a, "s/s n=2 me=ann all=ann,ben")
	write(t, b, "kick-me")
	expect(t, b, "removed=true again=false member=false send=room: not a member")
	expect(t, a, "-ben last=true removed")
	write(t, a, "who")
	expect(t, a, "s/s n=1 me=ann all=ann")
}
