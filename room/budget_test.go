package room_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"

	"github.com/wsactor/wsactor/actors"
	"github.com/wsactor/wsactor/room"
	"github.com/wsactor/wsactor/supervisor"
)

// ticker panics on every Tick and counts what it sees.
type ticker struct {
	ticks, stopping *atomic.Int32
}

func (b *ticker) Receive(ctx actor.Context) {
	switch ctx.Message().(type) {
	case *room.Tick:
		b.ticks.Add(1)
		panic("tick bug")
	case *actor.Stopping:
		b.stopping.Add(1)
	}
}

// TestBehaviourPanicEveryTickStopsRoom: on fake time (synctest: the actor
// system, its timers and the room's ticker live in the bubble), a behaviour
// that panics on every Tick is resumed Max times, then the room stops: the
// registry forgets it, the behaviour still gets *actor.Stopping, and the log
// holds one stack per panic, Max+1 in all, not one per tick forever. Under
// supervisor.Stop the first panic stops the room.
func TestBehaviourPanicEveryTickStopsRoom(t *testing.T) {
	for _, tc := range []struct {
		directive supervisor.Directive
		panics    int32
	}{
		{supervisor.Resume, 4},
		{supervisor.Restart, 4},
		{supervisor.Stop, 1},
	} {
		t.Run(tc.directive.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				logs := &syncBuffer{}
				system := actors.NewSystem(zerolog.New(logs))
				tree, err := supervisor.New(system)
				if err != nil {
					t.Fatal(err)
				}
				var ticks, stopping atomic.Int32
				reg := room.NewRegistry(tree, &room.RegistryOptions{
					Logger: zerolog.New(logs),
					Options: func(string) *room.Options {
						return &room.Options{
							Behavior:      func(*room.State) actor.Actor { return &ticker{&ticks, &stopping} },
							TickInterval:  50 * time.Millisecond,
							BehaviorPanic: supervisor.Policy{Directive: tc.directive, Budget: supervisor.Budget{Max: 3, Within: time.Minute}},
						}
					},
				})
				ctx := context.Background()
				r, err := reg.Get(ctx, "game")
				if err != nil {
					t.Fatal(err)
				}
				start := time.Now()
				select {
				case <-r.Done():
				case <-time.After(10 * time.Second):
					t.Fatalf("room still running after %d panicking ticks", ticks.Load())
				}
				if took := time.Since(start); took > 300*time.Millisecond {
					t.Errorf("room stopped after %v, want within %d ticks", took, tc.panics)
				}
				time.Sleep(time.Second) // 20 more ticks, were the room still running
				if n := ticks.Load(); n != tc.panics {
					t.Errorf("behaviour got %d ticks, want %d", n, tc.panics)
				}
				if n := stopping.Load(); n != 1 {
					t.Errorf("behaviour got %d Stopping, want 1", n)
				}
				if _, ok := reg.Lookup("game"); ok {
					t.Error("registry still lists the stopped room")
				}
				log := logs.String()
				if n := int32(strings.Count(log, `"stack":`)); n != tc.panics {
					t.Errorf("%d stacks logged, want %d:\n%s", n, tc.panics, log)
				}
				if n := strings.Count(log, `"handling":"*room.Tick"`); n != int(tc.panics) {
					t.Errorf("%d panic lines name the Tick, want %d", n, tc.panics)
				}
				if err := tree.Shutdown(ctx); err != nil {
					t.Fatal(err)
				}
				// Let protoactor's dead-letter throttle goroutine end
				// inside the bubble.
				time.Sleep(system.Config.DeadLetterThrottleInterval)
			})
		})
	}
}
