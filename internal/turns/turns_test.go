package turns_test

import (
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/wsactor/wsactor/internal/turns"
)

type msg struct{ src, seq int }

// recorder checks that each source's messages arrive once and in order,
// and that none is handled on a plain sender's goroutine.
type recorder struct {
	next     []int
	total    atomic.Int64
	failures []string
	mu       sync.Mutex
}

func (r *recorder) Receive(ctx actor.Context) {
	m, ok := ctx.Message().(msg)
	if !ok {
		return
	}
	buf := make([]byte, 16<<10)
	if strings.Contains(string(buf[:runtime.Stack(buf, false)]), "turns_test.plainSender") {
		r.fail("a turn ran on a plain sender's goroutine")
	}
	if r.next[m.src] != m.seq {
		r.fail("source out of order or duplicated")
	}
	r.next[m.src] = m.seq + 1
	r.total.Add(1)
}

func (r *recorder) fail(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.failures) < 5 {
		r.failures = append(r.failures, s)
	}
}

// plainSender sends n messages as source src; its name marks its goroutine.
//
//go:noinline
func plainSender(root *actor.RootContext, pid *actor.PID, src, n int) {
	for i := range n {
		root.Send(pid, msg{src, i})
		if i%64 == 0 {
			runtime.Gosched()
		}
	}
}

// A reader that posts to an idle actor catches its turn and runs it: the
// actor handles the message on the reader's goroutine.
func TestReaderCatchesIdleActorsTurn(t *testing.T) {
	system := actor.NewActorSystem()
	handled := make(chan bool, 1)
	props := actor.PropsFromFunc(func(ctx actor.Context) {
		if _, ok := ctx.Message().(msg); ok {
			buf := make([]byte, 16<<10)
			handled <- strings.Contains(string(buf[:runtime.Stack(buf, false)]), "turns_test.catchingPost")
		}
	}, actor.WithMailbox(turns.Producer(actor.Unbounded())))
	pid := system.Root.Spawn(props)
	defer turns.Forget(system, pid.Id)
	defer system.Root.Stop(pid)
	var s turns.Slot
	// Until a first turn is caught: the actor may still be finishing a turn
	// (Started, a message) on a worker when a post comes. Once a caught turn
	// returns, the actor is idle for the next post.
	for i := 0; ; i++ {
		ok := catchingPost(system, &s, pid, msg{})
		<-handled
		if ok {
			break
		}
		if i == 1000 {
			t.Fatal("no turn caught in 1,000 posts to an actor nobody else posts to")
		}
	}
	for i := range 100 {
		if !catchingPost(system, &s, pid, msg{0, i}) {
			t.Fatalf("post %d to the idle actor: no turn caught", i)
		}
		if !<-handled {
			t.Fatalf("post %d: handled on another goroutine", i)
		}
	}
}

// catchingPost posts m to pid as a reader does, runs the turn it caught and
// reports whether it caught one.
//
//go:noinline
func catchingPost(system *actor.ActorSystem, s *turns.Slot, pid *actor.PID, m msg) bool {
	mb := turns.Begin(s, system, pid)
	system.Root.Send(pid, m)
	if mb == nil {
		return false
	}
	if !turns.End(s, mb) {
		return false
	}
	return s.RunHeld(nil, 0)
}

// Catching readers and plain senders post to one actor at once: every
// message is handled once and in its sender's order (every caught turn is
// run, by whichever reader caught it), and no turn runs on a plain sender.
func TestCatchingPreservesEveryMessage(t *testing.T) {
	system := actor.NewActorSystem()
	const readers, plain, n = 4, 2, 20000
	rec := &recorder{next: make([]int, readers+plain)}
	props := actor.PropsFromProducer(func() actor.Actor { return rec },
		actor.WithMailbox(turns.Producer(actor.Unbounded())))
	pid := system.Root.Spawn(props)
	defer turns.Forget(system, pid.Id)
	defer system.Root.Stop(pid)

	var caught atomic.Int64
	var wg sync.WaitGroup
	for r := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var s turns.Slot
			for i := range n {
				if catchingPost(system, &s, pid, msg{r, i}) {
					caught.Add(1)
				}
				if i%64 == 0 {
					runtime.Gosched()
				}
			}
		}()
	}
	for p := range plain {
		wg.Add(1)
		go func() {
			defer wg.Done()
			plainSender(system.Root, pid, readers+p, n)
		}()
	}
	wg.Wait()
	deadline := time.Now().Add(30 * time.Second)
	for rec.total.Load() != (readers+plain)*n {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d messages handled: a turn was lost", rec.total.Load(), (readers+plain)*n)
		}
		time.Sleep(time.Millisecond)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.failures) > 0 {
		t.Fatal(rec.failures)
	}
	t.Logf("%d turns caught by readers", caught.Load())
}

// Without a slot open, a post to an idle actor goes to the dispatcher, and
// an actor whose mailbox is not a turns.Mailbox is never caught.
func TestBeginOnlyOnTurnsMailboxes(t *testing.T) {
	system := actor.NewActorSystem()
	got := make(chan bool, 1)
	plainPID := system.Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
		if _, ok := ctx.Message().(msg); ok {
			got <- true
		}
	}))
	defer system.Root.Stop(plainPID)
	var s turns.Slot
	if mb := turns.Begin(&s, system, plainPID); mb != nil {
		t.Fatal("Begin on a plain mailbox")
	}
	system.Root.Send(plainPID, msg{})
	<-got
}

// One slot, two goroutines: one posts and catches (Begin, End) while the
// other runs what the slot holds (RunHeld), as the goroutine that ran a
// long turn does while the new reader takes the actor's next one. Every
// message is handled once and in order, and every held turn is run once.
func TestSlotSharedByPosterAndRunner(t *testing.T) {
	system := actor.NewActorSystem()
	const n = 20000
	rec := &recorder{next: make([]int, 1)}
	pid := system.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return rec },
		actor.WithMailbox(turns.Producer(actor.Unbounded()))))
	defer turns.Forget(system, pid.Id)
	defer system.Root.Stop(pid)
	var s turns.Slot
	done, runnerDone := make(chan struct{}), make(chan struct{})
	var ran atomic.Int64
	go func() {
		defer close(runnerDone)
		for {
			select {
			case <-done:
				return
			default:
			}
			if s.RunHeld(nil, 0) {
				ran.Add(1)
			}
		}
	}()
	var caught int64
	for i := range n {
		mb := turns.Begin(&s, system, pid)
		system.Root.Send(pid, msg{0, i})
		if mb != nil && turns.End(&s, mb) {
			caught++
		}
		if i%2 == 0 { // let the turn run out, so the next post finds the actor idle
			for rec.total.Load() != int64(i+1) {
				runtime.Gosched()
			}
		}
	}
	close(done)
	<-runnerDone // it may be running a held turn: let it finish and count it
	for s.RunHeld(nil, 0) {
		ran.Add(1)
	}
	deadline := time.Now().Add(30 * time.Second)
	for rec.total.Load() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d messages handled: a turn was lost", rec.total.Load(), n)
		}
		time.Sleep(time.Millisecond)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.failures) > 0 {
		t.Fatal(rec.failures)
	}
	if ran.Load() != caught {
		t.Fatalf("%d turns caught, %d run", caught, ran.Load())
	}
	t.Logf("%d turns caught and run", caught)
}
