package actors

import (
	"context"
	"errors"
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/wsactor/wsactor/transport"
)

// Rate is a token bucket: PerSecond on average, Burst at once. The zero
// value means no limit.
type Rate struct {
	PerSecond float64
	Burst     int
}

// Errors of refused upgrades; each is also answered over HTTP (429 with
// Retry-After), and wrapped by what ServeHTTP logs.
var (
	// ErrUpgradeRate: the client's IP made upgrade attempts faster than
	// HandlerOptions.UpgradesPerIP allows.
	ErrUpgradeRate = errors.New("actors: too many upgrade attempts from this address")
	// ErrTooManyPerIP: the client's IP has HandlerOptions.MaxConnectionsPerIP
	// connections open.
	ErrTooManyPerIP = errors.New("actors: too many connections from this address")
	// ErrTooManyPerUser: the authenticated user has
	// HandlerOptions.MaxConnectionsPerUser connections open.
	ErrTooManyPerUser = errors.New("actors: too many connections for this user")
)

// maxTrackedIPs bounds the per-IP table. Past it, idle entries are swept;
// if none can go, new addresses are refused (503) until some can.
const maxTrackedIPs = 100_000

// admission keeps the per-IP and per-user counts of one Handler.
type admission struct {
	perIP   int
	rate    Rate
	perUser int
	userOf  func(principal any) string
	trusted []netip.Prefix

	mu    sync.Mutex
	ips   map[netip.Addr]*ipState
	users map[string]int
}

type ipState struct {
	conns  int // open or being upgraded
	tokens float64
	at     time.Time
}

func newAdmission(o *HandlerOptions) *admission {
	a := &admission{
		perIP:   o.MaxConnectionsPerIP,
		rate:    o.UpgradesPerIP,
		perUser: o.MaxConnectionsPerUser,
		userOf:  o.UserOf,
		trusted: o.TrustedProxies,
	}
	if a.rate.PerSecond > 0 && a.rate.Burst <= 0 {
		a.rate.Burst = max(1, int(math.Ceil(a.rate.PerSecond)))
	}
	if !a.ipLimits() && !a.userLimits() {
		return nil
	}
	a.ips = map[netip.Addr]*ipState{}
	a.users = map[string]int{}
	return a
}

func (a *admission) ipLimits() bool   { return a.perIP > 0 || a.rate.PerSecond > 0 }
func (a *admission) userLimits() bool { return a.perUser > 0 && a.userOf != nil }

// refusal is an admission's answer: the status, the Retry-After seconds and
// the error.
type refusal struct {
	status int
	retry  int
	err    error
}

func (f *refusal) write(w http.ResponseWriter) {
	w.Header().Set("Retry-After", strconv.Itoa(f.retry))
	http.Error(w, f.err.Error(), f.status)
}

// enterIP counts an upgrade attempt of ip and reserves a connection of it,
// or refuses. A nil admission admits all.
func (a *admission) enterIP(ip netip.Addr, now time.Time) *refusal {
	if a == nil || !a.ipLimits() {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.ips[ip]
	if s == nil {
		if len(a.ips) >= maxTrackedIPs {
			a.sweepLocked(now)
			if len(a.ips) >= maxTrackedIPs {
				return &refusal{status: http.StatusServiceUnavailable, retry: 5, err: errors.New("actors: too many client addresses tracked")}
			}
		}
		s = &ipState{tokens: float64(a.rate.Burst), at: now}
		a.ips[ip] = s
	}
	if a.rate.PerSecond > 0 {
		s.tokens = math.Min(float64(a.rate.Burst), s.tokens+now.Sub(s.at).Seconds()*a.rate.PerSecond)
		s.at = now
		if s.tokens < 1 {
			wait := (1 - s.tokens) / a.rate.PerSecond
			return &refusal{status: http.StatusTooManyRequests, retry: max(1, int(math.Ceil(wait))), err: ErrUpgradeRate}
		}
		s.tokens--
	}
	if a.perIP > 0 && s.conns >= a.perIP {
		return &refusal{status: http.StatusTooManyRequests, retry: 5, err: ErrTooManyPerIP}
	}
	s.conns++
	return nil
}

// leaveIP releases a connection of ip reserved by enterIP.
func (a *admission) leaveIP(ip netip.Addr) {
	if a == nil || !a.ipLimits() {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if s := a.ips[ip]; s != nil && s.conns > 0 {
		s.conns--
	}
}

// sweepLocked forgets addresses with no connection whose bucket is full
// again: they are as if never seen.
func (a *admission) sweepLocked(now time.Time) {
	for ip, s := range a.ips {
		if s.conns > 0 {
			continue
		}
		if a.rate.PerSecond > 0 && s.tokens+now.Sub(s.at).Seconds()*a.rate.PerSecond < float64(a.rate.Burst) {
			continue
		}
		delete(a.ips, ip)
	}
}

// userSlot carries, through the request's context, which user the
// authentication wrapper counted, so a failed upgrade can release it.
type userSlot struct{ user string }

type userSlotKey struct{}

// authenticate wraps the user's Authenticate: once it accepts, the user's
// connection count is checked and reserved, or the upgrade is refused with
// 429 and Retry-After.
func (a *admission) authenticate(auth func(*http.Request) (any, error)) func(*http.Request) (any, error) {
	return func(r *http.Request) (any, error) {
		p, err := auth(r)
		if err != nil {
			return nil, err
		}
		user := a.userOf(p)
		if user == "" {
			return p, nil
		}
		a.mu.Lock()
		if a.users[user] >= a.perUser {
			a.mu.Unlock()
			return nil, &transport.HTTPError{
				Status: http.StatusTooManyRequests,
				Header: map[string][]string{"Retry-After": {"5"}},
				Err:    ErrTooManyPerUser,
			}
		}
		a.users[user]++
		a.mu.Unlock()
		if slot, ok := r.Context().Value(userSlotKey{}).(*userSlot); ok {
			slot.user = user
		}
		return p, nil
	}
}

// withUserSlot gives r a slot for authenticate to fill.
func (a *admission) withUserSlot(r *http.Request) (*http.Request, *userSlot) {
	if a == nil || !a.userLimits() {
		return r, nil
	}
	slot := &userSlot{}
	return r.WithContext(context.WithValue(r.Context(), userSlotKey{}, slot)), slot
}

// leaveUser releases a connection of user.
func (a *admission) leaveUser(user string) {
	if a == nil || user == "" || !a.userLimits() {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.users[user] <= 1 {
		delete(a.users, user)
		return
	}
	a.users[user]--
}

// leave releases what a connection that ends held.
func (a *admission) leave(c *transport.Conn) {
	if a == nil {
		return
	}
	a.leaveIP(c.ClientIP())
	if a.userLimits() {
		a.leaveUser(a.userOf(c.Principal()))
	}
}
