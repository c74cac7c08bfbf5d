package transport

import (
	"errors"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
)

func TestServerClose(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverConfig{})
	ws := mustDialGorilla(t, s.wsURL(), nil, nil)
	srv := s.next(t)

	srv.c.Close(StatusNormalClosure, "bye")
	_, err := gorillaReadUntilErr(ws)
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.CloseNormalClosure || ce.Text != "bye" {
		t.Fatalf("client read %v, want close 1000 \"bye\"", err)
	}
	// gorilla's default close handler has echoed the close frame.
	ws.Close()
	info := srv.r.waitClose(t)
	if info.Code != StatusNormalClosure || info.ByPeer || info.Err != nil {
		t.Errorf("server HandleClose = %+v, want 1000, not by peer, no error", info)
	}
	if err := srv.c.Send(NewFrame(MessageText, []byte("x"))); !errors.Is(err, ErrClosed) {
		t.Errorf("Send after close = %v, want ErrClosed", err)
	}
	if err := srv.c.Ping(nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Ping after close = %v, want ErrClosed", err)
	}
}

// TestCloseWritesQueuedFirst checks that Close sends queued messages before
// the close frame, and CloseWithError discards them.
func TestCloseWritesQueuedFirst(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverConfig{onStart: func(c *Conn) {
		for i := 0; i < 50; i++ {
			_ = c.Send(NewFrame(MessageBinary, make([]byte, 1000)))
		}
		c.Close(StatusGoingAway, "restart")
	}})
	ws := mustDialGorilla(t, s.wsURL(), nil, nil)
	n, err := gorillaReadUntilErr(ws)
	if n != 50 {
		t.Errorf("client read %d messages before the close frame, want 50", n)
	}
	if ce, ok := err.(*websocket.CloseError); !ok || ce.Code != websocket.CloseGoingAway || ce.Text != "restart" {
		t.Errorf("client read %v, want close 1001 \"restart\"", err)
	}
	ws.Close()
	if info := s.next(t).r.waitClose(t); info.Code != StatusGoingAway || info.ByPeer || info.Err != nil {
		t.Errorf("server HandleClose = %+v", info)
	}
}

func TestCloseWithErrorDiscardsQueue(t *testing.T) {
	t.Parallel()
	cause := errors.New("shutting down")
	var dropped atomic.Int32
	s := startServer(t, serverConfig{onAccept: func(c *Conn) {
		for i := 0; i < 50; i++ {
			_ = c.SendNotify(NewFrame(MessageBinary, make([]byte, 1000)), func(err error) {
				if errors.Is(err, ErrClosed) {
					dropped.Add(1)
				}
			})
		}
		// Not started yet, so nothing has been read; the writer may have
		// written some of the queue already.
		c.CloseWithError(StatusInternalError, "oops", cause)
	}})
	ws := mustDialGorilla(t, s.wsURL(), nil, nil)
	n, err := gorillaReadUntilErr(ws)
	if ce, ok := err.(*websocket.CloseError); !ok || ce.Code != websocket.CloseInternalServerErr || ce.Text != "oops" {
		t.Errorf("client read %v, want close 1011 \"oops\"", err)
	}
	ws.Close()
	info := s.next(t).r.waitClose(t)
	if info.Code != StatusInternalError || !errors.Is(info.Err, cause) {
		t.Errorf("server HandleClose = %+v, want 1011 with the cause", info)
	}
	if got := int(dropped.Load()); got+n != 50 {
		t.Errorf("%d messages written and %d dropped with ErrClosed; want 50 in all", n, got)
	}
}

func TestClientInitiatedClose(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverConfig{})
	ws := mustDialGorilla(t, s.wsURL(), nil, nil)
	srv := s.next(t)
	ce := gorillaClose(t, ws, 4000, "client bye")
	if ce.Code != 4000 {
		t.Errorf("server answered %d, want the echoed 4000", ce.Code)
	}
	info := srv.r.waitClose(t)
	if info.Code != 4000 || info.Reason != "client bye" || !info.ByPeer || info.Err != nil {
		t.Errorf("server HandleClose = %+v, want 4000 \"client bye\" by peer, no error", info)
	}
}

func TestCloseNoStatus(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverConfig{})
	rc := rawDial(t, s.addr())
	srv := s.next(t)
	rc.writeFrame(0x80|opClose, nil) // close frame without a code
	f, err := rc.readFrame()
	if err != nil || f.op != opClose || len(f.payload) != 0 {
		t.Fatalf("server answered %+v, %v; want an empty close frame", f, err)
	}
	rc.readToEOF()
	if info := srv.r.waitClose(t); info.Code != StatusNoStatusReceived || !info.ByPeer || info.Err != nil {
		t.Errorf("server HandleClose = %+v, want 1005 by peer", info)
	}
}

func TestCloseTimeout(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverConfig{opts: &AcceptOptions{CloseTimeout: 200 * time.Millisecond}})
	ws := mustDialGorilla(t, s.wsURL(), nil, nil) // never reads, so never answers
	srv := s.next(t)
	srv.c.Close(StatusGoingAway, "")
	info := srv.r.waitClose(t)
	if info.Code != StatusGoingAway || info.ByPeer || !errors.Is(info.Err, ErrCloseTimeout) {
		t.Errorf("server HandleClose = %+v, want 1001 with ErrCloseTimeout", info)
	}
	ws.Close()
}

func TestAbruptClose(t *testing.T) {
	t.Parallel()
	t.Run("client drops", func(t *testing.T) {
		t.Parallel()
		s := startServer(t, serverConfig{})
		ws := mustDialGorilla(t, s.wsURL(), nil, nil)
		srv := s.next(t)
		ws.NetConn().Close()
		info := srv.r.waitClose(t)
		if info.Code != StatusAbnormalClosure || !info.ByPeer || !errors.Is(info.Err, io.ErrUnexpectedEOF) {
			t.Errorf("server HandleClose = %+v, want 1006 by peer with io.ErrUnexpectedEOF", info)
		}
	})
	t.Run("server aborts", func(t *testing.T) {
		t.Parallel()
		s := startServer(t, serverConfig{})
		c, rec := dialOur(t, s.wsURL(), nil)
		srv := s.next(t)
		srv.c.Terminate(nil)
		info := rec.waitClose(t)
		if info.Code != StatusAbnormalClosure || !info.ByPeer || info.Err == nil {
			t.Errorf("client HandleClose = %+v, want 1006 by peer with an error", info)
		}
		if sinfo := srv.r.waitClose(t); sinfo.Code != StatusAbnormalClosure || sinfo.Err == nil {
			t.Errorf("server HandleClose = %+v, want 1006 with an error", sinfo)
		}
		if err := c.Send(NewFrame(MessageText, []byte("x"))); !errors.Is(err, ErrClosed) {
			t.Errorf("Send after the end = %v, want ErrClosed", err)
		}
	})
	t.Run("client drops mid-message", func(t *testing.T) {
		t.Parallel()
		s := startServer(t, serverConfig{})
		rc := rawDial(t, s.addr())
		srv := s.next(t)
		rc.write(frameHeader(0x80|byte(MessageBinary), 1000, []byte{1, 2, 3, 4}))
		rc.write(make([]byte, 10))
		rc.conn.Close()
		info := srv.r.waitClose(t)
		if info.Code != StatusAbnormalClosure || !info.ByPeer || !errors.Is(info.Err, io.ErrUnexpectedEOF) {
			t.Errorf("server HandleClose = %+v, want 1006 by peer with io.ErrUnexpectedEOF", info)
		}
	})
}

func TestCloseReason(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("é", 100) // 200 bytes: must be cut to fit 125
	for _, tc := range []struct {
		name     string
		code     StatusCode
		reason   string
		wantCode int
	}{
		{"long reason is truncated on a rune boundary", StatusPolicyViolation, long, 1008},
		{"invalid code becomes 1011", 999, "x", 1011},
		{"1005 may not be sent", StatusNoStatusReceived, "x", 1011},
		{"application code", 4999, "app", 4999},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := startServer(t, serverConfig{})
			ws := mustDialGorilla(t, s.wsURL(), nil, nil)
			srv := s.next(t)
			srv.c.Close(tc.code, tc.reason)
			_, err := gorillaReadUntilErr(ws)
			ce, ok := err.(*websocket.CloseError)
			if !ok || ce.Code != tc.wantCode {
				t.Fatalf("client read %v, want close %d", err, tc.wantCode)
			}
			if len(ce.Text) > 123 || !utf8.ValidString(ce.Text) || !strings.HasPrefix(tc.reason, ce.Text) || ce.Text == "" {
				t.Errorf("reason %q (%d bytes) is not a valid prefix of %q that fits", ce.Text, len(ce.Text), tc.reason)
			}
			ws.Close()
			srv.r.waitClose(t)
		})
	}
}

func TestSendNotify(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverConfig{})
	ws := mustDialGorilla(t, s.wsURL(), nil, nil)
	srv := s.next(t)

	results := make(chan error, 10)
	for i := 0; i < 10; i++ {
		if err := srv.c.SendNotify(NewFrame(MessageText, []byte("m")), func(err error) { results <- err }); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 10; i++ {
		if _, _, err := gorillaRead(t, ws); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-results:
			if err != nil {
				t.Errorf("callback %d: %v, want nil", i, err)
			}
		case <-time.After(testTimeout):
			t.Fatal("callback not called")
		}
	}

	srv.c.Close(StatusNormalClosure, "")
	called := make(chan error, 1)
	if err := srv.c.SendNotify(NewFrame(MessageText, []byte("late")), func(err error) { called <- err }); !errors.Is(err, ErrClosed) {
		t.Errorf("SendNotify after Close = %v, want ErrClosed", err)
	}
	if err := srv.c.Send(nil); err == nil {
		t.Error("Send(nil) succeeded")
	}
	gorillaReadUntilErr(ws)
	ws.Close()
	srv.r.waitClose(t)
	select {
	case err := <-called:
		t.Errorf("callback of a refused SendNotify was called with %v", err)
	default:
	}
}

func TestPingPong(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverConfig{})
	ws := mustDialGorilla(t, s.wsURL(), nil, nil)
	srv := s.next(t)

	pongs := make(chan string, 1)
	ws.SetPongHandler(func(data string) error {
		pongs <- data
		return nil
	})
	readErr := make(chan error, 1)
	go func() {
		_, err := gorillaReadUntilErr(ws) // runs gorilla's ping and pong handlers
		readErr <- err
	}()

	// Server ping, answered by gorilla's default ping handler.
	if srv.c.RTT() != 0 {
		t.Fatal("RTT before any ping")
	}
	srv.c.lastSeen.Store(1)
	if err := srv.c.Ping([]byte("are you there")); err != nil {
		t.Fatal(err)
	}
	pollUntil(t, "RTT from the pong", func() bool { return srv.c.RTT() > 0 })
	if srv.c.LastSeen().UnixNano() <= 1 {
		t.Error("LastSeen not updated by the pong")
	}

	// Client ping, answered by our writer.
	if err := ws.WriteControl(websocket.PingMessage, []byte("client ping"), time.Now().Add(testTimeout)); err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-pongs:
		if p != "client ping" {
			t.Errorf("pong payload %q", p)
		}
	case <-time.After(testTimeout):
		t.Fatal("no pong for the client's ping")
	}

	srv.c.Close(StatusNormalClosure, "")
	if err := <-readErr; !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
		t.Errorf("client read ended with %v", err)
	}
	ws.Close()
	srv.r.waitClose(t)
}

func recvPong(t *testing.T, ch <-chan time.Duration) time.Duration {
	t.Helper()
	select {
	case d := <-ch:
		return d
	case <-time.After(testTimeout):
		t.Fatal("no OnPong")
		return 0
	}
}

// TestPingOurClient: pings both ways between our server and our client;
// each pong that answers a ping sets RTT and reaches OnPong with the same
// round trip, once.
func TestPingOurClient(t *testing.T) {
	t.Parallel()
	serverPongs, clientPongs := make(chan time.Duration, 4), make(chan time.Duration, 4)
	s := startServer(t, serverConfig{opts: &AcceptOptions{OnPong: func(d time.Duration) { serverPongs <- d }}})
	c, _ := dialOur(t, s.wsURL(), &DialOptions{OnPong: func(d time.Duration) { clientPongs <- d }})
	srv := s.next(t)
	if err := c.Ping(make([]byte, 200)); err != nil { // truncated to 125
		t.Fatal(err)
	}
	if d := recvPong(t, clientPongs); d <= 0 || d != c.RTT() {
		t.Fatalf("client OnPong %v, RTT %v", d, c.RTT())
	}
	if err := srv.c.Ping(nil); err != nil {
		t.Fatal(err)
	}
	if d := recvPong(t, serverPongs); d <= 0 || d != srv.c.RTT() {
		t.Fatalf("server OnPong %v, RTT %v", d, srv.c.RTT())
	}
	if len(clientPongs)+len(serverPongs) != 0 {
		t.Fatal("OnPong called more than once per pong")
	}
	if srv.c.LastSeen().IsZero() || c.LastSeen().IsZero() {
		t.Error("LastSeen is zero")
	}
}
