package exampletest

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// StopTimeout bounds how long Run.Stop waits for the run function to return.
const StopTimeout = 15 * time.Second

// Run is an example's run function running in a goroutine, as main runs it.
type Run struct {
	done chan struct{} // closed when run returned
	err  error         // what run returned, set before done is closed
	stop func() error
}

// Start calls run in a goroutine with a context that Stop cancels, which is
// what SIGINT does to the example's main. Stop is also called at cleanup,
// and its error ignored there: a test that checks how run ends calls Stop
// itself.
func Start(t testing.TB, run func(ctx context.Context) error) *Run {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &Run{done: make(chan struct{})}
	go func() {
		defer close(r.done)
		r.err = run(ctx)
	}()
	r.stop = sync.OnceValue(func() error {
		cancel()
		select {
		case <-r.done:
			return r.err
		case <-time.After(StopTimeout):
			return errors.New("run did not return after its context was cancelled")
		}
	})
	t.Cleanup(func() { _ = r.Stop() })
	return r
}

// Stop cancels run's context and returns what run returned, or an error if
// it did not return within StopTimeout. Calling it again returns the same.
func (r *Run) Stop() error { return r.stop() }

// Done is closed when run has returned (whether or not Stop was called).
func (r *Run) Done() <-chan struct{} { return r.done }

// Err is what run returned; call it once Done is closed.
func (r *Run) Err() error {
	<-r.done
	return r.err
}

// LogWriter is an io.Writer for an example's log that passes each write,
// less its trailing newline, to the test's log, and reports the first
// submatches of a pattern (the line saying where the example listens) on
// Match.
//
// It stops logging to the test at cleanup, since a stray goroutine of the
// example may still log after the test ended. Create it before starting what
// writes to it, so that this cleanup runs after the one that stops it.
type LogWriter struct {
	t     testing.TB
	re    *regexp.Regexp
	match chan []string

	mu       sync.Mutex
	detached bool
	found    bool
}

// NewLogWriter returns a LogWriter logging to t that looks for re; with a
// nil re it only logs.
func NewLogWriter(t testing.TB, re *regexp.Regexp) *LogWriter {
	t.Helper()
	w := &LogWriter{t: t, re: re, match: make(chan []string, 1)}
	t.Cleanup(func() {
		w.mu.Lock()
		w.detached = true
		w.mu.Unlock()
	})
	return w
}

// Write logs p to the test, and sends p's submatches of the pattern on Match
// if it is the first write that has them.
func (w *LogWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.detached {
		return len(p), nil
	}
	line := strings.TrimRight(string(p), "\n")
	w.t.Log(line)
	if w.re == nil || w.found {
		return len(p), nil
	}
	if m := w.re.FindStringSubmatch(line); m != nil {
		w.found = true
		w.match <- m
	}
	return len(p), nil
}

// Match delivers the submatches of the first write that matched the pattern.
func (w *LogWriter) Match() <-chan []string { return w.match }
