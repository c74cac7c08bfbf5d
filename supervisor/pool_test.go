package supervisor

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The warm pool runs every scheduled batch once, never makes a
// batch wait for a busy one, reuses idle workers, and lets them go when
// idle or stopped; work scheduled after stop still runs.
func TestWarmPool(t *testing.T) {
	d := NewWarmPool()
	d.idle = 50 * time.Millisecond

	var runs atomic.Int64
	var wg sync.WaitGroup
	for range 1000 {
		wg.Add(1)
		go d.Schedule(func() { runs.Add(1); wg.Done() })
	}
	wg.Wait()
	if runs.Load() != 1000 {
		t.Fatalf("%d runs, want 1000", runs.Load())
	}

	// A batch that blocks holds its worker only.
	release := make(chan struct{})
	blocked := make(chan struct{})
	d.Schedule(func() { close(blocked); <-release })
	<-blocked
	done := make(chan struct{})
	d.Schedule(func() { close(done) })
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("a batch waited for a blocked one")
	}
	close(release)

	// Sequential batches reuse one warm worker.
	waitFor(t, "the workers to go idle and exit", func() bool { return d.live.Load() == 0 })
	before := d.started.Load()
	for range 100 {
		ran := make(chan struct{})
		d.Schedule(func() { close(ran) })
		<-ran
		time.Sleep(time.Millisecond) // the worker is back waiting (a slow machine may start another)
	}
	if n := d.started.Load() - before; n > 10 {
		t.Fatalf("%d workers started for 100 sequential batches: not reused", n)
	}

	d.Stop()
	d.Stop() // twice is fine
	waitFor(t, "stopped workers to exit", func() bool { return d.live.Load() == 0 })
	ran := make(chan struct{})
	d.Schedule(func() { close(ran) })
	select {
	case <-ran:
	case <-time.After(5 * time.Second):
		t.Fatal("work scheduled after stop did not run")
	}
	waitFor(t, "the last worker to exit", func() bool { return d.live.Load() == 0 })
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not in time", what)
		}
	}
}
