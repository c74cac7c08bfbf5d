package wsactortest

import "go.uber.org/goleak"

// leftBehind are the goroutines a correctly shut down program may still
// have for a moment, by function name as goleak matches them.
var leftBehind = []string{
	// protoactor's dead-letter throttle keeps a goroutine for its interval
	// (1s by default) after a dead letter is logged, then ends by itself.
	// Dead letters are normal around a shutdown: a broadcast or a timer's
	// message reaching a stopped actor. The first name is the closure
	// inlined into actor.NewDeadLetter (a normal build, with or without
	// -race), the second the same closure built without inlining (-l).
	"github.com/asynkron/protoactor-go/actor.NewDeadLetter.NewThrottle.func4.1",
	"github.com/asynkron/protoactor-go/actor.NewThrottle.func1.1",
}

// processWide are goroutines that live as long as the process, started
// once on first use: the idle-reader poller (Linux), which waits for
// readiness of every parked connection. It is not per connection: a
// connection left open shows as its reader or writer, or as a parked
// connection's poller-started reader once its peer goes away.
var processWide = []string{
	"github.com/wsactor/wsactor/transport.(*poller).run",
}

// LeakOptions returns goleak options that ignore protoactor's dead-letter
// throttle goroutine and wsactor's one process-wide poller goroutine (the
// idle readers', started on first use), and nothing else, for use with
// goleak's own functions.
// That goroutine is started when a dead letter is logged (normal around a
// shutdown), waits out the system's DeadLetterThrottleInterval (1s by
// default) and ends by itself. The list is deliberately narrow: a wsactor
// goroutine that is left (a connection's read or write loop, a heartbeat,
// a room's actor) means a missing Shutdown or Stop, and must fail the test.
func LeakOptions() []goleak.Option {
	opts := make([]goleak.Option, 0, len(leftBehind)+len(processWide))
	for _, f := range leftBehind {
		opts = append(opts, goleak.IgnoreAnyFunction(f))
	}
	for _, f := range processWide {
		opts = append(opts, goleak.IgnoreAnyFunction(f))
	}
	// Idle pooled writers wait up to 10s for work (transport's writers.go);
	// only the wait itself is ignored: a writer blocked in a write is not.
	return append(opts, goleak.IgnoreTopFunction("github.com/wsactor/wsactor/transport.(*writerPool).next"))
}

// VerifyTestMain is a TestMain body: it runs the package's tests, then
// fails (and exits non-zero) if goroutines are left other than those
// LeakOptions ignores and those extra ignores:
//
//	func TestMain(m *testing.M) { wsactortest.VerifyTestMain(m) }
//
// Prefer it to VerifyNone: it does not mix up parallel tests.
func VerifyTestMain(m goleak.TestingM, extra ...goleak.Option) {
	goleak.VerifyTestMain(m, append(LeakOptions(), extra...)...)
}

// VerifyNone fails t if goroutines are running other than the caller's and
// those LeakOptions and extra ignore. Call it at the end of a test (defer
// it) after shutting everything down; it retries for a while, so goroutines
// that are ending do not count. It cannot tell apart the goroutines of
// tests running in parallel: use VerifyTestMain there.
func VerifyNone(t goleak.TestingT, extra ...goleak.Option) {
	goleak.VerifyNone(t, append(LeakOptions(), extra...)...)
}
