package supervisor

import (
	"math/rand/v2"
	"sync"
	"time"
)

// Directive is what happens to a connection when a failure is within its
// budget.
type Directive int

const (
	// Resume keeps the connection and its actor's state; the message being
	// handled when the failure happened is dropped. It is the default.
	Resume Directive = iota
	// Close closes the connection with 1011 at the first failure.
	Close
)

func (d Directive) String() string {
	switch d {
	case Resume:
		return "resume"
	case Close:
		return "close"
	}
	return "invalid"
}

// Budget allows Max failures within Within; the failure after that exceeds
// it. The zero value means 3 failures per minute.
type Budget struct {
	Max    int
	Within time.Duration
}

// DefaultBudget is the zero Budget's meaning: 3 failures per minute.
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

// Policy is the configured reaction to one kind of failure: a directive
// applied while the budget lasts; past the budget the connection is closed
// with 1011. The zero value resumes 3 times per minute.
type Policy struct {
	Directive Directive
	Budget    Budget
}

// Counter tracks failures against a Budget. It is safe for concurrent use.
// Unlike protoactor's restart statistics it forgets failures older than the
// window, so a rare but endless failure does not grow it.
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
