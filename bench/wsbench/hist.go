package main

import (
	"math"
	"math/bits"
)

// hist is a log-linear latency histogram in nanoseconds: 16 sub-buckets per
// power of two (under 4.5% error), up to 2^40 ns (18 minutes), 2.5 KB. One per
// receiving connection, merged at the end, so recording is one increment
// without atomics or allocation.
type hist struct {
	counts [histBuckets]uint32
	n      int64
	max    int64
}

const (
	histSub     = 16 // sub-buckets per power of two
	histSubBits = 4
	histExp     = 40
	histBuckets = (histExp - histSubBits + 1) * histSub
)

func bucketOf(v int64) int {
	if v < histSub {
		if v < 0 {
			return 0
		}
		return int(v)
	}
	e := bits.Len64(uint64(v)) - 1 // 2^e <= v < 2^(e+1), e >= 4
	if e >= histExp {
		return histBuckets - 1
	}
	sub := int(v>>(e-histSubBits)) & (histSub - 1)
	return (e-histSubBits+1)*histSub + sub
}

// lowOf is the smallest value of bucket i; midOf its middle.
func lowOf(i int) int64 {
	if i < histSub {
		return int64(i)
	}
	e := i/histSub + histSubBits - 1
	sub := int64(i % histSub)
	return (1 << e) + sub<<(e-histSubBits)
}

func midOf(i int) float64 {
	if i < histSub {
		return float64(i)
	}
	e := i/histSub + histSubBits - 1
	return float64(lowOf(i)) + float64(int64(1)<<(e-histSubBits))/2
}

func (h *hist) add(v int64) {
	h.counts[bucketOf(v)]++
	h.n++
	if v > h.max {
		h.max = v
	}
}

func (h *hist) merge(o *hist) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.max = max(h.max, o.max)
}

// quantile returns the q-quantile (0..1) in ns, as its bucket's middle
// (clamped to the maximum seen).
func (h *hist) quantile(q float64) float64 {
	if h.n == 0 {
		return math.NaN()
	}
	rank := int64(math.Ceil(q * float64(h.n)))
	if rank < 1 {
		rank = 1
	}
	var seen int64
	for i, c := range h.counts {
		seen += int64(c)
		if seen >= rank {
			return math.Min(midOf(i), float64(h.max))
		}
	}
	return float64(h.max)
}
