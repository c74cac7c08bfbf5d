package channel

import (
	"math"
	"sync"
	"time"
)

// Limit is a token bucket: Rate requests a second on average, Burst at
// once. The zero value means the default of the field it is in; a negative
// Rate means no limit.
type Limit struct {
	Rate  float64
	Burst int
}

func (l Limit) orDefault(d Limit) Limit {
	if l.Rate == 0 {
		return d
	}
	if l.Burst <= 0 && l.Rate > 0 {
		l.Burst = max(1, int(math.Ceil(l.Rate)))
	}
	return l
}

// bucket is a token bucket. The zero value with a nil limit allows all.
type bucket struct {
	mu     sync.Mutex // held briefly; a user's bucket is shared by its sessions
	limit  Limit
	tokens float64
	at     time.Time
}

func newBucket(l Limit, now time.Time) *bucket {
	return &bucket{limit: l, tokens: float64(l.Burst), at: now}
}

// take spends one token, or says how long until one is there.
func (b *bucket) take(now time.Time) (ok bool, wait time.Duration) {
	if b == nil || b.limit.Rate < 0 {
		return true, 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if d := now.Sub(b.at); d > 0 {
		b.tokens = math.Min(float64(b.limit.Burst), b.tokens+d.Seconds()*b.limit.Rate)
		b.at = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) / b.limit.Rate * float64(time.Second))
}

// strikes counts offences in a sliding minute: a connection past its limit
// is closed.
type strikes struct {
	limit int
	times []time.Time
}

// add records an offence at now and reports whether the limit is passed.
func (s *strikes) add(now time.Time) bool {
	if s.limit <= 0 {
		return false
	}
	cut := 0
	for cut < len(s.times) && now.Sub(s.times[cut]) >= time.Minute {
		cut++
	}
	s.times = append(s.times[cut:], now)
	return len(s.times) >= s.limit
}
