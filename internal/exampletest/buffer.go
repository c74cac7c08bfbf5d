package exampletest

import (
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// WaitTimeout bounds Buffer.Wait.
const WaitTimeout = 10 * time.Second

// Buffer collects what an example prints: an io.Writer that is safe for the
// example's goroutines and the test's at once. Its zero value is ready to use.
type Buffer struct {
	mu      sync.Mutex
	b       strings.Builder
	changed chan struct{} // closed and replaced on every Write
}

// Write appends p and wakes up Wait.
func (o *Buffer) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.changed != nil {
		close(o.changed)
		o.changed = nil
	}
	return o.b.Write(p)
}

// String returns everything written so far.
func (o *Buffer) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}

// Wait returns the first submatches of re in everything written so far,
// waiting for them for at most WaitTimeout; then it fails the test with the
// output.
func (o *Buffer) Wait(t testing.TB, re *regexp.Regexp) []string {
	t.Helper()
	timeout := time.After(WaitTimeout)
	for {
		o.mu.Lock()
		m := re.FindStringSubmatch(o.b.String())
		if o.changed == nil {
			o.changed = make(chan struct{})
		}
		changed := o.changed
		o.mu.Unlock()
		if m != nil {
			return m
		}
		select {
		case <-changed:
		case <-timeout:
			t.Fatalf("output never matched %v:\n%s", re, o.String())
		}
	}
}
