package room_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"

	"github.com/wsactor/wsactor/actors"
	"github.com/wsactor/wsactor/room"
	"github.com/wsactor/wsactor/supervisor"
	"github.com/wsactor/wsactor/transport"
)

// waitStats polls g.Stats until it equals want, failing the test after 10s
// with the last snapshot. Rooms count as they handle messages: a broadcast
// is counted after its frames are queued (a member may read one first), a
// watched member's leave when the room handles *actor.Terminated.
func waitStats(t *testing.T, g *room.Registry, want room.RegistryStats) {
	t.Helper()
	var got room.RegistryStats
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		if got = g.Stats(); got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Stats() = %+v, want %+v", got, want)
		}
	}
}

// TestRegistryStats follows a registry's counters through two rooms:
// members joining, a broadcast in each, a Leave, a connection closing (its
// rooms see it stop), and rooms stopping with members in them.
func TestRegistryStats(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envConfig{})
	if got := e.reg.Stats(); got != (room.RegistryStats{}) {
		t.Fatalf("new registry: Stats() = %+v, want zero", got)
	}

	// A member has joined once its client reads "joined": the room counts
	// the join before it answers.
	a1 := dial(t, e, "room=a&name=a1", nil)
	expect(t, a1, "joined a")
	if got, want := e.reg.Stats(), (room.RegistryStats{Rooms: 1, Members: 1, Joins: 1}); got != want {
		t.Fatalf("after one join: Stats() = %+v, want %+v", got, want)
	}
	a2 := dial(t, e, "room=a&name=a2", nil)
	expect(t, a2, "joined a")
	a3 := dial(t, e, "room=a&name=a3", nil)
	expect(t, a3, "joined a")
	b1 := dial(t, e, "room=b&name=b1", nil)
	expect(t, b1, "joined b")
	b2 := dial(t, e, "room=b&name=b2", nil)
	expect(t, b2, "joined b")
	want := room.RegistryStats{Rooms: 2, Members: 5, Joins: 5}
	if got := e.reg.Stats(); got != want {
		t.Fatalf("after five joins: Stats() = %+v, want %+v", got, want)
	}

	// One broadcast in each room: to all three of a, to b but its sender.
	write(t, a1, "all to-a")
	for _, c := range []*websocket.Conn{a1, a2, a3} {
		expect(t, c, "to-a")
	}
	write(t, b1, "others to-b")
	expect(t, b2, "to-b")
	want.Broadcasts, want.Deliveries = 2, 4
	waitStats(t, e.reg, want)

	// A Leave, and a connection closing: a3's server connection stops and
	// room a, which watches it, sees it go.
	write(t, a2, "leave")
	want.Members, want.Leaves = 4, 1
	waitStats(t, e.reg, want)
	a3.Close()
	want.Members, want.Leaves = 3, 2
	waitStats(t, e.reg, want)

	// A broadcast reaches only the member left in a.
	write(t, a1, "all again")
	expect(t, a1, "again")
	want.Broadcasts, want.Deliveries = 3, 5
	waitStats(t, e.reg, want)

	// A room stopping with members: they leave with it, and the registry
	// forgets the room before Stop returns.
	ctx := testCtx(t)
	for _, tc := range []struct {
		name    string
		members int64
	}{{"b", 2}, {"a", 1}} {
		r, ok := e.reg.Lookup(tc.name)
		if !ok {
			t.Fatalf("room %s not found", tc.name)
		}
		if err := r.Stop(ctx); err != nil {
			t.Fatal(err)
		}
		want.Rooms--
		want.Members -= tc.members
		want.Leaves += tc.members
		if got := e.reg.Stats(); got != want {
			t.Fatalf("after room %s stopped: Stats() = %+v, want %+v", tc.name, got, want)
		}
	}
	if want.Rooms != 0 || want.Members != 0 || want.Joins != 5 || want.Leaves != 5 {
		t.Fatalf("test bug: final %+v", want)
	}
}

// caster is a room behaviour for the stats tests: "cast X" broadcasts X
// with State.Broadcast, "tell X" sends X to its sender with State.Send,
// "boom" panics.
type caster struct{ s *room.State }

func (c *caster) Receive(ctx actor.Context) {
	m, ok := ctx.Message().(*input)
	if !ok {
		return
	}
	cmd, arg, _ := strings.Cut(m.text, " ")
	switch cmd {
	case "cast":
		c.s.Broadcast(transport.NewFrame(transport.MessageText, []byte(arg)), nil)
	case "tell":
		_ = c.s.Send(m.conn.PID(), transport.NewFrame(transport.MessageText, []byte(arg)))
	case "boom":
		panic("caster bug")
	}
}

// TestRegistryStatsBehaviour: State.Broadcast counts as a broadcast, Send
// and State.Send do not; a failure of the room actor (resumed by the tree)
// and a behaviour restarted after a panic leave the counts alone (the
// members stay), and a room that gives up on its behaviour stops with its
// members, who leave.
func TestRegistryStatsBehaviour(t *testing.T) {
	t.Parallel()
	// Middleware outside the room's own recovery: its panic is a failure of
	// the room actor, which the tree's rooms branch resumes.
	crash := actor.WithReceiverMiddleware(func(next actor.ReceiverFunc) actor.ReceiverFunc {
		return func(c actor.ReceiverContext, env *actor.MessageEnvelope) {
			if env.Message == "crash" {
				panic("crash requested")
			}
			next(c, env)
		}
	})
	quiet := zerolog.Nop() // the panics are the test's
	e := newEnv(t, envConfig{opened: 3, logger: &quiet, registry: &room.RegistryOptions{
		Options: func(name string) *room.Options {
			d := supervisor.Restart
			if name == "fragile" {
				d = supervisor.Stop
			}
			return &room.Options{
				Behavior:      func(s *room.State) actor.Actor { return &caster{s: s} },
				BehaviorPanic: supervisor.Policy{Directive: d},
				Props:         []actor.PropsOption{crash},
			}
		},
	}})
	x := dial(t, e, "room=g", nil)
	expect(t, x, "joined g")
	xConn := <-e.opened
	y := dial(t, e, "room=g", nil)
	expect(t, y, "joined g")
	want := room.RegistryStats{Rooms: 1, Members: 2, Joins: 2}
	waitStats(t, e.reg, want)

	write(t, x, "tell one")
	expect(t, x, "one")
	r, _ := e.reg.Lookup("g")
	r.Tell(&room.Send{To: xConn.PID(), Data: []byte("one-b")})
	expect(t, x, "one-b")
	write(t, x, "all two")
	expect(t, x, "two")
	expect(t, y, "two")
	write(t, y, "cast three")
	expect(t, x, "three")
	expect(t, y, "three")
	// The Sends came before the broadcasts: counting them would show here.
	want.Broadcasts, want.Deliveries = 2, 4
	waitStats(t, e.reg, want)

	r.Tell("crash")     // the room actor fails and is resumed
	write(t, x, "boom") // the behaviour restarts
	write(t, x, "cast four")
	expect(t, x, "four")
	expect(t, y, "four")
	want.Broadcasts, want.Deliveries = 3, 6
	waitStats(t, e.reg, want)
	if ms, err := r.Members(testCtx(t)); err != nil || len(ms) != 2 { // after the crash
		t.Fatalf("members after the crash and the restart: %v, %v", ms, err)
	}
	if got := e.reg.Stats(); got != want {
		t.Fatalf("after the crash: Stats() = %+v, want %+v", got, want)
	}

	// A room whose behaviour is given up on stops with its members: the
	// registry forgets it at once, its members leave when it has stopped.
	z := dial(t, e, "room=fragile", nil)
	expect(t, z, "joined fragile")
	want.Rooms, want.Members, want.Joins = 2, 3, 3
	waitStats(t, e.reg, want)
	fragile, _ := e.reg.Lookup("fragile")
	write(t, z, "boom")
	select {
	case <-fragile.Done():
	case <-testCtx(t).Done():
		t.Fatal("room fragile did not stop")
	}
	want.Rooms, want.Members, want.Leaves = 1, 2, 1
	if got := e.reg.Stats(); got != want {
		t.Fatalf("after fragile stopped: Stats() = %+v, want %+v", got, want)
	}
}

// TestRegistryStatsIgnoresSpawnRooms: a room made by Spawn belongs to no Registry,
// whatever tree it shares with one.
func TestRegistryStatsIgnoresSpawnRooms(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envConfig{opened: 1})
	dial(t, e, "", nil)
	conn := <-e.opened
	ctx := testCtx(t)
	r, err := room.Spawn(ctx, e.tree, "solo", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Join(ctx, &room.Join{Conn: conn}); err != nil {
		t.Fatal(err)
	}
	r.Broadcast(transport.MessageText, []byte("hi"))
	if ms, err := r.Members(ctx); err != nil || len(ms) != 1 { // handled after the broadcast
		t.Fatalf("members: %v, %v", ms, err)
	}
	if err := r.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if got := e.reg.Stats(); got != (room.RegistryStats{}) {
		t.Fatalf("Stats() = %+v after a Spawn room's traffic, want zero", got)
	}
}

// TestRegistryStatsConcurrent reads Stats while connections join, broadcast
// and leave rooms of the registry from several goroutines (run it with
// -race): every snapshot is sane, the counters never go down, and once all
// is done they are exact.
func TestRegistryStatsConcurrent(t *testing.T) {
	t.Parallel()
	const conns, rounds, rooms = 8, 40, 3
	e := newEnv(t, envConfig{opened: conns})
	members := make([]*actors.Conn, conns)
	for i := range members {
		dial(t, e, "", nil)
		members[i] = <-e.opened
	}
	ctx := testCtx(t)

	done := make(chan struct{})
	var readers sync.WaitGroup
	for range 2 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			var last room.RegistryStats
			for {
				select {
				case <-done:
					return
				default:
				}
				s := e.reg.Stats()
				switch {
				case s.Members < 0 || s.Members > conns || s.Leaves > s.Joins:
					t.Errorf("Stats() = %+v: members or leaves out of range", s)
				case s.Rooms < last.Rooms || s.Rooms > rooms:
					t.Errorf("Stats() = %+v: rooms out of range (before %+v)", s, last)
				case s.Joins < last.Joins || s.Leaves < last.Leaves || s.Broadcasts < last.Broadcasts || s.Deliveries < last.Deliveries:
					t.Errorf("Stats() = %+v went down from %+v", s, last)
				case s.Deliveries > s.Broadcasts*conns:
					t.Errorf("Stats() = %+v: more deliveries than members", s)
				default:
					last = s
					continue
				}
				return
			}
		}()
	}

	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for i, conn := range members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("c%d", i%rooms)
			for range rounds {
				r, _, err := e.reg.Join(ctx, name, &room.Join{Conn: conn})
				if err != nil {
					errs <- err
					return
				}
				r.Broadcast(transport.MessageText, []byte("x"))
				r.Leave(conn.PID())
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("join: %v", err)
	}
	want := room.RegistryStats{Rooms: rooms, Joins: conns * rounds, Leaves: conns * rounds, Broadcasts: conns * rounds}
	var got room.RegistryStats
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		got = e.reg.Stats()
		want.Deliveries = got.Deliveries // depends on who was in at the time
		if got == want || time.Now().After(deadline) {
			break
		}
	}
	close(done)
	readers.Wait()
	if got != want {
		t.Fatalf("Stats() = %+v, want %+v", got, want)
	}
	// Each broadcast was sent by a member, between its join and its leave.
	if got.Deliveries < got.Broadcasts {
		t.Fatalf("Stats() = %+v: a broadcast missed its own sender", got)
	}
}
