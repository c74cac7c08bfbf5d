// Package hist is a fixed-bucket histogram of durations that many
// goroutines record into with one atomic add per bucket and sum, for the
// latency distributions the metrics package exports.
package hist

import (
	"sync/atomic"
	"time"
)

// Bounds are the upper bounds every wsactor histogram uses: from a quarter
// of a millisecond (a round trip on one host) to five seconds (a client on
// a bad mobile link, a topic stuck in a handler).
var Bounds = []time.Duration{
	250 * time.Microsecond, 500 * time.Microsecond,
	time.Millisecond, 2500 * time.Microsecond, 5 * time.Millisecond,
	10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond,
	100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond,
	time.Second, 2500 * time.Millisecond, 5 * time.Second,
}

// H counts observations in the buckets of Bounds. The zero value is ready.
type H struct {
	counts [nBounds + 1]atomic.Uint64 // counts[len(Bounds)]: above every bound
	sum    atomic.Int64               // nanoseconds
}

// nBounds is len(Bounds), as a constant for the array.
const nBounds = 14

// Observe counts d.
func (h *H) Observe(d time.Duration) {
	i := 0
	for i < len(Bounds) && d > Bounds[i] {
		i++
	}
	h.counts[i].Add(1)
	h.sum.Add(int64(d))
}

// Snapshot returns the count per bucket (not cumulative; the last is
// above every bound) and the sum of what was observed.
func (h *H) Snapshot() (counts []uint64, sum time.Duration) {
	counts = make([]uint64, len(h.counts))
	for i := range h.counts {
		counts[i] = h.counts[i].Load()
	}
	return counts, time.Duration(h.sum.Load())
}
