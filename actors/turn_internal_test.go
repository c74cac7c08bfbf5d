package actors

import (
	"sync/atomic"
	"testing"
)

type countingDispatcher struct{ scheduled atomic.Int32 }

func (d *countingDispatcher) Schedule(fn func()) { d.scheduled.Add(1); go fn() }
func (d *countingDispatcher) Throughput() int    { return 300 }

// The turn-taking dispatcher's contract: a turn scheduled while the reader
// posts is handed to the reader, whichever goroutine schedules it, and is
// never run by Schedule's caller; other turns go to the dispatcher.
func TestTurnMailboxHandsTurnsToTheReader(t *testing.T) {
	d := &countingDispatcher{}
	m := &turnMailbox{disp: d}

	// Another goroutine schedules while the reader posts.
	var ran atomic.Int32
	m.want()
	scheduled := make(chan struct{})
	go func() {
		m.Schedule(func() { ran.Add(1) })
		close(scheduled)
	}()
	<-scheduled
	if ran.Load() != 0 || d.scheduled.Load() != 0 {
		t.Fatalf("Schedule ran the turn (%d) or dispatched it (%d)", ran.Load(), d.scheduled.Load())
	}
	fn := m.take()
	if fn == nil {
		t.Fatal("the reader was not handed the turn")
	}
	fn()
	if ran.Load() != 1 {
		t.Fatal("the handed turn is not the scheduled one")
	}

	// Nothing scheduled while posting: nothing to take.
	m.want()
	if m.take() != nil {
		t.Fatal("a turn was taken that nobody scheduled")
	}

	// Not posting: the dispatcher runs it.
	done := make(chan struct{})
	m.Schedule(func() { close(done) })
	<-done
	if d.scheduled.Load() != 1 {
		t.Fatalf("dispatched %d turns, want 1", d.scheduled.Load())
	}
	if m.take() != nil {
		t.Fatal("a dispatched turn was also handed over")
	}
}
