package channel

import (
	"crypto/rand"
	"encoding/json"
	"time"
)

// history is a topic's kept events: at most size, none older than ttl (when
// positive), oldest first. It belongs to the topic's actor.
type history struct {
	epoch string
	last  uint64 // the offset of the newest event ever appended (0: none)
	size  int
	ttl   time.Duration
	ring  []kept // a circular buffer of up to size events
	head  int    // index of the oldest event
	n     int    // events held
}

type kept struct {
	offset uint64
	at     time.Time
	event  string
	data   json.RawMessage
}

func newHistory(size int, ttl time.Duration) *history {
	return &history{epoch: newEpoch(), size: size, ttl: ttl}
}

// newEpoch returns a fresh random epoch: 8 characters, 48 bits.
func newEpoch() string { return randomID(8) }

// randomID returns n random characters of a URL-safe alphabet (6 bits each).
func randomID(n int) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[b[i]&63]
	}
	return string(b)
}

// append keeps an event and returns its offset. A topic with no history
// (size 0) still numbers its events, so positions stay meaningful.
func (h *history) append(event string, data json.RawMessage, now time.Time) uint64 {
	h.last++
	if h.size <= 0 {
		return h.last
	}
	k := kept{offset: h.last, at: now, event: event, data: data}
	if h.n == len(h.ring) && len(h.ring) < h.size {
		// Full but below size: grow (in order, oldest first) and append.
		grown := make([]kept, h.n, min(h.size, max(16, 2*h.n)))
		for i := range h.n {
			grown[i] = *h.at(i)
		}
		h.ring, h.head = append(grown, k), 0
		h.n++
		return h.last
	}
	if h.n < len(h.ring) {
		h.ring[(h.head+h.n)%len(h.ring)] = k
		h.n++
		return h.last
	}
	// Full at size: the oldest goes.
	h.ring[h.head] = k
	h.head = (h.head + 1) % len(h.ring)
	return h.last
}

// expire drops events older than the ttl.
func (h *history) expire(now time.Time) {
	if h.ttl <= 0 {
		return
	}
	for h.n > 0 && now.Sub(h.ring[h.head].at) > h.ttl {
		h.ring[h.head] = kept{}
		h.head = (h.head + 1) % len(h.ring)
		h.n--
	}
}

func (h *history) at(i int) *kept { return &h.ring[(h.head+i)%len(h.ring)] }

// lastN returns the newest n events, oldest first.
func (h *history) lastN(n int) []HistoryEvent {
	n = min(n, h.n)
	out := make([]HistoryEvent, 0, n)
	for i := h.n - n; i < h.n; i++ {
		k := h.at(i)
		out = append(out, HistoryEvent{Event: k.event, Data: k.data, Offset: k.offset})
	}
	return out
}

// since returns every event after pos, oldest first, or why it cannot:
// ReasonEpoch (another stream), ReasonAhead (an offset never reached),
// ReasonExpired (some are no longer kept).
func (h *history) since(pos Position) ([]HistoryEvent, string) {
	switch {
	case pos.Epoch != h.epoch:
		return nil, ReasonEpoch
	case pos.Offset > h.last:
		return nil, ReasonAhead
	case pos.Offset == h.last:
		return []HistoryEvent{}, ""
	}
	missed := h.last - pos.Offset
	if missed > uint64(h.n) {
		return nil, ReasonExpired
	}
	return h.lastN(int(missed)), ""
}
