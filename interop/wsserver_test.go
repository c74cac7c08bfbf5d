package interop

import (
	"bytes"
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"

	"github.com/wsactor/wsactor/actors"
	"github.com/wsactor/wsactor/transport"
)

// Our clients (transport.Dial and actors.Dial) against Node's ws server
// (node/ws-server.js, ws.WebSocketServer).

// ourDeflateOffer is what our client offers (by default): permessage-deflate
// where the server may keep its context across messages (ws does, by
// default) and our side does not.
const ourDeflateOffer = "permessage-deflate; client_no_context_takeover"

// startWSServer starts ws-server.js with ws's perMessageDeflate option pmd
// and, when heartbeatMs > 0, ws's README heartbeat; it returns the process
// and the server's ws:// URL.
func startWSServer(t *testing.T, pmd string, heartbeatMs int) (*nodeProc, string) {
	t.Helper()
	p := startNode(t, "ws-server.js", []string{"PMD=" + pmd, "HEARTBEAT_MS=" + strconv.Itoa(heartbeatMs)})
	ev := p.next(t, "listening", byEvent("listening", 0))
	return p, "ws://127.0.0.1:" + strconv.Itoa(ev.Port) + "/"
}

type clientMsg struct {
	typ  transport.MessageType
	data []byte
}

// clientRecorder is a transport.Handler that records what our client gets.
type clientRecorder struct {
	msgs   chan clientMsg
	closed chan transport.CloseInfo
}

func (r *clientRecorder) HandleMessage(_ *transport.Conn, typ transport.MessageType, data []byte) {
	r.msgs <- clientMsg{typ, data}
}

func (r *clientRecorder) HandleClose(_ *transport.Conn, info transport.CloseInfo) { r.closed <- info }

func (r *clientRecorder) next(t *testing.T) clientMsg {
	t.Helper()
	select {
	case m := <-r.msgs:
		return m
	case <-time.After(waitTimeout):
		t.Fatal("timed out waiting for a message from the ws server")
		return clientMsg{}
	}
}

func (r *clientRecorder) waitClosed(t *testing.T) transport.CloseInfo {
	t.Helper()
	select {
	case info := <-r.closed:
		return info
	case <-time.After(waitTimeout):
		t.Fatal("timed out waiting for HandleClose")
		return transport.CloseInfo{}
	}
}

// dialTransport dials url with transport.Dial and starts a recorder on it.
// At cleanup the connection is closed (if it is not yet) and waited for.
func dialTransport(t *testing.T, url string, opts *transport.DialOptions) (*transport.Conn, *clientRecorder) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := transport.Dial(ctx, url, opts)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	rec := &clientRecorder{msgs: make(chan clientMsg, 64), closed: make(chan transport.CloseInfo, 1)}
	c.Start(rec)
	t.Cleanup(func() {
		c.Close(transport.StatusGoingAway, "test over")
		select {
		case <-c.Done():
		case <-time.After(15 * time.Second):
			t.Errorf("client connection did not end")
		}
	})
	return c, rec
}

func checkCloseInfo(t *testing.T, got transport.CloseInfo, code int, reason string, byPeer bool, wantErr error) {
	t.Helper()
	checkClosed(t, &actors.Closed{Code: got.Code, Reason: got.Reason, ByPeer: got.ByPeer, Err: got.Err}, code, reason, byPeer, wantErr)
}

func expectMsg(t *testing.T, got clientMsg, typ transport.MessageType, data []byte) {
	t.Helper()
	if got.typ != typ || !bytes.Equal(got.data, data) {
		t.Fatalf("got %v message of %d bytes (%.40q), want %v of %d bytes (%.40q)", got.typ, len(got.data), got.data, typ, len(data), data)
	}
}

// TestTransportDialWSServer: our client against ws's server with
// permessage-deflate on and off: negotiation (our client offers by default),
// echo round trips, a fragmented text and a fragmented binary message from ws,
// pings both ways and our close code and reason reaching ws.
func TestTransportDialWSServer(t *testing.T) {
	requireNode(t)
	cases := []struct {
		name      string
		pmd       string
		mode      transport.CompressionMode
		threshold int
		offer     string
		answer    string // ws's Sec-WebSocket-Extensions answer
		deflated  bool
	}{
		{"ws-deflate/client-default", "true", transport.CompressionDefault, 0, ourDeflateOffer, ourDeflateOffer, true},
		// Both sides compress every message, empty ones included.
		{"ws-deflate-threshold-0/client-threshold-negative", `{"threshold":0}`, transport.CompressionDefault, -1, ourDeflateOffer, ourDeflateOffer, true},
		// ws answers with a smaller server window, which our client inflates.
		{"ws-deflate-server-window-10/client-default", `{"serverMaxWindowBits":10}`, transport.CompressionDefault, 0, ourDeflateOffer,
			ourDeflateOffer + "; server_max_window_bits=10", true},
		{"ws-deflate/client-disabled", "true", transport.CompressionDisabled, 0, "", "", false},
		{"ws-no-deflate/client-default", "false", transport.CompressionDefault, 0, ourDeflateOffer, "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, url := startWSServer(t, tc.pmd, 0)
			var opts transport.DialOptions
			opts.Proxy = transport.NoProxy
			opts.Compression = tc.mode
			opts.CompressionThreshold = tc.threshold
			c, rec := dialTransport(t, url, &opts)
			conn := p.next(t, "connection", byEvent("connection", 0))
			wantExt := ""
			if tc.deflated {
				wantExt = "permessage-deflate"
			}
			if conn.Offered != tc.offer || conn.Extensions != wantExt {
				t.Fatalf("ws server saw offer %q and negotiated %q; want %q, %q", conn.Offered, conn.Extensions, tc.offer, wantExt)
			}
			if c.Compressed() != tc.deflated {
				t.Fatalf("Compressed() = %v, want %v", c.Compressed(), tc.deflated)
			}
			if got := c.Response().Header.Get("Sec-WebSocket-Extensions"); got != tc.answer {
				t.Fatalf("ws answered %q, want %q", got, tc.answer)
			}

			payloads := []clientMsg{
				{transport.MessageText, []byte{}},
				{transport.MessageBinary, []byte{}},
				{transport.MessageText, []byte(smallText)},
				{transport.MessageBinary, smallBinary},
				{transport.MessageText, []byte(bigText)},
				{transport.MessageBinary, bigBinary},
			}
			for _, m := range payloads {
				if err := c.Send(transport.NewFrame(m.typ, m.data)); err != nil {
					t.Fatal(err)
				}
				expectMsg(t, rec.next(t), m.typ, m.data)
			}
			for i, want := range []summary{textSum(""), binarySum(nil), textSum(smallText), binarySum(smallBinary), textSum(bigText), binarySum(bigBinary)} {
				if got := p.next(t, "message", byEvent("message", conn.ID)); got.summary != want {
					t.Fatalf("ws server message %d = %+v, want %+v", i, got.summary, want)
				}
			}

			// Fragmented messages from ws.
			if err := c.Send(transport.NewFrame(transport.MessageText, []byte("!frag"))); err != nil {
				t.Fatal(err)
			}
			expectMsg(t, rec.next(t), transport.MessageText, []byte(fragText))
			expectMsg(t, rec.next(t), transport.MessageBinary, bigBinary)

			// ws pings us: our pong carries its payload.
			if err := c.Send(transport.NewFrame(transport.MessageText, []byte("!ping server-ping"))); err != nil {
				t.Fatal(err)
			}
			if pong := p.next(t, "pong", byEvent("pong", conn.ID)); pong.Data != "server-ping" {
				t.Fatalf("ws server got pong %q, want %q", pong.Data, "server-ping")
			}
			// We ping ws: it sees the payload, and its pong, written before
			// the echo of the next message, updates RTT.
			if err := c.Ping([]byte("go-ping")); err != nil {
				t.Fatal(err)
			}
			if ping := p.next(t, "ping", byEvent("ping", conn.ID)); ping.Data != "go-ping" {
				t.Fatalf("ws server got ping %q, want %q", ping.Data, "go-ping")
			}
			if err := c.Send(transport.NewFrame(transport.MessageText, []byte("after ping"))); err != nil {
				t.Fatal(err)
			}
			expectMsg(t, rec.next(t), transport.MessageText, []byte("after ping"))
			if c.RTT() <= 0 {
				t.Fatalf("RTT = %v after ws's pong, want > 0", c.RTT())
			}

			c.Close(4001, "bye")
			// ws echoes our close frame, code and reason.
			checkCloseInfo(t, rec.waitClosed(t), 4001, "bye", false, nil)
			cl := p.next(t, "close", byEvent("close", conn.ID))
			if cl.Code != 4001 || cl.Reason != "bye" {
				t.Fatalf("ws server close event %d %q, want 4001 \"bye\"", cl.Code, cl.Reason)
			}
			checkTraffic(t, "ws server socket", tc.deflated, int64(cl.BytesRead), int64(cl.BytesWritten))
		})
	}
}

// TestTransportDialWSServerCloses: ws's server closes with 4002 "later"; our
// client reports it and answers with the code.
func TestTransportDialWSServerCloses(t *testing.T) {
	requireNode(t)
	p, url := startWSServer(t, "false", 0)
	c, rec := dialTransport(t, url, &transport.DialOptions{Proxy: transport.NoProxy})
	conn := p.next(t, "connection", byEvent("connection", 0))
	if err := c.Send(transport.NewFrame(transport.MessageText, []byte("!close 4002 later"))); err != nil {
		t.Fatal(err)
	}
	checkCloseInfo(t, rec.waitClosed(t), 4002, "later", true, nil)
	if cl := p.next(t, "close", byEvent("close", conn.ID)); cl.Code != 4002 || cl.Reason != "" {
		t.Fatalf("ws server close event %d %q, want our echo 4002 \"\"", cl.Code, cl.Reason)
	}
}

// TestTransportDialReadLimit: a message from ws exactly at our client's read
// limit arrives; one byte more is refused with 1009, which ws's server sees.
func TestTransportDialReadLimit(t *testing.T) {
	requireNode(t)
	const limit = 64 << 10
	for _, pmd := range []string{"false", "true"} {
		t.Run("ws-deflate="+pmd, func(t *testing.T) {
			p, url := startWSServer(t, pmd, 0)
			opts := transport.DialOptions{Proxy: transport.NoProxy}
			opts.ReadLimit = limit
			c, rec := dialTransport(t, url, &opts)
			conn := p.next(t, "connection", byEvent("connection", 0))
			if c.Compressed() != (pmd == "true") {
				t.Fatalf("Compressed() = %v with ws perMessageDeflate %s", c.Compressed(), pmd)
			}
			if err := c.Send(transport.NewFrame(transport.MessageText, []byte("!big "+strconv.Itoa(limit)))); err != nil {
				t.Fatal(err)
			}
			expectMsg(t, rec.next(t), transport.MessageBinary, bytes.Repeat([]byte("b"), limit))
			if err := c.Send(transport.NewFrame(transport.MessageText, []byte("!big "+strconv.Itoa(limit+1)))); err != nil {
				t.Fatal(err)
			}
			checkCloseInfo(t, rec.waitClosed(t), 1009, "message too big", false, transport.ErrMessageTooBig)
			if cl := p.next(t, "close", byEvent("close", conn.ID)); cl.Code != 1009 || cl.Reason != "message too big" {
				t.Fatalf("ws server close event %d %q, want 1009 \"message too big\"", cl.Code, cl.Reason)
			}
		})
	}
}

// TestTransportDialWSServerHeartbeat runs ws's README server heartbeat (a
// sweep that terminates connections that did not answer the previous ping)
// against our client: our automatic pongs keep the connection alive through
// several sweeps.
func TestTransportDialWSServerHeartbeat(t *testing.T) {
	requireNode(t)
	p, url := startWSServer(t, "false", 50)
	c, rec := dialTransport(t, url, &transport.DialOptions{Proxy: transport.NoProxy})
	conn := p.next(t, "connection", byEvent("connection", 0))
	for pongs := 0; pongs < 3; {
		ev := p.next(t, "pong or terminate", func(ev nodeEvent) bool {
			return ev.ID == conn.ID && (ev.Event == "pong" || ev.Event == "terminate" || ev.Event == "close")
		})
		if ev.Event != "pong" {
			t.Fatalf("ws heartbeat ended our connection: %s", ev.Raw)
		}
		pongs++
	}
	if err := c.Send(transport.NewFrame(transport.MessageText, []byte("still alive"))); err != nil {
		t.Fatal(err)
	}
	expectMsg(t, rec.next(t), transport.MessageText, []byte("still alive"))
	c.Close(transport.StatusNormalClosure, "")
	checkCloseInfo(t, rec.waitClosed(t), 1000, "", false, nil)
}

// clientActor records a client connection actor's events.
type clientActor struct{ events chan<- any }

func (a *clientActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actors.Opened, *actors.Message, *actors.Closed:
		a.events <- m
	}
}

// TestActorsDialWSServer: actors.Dial's connection actor against ws's server,
// with permessage-deflate on and off: echo, the server closing with a code
// and reason, and (on a second connection) the actor closing.
func TestActorsDialWSServer(t *testing.T) {
	requireNode(t)
	for _, pmd := range []string{"false", "true"} {
		t.Run("ws-deflate="+pmd, func(t *testing.T) {
			p, url := startWSServer(t, pmd, 0)
			system := actors.NewSystem(zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel))
			dial := func() (*actors.Conn, chan any) {
				t.Helper()
				events := make(chan any, 64)
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				opts := &actors.DialOptions{}
				opts.Proxy = transport.NoProxy
				conn, _, err := actors.Dial(ctx, system, url, func() actor.Actor { return &clientActor{events: events} }, opts)
				if err != nil {
					t.Fatalf("actors.Dial: %v", err)
				}
				t.Cleanup(func() {
					conn.Close(transport.StatusGoingAway, "test over")
					select {
					case <-conn.Transport().Done():
					case <-time.After(15 * time.Second):
						t.Errorf("client connection did not end")
					}
				})
				if opened := waitFor[*actors.Opened](t, events); opened.Conn != conn || opened.Conn.Compressed() != (pmd == "true") {
					t.Fatalf("Opened: conn %p (want %p), Compressed %v with ws perMessageDeflate %s", opened.Conn, conn, opened.Conn.Compressed(), pmd)
				}
				return conn, events
			}
			expect := func(events chan any, typ actors.MessageType, data []byte) {
				t.Helper()
				m := waitFor[*actors.Message](t, events)
				expectMsg(t, clientMsg{m.Type, m.Data}, typ, data)
			}

			// Connection 1: echo, then ws closes us.
			conn, events := dial()
			first := p.next(t, "connection", byEvent("connection", 0))
			if first.Extensions != map[string]string{"true": "permessage-deflate", "false": ""}[pmd] {
				t.Fatalf("ws negotiated %q with perMessageDeflate %s", first.Extensions, pmd)
			}
			for _, m := range []clientMsg{{actors.Text, []byte(smallText)}, {actors.Binary, bigBinary}, {actors.Text, []byte(bigText)}} {
				if err := conn.Send(m.typ, m.data); err != nil {
					t.Fatal(err)
				}
				expect(events, m.typ, m.data)
			}
			if err := conn.SendText("!close 4002 later"); err != nil {
				t.Fatal(err)
			}
			checkClosed(t, waitFor[*actors.Closed](t, events), 4002, "later", true, nil)
			if cl := p.next(t, "close", byEvent("close", first.ID)); cl.Code != 4002 || cl.Reason != "" {
				t.Fatalf("ws server close event %d %q, want our echo 4002 \"\"", cl.Code, cl.Reason)
			}

			// Connection 2: echo, then our actor closes with 4001 "bye".
			conn, events = dial()
			second := p.next(t, "connection", byEvent("connection", 0))
			if err := conn.Send(actors.Binary, smallBinary); err != nil {
				t.Fatal(err)
			}
			expect(events, actors.Binary, smallBinary)
			conn.Close(4001, "bye")
			checkClosed(t, waitFor[*actors.Closed](t, events), 4001, "bye", false, nil)
			if cl := p.next(t, "close", byEvent("close", second.ID)); cl.Code != 4001 || cl.Reason != "bye" {
				t.Fatalf("ws server close event %d %q, want 4001 \"bye\"", cl.Code, cl.Reason)
			}
		})
	}
}
