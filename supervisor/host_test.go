package supervisor

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"
)

// logBuf is a goroutine-safe log sink.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// count returns how many log lines contain s.
func (l *logBuf) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, line := range strings.Split(l.b.String(), "\n") {
		if strings.Contains(line, s) {
			n++
		}
	}
	return n
}

// probe is a hosted behaviour: it counts the messages it handled (its
// state), panics on "boom", and reports what it sees to events.
type probe struct {
	id     int
	n      int
	events chan<- string
}

func (p *probe) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		p.events <- "started " + itoa(p.id)
	case *actor.Restarting:
		p.events <- "restarting " + itoa(p.id)
	case string:
		if m == "boom" {
			panic("probe asked to")
		}
		p.n++
		p.events <- itoa(p.id) + ":" + m + "=" + itoa(p.n)
	case restarted:
		p.events <- "restarted " + itoa(p.id)
	}
}

type restarted struct{}

func itoa(n int) string {
	const digits = "0123456789"
	if n < 10 {
		return digits[n : n+1]
	}
	return itoa(n/10) + digits[n%10:n%10+1]
}

// hostEnv is an actor system (no network) with one owner actor that hosts
// probes and hands every message to its host.
type hostEnv struct {
	system *actor.ActorSystem
	owner  *actor.PID
	host   *Host
	events chan string
	gaveUp chan *PanicError
	logs   *logBuf
	made   atomic.Int32
}

func newHostEnv(t *testing.T, p Policy, modify ...func(*hostEnv, *HostOptions)) *hostEnv {
	t.Helper()
	e := &hostEnv{
		system: actor.NewActorSystem(actor.WithLoggerFactory(discardSlog)),
		events: make(chan string, 64),
		gaveUp: make(chan *PanicError, 4),
		logs:   &logBuf{},
	}
	opts := HostOptions{
		Policy: p,
		Logger: zerolog.New(e.logs),
		Name:   "probe",
		GiveUp: func(pe *PanicError) { e.gaveUp <- pe },
		Restarted: func(ctx actor.Context, _ *PanicError) {
			e.host.Deliver(ctx, restarted{})
		},
	}
	for _, m := range modify {
		m(e, &opts)
	}
	e.host = NewHost(func() actor.Actor {
		return &probe{id: int(e.made.Add(1)), events: e.events}
	}, opts)
	e.owner = e.system.Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) { e.host.Receive(ctx) }))
	t.Cleanup(func() { _ = e.system.Root.StopFuture(e.owner).Wait() })
	return e
}

func (e *hostEnv) send(msgs ...string) {
	for _, m := range msgs {
		e.system.Root.Send(e.owner, m)
	}
}

// expect reads the next events and compares them with want.
func (e *hostEnv) expect(t *testing.T, want ...string) {
	t.Helper()
	for _, w := range want {
		select {
		case got := <-e.events:
			if got != w {
				t.Fatalf("event %q, want %q", got, w)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no event, want %q", w)
		}
	}
}

func (e *hostEnv) noGiveUp(t *testing.T) {
	t.Helper()
	select {
	case pe := <-e.gaveUp:
		t.Fatalf("gave up: %v", pe)
	default:
	}
	if e.host.Failed() {
		t.Fatal("Failed() within budget")
	}
}

func TestHostResumeKeepsState(t *testing.T) {
	e := newHostEnv(t, Policy{Directive: Resume, Budget: Budget{Max: 2, Within: time.Hour}})
	e.send("a", "boom", "b", "boom", "c")
	e.expect(t, "started 1", "1:a=1", "1:b=2", "1:c=3") // one instance, its count kept
	e.noGiveUp(t)
	if n := e.made.Load(); n != 1 {
		t.Fatalf("producer called %d times, want 1", n)
	}
}

func TestHostRestartGivesFreshInstance(t *testing.T) {
	e := newHostEnv(t, Policy{Directive: Restart, Budget: Budget{Max: 2, Within: time.Hour}})
	e.send("a", "a", "boom", "b")
	e.expect(t, "started 1", "1:a=1", "1:a=2",
		"restarting 1", "started 2", "restarted 2", // old told, fresh made, owner's hook
		"2:b=1") // fresh state
	e.noGiveUp(t)
}

func TestHostStopGivesUpAtFirstPanic(t *testing.T) {
	e := newHostEnv(t, Policy{Directive: Stop, Budget: Budget{Max: 5, Within: time.Hour}})
	e.send("a", "boom", "b")
	e.expect(t, "started 1", "1:a=1")
	select {
	case pe := <-e.gaveUp:
		if pe.Value != "probe asked to" || pe.Message != "boom" || !strings.Contains(string(pe.Stack), "(*probe).Receive") {
			t.Fatalf("PanicError = %+v", pe)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Stop did not give up")
	}
	if !e.host.Failed() {
		t.Fatal("Failed() = false after giving up")
	}
	// The host still delivers what the owner passes it: the owner decides.
	e.expect(t, "1:b=2")
}

// TestHostBudgetGivesUpOnce: under each directive, Max panics within the
// window are within budget; the next one calls GiveUp, once, whatever
// follows; each panic is logged once, with its stack.
func TestHostBudgetGivesUpOnce(t *testing.T) {
	for _, d := range []Directive{Resume, Restart} {
		t.Run(d.String(), func(t *testing.T) {
			e := newHostEnv(t, Policy{Directive: d, Budget: Budget{Max: 3, Within: time.Hour}})
			e.send("boom", "boom", "boom", "boom", "boom", "boom", "sync")
			var last string
			for last == "" || !strings.HasSuffix(last, ":sync=1") {
				select {
				case last = <-e.events:
				case <-time.After(5 * time.Second):
					t.Fatal("sync message not handled")
				}
			}
			select {
			case pe := <-e.gaveUp:
				if pe.Message != "boom" {
					t.Fatalf("GiveUp got %+v", pe)
				}
			default:
				t.Fatal("GiveUp not called past the budget")
			}
			if len(e.gaveUp) != 0 {
				t.Fatal("GiveUp called more than once")
			}
			if got := e.logs.count(`"stack":`); got != 6 {
				t.Fatalf("%d stacks logged for 6 panics", got)
			}
			if got := e.logs.count("past its budget"); got != 1 {
				t.Fatalf("%d give-up lines, want 1", got)
			}
			if got := e.logs.count("after its host gave up"); got != 2 {
				t.Fatalf("%d lines for panics after giving up, want 2", got)
			}
			wantMade := int32(1)
			if d == Restart {
				wantMade = 4 // three restarts within budget, none after
			}
			if n := e.made.Load(); n != wantMade {
				t.Fatalf("producer called %d times, want %d", n, wantMade)
			}
		})
	}
}

// TestHostBudgetWindow: on fake time, panics older than Within no longer
// count, so a behaviour that panics now and then is never given up on, while
// the same panics close together exhaust the budget.
func TestHostBudgetWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newHostEnv(t, Policy{Budget: Budget{Max: 2, Within: time.Minute}})
		e.send("x")
		e.expect(t, "started 1", "1:x=1")
		for i := range 5 { // 10 panics in all, 2 per minute
			e.send("boom", "boom", "x")
			e.expect(t, "1:x="+itoa(i+2))
			e.noGiveUp(t)
			time.Sleep(time.Minute + time.Second)
		}
		e.send("boom", "boom", "boom", "x")
		e.expect(t, "1:x=7")
		if !e.host.Failed() || len(e.gaveUp) != 1 {
			t.Fatal("three panics within a minute did not exhaust a budget of 2")
		}
	})
}

// TestHostCall: a function run with Call (a decoder) resumes within the
// budget, Restart acting as Resume, then gives up once.
func TestHostCall(t *testing.T) {
	var gaveUp atomic.Int32
	h := NewHost(nil, HostOptions{
		Policy: Policy{Directive: Restart, Budget: Budget{Max: 1, Within: time.Hour}},
		GiveUp: func(*PanicError) { gaveUp.Add(1) },
	})
	if !h.Call("decode", func() {}) {
		t.Fatal("Call reported a panic for a function that returned")
	}
	for i := range 3 {
		if h.Call("decode", func() { panic("decoder bug") }) {
			t.Fatal("Call reported no panic")
		}
		if want := i >= 1; h.Failed() != want {
			t.Fatalf("after panic %d: Failed() = %v", i+1, h.Failed())
		}
	}
	if gaveUp.Load() != 1 {
		t.Fatalf("GiveUp called %d times, want 1", gaveUp.Load())
	}
	h.Revive()
	if h.Failed() {
		t.Fatal("Revive did not clear Failed")
	}
}

// TestHostProducerPanicGivesUp: a producer that panics leaves nothing to
// run: the host gives up at once.
func TestHostProducerPanicGivesUp(t *testing.T) {
	gaveUp := make(chan *PanicError, 1)
	logs := &logBuf{}
	h := NewHost(func() actor.Actor { panic("cannot build") }, HostOptions{
		Logger: zerolog.New(logs),
		GiveUp: func(pe *PanicError) { gaveUp <- pe },
	})
	system := actor.NewActorSystem(actor.WithLoggerFactory(discardSlog))
	owner := system.Root.Spawn(actor.PropsFromFunc(h.Receive))
	system.Root.Send(owner, "x")
	_ = system.Root.StopFuture(owner).Wait()
	select {
	case pe := <-gaveUp:
		if pe.Value != "cannot build" || pe.Message != nil {
			t.Fatalf("PanicError = %+v", pe)
		}
	default:
		t.Fatal("no give-up")
	}
	if n := logs.count("producer panicked"); n != 1 {
		t.Fatalf("%d producer panic lines, want 1", n)
	}
}

func discardSlog(*actor.ActorSystem) *slog.Logger { return slog.New(slog.DiscardHandler) }

// envOwner tells hostEnv what its GiveUp and Restarted funcs would.
type envOwner struct{ e *hostEnv }

func (o envOwner) GiveUp(pe *PanicError) { o.e.gaveUp <- pe }

func (o envOwner) Restarted(ctx actor.Context, _ *PanicError) { o.e.host.Deliver(ctx, restarted{}) }

// HostOptions.Owner is told of a restart and of giving up, in place of the
// GiveUp and Restarted funcs, which it overrides.
func TestHostOwner(t *testing.T) {
	var decoy atomic.Int32
	e := newHostEnv(t, Policy{Directive: Restart, Budget: Budget{Max: 1, Within: time.Hour}}, func(e *hostEnv, o *HostOptions) {
		o.Owner = envOwner{e}
		o.GiveUp = func(*PanicError) { decoy.Add(1) }
		o.Restarted = func(actor.Context, *PanicError) { decoy.Add(1) }
	})
	e.send("a", "boom", "b")
	e.expect(t, "started 1", "1:a=1", "restarting 1", "started 2", "restarted 2", "2:b=1")
	e.noGiveUp(t)
	e.send("boom") // past the budget of 1
	select {
	case pe := <-e.gaveUp:
		if pe == nil || !e.host.Failed() {
			t.Fatalf("gave up with %v, Failed %v", pe, e.host.Failed())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the owner was not told the host gave up")
	}
	if n := decoy.Load(); n != 0 {
		t.Fatalf("the funcs were called %d times beside the Owner", n)
	}
}
