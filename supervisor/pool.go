package supervisor

import (
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// WarmPool is a protoactor dispatcher (actor.WithDispatcher) that runs
// mailboxes on long-lived worker goroutines. actors.Handler runs its
// connection actors on one, and a Tree its rooms (Tree.Pool). protoactor's default dispatcher starts a new
// goroutine for every batch of messages an idle actor receives, and the
// actor's call chain then grows that goroutine's small stack by copying
// (runtime.newstack: 17% of the server's CPU in the echo benchmark). Here a
// batch goes to an idle worker, whose stack has already grown, or to a new
// worker when none is idle, so scheduling never blocks and a Receive that
// blocks holds only its own worker. A worker exits after idle without work,
// and at once after Stop (work scheduled later still runs, on a worker that
// then exits). Which goroutine runs an actor's Receive can change from one
// batch to the next, as with protoactor's default. docs/performance.md has
// the measurements.
type WarmPool struct {
	work       chan func() // unbuffered: a send succeeds only to an idle worker
	quit       chan struct{}
	idle       time.Duration
	throughput int
	live       atomic.Int64 // workers running, for tests
	started    atomic.Int64 // workers started, for tests
}

// warmIdle is how long a worker waits for work before it exits.
const warmIdle = 10 * time.Second

// NewWarmPool returns a pool with no workers yet.
func NewWarmPool() *WarmPool {
	return &WarmPool{work: make(chan func()), quit: make(chan struct{}), idle: warmIdle, throughput: 300}
}

var _ actor.Dispatcher = (*WarmPool)(nil)

// Schedule implements actor.Dispatcher: fn runs on an idle worker, or on a
// new one.
func (d *WarmPool) Schedule(fn func()) {
	select {
	case d.work <- fn:
	default:
		go d.worker(fn)
	}
}

// Throughput implements actor.Dispatcher: how many messages a mailbox
// handles before it yields its worker (protoactor's default, 300).
func (d *WarmPool) Throughput() int { return d.throughput }

func (d *WarmPool) worker(fn func()) {
	d.live.Add(1)
	d.started.Add(1)
	defer d.live.Add(-1)
	t := time.NewTimer(d.idle)
	defer t.Stop()
	for {
		fn()
		t.Reset(d.idle)
		select {
		case fn = <-d.work:
		case <-t.C:
			return
		case <-d.quit:
			return
		}
	}
}

// Stop makes idle workers exit, and busy ones once their batch is done.
// Work scheduled after Stop still runs, on a worker that then exits. It is
// safe to call more than once.
func (d *WarmPool) Stop() {
	select {
	case <-d.quit:
	default:
		close(d.quit)
	}
}
