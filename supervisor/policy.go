package supervisor

import (
	"math/rand/v2"
	"sync"
	"time"
)

// Directive is what a [Host] does about a panic in the code it hosts while
// the panic is within its policy's budget. In every case the message being
// handled is dropped and the panic is logged once with its stack.
type Directive int

const (
	// Resume keeps the behaviour instance and its state, and goes on with
	// the next message. It is the default.
	Resume Directive = iota
	// Restart replaces the behaviour with a fresh one from its producer: the
	// old instance receives *actor.Restarting, the new one *actor.Started
	// and then what its owner documents (a connection's gets *actors.Opened
	// again, for the same socket). The owner's own state is kept.
	Restart
	// Stop gives up at the first panic, whatever the budget: a connection
	// closes with 1011, a room stops.
	Stop
)

func (d Directive) String() string {
	switch d {
	case Resume:
		return "resume"
	case Restart:
		return "restart"
	case Stop:
		return "stop"
	}
	return "invalid"
}

// Budget allows Max panics within any window of length Within; the panic
// after that is past the budget, and the host gives up. The zero value means
// 3 panics per minute.
type Budget struct {
	Max    int
	Within time.Duration
}

// DefaultBudget is the zero Budget's meaning: 3 panics per minute.
var DefaultBudget = Budget{Max: 3, Within: time.Minute}

func (b Budget) withDefaults() Budget {
	if b.Max <= 0 {
		b.Max = DefaultBudget.Max
	}
	if b.Within <= 0 {
		b.Within = DefaultBudget.Within
	}
	return b
}

// Policy is the configured reaction to a panic in user code run by a
// [Host]: Directive applies while the Budget lasts; past the budget (or at
// the first panic under Stop) the host gives up, which closes a connection
// with 1011 and stops a room. The zero value resumes up to 3 times per
// minute, then gives up.
type Policy struct {
	Directive Directive
	Budget    Budget
}

// Counter tracks failures against a Budget, for code that applies a Policy
// itself (a channel topic's behaviour on a cluster). It is safe for
// concurrent use. Unlike protoactor's restart statistics it forgets
// failures older than the window, so a rare but endless failure does not
// grow it.
type Counter struct {
	budget Budget
	mu     sync.Mutex
	times  []time.Time
}

// NewCounter returns a Counter for b (zero fields take the defaults).
func NewCounter(b Budget) *Counter { return &Counter{budget: b.withDefaults()} }

// Fail records a failure at now and reports whether it is within budget.
func (c *Counter) Fail(now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	cut := now.Add(-c.budget.Within)
	kept := c.times[:0]
	for _, t := range c.times {
		if t.After(cut) {
			kept = append(kept, t)
		}
	}
	c.times = append(kept, now)
	return len(c.times) <= c.budget.Max
}

// Backoff is capped exponential backoff with full jitter: attempt n waits a
// uniformly random time in [0, min(Max, Min·2ⁿ)]. (protoactor's own
// "exponential" backoff grows linearly and has no cap.) The zero value means
// Min 100ms, Max 30s.
type Backoff struct {
	Min time.Duration
	Max time.Duration
}

// Delay returns the wait before attempt n (0-based).
func (b Backoff) Delay(n int) time.Duration {
	return b.delay(n, rand.Float64)
}

func (b Backoff) delay(n int, rnd func() float64) time.Duration {
	if b.Min <= 0 {
		b.Min = 100 * time.Millisecond
	}
	if b.Max <= 0 {
		b.Max = 30 * time.Second
	}
	if b.Max < b.Min {
		b.Max = b.Min
	}
	ceil := b.Max
	if n < 62 {
		if d := b.Min << n; d > 0 && d < b.Max {
			ceil = d
		}
	}
	return time.Duration(rnd() * float64(ceil))
}
