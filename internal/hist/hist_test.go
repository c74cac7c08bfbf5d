package hist

import (
	"sync"
	"testing"
	"time"
)

func TestBoundsMatchTheArray(t *testing.T) {
	var h H
	if len(h.counts) != len(Bounds)+1 {
		t.Fatalf("%d buckets for %d bounds", len(h.counts), len(Bounds))
	}
	for i := 1; i < len(Bounds); i++ {
		if Bounds[i] <= Bounds[i-1] {
			t.Fatalf("bounds not ascending at %d", i)
		}
	}
}

func TestObserve(t *testing.T) {
	var h H
	for _, d := range []time.Duration{0, 250 * time.Microsecond, 251 * time.Microsecond, time.Millisecond, time.Minute} {
		h.Observe(d)
	}
	counts, sum := h.Snapshot()
	want := make([]uint64, len(Bounds)+1)
	want[0] = 2           // 0 and exactly the first bound
	want[1] = 1           // just above it
	want[2] = 1           // 1ms, the third bound
	want[len(Bounds)] = 1 // a minute: above every bound
	for i := range want {
		if counts[i] != want[i] {
			t.Fatalf("counts %v, want %v", counts, want)
		}
	}
	if wantSum := 250*time.Microsecond + 251*time.Microsecond + time.Millisecond + time.Minute; sum != wantSum {
		t.Fatalf("sum %v, want %v", sum, wantSum)
	}
}

func TestConcurrentObserve(t *testing.T) {
	var h H
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 1000; i++ {
				h.Observe(time.Duration(i) * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	counts, _ := h.Snapshot()
	var n uint64
	for _, c := range counts {
		n += c
	}
	if n != 8000 {
		t.Fatalf("%d observations, want 8000", n)
	}
}
