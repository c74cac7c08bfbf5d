package actors

import (
	"errors"
	"net/http"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/wsactor/wsactor/internal/hist"
	"github.com/wsactor/wsactor/supervisor"
	"github.com/wsactor/wsactor/transport"
)

// HandlerStats is what a Handler has done since it was made, for metrics.
type HandlerStats struct {
	// Open is the number of connections open (as Len).
	Open int
	// Traffic sums every connection's counters, open and ended.
	Traffic transport.Stats
	// Closes counts ended connections by close code (grouped, see
	// CloseKind) and by who closed.
	Closes map[CloseKind]uint64
	// HeartbeatKills counts connections terminated for silence
	// (supervisor.ErrHeartbeatTimeout).
	HeartbeatKills uint64
	// Panics counts panics recovered from behaviours and decoders, by what
	// was done: "resumed", "restarted", "gave_up" (the connection closed
	// with 1011).
	Panics map[string]uint64
	// Upgrades counts upgrade requests by the HTTP status they got: 101
	// for a WebSocket, 401/403 refused by Authenticate or the origin check,
	// 429 by an admission limit, 503 at capacity or shutting down, 400/426
	// for a bad handshake, 500 otherwise.
	Upgrades map[int]uint64
	// RTT is the distribution of round-trip times measured by heartbeat
	// pings (and Conn.Ping): one observation per pong.
	RTT Histogram
}

// Histogram is a snapshot of a distribution of durations, for metrics.
// Counts[i] is how many observations were at most Bounds[i] and above
// Bounds[i-1]; the last count, Counts[len(Bounds)], is of those above
// every bound. Every wsactor histogram has the same bounds, 250µs to 5s.
type Histogram struct {
	Bounds []time.Duration
	Counts []uint64
	Sum    time.Duration
}

// Count returns the number of observations.
func (h Histogram) Count() uint64 {
	var n uint64
	for _, c := range h.Counts {
		n += c
	}
	return n
}

// Add returns the sum of h and o, two histograms with the same bounds (or
// either one empty).
func (h Histogram) Add(o Histogram) Histogram {
	if len(h.Counts) == 0 {
		return o
	}
	if len(o.Counts) == 0 {
		return h
	}
	out := Histogram{Bounds: h.Bounds, Counts: slices.Clone(h.Counts), Sum: h.Sum + o.Sum}
	for i := range out.Counts {
		out.Counts[i] += o.Counts[i]
	}
	return out
}

// newHistogram returns the snapshot of a recorder.
func newHistogram(h *hist.H) Histogram {
	counts, sum := h.Snapshot()
	return Histogram{Bounds: hist.Bounds, Counts: counts, Sum: sum}
}

// upgradeStatuses are the statuses counted; others count as 500.
var upgradeStatuses = [...]int{
	http.StatusSwitchingProtocols, http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden,
	http.StatusMethodNotAllowed, http.StatusUpgradeRequired, http.StatusTooManyRequests,
	http.StatusInternalServerError, http.StatusServiceUnavailable,
}

type upgradeCounts [len(upgradeStatuses)]atomic.Uint64

func (u *upgradeCounts) count(status int) {
	for i, s := range upgradeStatuses {
		if s == status {
			u[i].Add(1)
			return
		}
	}
	u[len(u)-2].Add(1) // 500
}

// upgradeStatus is the status Accept answered with err.
func upgradeStatus(err error) int {
	if err == nil {
		return http.StatusSwitchingProtocols
	}
	var st interface{ StatusCode() int }
	if errors.As(err, &st) {
		return st.StatusCode()
	}
	switch {
	case errors.Is(err, transport.ErrOriginNotAllowed):
		return http.StatusForbidden
	case errors.Is(err, transport.ErrNotWebSocket):
		return http.StatusUpgradeRequired
	case errors.Is(err, transport.ErrBadHandshake):
		return http.StatusBadRequest
	}
	return http.StatusInternalServerError
}

// Stats returns the Handler's counters. It reads every open connection's
// counters: call it at scrape time, not per message.
func (h *Handler) Stats() HandlerStats {
	// Under mu, so that a connection ending meanwhile is counted once
	// (open or ended): the totals never go down.
	h.mu.Lock()
	st := HandlerStats{Open: len(h.conns) + h.reserved, Traffic: h.closedStats}
	for c := range h.conns {
		st.Traffic = st.Traffic.Add(c.t.Stats())
	}
	st.Closes = make(map[CloseKind]uint64, len(h.closes))
	for k, n := range h.closes {
		st.Closes[k] = n
	}
	h.mu.Unlock()
	st.HeartbeatKills = h.hbKills.Load()
	st.Panics = map[string]uint64{}
	h.mu.Lock()
	for k, n := range h.panics {
		st.Panics[k] = n
	}
	h.mu.Unlock()
	st.RTT = newHistogram(&h.rtt)
	st.Upgrades = make(map[int]uint64, len(upgradeStatuses))
	for i, s := range upgradeStatuses {
		if n := h.upgrades[i].Load(); n > 0 {
			st.Upgrades[s] = n
		}
	}
	return st
}

// CloseKind is a close as metrics count it: the code (the RFC 6455 codes
// one by one, "3xxx" and "4xxx" for the registered and private ranges,
// "other" otherwise) and the side that closed ("peer" or "server").
type CloseKind struct {
	Code string
	Side string
}

func closeKind(code StatusCode, byPeer bool) CloseKind {
	k := CloseKind{Side: "server"}
	if byPeer {
		k.Side = "peer"
	}
	switch c := int(code); {
	case c >= 1000 && c <= 1015:
		k.Code = strconv.Itoa(c)
	case c >= 3000 && c <= 3999:
		k.Code = "3xxx"
	case c >= 4000 && c <= 4999:
		k.Code = "4xxx"
	default:
		k.Code = "other"
	}
	return k
}

// countClose is a connection actor's onClosed.
func (h *Handler) countClose(c *Conn, code StatusCode, reason string, byPeer bool, err error) {
	if errors.Is(err, supervisor.ErrHeartbeatTimeout) {
		h.hbKills.Add(1)
	}
	k := closeKind(code, byPeer)
	rec := CloseRecord{At: time.Now(), Code: code, Reason: reason, ByPeer: byPeer}
	if ip := c.ClientIP(); ip.IsValid() {
		rec.Remote = ip.String()
	}
	h.mu.Lock()
	if h.closes == nil {
		h.closes = map[CloseKind]uint64{}
	}
	h.closes[k]++
	h.recent[h.recentN%recentCloses] = rec
	h.recentN++
	h.mu.Unlock()
}

// CloseRecord is one ended connection, as RecentCloses lists it.
type CloseRecord struct {
	At     time.Time
	Code   StatusCode
	Reason string
	ByPeer bool
	Remote string // the client's address (ClientIP)
}

// recentCloses is how many CloseRecords a Handler keeps.
const recentCloses = 32

// RecentCloses returns the last 32 connections that ended, newest first.
func (h *Handler) RecentCloses() []CloseRecord {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := min(h.recentN, recentCloses)
	out := make([]CloseRecord, 0, n)
	for i := 1; i <= n; i++ {
		out = append(out, h.recent[(h.recentN-i)%recentCloses])
	}
	return out
}

// Range calls f for each open connection whose actor has started, until f
// returns false. The set is taken at the call; f runs without the
// Handler's lock, so it may call the connections' methods (ID, Buffered,
// RTT, ...).
func (h *Handler) Range(f func(c *Conn) bool) {
	h.mu.Lock()
	conns := make([]*Conn, 0, len(h.conns))
	for c := range h.conns {
		if c.PID() != nil {
			conns = append(conns, c)
		}
	}
	h.mu.Unlock()
	for _, c := range conns {
		if !f(c) {
			return
		}
	}
}

// countPanic is the hosts' Panicked.
func (h *Handler) countPanic(outcome string) {
	h.mu.Lock()
	if h.panics == nil {
		h.panics = map[string]uint64{}
	}
	h.panics[outcome]++
	h.mu.Unlock()
}
