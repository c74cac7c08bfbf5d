package metrics

import (
	"bytes"
	"cmp"
	"container/heap"
	"embed"
	"encoding/json"
	"errors"
	"html/template"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wsactor/wsactor/actors"
	"github.com/wsactor/wsactor/channel"
	"github.com/wsactor/wsactor/internal/assets"
	"github.com/wsactor/wsactor/transport"
)

// StatusOptions configures a status page. Unlike most options in wsactor, a
// nil *StatusOptions is an error: the page shows who is connected from
// where, so the caller must say who may see it.
type StatusOptions struct {
	// Authenticate decides who may see the page, its assets and its live
	// socket: a nil error allows the request; any other error answers 401,
	// or the status (and headers) of a *transport.HTTPError. It runs for
	// every request, the WebSocket upgrade included. A browser sends
	// cookies and HTTP authentication with each of them, and the page
	// passes its own query string on to its assets and its socket, so a
	// ?token= works too. Required unless Public is set.
	Authenticate func(r *http.Request) error
	// Public allows every request without Authenticate: for a page behind
	// your own authentication middleware, or on a listener only operators
	// can reach.
	Public bool
	// Interval is how often the page updates. Zero means 1s.
	Interval time.Duration
	// Top is how many connections the page lists, those with the most
	// bytes queued. Zero means 10.
	Top int
	// MaxViewers bounds the live sockets open at once; past it an upgrade
	// gets 503 with Retry-After. Zero means 8.
	MaxViewers int
}

// StatusPage is a live status page of an actors.Handler or a channel.Hub:
// connections, upgrades by status, closes by code (totals and the most
// recent ones), the connections with the most bytes queued, the
// distribution of ping round-trip times, and for a Hub its topics with
// their member counts. It is an http.Handler serving one HTML page (plain
// DOM and CSS, embedded in the package: no build step, nothing loaded from
// elsewhere) whose script follows a WebSocket that StatusPage serves too.
//
// Each live socket has one goroutine, which sends a JSON snapshot every
// StatusOptions.Interval. A snapshot costs a pass over the open connections
// (Handler.Stats reads their counters, Handler.Range their queues and round
// trips), built at most twice an Interval whatever the number of viewers:
// viewers share it.
//
// Close ends the live sockets; a program calls it at shutdown, before or
// after its Handler's or Hub's Shutdown.
type StatusPage struct {
	h   *actors.Handler // the page of a Handler; nil for a Hub's
	hub *channel.Hub    // the page of a Hub; nil for a Handler's

	auth       func(r *http.Request) error // nil when Public
	interval   time.Duration
	top        int
	maxViewers int
	acceptor   *transport.Acceptor

	// Viewers, under mu. wg counts the live sockets' goroutines and the
	// upgrades admitted but not yet running.
	mu      sync.Mutex
	viewers map[*transport.Conn]struct{}
	pending int
	closed  bool
	stop    chan struct{} // closed by Close
	wg      sync.WaitGroup

	// The snapshot viewers share, under snapMu.
	snapMu sync.Mutex
	snapAt time.Time
	snap   *transport.Frame
}

// statusMaxTopics is how many topics a snapshot lists (the ones with the
// most members); it counts them all.
const statusMaxTopics = 50

// NewStatusPage returns the status page of h. It returns an error when h
// is nil, or when opts is nil or has neither Authenticate nor Public set.
//
// Mount it under a prefix with http.StripPrefix, the prefix without its
// trailing slash:
//
//	page, err := metrics.NewStatusPage(h, &metrics.StatusOptions{Authenticate: checkOperator})
//	...
//	mux.Handle("/debug/status/", http.StripPrefix("/debug/status", page))
//	defer page.Close()
func NewStatusPage(h *actors.Handler, opts *StatusOptions) (*StatusPage, error) {
	if h == nil {
		return nil, errors.New("metrics: NewStatusPage: nil Handler")
	}
	return newStatusPage(h, nil, opts)
}

// NewHubStatusPage returns the status page of hub: its connections (across
// Hub.Reopen, the totals of every Handler it had; the connections and recent
// closes of the current one) and its topics with their member counts (the
// 50 with the most members, and how many there are). Its options are as
// NewStatusPage's.
func NewHubStatusPage(hub *channel.Hub, opts *StatusOptions) (*StatusPage, error) {
	if hub == nil {
		return nil, errors.New("metrics: NewHubStatusPage: nil Hub")
	}
	return newStatusPage(nil, hub, opts)
}

func newStatusPage(h *actors.Handler, hub *channel.Hub, opts *StatusOptions) (*StatusPage, error) {
	if opts == nil || (opts.Authenticate == nil && !opts.Public) {
		return nil, errors.New("metrics: a status page needs StatusOptions.Authenticate, or Public set")
	}
	if opts.Interval < 0 || opts.Top < 0 || opts.MaxViewers < 0 {
		return nil, errors.New("metrics: StatusOptions: negative Interval, Top or MaxViewers")
	}
	p := &StatusPage{
		h: h, hub: hub,
		auth:       opts.Authenticate,
		interval:   cmp.Or(opts.Interval, time.Second),
		top:        cmp.Or(opts.Top, 10),
		maxViewers: cmp.Or(opts.MaxViewers, 8),
		viewers:    map[*transport.Conn]struct{}{},
		stop:       make(chan struct{}),
	}
	var err error
	p.acceptor, err = transport.NewAcceptor(&transport.AcceptOptions{
		// Same origin only (the default): another site's page cannot open
		// the socket with the operator's cookies.
		ReadLimit:     1 << 10, // the page sends nothing
		QueueMessages: 4,       // snapshots are keyed: a slow viewer gets the latest
		WriteTimeout:  5 * time.Second,
		CloseTimeout:  2 * time.Second,
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// ServeHTTP serves the page at "/" (with its assets status.js and
// status.css beside it) and its live socket at "/live", after
// StatusOptions.Authenticate allowed the request. Any other path is 404.
//
// The socket sends a text message, a JSON object, every Interval:
//
//	time           when it was taken (RFC 3339)
//	interval_ms    the Interval
//	connections    connections open (as wsactor_connections_open)
//	upgrades       upgrade requests by HTTP status: {"101": n, "429": n, ...}
//	closes         ended connections by code and side, most first:
//	               [{code, side, count}] (codes grouped as in wsactor_closes_total)
//	recent_closes  the last 32, newest first: [{at, code, reason, by_peer, remote}]
//	top            the Top connections with the most bytes queued, most first:
//	               [{id, remote, client_ip, subprotocol, queued_messages, queued_bytes, rtt_ms}]
//	               (remote: the socket's peer address, as in the connection's
//	               logs; rtt_ms null before the first pong)
//	rtt            connections by last ping round trip:
//	               [{label, count}] for <1ms, <5ms, <20ms, <50ms, <100ms, <250ms,
//	               <1000ms, >=1000ms and "none yet"
//	topics         a Hub's only: {count, members, top: [{name, members}]}
//	               (top: the 50 with the most members)
func (p *StatusPage) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if p.auth != nil {
		if err := p.auth(r); err != nil {
			statusRefuse(w, err)
			return
		}
	}
	switch name := strings.TrimPrefix(r.URL.Path, "/"); name {
	case "live":
		p.serveLive(w, r)
	case "":
		p.servePage(w, r)
	default:
		if !statusAssets.Has(name) {
			http.NotFound(w, r)
			return
		}
		if !statusMethodOK(w, r) {
			return
		}
		statusAssets.Serve(w, r, name)
	}
}

// statusRefuse answers a request Authenticate refused.
func statusRefuse(w http.ResponseWriter, err error) {
	status := http.StatusUnauthorized
	var he *transport.HTTPError
	if errors.As(err, &he) && he.Status >= 400 {
		status = he.Status
		for k, vs := range he.Header {
			for _, v := range vs {
				w.Header().Add(k, v)
			}
		}
	}
	http.Error(w, http.StatusText(status), status)
}

func statusMethodOK(w http.ResponseWriter, r *http.Request) bool {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return true
	}
	w.Header().Set("Allow", "GET, HEAD")
	http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
	return false
}

// servePage serves index.html, its asset URLs carrying the request's query
// (a ?token= the assets and the socket need too).
func (p *StatusPage) servePage(w http.ResponseWriter, r *http.Request) {
	if !statusMethodOK(w, r) {
		return
	}
	// Mounted with a prefix stripped up to its slash, "/debug/status"
	// arrives as "": the page's relative URLs need the slash.
	if r.URL.Path == "" {
		if u, err := url.ParseRequestURI(r.RequestURI); err == nil && !strings.HasSuffix(u.Path, "/") {
			u.Path += "/"
			http.Redirect(w, r, u.RequestURI(), http.StatusMovedPermanently)
			return
		}
	}
	var q string
	if r.URL.RawQuery != "" {
		q = "?" + r.URL.RawQuery
	}
	var buf bytes.Buffer
	if err := statusIndex.Execute(&buf, struct{ Query string }{q}); err != nil {
		http.Error(w, "metrics: status page: "+err.Error(), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer") // the query may hold a token
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	_, _ = w.Write(buf.Bytes())
}

// serveLive upgrades r to a live socket, within MaxViewers.
func (p *StatusPage) serveLive(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	if p.closed || len(p.viewers)+p.pending >= p.maxViewers {
		closed := p.closed
		p.mu.Unlock()
		w.Header().Set("Retry-After", "5")
		msg := "metrics: too many status page viewers"
		if closed {
			msg = "metrics: status page closed"
		}
		http.Error(w, msg, http.StatusServiceUnavailable)
		return
	}
	p.pending++
	p.wg.Add(1) // before Close can wait: it sets closed under mu first
	p.mu.Unlock()

	c, err := p.acceptor.Accept(w, r) // on failure it has answered
	p.mu.Lock()
	p.pending--
	if err != nil {
		p.mu.Unlock()
		p.wg.Done()
		return
	}
	p.viewers[c] = struct{}{}
	p.mu.Unlock()
	go p.view(c)
}

// statusViewer is a live socket's transport.Handler: the page sends
// nothing, so it only reports the end.
type statusViewer struct{ ended chan struct{} }

func (statusViewer) HandleMessage(*transport.Conn, transport.MessageType, []byte) {}
func (v statusViewer) HandleClose(*transport.Conn, transport.CloseInfo)           { close(v.ended) }

// statusPingAfter is how long a viewer may be silent before it is pinged
// (a browser answers pings by itself); one silent for three times as long
// is gone, and its socket is terminated.
const statusPingAfter = 15 * time.Second

// errStatusSilent ends a viewer that answered no ping.
var errStatusSilent = errors.New("metrics: status page viewer silent")

// view is a live socket's goroutine: it sends a snapshot every Interval
// until the socket ends or Close, and returns once the socket is closed.
func (p *StatusPage) view(c *transport.Conn) {
	defer p.wg.Done()
	defer func() {
		p.mu.Lock()
		delete(p.viewers, c)
		p.mu.Unlock()
	}()
	ended := make(chan struct{})
	c.Start(statusViewer{ended: ended})
	t := time.NewTicker(p.interval)
	defer t.Stop()
	for {
		// A full queue is impossible (one keyed frame at a time); a
		// closing socket reports its end on ended.
		_ = c.Send(p.frame())
		select {
		case <-t.C:
			silent := time.Since(c.LastHeard())
			switch {
			case silent > 3*statusPingAfter:
				c.Terminate(errStatusSilent)
			case silent > statusPingAfter && time.Since(c.LastPing()) > statusPingAfter:
				_ = c.Ping(nil)
			}
			continue
		case <-ended:
		case <-p.stop:
			c.Close(transport.StatusGoingAway, "status page closed")
			<-ended
		}
		<-c.Done() // bounded by the close timeout
		return
	}
}

// Close closes every live socket with 1001 and waits for their goroutines
// (at most the sockets' write and close timeouts, 7s). Later upgrades get
// 503; the page itself is still served. It returns nil; calling it again
// does nothing more.
func (p *StatusPage) Close() error {
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		close(p.stop)
	}
	p.mu.Unlock()
	p.wg.Wait()
	return nil
}

// frame returns the current snapshot as a frame, shared by the viewers: a
// new one when the last is older than half an Interval.
func (p *StatusPage) frame() *transport.Frame {
	p.snapMu.Lock()
	defer p.snapMu.Unlock()
	now := time.Now()
	if p.snap == nil || now.Sub(p.snapAt) >= p.interval/2 {
		data, err := json.Marshal(p.snapshot(now))
		if err != nil {
			data = []byte(`{"error":` + strconv.Quote(err.Error()) + `}`)
		}
		p.snap = transport.NewKeyedFrame(transport.MessageText, data, "status")
		p.snapAt = now
	}
	return p.snap
}

// statusSnapshot is the JSON a live socket sends (see ServeHTTP).
type statusSnapshot struct {
	Time         time.Time          `json:"time"`
	IntervalMS   int64              `json:"interval_ms"`
	Connections  int                `json:"connections"`
	Upgrades     map[string]uint64  `json:"upgrades"`
	Closes       []statusCloseCount `json:"closes"`
	RecentCloses []statusClose      `json:"recent_closes"`
	Top          []statusConn       `json:"top"`
	RTT          []statusBucket     `json:"rtt"`
	Topics       *statusTopics      `json:"topics,omitempty"`
}

type statusCloseCount struct {
	Code  string `json:"code"`
	Side  string `json:"side"`
	Count uint64 `json:"count"`
}

type statusClose struct {
	At     time.Time `json:"at"`
	Code   int       `json:"code"`
	Reason string    `json:"reason"`
	ByPeer bool      `json:"by_peer"`
	Remote string    `json:"remote"`
}

type statusConn struct {
	ID          string   `json:"id"`
	Remote      string   `json:"remote"`
	ClientIP    string   `json:"client_ip"`
	Subprotocol string   `json:"subprotocol"`
	Messages    int      `json:"queued_messages"`
	Bytes       int      `json:"queued_bytes"`
	RTTMS       *float64 `json:"rtt_ms"`
}

type statusBucket struct {
	Label string `json:"label"`
	Count int    `json:"count"`
}

type statusTopics struct {
	Count   int           `json:"count"`
	Members int           `json:"members"`
	Top     []statusTopic `json:"top"`
}

type statusTopic struct {
	Name    string `json:"name"`
	Members int    `json:"members"`
}

// statusRTTBounds are the upper bounds of the RTT histogram's buckets but
// the last two (>=1000ms, and no RTT measured yet).
var statusRTTBounds = []time.Duration{
	time.Millisecond, 5 * time.Millisecond, 20 * time.Millisecond, 50 * time.Millisecond,
	100 * time.Millisecond, 250 * time.Millisecond, time.Second,
}

var statusRTTLabels = []string{"<1ms", "<5ms", "<20ms", "<50ms", "<100ms", "<250ms", "<1000ms", ">=1000ms", "none yet"}

// snapshot reads the Handler (or Hub) once.
func (p *StatusPage) snapshot(now time.Time) *statusSnapshot {
	var st actors.HandlerStats
	h := p.h
	s := &statusSnapshot{Time: now.UTC(), IntervalMS: p.interval.Milliseconds()}
	if p.hub != nil {
		h = p.hub.Handler()
		st = p.hub.Stats().Connections
		s.Topics = statusTopicsOf(p.hub.TopicCounts())
	} else {
		st = h.Stats()
	}
	s.Connections = st.Open
	s.Upgrades = make(map[string]uint64, len(st.Upgrades))
	for status, n := range st.Upgrades {
		s.Upgrades[strconv.Itoa(status)] = n
	}
	s.Closes = make([]statusCloseCount, 0, len(st.Closes))
	for k, n := range st.Closes {
		s.Closes = append(s.Closes, statusCloseCount{Code: k.Code, Side: k.Side, Count: n})
	}
	slices.SortFunc(s.Closes, func(a, b statusCloseCount) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Code, b.Code), cmp.Compare(a.Side, b.Side))
	})
	s.RecentCloses = []statusClose{}
	s.Top = []statusConn{}
	s.RTT = make([]statusBucket, len(statusRTTLabels))
	for i, l := range statusRTTLabels {
		s.RTT[i].Label = l
	}
	if h == nil {
		return s
	}
	for _, c := range h.RecentCloses() {
		s.RecentCloses = append(s.RecentCloses, statusClose{At: c.At.UTC(), Code: int(c.Code), Reason: c.Reason, ByPeer: c.ByPeer, Remote: c.Remote})
	}

	top := make(statusTopHeap, 0, p.top+1)
	h.Range(func(c *actors.Conn) bool {
		rtt := c.RTT()
		if rtt <= 0 {
			s.RTT[len(s.RTT)-1].Count++
		} else {
			i, _ := slices.BinarySearchFunc(statusRTTBounds, rtt, func(b, d time.Duration) int {
				// The first bound above d: a bound equal to d is not it.
				if b <= d {
					return -1
				}
				return 1
			})
			s.RTT[i].Count++
		}
		msgs, n := c.Buffered()
		e := statusTopEntry{c: c, msgs: msgs, bytes: n}
		if a := c.RemoteAddr(); a != nil {
			e.remote = a.String()
		}
		if len(top) < p.top {
			heap.Push(&top, e)
		} else if top.less(top[0], e) {
			top[0] = e
			heap.Fix(&top, 0)
		}
		return true
	})
	slices.SortFunc(top, func(a, b statusTopEntry) int {
		if top.less(a, b) {
			return 1
		}
		return -1
	})
	for _, e := range top {
		sc := statusConn{ID: e.c.ID(), Remote: e.remote, Subprotocol: e.c.Subprotocol(), Messages: e.msgs, Bytes: e.bytes}
		if ip := e.c.ClientIP(); ip.IsValid() {
			sc.ClientIP = ip.String()
		}
		if rtt := e.c.RTT(); rtt > 0 {
			ms := math.Round(rtt.Seconds()*1e4) / 10 // to 0.1ms
			sc.RTTMS = &ms
		}
		s.Top = append(s.Top, sc)
	}
	return s
}

// statusTopicsOf lists the topics with the most members.
func statusTopicsOf(counts map[string]int) *statusTopics {
	t := &statusTopics{Count: len(counts), Top: make([]statusTopic, 0, min(len(counts), statusMaxTopics))}
	all := make([]statusTopic, 0, len(counts))
	for name, n := range counts {
		t.Members += n
		all = append(all, statusTopic{Name: name, Members: n})
	}
	slices.SortFunc(all, func(a, b statusTopic) int {
		return cmp.Or(cmp.Compare(b.Members, a.Members), cmp.Compare(a.Name, b.Name))
	})
	t.Top = append(t.Top, all[:min(len(all), statusMaxTopics)]...)
	return t
}

// statusTopEntry is a connection in the running top list, named by its
// socket's remote address (as its log lines are) and its id.
type statusTopEntry struct {
	c           *actors.Conn
	remote      string
	msgs, bytes int
}

// statusTopHeap is a min-heap of the top list: its root is the entry the
// next larger one replaces.
type statusTopHeap []statusTopEntry

// less orders entries by bytes, then messages queued, then (so that the
// list is stable between snapshots) by remote address, the larger first.
func (statusTopHeap) less(a, b statusTopEntry) bool {
	if a.bytes != b.bytes {
		return a.bytes < b.bytes
	}
	if a.msgs != b.msgs {
		return a.msgs < b.msgs
	}
	return a.remote > b.remote
}

func (t statusTopHeap) Len() int           { return len(t) }
func (t statusTopHeap) Less(i, j int) bool { return t.less(t[i], t[j]) }
func (t statusTopHeap) Swap(i, j int)      { t[i], t[j] = t[j], t[i] }
func (t *statusTopHeap) Push(x any)        { *t = append(*t, x.(statusTopEntry)) }
func (t *statusTopHeap) Pop() any {
	old := *t
	e := old[len(old)-1]
	*t = old[:len(old)-1]
	return e
}

//go:embed status/index.html status/status.js status/status.css
var statusFiles embed.FS

// statusIndex is index.html, its asset URLs followed by {{.Query}}.
var statusIndex = template.Must(template.ParseFS(statusFiles, "status/index.html"))

// statusAssets are the files ServeHTTP serves beside the page.
var statusAssets = assets.Load(statusFiles, "status", map[string]string{
	"status.js":  "text/javascript; charset=utf-8",
	"status.css": "text/css; charset=utf-8",
})
