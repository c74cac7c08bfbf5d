package supervisor

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// named reports its name to got for every string it receives.
type named struct {
	name string
	got  chan<- string
}

func (n *named) Receive(ctx actor.Context) {
	if s, ok := ctx.Message().(string); ok {
		n.got <- n.name + ":" + s
	}
}

// TestSpawnConnectionActor: connection actors spawned with one shared
// ConnectionProps are each the actor handed to their own spawn, the props'
// options apply to all, and a nil actor or a stopped tree is refused.
func TestSpawnConnectionActor(t *testing.T) {
	system := actor.NewActorSystem()
	tree, err := New(system)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var seen []string
	mw := func(next actor.ReceiverFunc) actor.ReceiverFunc {
		return func(c actor.ReceiverContext, env *actor.MessageEnvelope) {
			if s, ok := env.Message.(string); ok {
				seen = append(seen, s) // one actor at a time below
			}
			next(c, env)
		}
	}
	props := tree.ConnectionProps(actor.WithReceiverMiddleware(mw))
	got := make(chan string, 4)
	a, err := tree.SpawnConnectionActor(ctx, props, &named{name: "a", got: got})
	if err != nil {
		t.Fatal(err)
	}
	b, err := tree.SpawnConnectionActor(ctx, props, &named{name: "b", got: got})
	if err != nil {
		t.Fatal(err)
	}
	system.Root.Send(a, "x")
	if s := <-got; s != "a:x" {
		t.Fatalf("first actor answered %q", s)
	}
	system.Root.Send(b, "y")
	if s := <-got; s != "b:y" {
		t.Fatalf("second actor answered %q", s)
	}
	if len(seen) != 2 {
		t.Fatalf("middleware saw %v, want both messages", seen)
	}
	if _, err := tree.SpawnConnectionActor(ctx, props, nil); err == nil {
		t.Fatal("a nil actor was spawned")
	}
	if err := tree.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := tree.SpawnConnectionActor(ctx, props, &named{}); err != ErrStopped {
		t.Fatalf("spawn into a stopped tree: %v, want ErrStopped", err)
	}
}

// TestConnectionActorsShareRegistryMaps: connection actors' ids land in the
// few registry buckets names.go chooses (not one map each, ~250 bytes per
// connection), whatever order they are spawned and stopped in, and every
// actor is still reachable by its PID.
func TestConnectionActorsShareRegistryMaps(t *testing.T) {
	system := actor.NewActorSystem()
	tree, err := New(system)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	props := tree.ConnectionProps()
	const n = 2000
	got := make(chan string, n)
	pids := make([]*actor.PID, 0, n)
	ids := map[string]bool{}
	for i := range n {
		pid, err := tree.SpawnConnectionActor(ctx, props, &named{name: strconv.Itoa(i), got: got})
		if err != nil {
			t.Fatal(err)
		}
		if ids[pid.Id] {
			t.Fatalf("id %q given twice", pid.Id)
		}
		ids[pid.Id] = true
		pids = append(pids, pid)
		if i%3 == 0 {
			// Some stop early: their names must not come back.
			system.Root.Stop(pid)
		}
	}
	buckets := map[int]bool{}
	for i := range system.ProcessRegistry.LocalPIDs.LocalPIDs {
		for _, id := range system.ProcessRegistry.LocalPIDs.LocalPIDs[i].Keys() {
			if strings.HasPrefix(id, tree.Connections().Id+"/") {
				buckets[i] = true
			}
		}
	}
	if len(buckets) > connBuckets {
		t.Errorf("%d connection actors in %d registry buckets, want at most %d", n, len(buckets), connBuckets)
	}
	for i, pid := range pids {
		if i%3 == 0 {
			continue
		}
		system.Root.Send(pid, "x")
		if s, want := <-got, strconv.Itoa(i)+":x"; s != want {
			t.Fatalf("actor %d answered %q, want %q", i, s, want)
		}
	}
	if err := tree.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
}

func BenchmarkConnNames(b *testing.B) {
	var g connNames
	for b.Loop() {
		_ = g.next("wsactor-tree$1/connections")
	}
}
