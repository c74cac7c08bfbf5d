package transport

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

// serverTestWait bounds every wait in the NewServer tests. It is a safety
// net so that a broken server fails the test instead of hanging it, never an
// assertion about speed.
const serverTestWait = 10 * time.Second

func TestNewServerSettings(t *testing.T) {
	t.Parallel()
	h := http.NotFoundHandler()
	srv := NewServer(":8080", h)
	if srv.Addr != ":8080" || srv.Handler == nil {
		t.Fatalf("Addr %q, Handler %v: want :8080 and h", srv.Addr, srv.Handler)
	}
	// The documented handshake timeout bounds reading the request too.
	if srv.ReadHeaderTimeout != defaultHandshake {
		t.Errorf("ReadHeaderTimeout %v, want the default handshake timeout %v", srv.ReadHeaderTimeout, defaultHandshake)
	}
	if srv.ReadTimeout < srv.ReadHeaderTimeout {
		t.Errorf("ReadTimeout %v is shorter than ReadHeaderTimeout %v", srv.ReadTimeout, srv.ReadHeaderTimeout)
	}
	if srv.IdleTimeout <= 0 {
		t.Errorf("IdleTimeout %v: keep-alive connections would never be closed", srv.IdleTimeout)
	}
	if srv.MaxHeaderBytes <= 0 || srv.MaxHeaderBytes >= http.DefaultMaxHeaderBytes {
		t.Errorf("MaxHeaderBytes %d, want a limit below net/http's %d", srv.MaxHeaderBytes, http.DefaultMaxHeaderBytes)
	}
	if srv.WriteTimeout != 0 {
		t.Errorf("WriteTimeout %v, want 0 (it would cut long responses)", srv.WriteTimeout)
	}
}

// startNewServer serves h on a loopback port with NewServer's settings,
// changed by tune, and returns the address. The server is closed at cleanup.
func startNewServer(t *testing.T, h http.Handler, tune func(*http.Server)) string {
	t.Helper()
	srv := NewServer("127.0.0.1:0", h)
	tune(srv)
	ln, err := net.Listen("tcp", srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		_ = srv.Close()
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	return ln.Addr().String()
}

// slowClient connects to addr, writes head at once, then writes one more
// byte of trickle every few milliseconds, never completing what it sends,
// until the connection fails or the test ends. It returns the connection.
func slowClient(t *testing.T, addr, head string, trickle byte) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	trickled := make(chan struct{})
	t.Cleanup(func() {
		close(stop)
		_ = c.Close()
		<-trickled
	})
	if _, err := io.WriteString(c, head); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(trickled)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for i := 0; i < int(serverTestWait/(5*time.Millisecond)); i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			if _, err := c.Write([]byte{trickle}); err != nil {
				return // the server closed the connection
			}
		}
	}()
	return c
}

// waitServerClose reads c until the server closes it, and fails the test if
// that does not happen within serverTestWait.
func waitServerClose(t *testing.T, c net.Conn) {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(serverTestWait)); err != nil {
		t.Fatal(err)
	}
	_, err := io.Copy(io.Discard, c) // whatever the server answers, then EOF
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("the server did not close the connection: %v", err)
	}
}

// TestNewServerDisconnectsSlowClients: clients that hold a connection by
// sending a request slowly (slowloris), or by sending nothing after a
// request, are disconnected by NewServer's timeouts. The test shortens the
// timeouts through the returned *http.Server's fields and asserts only that
// the server closes each connection.
func TestNewServerDisconnectsSlowClients(t *testing.T) {
	t.Parallel()
	ws := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := Accept(w, r, nil)
		if err != nil {
			return // answered already (426 to these clients)
		}
		c.Close(StatusGoingAway, "not in this test")
	})
	tests := []struct {
		name    string
		head    string // sent at once
		trickle byte   // then sent a byte at a time; 0: nothing more
	}{
		// The request line never ends: only ReadHeaderTimeout stops it.
		{"request line", "GET /ws", 'a'},
		// The headers never end (each byte is within MaxHeaderBytes).
		{"headers", "GET /ws HTTP/1.1\r\nHost: example.com\r\nX-Slow: ", 'a'},
		// The headers are complete and the body never ends: the handler
		// answers 426 without reading it, then net/http reads the body to
		// reuse the connection; only ReadTimeout stops it.
		{"body", "POST /ws HTTP/1.1\r\nHost: example.com\r\nContent-Length: 100000\r\n\r\n", 'a'},
		// A complete request, then silence on the kept-alive connection:
		// IdleTimeout closes it.
		{"idle keep-alive", "GET /ws HTTP/1.1\r\nHost: example.com\r\n\r\n", 0},
	}
	addr := startNewServer(t, ws, func(srv *http.Server) {
		srv.ReadHeaderTimeout = 100 * time.Millisecond
		srv.ReadTimeout = 200 * time.Millisecond
		srv.IdleTimeout = 100 * time.Millisecond
	})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var c net.Conn
			if tt.trickle != 0 {
				c = slowClient(t, addr, tt.head, tt.trickle)
			} else {
				var err error
				if c, err = net.Dial("tcp", addr); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = c.Close() })
				if _, err := io.WriteString(c, tt.head); err != nil {
					t.Fatal(err)
				}
			}
			waitServerClose(t, c)
		})
	}
}

// serverTestPeer records what a connection receives.
type serverTestPeer struct {
	echo   bool // send every message back
	msgs   chan string
	closed chan CloseInfo
}

func newServerTestPeer(echo bool) *serverTestPeer {
	return &serverTestPeer{echo: echo, msgs: make(chan string, 8), closed: make(chan CloseInfo, 1)}
}

func (p *serverTestPeer) HandleMessage(c *Conn, typ MessageType, data []byte) {
	if p.echo {
		_ = c.Send(NewFrame(typ, data))
	}
	p.msgs <- string(data)
}

func (p *serverTestPeer) HandleClose(_ *Conn, info CloseInfo) { p.closed <- info }

func (p *serverTestPeer) next(t *testing.T) string {
	t.Helper()
	select {
	case m := <-p.msgs:
		return m
	case info := <-p.closed:
		t.Fatalf("closed (%d %q, %v) while a message was expected", info.Code, info.Reason, info.Err)
	case <-time.After(serverTestWait):
		t.Fatal("timed out waiting for a message")
	}
	return ""
}

// TestNewServerWebSocketOutlivesTimeouts: the server's read, header and
// write timeouts do not end a WebSocket connection served through it, because
// net/http clears a hijacked connection's deadlines. All four timeouts are set
// short; a slow client dialed after the upgrade is disconnected by them,
// which proves they have passed for the WebSocket too, and the WebSocket
// still carries messages both ways and closes with 1000.
func TestNewServerWebSocketOutlivesTimeouts(t *testing.T) {
	t.Parallel()
	server := newServerTestPeer(true)
	accepted := make(chan *Conn, 1)
	mux := http.NewServeMux()
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		c, err := Accept(w, r, nil)
		if err != nil {
			return
		}
		accepted <- c
		c.Start(server)
	})
	const short = 50 * time.Millisecond
	addr := startNewServer(t, mux, func(srv *http.Server) {
		srv.ReadHeaderTimeout = short
		srv.ReadTimeout = short
		srv.WriteTimeout = short
		srv.IdleTimeout = short
	})

	ctx, cancel := context.WithTimeout(context.Background(), serverTestWait)
	defer cancel()
	c, _, err := Dial(ctx, "ws://"+addr+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	client := newServerTestPeer(false)
	c.Start(client)
	sc := <-accepted
	defer func() {
		c.Close(StatusNormalClosure, "")
		<-c.Done()
		<-sc.Done()
	}()
	if err := c.Send(NewFrame(MessageText, []byte("before"))); err != nil {
		t.Fatal(err)
	}
	if got := client.next(t); got != "before" {
		t.Fatalf("echo %q, want before", got)
	}

	// Both slow clients connect after the upgrade, so their deadlines come
	// after the WebSocket's would have: the header deadline for the first,
	// the read (and, equal to it, the write) deadline for the second.
	slowHeader := slowClient(t, addr, "GET /ws HTTP/1.1\r\nHost: example.com\r\nX-Slow: ", 'a')
	slowBody := slowClient(t, addr, "POST /ws HTTP/1.1\r\nHost: example.com\r\nContent-Length: 100000\r\n\r\n", 'a')
	waitServerClose(t, slowHeader)
	waitServerClose(t, slowBody)

	if err := c.Send(NewFrame(MessageText, []byte("after"))); err != nil {
		t.Fatalf("write after the server's timeouts: %v", err)
	}
	if got := client.next(t); got != "after" {
		t.Fatalf("echo %q, want after", got)
	}
	for _, want := range []string{"before", "after"} {
		if got := server.next(t); got != want {
			t.Fatalf("server got %q, want %q", got, want)
		}
	}
	c.Close(StatusNormalClosure, "done")
	select {
	case info := <-server.closed:
		if info.Code != StatusNormalClosure || !info.ByPeer || !strings.Contains(info.Reason, "done") {
			t.Fatalf("server saw close %d %q by peer %v, want the client's 1000 done", info.Code, info.Reason, info.ByPeer)
		}
	case <-time.After(serverTestWait):
		t.Fatal("the server never saw the close")
	}
}
