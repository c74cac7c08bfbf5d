package metrics_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"github.com/wsactor/wsactor/actors"
	"github.com/wsactor/wsactor/channel"
	"github.com/wsactor/wsactor/metrics"
	"github.com/wsactor/wsactor/transport"
	"github.com/wsactor/wsactor/wsactortest"
)

func TestMain(m *testing.M) { wsactortest.VerifyTestMain(m) }

// A scrape after known traffic reads exactly that traffic: connections,
// upgrades by status, messages and bytes each way, writes and frames.
func TestHandlerMetrics(t *testing.T) {
	system := actors.NewSystem(zerolog.Nop())
	h, err := actors.NewHandler(system, func() actor.Actor {
		return actor.ReceiveFunc(func(ctx actor.Context) {
			if m, ok := ctx.Message().(*actors.Message); ok {
				_ = m.Conn.Send(m.Type, m.Data)
			}
		})
	}, &actors.HandlerOptions{Logger: zerolog.Nop(), AcceptOptions: transport.AcceptOptions{
		Authenticate: func(r *http.Request) (any, error) {
			if r.URL.Query().Get("token") != "ok" {
				return nil, io.EOF
			}
			return "user", nil
		},
	}})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(metrics.NewHandlerCollector(h, "/ws"))
	mux := http.NewServeMux()
	mux.Handle("/ws", h)
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = h.Shutdown(ctx)
	}()
	ws := "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws"

	c, _, err := websocket.DefaultDialer.Dial(ws+"?token=ok", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, s := range []string{"a", "bb", "ccc"} {
		_ = c.WriteMessage(websocket.TextMessage, []byte(s))
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, p, err := c.ReadMessage(); err != nil || string(p) != s {
			t.Fatalf("echo %q, %v", p, err)
		}
	}
	if _, resp, err := websocket.DefaultDialer.Dial(ws, nil); err == nil || resp.StatusCode != 401 {
		t.Fatalf("no token: %v", err)
	}
	if resp, err := http.Get(srv.URL + "/ws"); err == nil {
		resp.Body.Close() // not an upgrade: 426
	}

	// A writer counts a write once it has returned, which may be just after
	// the client read it: scrape until the last echo is counted.
	var got string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		got = scrape(t, srv.URL+"/metrics")
		if strings.Contains(got, `wsactor_messages_total{direction="out",endpoint="/ws"} 3`) || time.Now().After(deadline) {
			break
		}
	}
	for _, want := range []string{
		`wsactor_connections_open{endpoint="/ws"} 1`,
		`wsactor_upgrades_total{endpoint="/ws",status="101"} 1`,
		`wsactor_upgrades_total{endpoint="/ws",status="401"} 1`,
		`wsactor_upgrades_total{endpoint="/ws",status="426"} 1`,
		`wsactor_messages_total{direction="in",endpoint="/ws"} 3`,
		`wsactor_messages_total{direction="out",endpoint="/ws"} 3`,
		`wsactor_payload_bytes_total{direction="in",endpoint="/ws"} 6`,
		`wsactor_payload_bytes_total{direction="out",endpoint="/ws"} 6`,
		`wsactor_wire_bytes_total{direction="in",endpoint="/ws"} 6`,   // no deflate: as read
		`wsactor_wire_bytes_total{direction="out",endpoint="/ws"} 12`, // 3 frames: 2-byte headers + 6 payload bytes
		`wsactor_queue_overflows_total{endpoint="/ws",policy="disconnect"} 0`,
		`wsactor_connections_by_rtt{endpoint="/ws",le="+Inf"} 0`, // no ping answered yet
	} {
		if !strings.Contains(got, want+"\n") {
			t.Errorf("scrape lacks %s", want)
		}
	}
	if !strings.Contains(got, `wsactor_write_syscalls_total{endpoint="/ws"} `) || !strings.Contains(got, `wsactor_frames_written_total{endpoint="/ws"} 3`) {
		t.Errorf("scrape lacks writes or frames:\n%s", got)
	}
	// A heartbeat ping the client answers: one round trip in the RTT
	// histogram and in the by-RTT gauge. gorilla answers pings while it
	// reads, so the client reads one more echo after the ping.
	h.Range(func(conn *actors.Conn) bool { _ = conn.Ping(nil); return true })
	_ = c.WriteMessage(websocket.TextMessage, []byte("d"))
	if _, p, err := c.ReadMessage(); err != nil || string(p) != "d" {
		t.Fatalf("echo %q, %v", p, err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		got = scrape(t, srv.URL+"/metrics")
		if strings.Contains(got, `wsactor_rtt_seconds_count{endpoint="/ws"} 1`+"\n") &&
			strings.Contains(got, `wsactor_connections_by_rtt{endpoint="/ws",le="+Inf"} 1`+"\n") &&
			strings.Contains(got, `wsactor_rtt_seconds_bucket{endpoint="/ws",le="+Inf"} 1`+"\n") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no RTT counted:\n%s", got)
		}
	}

	// The client closes normally: one close with 1000 by the peer, and no
	// connection open.
	_ = c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(1000, "bye"))
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		got = scrape(t, srv.URL+"/metrics")
		if strings.Contains(got, `wsactor_closes_total{code="1000",endpoint="/ws",side="peer"} 1`+"\n") &&
			strings.Contains(got, `wsactor_connections_open{endpoint="/ws"} 0`+"\n") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no close counted:\n%s", got)
		}
	}
	if !strings.Contains(got, `wsactor_heartbeat_terminations_total{endpoint="/ws"} 0`) {
		t.Errorf("heartbeat terminations missing or not 0")
	}
	// Ended connections' traffic stays counted.
	if !strings.Contains(got, `wsactor_messages_total{direction="in",endpoint="/ws"} 4`+"\n") ||
		!strings.Contains(got, `wsactor_rtt_seconds_count{endpoint="/ws"} 1`+"\n") {
		t.Errorf("traffic or round trips of the ended connection lost:\n%s", got)
	}
	if t.Failed() {
		t.Logf("scrape:\n%s", got)
	}
}

func scrape(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// The Hub's collector: its connections (across Reopen) and its topics.
func TestHubMetrics(t *testing.T) {
	system := actors.NewSystem(zerolog.Nop())
	hub, err := channel.NewHub(system, &channel.Options{
		Logger:       zerolog.Nop(),
		Authenticate: func(*http.Request) (channel.Identity, error) { return channel.Identity{User: "u"}, nil },
		Topics: func(string) *channel.TopicOptions {
			return &channel.TopicOptions{ClientPublish: true}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(metrics.NewHubCollector(hub, "/chat"))
	mux := http.NewServeMux()
	mux.Handle("/ws", hub)
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	defer hub.Close(context.Background())
	ws := "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws"

	c, _, err := websocket.DefaultDialer.Dial(ws, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	say := func(s string) string {
		_ = c.WriteMessage(websocket.TextMessage, []byte(s))
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, p, err := c.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		return string(p)
	}
	say(`{"t":"join","ref":1,"topic":"a","recover":{"epoch":"gone","offset":3}}`) // recovered false: epoch
	say(`{"t":"push","ref":2,"topic":"a","event":"msg","data":1}`)                // the event, then the reply
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, _, _ = c.ReadMessage()
	say(`{"t":"push","ref":3,"topic":"nowhere","event":"msg"}`) // not_joined
	say(`nonsense`)                                             // bad_request

	var got string
	want := []string{
		`wsactor_channel_topics{endpoint="/chat"} 1`,
		`wsactor_channel_members{endpoint="/chat"} 1`,
		`wsactor_channel_joins_total{endpoint="/chat"} 1`,
		`wsactor_channel_recoveries_total{endpoint="/chat",outcome="epoch"} 1`,
		`wsactor_channel_refused_total{code="not_joined",endpoint="/chat"} 1`,
		`wsactor_channel_refused_total{code="bad_request",endpoint="/chat"} 1`,
		`wsactor_channel_pushes_total{endpoint="/chat"} 1`,
		`wsactor_channel_published_total{endpoint="/chat"} 1`,
		`wsactor_connections_open{endpoint="/chat"} 1`,
		`wsactor_upgrades_total{endpoint="/chat",status="101"} 1`,
		`wsactor_channel_join_seconds_count{endpoint="/chat"} 1`,
		`wsactor_channel_push_seconds_count{endpoint="/chat"} 1`, // ref 2; ref 3 was refused by the session
		`wsactor_channel_request_seconds_count{endpoint="/chat"} 0`,
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		got = scrape(t, srv.URL+"/metrics")
		missing := ""
		for _, w := range want {
			if !strings.Contains(got, w+"\n") {
				missing = w
			}
		}
		if missing == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("scrape lacks %s:\n%s", missing, got)
		}
	}
	// A server request the client answers: one request latency.
	sessions := hub.Sessions("u")
	if len(sessions) != 1 {
		t.Fatalf("sessions %+v", sessions)
	}
	id := sessions[0].ID
	answered := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := hub.Request(ctx, id, "a", "ask", nil)
		answered <- err
	}()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, p, err := c.ReadMessage(); err != nil || !strings.Contains(string(p), `"t":"push","ref":1,"topic":"a","event":"ask"`) {
		t.Fatalf("request %s, %v", p, err)
	}
	_ = c.WriteMessage(websocket.TextMessage, []byte(`{"t":"reply","ref":1,"topic":"a","status":"ok"}`))
	if err := <-answered; err != nil {
		t.Fatal(err)
	}
	if got = scrape(t, srv.URL+"/metrics"); !strings.Contains(got, `wsactor_channel_request_seconds_count{endpoint="/chat"} 1`+"\n") {
		t.Fatalf("request latency not counted:\n%s", got)
	}

	// Leaving takes the membership out of the gauge.
	say(`{"t":"leave","ref":4,"topic":"a"}`)
	if got = scrape(t, srv.URL+"/metrics"); !strings.Contains(got, `wsactor_channel_members{endpoint="/chat"} 0`+"\n") {
		t.Fatalf("members after leave:\n%s", got)
	}
}

// The process collector reads the compression counter: a broadcast to
// three deflate connections counts one compression.
func TestProcessMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(metrics.NewProcessCollector())
	value := func() float64 {
		mfs, err := reg.Gather()
		if err != nil || len(mfs) != 1 || mfs[0].GetName() != "wsactor_compressions_total" {
			t.Fatalf("gather: %v %v", mfs, err)
		}
		return mfs[0].GetMetric()[0].GetCounter().GetValue()
	}
	system := actors.NewSystem(zerolog.Nop())
	opened := make(chan *actors.Conn, 3)
	h, err := actors.NewHandler(system, func() actor.Actor {
		return actor.ReceiveFunc(func(ctx actor.Context) {
			if m, ok := ctx.Message().(*actors.Opened); ok {
				opened <- m.Conn
			}
		})
	}, &actors.HandlerOptions{Logger: zerolog.Nop(), AcceptOptions: transport.AcceptOptions{Compression: transport.CompressionEnabled, CompressionThreshold: 1}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	defer h.Shutdown(context.Background())
	d := websocket.Dialer{EnableCompression: true}
	var clients []*websocket.Conn
	var conns []*actors.Conn
	for range 3 {
		c, _, err := d.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		clients, conns = append(clients, c), append(conns, <-opened)
	}
	before := value()
	f := transport.NewFrame(transport.MessageText, []byte(strings.Repeat("compress me once ", 20)))
	for _, c := range conns {
		_ = c.SendFrame(f)
	}
	for _, c := range clients {
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, _, err := c.ReadMessage(); err != nil {
			t.Fatal(err)
		}
	}
	if d := value() - before; d != 1 {
		t.Fatalf("compressions counted %v for one broadcast to 3, want 1", d)
	}
}
