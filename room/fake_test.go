package room_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"

	"github.com/wsactor/wsactor/actors"
	"github.com/wsactor/wsactor/room"
	"github.com/wsactor/wsactor/supervisor"
	"github.com/wsactor/wsactor/transport"
	"github.com/wsactor/wsactor/wsactortest"
)

// The tests in this file give rooms fake members (wsactortest.Conn: a probe
// actor's PID and a frame recorder, no socket) and run in a testing/synctest
// bubble: the actor system, the rooms' timers and the members live in it,
// time is fake, and synctest.Wait returns once every actor is idle, so each
// check sees everything that follows from the step before it.

// fakeTree makes an actor system and a supervision tree in the bubble and
// shuts the tree down when the test ends.
func fakeTree(t *testing.T, logs *syncBuffer) *supervisor.Tree {
	t.Helper()
	logger := zerolog.Nop()
	if logs != nil {
		logger = zerolog.New(logs)
	}
	system := actors.NewSystem(logger)
	tree, err := supervisor.New(system)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := tree.Shutdown(context.Background()); err != nil {
			t.Errorf("tree shutdown: %v", err)
		}
		// A dead letter (a presence event or a broadcast reaching a
		// member that stopped) starts protoactor's throttle goroutine,
		// which waits out its interval. Fake time passes only while the
		// test's goroutine waits, so wait here: the bubble must end empty.
		time.Sleep(system.Config.DeadLetterThrottleInterval)
	})
	return tree
}

// events renders presence events as the peers of the socket tests do.
func events(msgs []any) []string {
	out := make([]string, 0, len(msgs))
	for _, m := range msgs {
		switch m := m.(type) {
		case *room.Joined:
			out = append(out, fmt.Sprintf("+%v first=%v", m.Member.Meta, m.First))
		case *room.Left:
			out = append(out, fmt.Sprintf("-%v last=%v %v", m.Member.Meta, m.Last, m.Reason))
		default:
			out = append(out, fmt.Sprintf("%T", m))
		}
	}
	return out
}

func check[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s = %#v, want %#v", what, got, want)
	}
}

// TestFakeMembers: joins, presence, broadcast with Except, Send, Leave and
// a member whose actor stops, all with fake members.
func TestFakeMembers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tree := fakeTree(t, nil)
		system := tree.System()
		ctx := context.Background()
		r, err := room.Spawn(ctx, tree, "lobby", &room.Options{Presence: true})
		if err != nil {
			t.Fatal(err)
		}
		ann, ben, cat := wsactortest.NewConn(system), wsactortest.NewConn(system), wsactortest.NewConn(system)
		defer ann.Stop()
		defer cat.Stop()

		if _, err := r.Join(ctx, &room.Join{Conn: ann, User: "u1", Meta: "ann"}); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Join(ctx, &room.Join{Conn: ben, User: "u1", Meta: "ben"}); err != nil {
			t.Fatal(err)
		}
		res, err := r.Join(ctx, &room.Join{Conn: cat, Meta: "cat", Snapshot: true})
		if err != nil {
			t.Fatal(err)
		}
		check(t, "snapshot", metas(res.Members), []string{"ann", "ben", "cat"})
		if res.Member.Conn != cat || !res.Member.PID().Equal(cat.PID()) {
			t.Errorf("JoinResult.Member = %+v", res.Member)
		}
		synctest.Wait()
		check(t, "ann's events", events(ann.Messages()), []string{"+ann first=true", "+ben first=false", "+cat first=true"})
		check(t, "cat's events", events(cat.Messages()), []string{"+cat first=true"})

		r.Broadcast(transport.MessageText, []byte("hello"))
		r.Tell(&room.Broadcast{Data: []byte("not ben"), Except: ben.PID()})
		r.Tell(&room.Send{To: cat.PID(), Data: []byte("psst")})
		r.Tell(&room.Send{To: actor.NewPID("nonhost", "nobody"), Data: []byte("lost")})
		synctest.Wait()
		check(t, "ann's frames", ann.Texts(), []string{"hello", "not ben"})
		check(t, "ben's frames", ben.Texts(), []string{"hello"})
		check(t, "cat's frames", cat.Texts(), []string{"hello", "not ben", "psst"})

		// ben's connection closes: its actor stops, the room sees it.
		ann.Reset()
		ben.Stop()
		synctest.Wait()
		check(t, "after ben stopped", events(ann.Messages()), []string{"-ben last=false stopped"})
		r.Leave(ann.PID())
		synctest.Wait()
		check(t, "cat's events", events(cat.Messages()), []string{"+cat first=true", "-ben last=false stopped", "-ann last=true leave"})
		ms, err := r.Members(ctx)
		if err != nil {
			t.Fatal(err)
		}
		check(t, "members", metas(ms), []string{"cat"})
		if err := r.Stop(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

// TestJoinErrorsWithFakes: a full room, the per-connection room limit, and
// nil connections (a nil *actors.Conn in the interface included) are
// refused; none of them disturbs the room.
func TestJoinErrorsWithFakes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		logs := &syncBuffer{}
		tree := fakeTree(t, logs)
		reg := room.NewRegistry(tree, &room.RegistryOptions{
			Logger:          zerolog.New(logs),
			MaxRoomsPerConn: 1,
			Options:         func(string) *room.Options { return &room.Options{MaxMembers: 1} },
		})
		ctx := context.Background()
		a, b := wsactortest.NewConn(tree.System()), wsactortest.NewConn(tree.System())
		defer a.Stop()
		defer b.Stop()
		r, _, err := reg.Join(ctx, "one", &room.Join{Conn: a})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := reg.Join(ctx, "one", &room.Join{Conn: b}); !errors.Is(err, room.ErrRoomFull) {
			t.Errorf("second member: %v, want ErrRoomFull", err)
		}
		if _, _, err := reg.Join(ctx, "two", &room.Join{Conn: a}); !errors.Is(err, room.ErrTooManyRooms) {
			t.Errorf("second room: %v, want ErrTooManyRooms", err)
		}
		var nilConn *actors.Conn
		if _, err := r.Join(ctx, &room.Join{Conn: nilConn}); !errors.Is(err, room.ErrNoConn) {
			t.Errorf("nil *actors.Conn: %v, want ErrNoConn", err)
		}
		// Sent as messages, they reach the room actor itself.
		r.Tell(&room.Join{Conn: nilConn})
		r.Tell(&room.Leave{Conn: nilConn})
		r.Tell(&room.Leave{})
		res, ok := ask(t, tree.System(), r.PID(), &room.Join{Conn: nilConn}).(*room.JoinResult)
		if !ok || !errors.Is(res.Err, room.ErrNoConn) {
			t.Errorf("requested Join of a nil conn answered %+v", res)
		}
		ms, err := r.Members(ctx)
		if err != nil || len(ms) != 1 || ms[0].Conn != a {
			t.Errorf("members %v, %v; want a alone", ms, err)
		}
		if log := logs.String(); strings.Contains(log, "panic") {
			t.Errorf("the room panicked:\n%s", log)
		}
		if n := reg.RoomCount(a.PID()); n != 1 {
			t.Errorf("RoomCount = %d, want 1", n)
		}
	})
}

// TestIdleRoomStops: on fake time, a room with an idle timeout stops exactly
// one timeout after it became empty, the registry forgets it, and the next
// Get makes a new one, which stops one timeout after its start if nobody
// joins. A room with a member never stops.
func TestIdleRoomStops(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const timeout = time.Minute
		tree := fakeTree(t, nil)
		reg := room.NewRegistry(tree, &room.RegistryOptions{
			Options: func(string) *room.Options { return &room.Options{IdleTimeout: timeout} },
		})
		ctx := context.Background()
		conn := wsactortest.NewConn(tree.System())
		defer conn.Stop()
		stopped := func(r *room.Room) bool {
			synctest.Wait()
			select {
			case <-r.Done():
				return true
			default:
				return false
			}
		}

		busy, _, err := reg.Join(ctx, "busy", &room.Join{Conn: conn})
		if err != nil {
			t.Fatal(err)
		}
		idle, _, err := reg.Join(ctx, "idle", &room.Join{Conn: conn})
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(timeout / 2) // a member keeps it going
		idle.Leave(conn.PID())
		left := time.Now()
		time.Sleep(timeout - time.Nanosecond)
		if stopped(idle) {
			t.Fatal("the room stopped before its idle timeout")
		}
		time.Sleep(time.Nanosecond)
		if !stopped(idle) {
			t.Fatal("the room did not stop at its idle timeout")
		}
		check(t, "idle for", time.Since(left), timeout)
		if _, ok := reg.Lookup("idle"); ok {
			t.Fatal("registry still lists the stopped room")
		}

		again, err := reg.Get(ctx, "idle")
		if err != nil {
			t.Fatal(err)
		}
		if again == idle {
			t.Fatal("Get returned the stopped room")
		}
		time.Sleep(timeout) // never joined: it stops too
		if !stopped(again) {
			t.Fatal("a room nobody joined did not stop")
		}

		time.Sleep(time.Hour)
		if stopped(busy) {
			t.Fatal("a room with a member stopped")
		}
		if rs := reg.Rooms(); len(rs) != 1 || rs[0] != busy {
			t.Fatalf("Rooms() = %v, want only busy", rs)
		}
		if n := reg.RoomCount(conn.PID()); n != 1 {
			t.Fatalf("RoomCount = %d, want 1 (busy)", n)
		}
	})
}

// metronome is a room behaviour that broadcasts every Tick as a keyed frame
// and records the ticks and how many members' queues took each one. On
// the tick numbered slowAt it takes slowFor to run.
type metronome struct {
	s       *room.State
	rec     *tickLog
	slowAt  uint64
	slowFor time.Duration
}

// tickLog is what a metronome saw, safe to read from the test.
type tickLog struct {
	mu    sync.Mutex
	ticks []room.Tick
	sent  []int
}

func (l *tickLog) get() ([]room.Tick, []int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]room.Tick(nil), l.ticks...), append([]int(nil), l.sent...)
}

func (m *metronome) Receive(ctx actor.Context) {
	tick, ok := ctx.Message().(*room.Tick)
	if !ok {
		return
	}
	n := m.s.Broadcast(transport.NewKeyedFrame(transport.MessageText, fmt.Appendf(nil, "tick %d", tick.Seq), "tick"), nil)
	m.rec.mu.Lock()
	m.rec.ticks = append(m.rec.ticks, *tick)
	m.rec.sent = append(m.rec.sent, n)
	m.rec.mu.Unlock()
	if tick.Seq == m.slowAt {
		time.Sleep(m.slowFor)
	}
}

// TestTicksOnFakeTime: ticks come exactly every TickInterval, numbered from
// 1, and reach every member whose queue takes them. A behaviour that runs
// past the next two ticks makes the room skip one (Seq still counts
// intervals) instead of queueing ticks up: the overdue tick runs at once,
// and the next one is back on the schedule. Only the member whose queue
// refuses frames misses them. No tick comes after Stop.
func TestTicksOnFakeTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const iv = 50 * time.Millisecond
		tree := fakeTree(t, nil)
		rec := &tickLog{}
		ctx := context.Background()
		start := time.Now()
		r, err := room.Spawn(ctx, tree, "clock", &room.Options{
			TickInterval: iv,
			Behavior: func(s *room.State) actor.Actor {
				return &metronome{s: s, rec: rec, slowAt: 20, slowFor: 2*iv + iv/2}
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		fast, full := wsactortest.NewConn(tree.System()), wsactortest.NewConn(tree.System())
		defer fast.Stop()
		defer full.Stop()
		for _, c := range []*wsactortest.Conn{fast, full} {
			if _, err := r.Join(ctx, &room.Join{Conn: c}); err != nil {
				t.Fatal(err)
			}
		}
		full.SetSendError(transport.ErrQueueFull)

		time.Sleep(20*iv + iv/2) // ticks 1-20; tick 20 runs until 22.5 intervals
		synctest.Wait()
		ticks, _ := rec.get()
		if len(ticks) != 20 {
			t.Fatalf("%d ticks in 20 intervals", len(ticks))
		}
		for i, tk := range ticks {
			if tk.Seq != uint64(i+1) || !tk.Time.Equal(start.Add(time.Duration(i+1)*iv)) {
				t.Fatalf("tick %d: Seq %d at %v, want at %v", i+1, tk.Seq, tk.Time.Sub(start), time.Duration(i+1)*iv)
			}
		}
		time.Sleep(3 * iv) // to 23.5 intervals
		synctest.Wait()
		ticks, sent := rec.get()
		var seqs []uint64
		for _, tk := range ticks[19:] {
			seqs = append(seqs, tk.Seq)
		}
		check(t, "ticks from the slow one on", seqs, []uint64{20, 22, 23})
		if len(ticks) == 22 {
			check(t, "tick 22 at", ticks[20].Time.Sub(start), 22*iv+iv/2) // overdue: at once
			check(t, "tick 23 at", ticks[21].Time.Sub(start), 23*iv)      // back on the schedule
		}
		for i, n := range sent {
			if n != 1 {
				t.Fatalf("tick %d went to %d members' queues, want 1", ticks[i].Seq, n)
			}
		}
		if got := fast.Texts(); len(got) != len(ticks) || got[len(got)-1] != "tick 23" {
			t.Errorf("the fast member got %q", got)
		}
		if got := full.Frames(); len(got) != 0 {
			t.Errorf("the full member got %d frames", len(got))
		}
		if err := r.Stop(ctx); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * iv)
		synctest.Wait()
		if after, _ := rec.get(); len(after) != len(ticks) {
			t.Errorf("%d ticks after Stop", len(after)-len(ticks))
		}
	})
}
