package room_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/gorilla/websocket"

	"github.com/wsactor/wsactor/actors"
	"github.com/wsactor/wsactor/room"
	"github.com/wsactor/wsactor/supervisor"
)

// TestConcurrentGetOrCreate: concurrent Gets of the same new name make one
// room and all return its handle.
func TestConcurrentGetOrCreate(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envConfig{})
	const names, callers = 8, 32
	ctx := testCtx(t)
	got := make([][]*room.Room, names)
	errs := make(chan error, names*callers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for n := range names {
		got[n] = make([]*room.Room, callers)
		for c := range callers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				r, err := e.reg.Get(ctx, fmt.Sprintf("same-%d", n))
				if err != nil {
					errs <- err
				}
				got[n][c] = r
			}()
		}
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Get: %v", err)
	}
	for n := range names {
		for c := range callers {
			if got[n][c] != got[n][0] || !got[n][c].PID().Equal(got[n][0].PID()) {
				t.Fatalf("name %d: caller %d got room %v, caller 0 got %v", n, c, got[n][c].PID(), got[n][0].PID())
			}
		}
	}
	rooms := e.reg.Rooms()
	if len(rooms) != names {
		t.Fatalf("Rooms() has %d rooms, want %d", len(rooms), names)
	}
	for i, r := range rooms {
		if want := fmt.Sprintf("same-%d", i); r.Name() != want {
			t.Fatalf("Rooms()[%d] = %q, want %q (sorted)", i, r.Name(), want)
		}
	}
}

// TestIdleChurn joins and leaves a room whose idle timeout is about a round
// trip, from several connections at once with jittered pauses, so that joins
// race with the room stopping (and with the next room of the name being
// made while the old one still holds the name): Registry.Join must never
// fail or land in a room that is going away.
func TestIdleChurn(t *testing.T) {
	t.Parallel()
	const conns, rounds = 2, 150
	e := newEnv(t, envConfig{opened: conns, registry: &room.RegistryOptions{
		Options: func(string) *room.Options { return &room.Options{IdleTimeout: 50 * time.Microsecond} },
	}})
	for range conns {
		dial(t, e, "", nil)
	}
	ctx := testCtx(t)
	errs := make(chan error, conns)
	var wg sync.WaitGroup
	for i := range conns {
		conn := <-e.opened
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range rounds {
				r, res, err := e.reg.Join(ctx, "churn", &room.Join{Conn: conn})
				if err != nil {
					errs <- fmt.Errorf("conn %d join %d: %w", i, k, err)
					return
				}
				if res.Member.Conn != conn {
					errs <- fmt.Errorf("conn %d join %d: member %v", i, k, res.Member)
					return
				}
				// The member is in: the room cannot be idle now.
				if ms, err := r.Members(ctx); err != nil || len(ms) == 0 {
					errs <- fmt.Errorf("conn %d join %d: members %v, %v", i, k, ms, err)
					return
				}
				r.Leave(conn.PID())
				time.Sleep(time.Duration(rand.IntN(200)) * time.Microsecond)
			}
			if n := e.reg.RoomCount(conn.PID()); n > 1 {
				errs <- fmt.Errorf("conn %d: RoomCount = %d", i, n)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func TestJoinAsyncAnswersTheActor(t *testing.T) {
	results := make(chan *room.JoinResult, 1)
	e := newEnv(t, envConfig{opened: 1, behave: func(e *env) actor.Actor {
		return actor.ReceiveFunc(func(ctx actor.Context) {
			switch m := ctx.Message().(type) {
			case *actors.Opened:
				e.reg.JoinAsync("async", &room.Join{Conn: m.Conn, Meta: "a"}, ctx.Self(), 0)
				e.opened <- m.Conn
			case *room.JoinResult:
				results <- m
			}
		})
	}})
	c, _, err := websocket.DefaultDialer.Dial(e.url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	conn := <-e.opened
	select {
	case res := <-results:
		if res.Err != nil || res.Room != "async" || !res.Member.PID().Equal(conn.PID()) {
			t.Fatalf("JoinResult = %+v", res)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no JoinResult")
	}
}

// TestStoppedTreeIsErrStopped: once the tree is shut down, Spawn and
// Registry.Get fail with room.ErrStopped (wrapping supervisor.ErrStopped),
// the sentinel every other room call uses (issue 12, item 5).
func TestStoppedTreeIsErrStopped(t *testing.T) {
	system := actor.NewActorSystem()
	tree, err := supervisor.New(system)
	if err != nil {
		t.Fatal(err)
	}
	reg := room.NewRegistry(tree, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tree.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := room.Spawn(ctx, tree, "late", nil); !errors.Is(err, room.ErrStopped) || !errors.Is(err, supervisor.ErrStopped) {
		t.Errorf("Spawn after Shutdown = %v, want room.ErrStopped and supervisor.ErrStopped", err)
	}
	if _, err := reg.Get(ctx, "late"); !errors.Is(err, room.ErrStopped) {
		t.Errorf("Registry.Get after Shutdown = %v, want room.ErrStopped", err)
	}
}
