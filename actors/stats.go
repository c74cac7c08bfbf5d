package actors

import (
	"errors"
	"net/http"
	"sync/atomic"

	"github.com/wsactor/wsactor/transport"
)

// HandlerStats is what a Handler has done since it was made, for metrics.
type HandlerStats struct {
	// Open is the number of connections open (as Len).
	Open int
	// Traffic sums every connection's counters, open and ended.
	Traffic transport.Stats
	// Upgrades counts upgrade requests by the HTTP status they got: 101
	// for a WebSocket, 401/403 refused by Authenticate or the origin check,
	// 429 by an admission limit, 503 at capacity or shutting down, 400/426
	// for a bad handshake, 500 otherwise.
	Upgrades map[int]uint64
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
	h.mu.Unlock()
	st.Upgrades = make(map[int]uint64, len(upgradeStatuses))
	for i, s := range upgradeStatuses {
		if n := h.upgrades[i].Load(); n > 0 {
			st.Upgrades[s] = n
		}
	}
	return st
}
