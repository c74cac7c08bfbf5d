package metrics_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"

	"github.com/wsactor/wsactor/actors"
	"github.com/wsactor/wsactor/channel"
	"github.com/wsactor/wsactor/internal/exampletest"
	"github.com/wsactor/wsactor/metrics"
	"github.com/wsactor/wsactor/transport"
)

// statusWait bounds every wait of the status page tests.
const statusWait = 10 * time.Second

// statusToken is what the tests' Authenticate wants, as ?token= or as the
// X-Status-Token header.
const statusToken = "s3cret"

func statusAuth(r *http.Request) error {
	if r.URL.Query().Get("token") == statusToken || r.Header.Get("X-Status-Token") == statusToken {
		return nil
	}
	if r.Header.Get("X-Status-Token") == "banned" {
		return &transport.HTTPError{Status: http.StatusForbidden, Err: errors.New("banned")}
	}
	return errors.New("no token")
}

// statusSnap is the live socket's JSON, as documented on
// StatusPage.ServeHTTP.
type statusSnap struct {
	Time        time.Time         `json:"time"`
	IntervalMS  int64             `json:"interval_ms"`
	Connections int               `json:"connections"`
	Upgrades    map[string]uint64 `json:"upgrades"`
	Closes      []struct {
		Code  string `json:"code"`
		Side  string `json:"side"`
		Count uint64 `json:"count"`
	} `json:"closes"`
	RecentCloses []struct {
		At     time.Time `json:"at"`
		Code   int       `json:"code"`
		Reason string    `json:"reason"`
		ByPeer bool      `json:"by_peer"`
		Remote string    `json:"remote"`
	} `json:"recent_closes"`
	Top []struct {
		ID          string   `json:"id"`
		Remote      string   `json:"remote"`
		ClientIP    string   `json:"client_ip"`
		Subprotocol string   `json:"subprotocol"`
		Messages    int      `json:"queued_messages"`
		Bytes       int      `json:"queued_bytes"`
		RTTMS       *float64 `json:"rtt_ms"`
	} `json:"top"`
	RTT []struct {
		Label string `json:"label"`
		Count int    `json:"count"`
	} `json:"rtt"`
	Topics *struct {
		Count   int `json:"count"`
		Members int `json:"members"`
		Top     []struct {
			Name    string `json:"name"`
			Members int    `json:"members"`
		} `json:"top"`
	} `json:"topics"`
}

// statusHandler returns a Handler whose connections echo, and on "flood"
// report their remote address on flooded and send the peer 16 MiB (its queue holds up
// to 64 MiB), shut down at cleanup.
func statusHandler(t *testing.T) (*actors.Handler, <-chan string) {
	t.Helper()
	flooded := make(chan string, 4)
	chunk := bytes.Repeat([]byte("x"), 64<<10)
	h, err := actors.NewHandler(actors.NewSystem(zerolog.Nop()), func() actor.Actor {
		return actor.ReceiveFunc(func(ctx actor.Context) {
			m, ok := ctx.Message().(*actors.Message)
			if !ok {
				return
			}
			if m.Text() != "flood" {
				_ = m.Conn.Send(m.Type, m.Data)
				return
			}
			f := transport.NewFrame(actors.Binary, chunk)
			for range 256 {
				_ = m.Conn.SendFrame(f)
			}
			flooded <- m.Conn.RemoteAddr().String()
		})
	}, &actors.HandlerOptions{Logger: zerolog.Nop(), AcceptOptions: transport.AcceptOptions{QueueBytes: 64 << 20, QueueMessages: 4096}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), statusWait)
		defer cancel()
		if err := h.Shutdown(ctx); err != nil {
			t.Errorf("handler shutdown: %v", err)
		}
	})
	return h, flooded
}

// statusServe serves handler on loopback with the page at /status/ (as the
// docs mount it) and returns the server's URL.
func statusServe(t *testing.T, ws http.Handler, page *metrics.StatusPage) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("/ws", ws)
	mux.Handle("/status/", http.StripPrefix("/status", page))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	t.Cleanup(func() { _ = page.Close() }) // before srv.Close: cleanups run last first
	return srv.URL
}

func statusWS(u string) string { return "ws" + strings.TrimPrefix(u, "http") }

// statusDial dials url, closing the connection at cleanup.
func statusDial(t *testing.T, url string, h http.Header) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: statusWait}
	c, resp, err := d.Dial(url, h)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if c != nil {
		t.Cleanup(func() { c.Close() })
	}
	return c, resp, err
}

// statusNext reads snapshots from a live socket until ok says yes, and
// returns that one; it fails the test after statusWait.
func statusNext(t *testing.T, c *websocket.Conn, ok func(s *statusSnap) bool) *statusSnap {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(statusWait))
	var last []byte
	for {
		typ, p, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("live socket: %v; last snapshot %s", err, last)
		}
		last = p
		var s statusSnap
		if typ != websocket.TextMessage {
			t.Fatalf("live socket sent a message of type %d", typ)
		}
		if err := json.Unmarshal(p, &s); err != nil {
			t.Fatalf("snapshot %s: %v", p, err)
		}
		if ok(&s) {
			return &s
		}
	}
}

// statusEcho has c say s and read the echo.
func statusEcho(t *testing.T, c *websocket.Conn, s string) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(statusWait))
	if err := c.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
		t.Fatal(err)
	}
	if _, p, err := c.ReadMessage(); err != nil || string(p) != s {
		t.Fatalf("echo of %q: %q, %v", s, p, err)
	}
}

func TestStatusOptionsRequired(t *testing.T) {
	t.Parallel()
	h, _ := statusHandler(t)
	for _, tt := range []struct {
		name string
		h    *actors.Handler
		opts *metrics.StatusOptions
		ok   bool
	}{
		{"nil options", h, nil, false},
		{"no Authenticate, not Public", h, &metrics.StatusOptions{Interval: time.Second}, false},
		{"nil Handler", nil, &metrics.StatusOptions{Public: true}, false},
		{"negative Interval", h, &metrics.StatusOptions{Public: true, Interval: -1}, false},
		{"Public", h, &metrics.StatusOptions{Public: true}, true},
		{"Authenticate", h, &metrics.StatusOptions{Authenticate: statusAuth}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p, err := metrics.NewStatusPage(tt.h, tt.opts)
			if (err == nil) != tt.ok {
				t.Fatalf("NewStatusPage: %v, want ok=%v", err, tt.ok)
			}
			if p != nil {
				_ = p.Close()
			}
		})
	}
	if _, err := metrics.NewHubStatusPage(nil, &metrics.StatusOptions{Public: true}); err == nil {
		t.Errorf("NewHubStatusPage(nil): no error")
	}
}

// Without the token every request is refused, the page, its assets and
// the live socket's upgrade alike; with it they are served.
func TestStatusPageAuth(t *testing.T) {
	t.Parallel()
	h, _ := statusHandler(t)
	page, err := metrics.NewStatusPage(h, &metrics.StatusOptions{Authenticate: statusAuth})
	if err != nil {
		t.Fatal(err)
	}
	base := statusServe(t, h, page) + "/status"
	for _, tt := range []struct {
		name, path string
		header     string // X-Status-Token
		status     int
		ctype      string
	}{
		{"page without auth", "/", "", 401, ""},
		{"page with a wrong token", "/?token=nope", "", 401, ""},
		{"live without auth (no upgrade)", "/live", "", 401, ""},
		{"asset without auth", "/status.js", "", 401, ""},
		{"unknown path without auth", "/nope", "", 401, ""},
		{"HTTPError's status", "/", "banned", 403, ""},
		{"page with token", "/?token=" + statusToken, "", 200, "text/html; charset=utf-8"},
		{"page with header", "/", statusToken, 200, "text/html; charset=utf-8"},
		{"script", "/status.js?token=" + statusToken, "", 200, "text/javascript; charset=utf-8"},
		{"style", "/status.css", statusToken, 200, "text/css; charset=utf-8"},
		{"unknown path", "/nope", statusToken, 404, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", base+tt.path, nil)
			if tt.header != "" {
				req.Header.Set("X-Status-Token", tt.header)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, body)
			}
			if tt.ctype != "" && resp.Header.Get("Content-Type") != tt.ctype {
				t.Errorf("Content-Type %q, want %q", resp.Header.Get("Content-Type"), tt.ctype)
			}
			if tt.status != 200 && bytes.Contains(body, []byte("<script")) {
				t.Errorf("refused request got the page")
			}
		})
	}

	// The page passes its query on to its assets (the socket's URL is
	// built from location.search by the script).
	body := exampletest.Get(t, base+"/?token="+statusToken)
	for _, want := range []string{`src="status.js?token=` + statusToken + `"`, `href="status.css?token=` + statusToken + `"`} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %s:\n%s", want, body)
		}
	}
	// "/status" (the prefix without its slash) redirects to "/status/", where
	// the page's relative URLs work.
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	mux := http.NewServeMux()
	mux.Handle("/debug/status/", http.StripPrefix("/debug/status/", page))
	mux.Handle("/debug/status", http.StripPrefix("/debug/status", page))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	resp, err := noRedirect.Get(srv.URL + "/debug/status?token=" + statusToken)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusMovedPermanently || loc != "/debug/status/?token="+statusToken {
		t.Errorf("GET /debug/status: %d to %q, want 301 to /debug/status/?token=...", resp.StatusCode, loc)
	}

	// The live socket: a WebSocket upgrade without the token gets 401,
	// with it a snapshot.
	live := statusWS(base) + "/live"
	if _, resp, err := statusDial(t, live, nil); err == nil || resp == nil || resp.StatusCode != 401 {
		t.Fatalf("upgrade without token: %v, %+v; want 401", err, resp)
	}
	if _, resp, err := statusDial(t, live+"?token=nope", nil); err == nil || resp == nil || resp.StatusCode != 401 {
		t.Fatalf("upgrade with a wrong token: %v; want 401", err)
	}
	c, _, err := statusDial(t, live, http.Header{"X-Status-Token": {statusToken}})
	if err != nil {
		t.Fatal(err)
	}
	statusNext(t, c, func(s *statusSnap) bool { return true })
}

// A snapshot of a Handler: connections, upgrades, closes, the connection
// with most bytes queued first, RTT buckets.
func TestStatusSnapshot(t *testing.T) {
	t.Parallel()
	h, flooded := statusHandler(t)
	page, err := metrics.NewStatusPage(h, &metrics.StatusOptions{Public: true, Interval: 20 * time.Millisecond, Top: 2})
	if err != nil {
		t.Fatal(err)
	}
	base := statusServe(t, h, page)
	ws := statusWS(base) + "/ws"
	var echo []*websocket.Conn
	for i := range 3 {
		c, _, err := statusDial(t, ws, nil)
		if err != nil {
			t.Fatal(err)
		}
		statusEcho(t, c, fmt.Sprint("hello ", i))
		echo = append(echo, c)
	}
	// A client that asks for 16 MiB and never reads: its bytes wait in
	// the server's queue.
	hog, _, err := statusDial(t, ws, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := hog.WriteMessage(websocket.TextMessage, []byte("flood")); err != nil {
		t.Fatal(err)
	}
	var hogAddr string
	select {
	case hogAddr = <-flooded:
	case <-time.After(statusWait):
		t.Fatal("no flood")
	}
	if resp, err := http.Get(base + "/ws"); err == nil { // not an upgrade: 426
		resp.Body.Close()
	}
	// One echo client leaves with 1000; another answers a ping.
	_ = echo[0].WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1000, "bye"), time.Now().Add(statusWait))
	_, _, _ = echo[0].ReadMessage() // the server's close frame
	h.Range(func(c *actors.Conn) bool {
		if c.RemoteAddr().String() != hogAddr {
			_ = c.Ping(nil)
		}
		return true
	})
	statusEcho(t, echo[1], "pong now") // reading the echo answers the ping
	statusEcho(t, echo[2], "pong now")

	live, _, err := statusDial(t, statusWS(base)+"/status/live", nil)
	if err != nil {
		t.Fatal(err)
	}
	s := statusNext(t, live, func(s *statusSnap) bool {
		return s.Connections == 3 && len(s.RecentCloses) == 1 && len(s.RTT) == 9 && s.RTT[len(s.RTT)-1].Count == 1
	})
	if s.IntervalMS != 20 || time.Since(s.Time) > statusWait || s.Topics != nil {
		t.Errorf("interval %d, time %v, topics %v: want 20, now, none", s.IntervalMS, s.Time, s.Topics)
	}
	if s.Upgrades["101"] != 4 || s.Upgrades["426"] != 1 {
		t.Errorf("upgrades %v, want 4 × 101 and 1 × 426", s.Upgrades)
	}
	if len(s.Closes) != 1 || s.Closes[0].Code != "1000" || s.Closes[0].Side != "peer" || s.Closes[0].Count != 1 {
		t.Errorf("closes %+v, want one 1000 by the peer", s.Closes)
	}
	if rc := s.RecentCloses[0]; rc.Code != 1000 || rc.Reason != "bye" || !rc.ByPeer || rc.Remote != "127.0.0.1" || time.Since(rc.At) > statusWait {
		t.Errorf("recent close %+v, want 1000 bye by the peer 127.0.0.1", rc)
	}
	if len(s.Top) != 2 {
		t.Fatalf("top %+v, want Top=2 entries", s.Top)
	}
	if hogAddr != hog.LocalAddr().String() {
		t.Fatalf("the server saw the flood from %s, the client is %s", hogAddr, hog.LocalAddr())
	}
	if top := s.Top[0]; top.ID == "" || top.Remote != hogAddr || top.Bytes <= 0 || top.Messages <= 0 || top.ClientIP != "127.0.0.1" || top.RTTMS != nil {
		t.Errorf("top[0] %+v, want the flooded connection %s with bytes queued and no RTT", top, hogAddr)
	}
	if top := s.Top[1]; top.Bytes != 0 || top.RTTMS == nil || *top.RTTMS < 0 {
		t.Errorf("top[1] %+v, want an echo connection: nothing queued, an RTT", top)
	}
	labels := []string{"<1ms", "<5ms", "<20ms", "<50ms", "<100ms", "<250ms", "<1000ms", ">=1000ms", "none yet"}
	sum := 0
	for i, b := range s.RTT {
		if b.Label != labels[i] {
			t.Errorf("RTT bucket %d is %q, want %q", i, b.Label, labels[i])
		}
		sum += b.Count
	}
	if sum != 3 {
		t.Errorf("RTT buckets %+v count %d connections, want 3", s.RTT, sum)
	}
}

// A Hub's snapshot lists its topics with their member counts, most first.
func TestStatusHubTopics(t *testing.T) {
	t.Parallel()
	hub := statusHub(t, 0)
	page, err := metrics.NewHubStatusPage(hub, &metrics.StatusOptions{Authenticate: statusAuth, Interval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	base := statusServe(t, hub, page)
	for _, topic := range []string{"room:b", "room:a", "room:a"} {
		statusJoin(t, statusWS(base)+"/ws", topic)
	}
	live, _, err := statusDial(t, statusWS(base)+"/status/live?token="+statusToken, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := statusNext(t, live, func(s *statusSnap) bool { return s.Topics != nil && s.Topics.Members == 3 })
	if s.Connections != 3 || s.Topics.Count != 2 || len(s.Topics.Top) != 2 ||
		s.Topics.Top[0].Name != "room:a" || s.Topics.Top[0].Members != 2 || s.Topics.Top[1].Name != "room:b" || s.Topics.Top[1].Members != 1 {
		t.Errorf("connections %d, topics %+v; want 3, room:a 2 then room:b 1", s.Connections, s.Topics)
	}
}

// statusHub returns a Hub whose connections queue up to queueBytes (zero
// for the default), closed at cleanup.
func statusHub(t *testing.T, queueBytes int) *channel.Hub {
	t.Helper()
	opts := &channel.Options{Logger: zerolog.Nop()}
	opts.QueueBytes = queueBytes
	hub, err := channel.NewHub(actors.NewSystem(zerolog.Nop()), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), statusWait)
		defer cancel()
		if err := hub.Close(ctx); err != nil {
			t.Errorf("hub close: %v", err)
		}
	})
	return hub
}

// statusJoin connects to a Hub at url and joins topic (the JSON protocol,
// by hand), then keeps reading (answering pings) until cleanup.
func statusJoin(t *testing.T, url, topic string) *websocket.Conn {
	t.Helper()
	c, _, err := statusDial(t, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(statusWait))
	if err := c.WriteMessage(websocket.TextMessage, []byte(`{"t":"join","ref":1,"topic":"`+topic+`"}`)); err != nil {
		t.Fatal(err)
	}
	if _, p, err := c.ReadMessage(); err != nil || !bytes.Contains(p, []byte(`"ok"`)) {
		t.Fatalf("join %s: %s, %v", topic, p, err)
	}
	_ = c.SetReadDeadline(time.Time{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			if _, _, err := c.ReadMessage(); err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		c.Close()
		wg.Wait()
	})
	return c
}

// statusSlow connects to a Hub at url with a small receive buffer, joins
// topic and then reads nothing until cleanup.
func statusSlow(t *testing.T, url, topic string) {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: statusWait, NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetReadBuffer(4 << 10)
		}
		return c, err
	}}
	c, resp, err := d.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	t.Cleanup(func() { c.Close() })
	_ = c.SetReadDeadline(time.Now().Add(statusWait))
	if err := c.WriteMessage(websocket.TextMessage, []byte(`{"t":"join","ref":1,"topic":"`+topic+`"}`)); err != nil {
		t.Fatal(err)
	}
	if _, p, err := c.ReadMessage(); err != nil || !bytes.Contains(p, []byte(`"ok"`)) {
		t.Fatalf("join %s: %s, %v", topic, p, err)
	}
}

// Past MaxViewers an upgrade gets 503; a viewer leaving frees its place.
func TestStatusMaxViewers(t *testing.T) {
	t.Parallel()
	h, _ := statusHandler(t)
	page, err := metrics.NewStatusPage(h, &metrics.StatusOptions{Public: true, MaxViewers: 2, Interval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	live := statusWS(statusServe(t, h, page)) + "/status/live"
	var viewers []*websocket.Conn
	for range 2 {
		c, _, err := statusDial(t, live, nil)
		if err != nil {
			t.Fatal(err)
		}
		statusNext(t, c, func(*statusSnap) bool { return true })
		viewers = append(viewers, c)
	}
	_, resp, err := statusDial(t, live, nil)
	if err == nil || resp == nil || resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("third viewer: %v, %+v; want 503 with Retry-After", err, resp)
	}
	viewers[0].Close()
	for deadline := time.Now().Add(statusWait); ; time.Sleep(10 * time.Millisecond) {
		c, _, err := statusDial(t, live, nil)
		if err == nil {
			statusNext(t, c, func(*statusSnap) bool { return true })
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no place after a viewer left: %v", err)
		}
	}
}

// Close ends every live socket with 1001 and refuses new ones with 503.
func TestStatusPageClose(t *testing.T) {
	t.Parallel()
	h, _ := statusHandler(t)
	page, err := metrics.NewStatusPage(h, &metrics.StatusOptions{Public: true, Interval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	base := statusServe(t, h, page)
	live := statusWS(base) + "/status/live"
	var viewers []*websocket.Conn
	for range 3 {
		c, _, err := statusDial(t, live, nil)
		if err != nil {
			t.Fatal(err)
		}
		statusNext(t, c, func(*statusSnap) bool { return true })
		viewers = append(viewers, c)
	}
	// The viewers read on, so that they answer the close frame.
	codes := make(chan int, len(viewers))
	for _, c := range viewers {
		go func() {
			_ = c.SetReadDeadline(time.Now().Add(statusWait))
			for {
				if _, _, err := c.ReadMessage(); err != nil {
					var ce *websocket.CloseError
					if errors.As(err, &ce) {
						codes <- ce.Code
					} else {
						codes <- -1
					}
					return
				}
			}
		}()
	}
	start := time.Now()
	if err := page.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Close took %v", d)
	}
	for range viewers {
		if code := <-codes; code != websocket.CloseGoingAway {
			t.Errorf("viewer ended with %d, want 1001", code)
		}
	}
	if _, resp, err := statusDial(t, live, nil); err == nil || resp == nil || resp.StatusCode != 503 {
		t.Errorf("upgrade after Close: %v; want 503", err)
	}
	if err := page.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	// The page itself is still served.
	exampletest.Get(t, base+"/status/")
}

// statusBrowserResult is what testdata/status.js reports at "done".
type statusBrowserResult struct {
	Unauthorized int      `json:"unauthorized"` // the page's status without the token
	Connects     int      `json:"connects"`
	Snapshots    int      `json:"snapshots"`
	States       []string `json:"states"`
	Text         string   `json:"text"`
}

// TestStatusPageBrowser opens a Hub's status page in headless Chromium:
// without the token it gets 401; with it the page goes live and shows the
// connections and the topics with their member counts; a client joining
// shows up without a reload; a dropped live socket reconnects. The
// screenshot (docs/status-page.png is a copy) goes to
// $WSACTOR_ARTIFACTS/TestStatusPageBrowser, or a temp dir.
func TestStatusPageBrowser(t *testing.T) {
	b := exampletest.RequireBrowser(t)
	hub := statusHub(t, 64<<20)
	page, err := metrics.NewHubStatusPage(hub, &metrics.StatusOptions{Authenticate: statusAuth, Interval: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	base := statusServe(t, hub, page)
	ws := statusWS(base) + "/ws"
	for _, topic := range []string{"room:lobby", "room:lobby", "room:ops", "room:lobby"} {
		statusJoin(t, ws, topic)
	}
	// One leaves with a close code, an upgrade is refused, and the others
	// are pinged, so that every panel has something to show.
	leaver := statusJoin(t, ws, "room:lobby")
	_ = leaver.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1000, "going home"), time.Now().Add(statusWait))
	if resp, err := http.Get(base + "/ws"); err == nil {
		resp.Body.Close() // 426
	}
	hub.Handler().Range(func(c *actors.Conn) bool { _ = c.Ping(nil); return true })
	// A member of room:feed that reads nothing: of the 8 MiB published
	// there, what the sockets' buffers do not hold waits in its queue (for
	// the picture's top list; the test checks no count of it).
	statusSlow(t, ws, "room:feed")
	for range 256 {
		if _, err := hub.Publish(t.Context(), "room:feed", "tick", strings.Repeat("x", 32<<10)); err != nil {
			t.Fatal(err)
		}
	}

	out := exampletest.ArtifactDir(t)
	shot := filepath.Join(out, "status-page.png")
	p := b.RunNode(t, "testdata/status.js", shot, base+"/status/", statusToken,
		`{"connections":"5","room:lobby":"3","room:ops":"1","room:feed":"1"}`,
		`{"connections":"6","room:lobby":"3","room:ops":"2","room:feed":"1"}`)
	p.Next(t, "shown")
	statusJoin(t, ws, "room:ops") // the page must show it live
	done := p.Next(t, "done")
	p.Wait(t)
	for _, ev := range p.All("pageerror") {
		t.Errorf("page error: %s", ev.Raw)
	}
	for _, ev := range p.All("console") {
		if strings.Contains(ev.Raw, `"type":"error"`) {
			t.Errorf("console error: %s", ev.Raw)
		}
	}
	exampletest.CheckResourcesLoaded(t, p)
	var r statusBrowserResult
	if err := json.Unmarshal(done.Result, &r); err != nil {
		t.Fatalf("done result %s: %v", done.Result, err)
	}
	if r.Unauthorized != 401 {
		t.Errorf("the page without the token answered %d, want 401", r.Unauthorized)
	}
	if r.Connects != 2 || r.Snapshots < 3 {
		t.Errorf("live socket connected %d times with %d snapshots; want 2 (a reconnect after the drop), and several", r.Connects, r.Snapshots)
	}
	if strings.Join(r.States, ",") != "live,reconnecting,live" {
		t.Errorf("states %v, want live, reconnecting, live", r.States)
	}
	for _, want := range []string{"room:lobby", "room:ops", "going home", "1000", "426"} {
		if !strings.Contains(r.Text, want) {
			t.Errorf("the page does not show %q:\n%s", want, r.Text)
		}
	}
	png, err := os.ReadFile(shot)
	if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
		t.Fatalf("screenshot %s: %v (want a PNG)", shot, err)
	}
	t.Logf("screenshot: %s (%d bytes)", shot, len(png))
}
