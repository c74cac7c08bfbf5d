package actors

import (
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// warmDispatcher runs a Handler's connection actors' mailboxes on
// long-lived worker goroutines. protoactor's default dispatcher starts a new
// goroutine for every batch of messages an idle actor receives, and the
// actor's call chain then grows that goroutine's small stack by copying
// (runtime.newstack: 17% of the server's CPU in the echo benchmark). Here a
// batch goes to an idle worker, whose stack has already grown, or to a new
// worker when none is idle, so scheduling never blocks and a Receive that
// blocks holds only its own worker. A worker exits after idle without work,
// and at once when the Handler has shut down (stop). docs/performance.md
// has the measurements.
type warmDispatcher struct {
	work       chan func() // unbuffered: a send succeeds only to an idle worker
	quit       chan struct{}
	idle       time.Duration
	throughput int
	live       atomic.Int64 // workers running, for tests
	started    atomic.Int64 // workers started, for tests
}

// warmIdle is how long a worker waits for work before it exits.
const warmIdle = 10 * time.Second

func newWarmDispatcher() *warmDispatcher {
	return &warmDispatcher{work: make(chan func()), quit: make(chan struct{}), idle: warmIdle, throughput: 300}
}

var _ actor.Dispatcher = (*warmDispatcher)(nil)

// Schedule implements actor.Dispatcher: fn runs on an idle worker, or on a
// new one.
func (d *warmDispatcher) Schedule(fn func()) {
	select {
	case d.work <- fn:
	default:
		go d.worker(fn)
	}
}

// Throughput implements actor.Dispatcher: how many messages a mailbox
// handles before it yields its worker (protoactor's default, 300).
func (d *warmDispatcher) Throughput() int { return d.throughput }

func (d *warmDispatcher) worker(fn func()) {
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

// stop makes idle workers exit, and busy ones once their batch is done.
// Work scheduled after stop still runs, on a worker that then exits.
func (d *warmDispatcher) stop() {
	select {
	case <-d.quit:
	default:
		close(d.quit)
	}
}
