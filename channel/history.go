package channel

import (
	"crypto/rand"
	"time"

	"github.com/rs/zerolog"
)

// history is a topic's kept events: at most size, none older than ttl (when
// positive), oldest first. It belongs to the topic's actor.
type history struct {
	store Store // nil: memory only
	topic string
	log   zerolog.Logger
	epoch string
	last  uint64 // the offset of the newest event ever appended (0: none)
	size  int
	ttl   time.Duration
	limit int    // bytes of event data kept at most (<= 0: no limit)
	bytes int    // bytes of event data kept
	ring  []kept // a circular buffer of up to size events
	head  int    // index of the oldest event
	n     int    // events held
}

type kept struct {
	offset uint64
	at     time.Time
	event  string
	p      payload
	entry  []byte // the event as a join reply's history lists it, encoded once
}

func newHistory(size int, ttl time.Duration, limit int) *history {
	return &history{epoch: newEpoch(), size: size, ttl: ttl, limit: limit}
}

// loadHistory makes a topic's history from store: the stored stream when
// there is one, else a new epoch (recorded in the store). A store that
// fails to load gets a new epoch too, so clients are told.
func loadHistory(store Store, topic string, size int, ttl time.Duration, limit int, log zerolog.Logger) *history {
	h := newHistory(size, ttl, limit)
	h.store, h.topic, h.log = store, topic, log
	if store == nil {
		return h
	}
	epoch, last, events, err := store.Load(topic, max(size, 0))
	if err != nil {
		log.Error().Err(err).Str("topic", topic).Msg("loading history failed; starting a new epoch")
	}
	if err != nil || epoch == "" {
		h.reset()
		return h
	}
	h.epoch = epoch
	for _, e := range events {
		h.last = e.Offset - 1
		h.keep(e.Event, payload{json: e.Data, bin: e.Bin}, e.Time)
	}
	h.last = last
	return h
}

// reset starts a new epoch with no events, in the store too.
func (h *history) reset() {
	h.epoch = newEpoch()
	clear(h.ring)
	h.ring, h.head, h.n, h.bytes = nil, 0, 0, 0
	if h.store != nil {
		if err := h.store.Reset(h.topic, h.epoch); err != nil {
			h.log.Error().Err(err).Str("topic", h.topic).Msg("resetting stored history failed")
		}
	}
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

// append keeps an event (in the store too) and returns its offset. A topic
// with no history (size 0) still numbers its events, so positions stay
// meaningful. If the store fails, what it holds cannot be trusted to be
// whole: the topic starts a new epoch, so that clients are told.
func (h *history) append(event string, p payload, now time.Time) uint64 {
	off := h.keep(event, p, now)
	if h.store != nil && h.size > 0 {
		e := StoredEvent{Offset: off, Event: event, Data: p.json, Bin: p.bin, Time: now}
		if err := h.store.Append(h.topic, h.epoch, e, h.size); err != nil {
			h.log.Error().Err(err).Str("topic", h.topic).Msg("storing history failed; starting a new epoch")
			h.reset()
			h.keep(event, p, now)
			_ = h.store.Append(h.topic, h.epoch, e, h.size)
		}
	}
	return off
}

// keep appends to the ring.
func (h *history) keep(event string, p payload, now time.Time) uint64 {
	h.last++
	if h.size <= 0 {
		return h.last
	}
	k := kept{offset: h.last, at: now, event: event, p: p}
	k.entry = appendHistoryEvent(make([]byte, 0, len(p.json)+len(p.bin)*4/3+len(event)+40), event, p, h.last)
	h.bytes += k.cost()
	defer h.trim()
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
	h.bytes -= h.ring[h.head].cost()
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
		h.dropOldest()
	}
}

// trim drops the oldest events while the data kept is over the byte limit.
// The newest event stays even if it alone is over the limit.
func (h *history) trim() {
	for h.limit > 0 && h.bytes > h.limit && h.n > 1 {
		h.dropOldest()
	}
}

func (h *history) dropOldest() {
	h.bytes -= h.ring[h.head].cost()
	h.ring[h.head] = kept{}
	h.head = (h.head + 1) % len(h.ring)
	h.n--
}

// cost is what an event counts against the byte limit.
func (k *kept) cost() int { return len(k.p.json) + len(k.p.bin) + len(k.event) }

// appendEntries appends the newest n events' entries, oldest first,
// separated by commas.
func (h *history) appendEntries(b []byte, n int) []byte {
	n = min(n, h.n)
	for i := h.n - n; i < h.n; i++ {
		if i > h.n-n {
			b = append(b, ',')
		}
		b = append(b, h.at(i).entry...)
	}
	return b
}

// missed says how many events follow pos, or why they cannot be had:
// ReasonEpoch (another stream), ReasonAhead (an offset never reached),
// ReasonExpired (some are no longer kept).
func (h *history) missed(pos Position) (int, string) {
	switch {
	case pos.Epoch != h.epoch:
		return 0, ReasonEpoch
	case pos.Offset > h.last:
		return 0, ReasonAhead
	}
	n := h.last - pos.Offset
	if n > uint64(h.n) {
		return 0, ReasonExpired
	}
	return int(n), ""
}

func (h *history) at(i int) *kept { return &h.ring[(h.head+i)%len(h.ring)] }

// lastN returns the newest n events, oldest first.
func (h *history) lastN(n int) []HistoryEvent {
	n = min(n, h.n)
	out := make([]HistoryEvent, 0, n)
	for i := h.n - n; i < h.n; i++ {
		k := h.at(i)
		out = append(out, HistoryEvent{Event: k.event, Data: k.p.json, Bin: k.p.bin, Offset: k.offset})
	}
	return out
}

// since returns every event after pos, oldest first, or why it cannot
// (see missed).
func (h *history) since(pos Position) ([]HistoryEvent, string) {
	n, reason := h.missed(pos)
	if reason != "" {
		return nil, reason
	}
	return h.lastN(n), ""
}
