package transport

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// holdHandler holds the reader inside HandleMessage until release is
// called: a slow application applying backpressure.
type holdHandler struct {
	held    chan *Conn // gets the connection when the reader is held
	unblock chan struct{}
	once    sync.Once
}

func (h *holdHandler) HandleMessage(c *Conn, _ MessageType, _ []byte) {
	select {
	case h.held <- c:
	default:
	}
	<-h.unblock
}

func (h *holdHandler) HandleClose(*Conn, CloseInfo) {}

func (h *holdHandler) release() { h.once.Do(func() { close(h.unblock) }) }

// startHoldServer serves WebSocket connections that a holdHandler handles,
// over TLS if useTLS.
func startHoldServer(t *testing.T, useTLS bool) (*httptest.Server, *holdHandler) {
	t.Helper()
	h := &holdHandler{held: make(chan *Conn, 1), unblock: make(chan struct{})}
	var (
		mu    sync.Mutex
		conns []*Conn
	)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := Accept(w, r, nil)
		if err != nil {
			t.Error(err)
			return
		}
		mu.Lock()
		conns = append(conns, c)
		mu.Unlock()
		c.Start(h)
	}))
	if useTLS {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(func() {
		h.release()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Terminate(nil)
			waitDone(t, c)
		}
		srv.Close()
	})
	return srv, h
}

// upgrade sends a WebSocket upgrade request over nc and reads the 101.
func upgrade(t *testing.T, nc net.Conn, host string) *bufio.Reader {
	t.Helper()
	_, err := fmt.Fprintf(nc, "GET / HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", host)
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: %v %v", resp, err)
	}
	return br
}

// heldConn sends one message from nc and returns the server connection once
// its reader is held in HandleMessage.
func heldConn(t *testing.T, h *holdHandler, nc net.Conn) *Conn {
	t.Helper()
	key := []byte{0, 0, 0, 0}
	if _, err := nc.Write(append(frameHeader(0x80|byte(MessageText), 4, key), "hold"...)); err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-h.held:
		return c
	case <-time.After(testTimeout):
		t.Fatal("the reader was not held")
		return nil
	}
}

// eventually waits for cond; testTimeout is a safety net, not an assertion.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func tcpInfoOf(t *testing.T, nc net.Conn) *unix.TCPInfo {
	t.Helper()
	sc, ok := socketOf(nc)
	if !ok {
		t.Fatalf("no socket under %T", nc)
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var info *unix.TCPInfo
	if err := raw.Control(func(fd uintptr) {
		info, err = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
	}); err != nil {
		t.Fatal(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// gap separates what the test does before from what it does after, by far
// more than the kernel's clock tick (at most 10ms), so that "heard after the
// gap" cannot be rounding.
const gap = 200 * time.Millisecond

// TestLastHeardWhileReaderHeld: while the handler holds the reader, a frame
// the peer sends is not read (LastSeen stands still) but reaches the socket
// (LastHeard advances); the peer's TCP acknowledging our ping is not data
// and does not count.
func TestLastHeardWhileReaderHeld(t *testing.T) {
	t.Parallel()
	srv, h := startHoldServer(t, false)
	rc := rawDial(t, strings.TrimPrefix(srv.URL, "http://"))
	c := heldConn(t, h, rc.conn)
	seen := c.LastSeen()
	if c.ReadPaused().IsZero() {
		t.Fatal("ReadPaused is zero while HandleMessage holds the reader")
	}

	time.Sleep(gap)
	if err := c.Ping(nil); err != nil {
		t.Fatal(err)
	}
	// The ping reaches the peer, whose kernel acknowledges it.
	var ping [2]byte
	if _, err := io.ReadFull(rc.br, ping[:]); err != nil || ping[0] != 0x80|opPing {
		t.Fatalf("read ping: % x %v", ping, err)
	}
	eventually(t, "the ping to be acknowledged", func() bool { return tcpInfoOf(t, c.nc).Unacked == 0 })
	if got := c.LastHeard(); got.After(seen.Add(gap / 2)) {
		t.Fatalf("LastHeard moved %v past the last frame on an acknowledgement alone", got.Sub(seen))
	}

	// The pong reaches the socket; the held reader does not read it.
	if _, err := rc.conn.Write(frameHeader(0x80|opPong, 0, []byte{0, 0, 0, 0})); err != nil {
		t.Fatal(err)
	}
	eventually(t, "LastHeard to report the pong", func() bool { return c.LastHeard().After(seen.Add(gap / 2)) })
	if got := c.LastSeen(); !got.Equal(seen) {
		t.Fatalf("LastSeen moved by %v while the reader was held", got.Sub(seen))
	}

	// Once the reader is let go, it reads the pong.
	h.release()
	eventually(t, "the reader to read the pong", func() bool { return c.LastSeen().After(seen) })
	if c.LastHeard().Before(c.LastSeen()) {
		t.Fatal("LastHeard is before LastSeen")
	}
}

// TestLastHeardTLS: the kernel is reached through *tls.Conn.
func TestLastHeardTLS(t *testing.T) {
	t.Parallel()
	srv, h := startHoldServer(t, true)
	cfg := srv.Client().Transport.(*http.Transport).TLSClientConfig
	host := strings.TrimPrefix(srv.URL, "https://")
	nc, err := tls.Dial("tcp", host, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	upgrade(t, nc, host)
	c := heldConn(t, h, nc)
	if _, ok := c.nc.(*tls.Conn); !ok {
		t.Fatalf("server socket is %T, want *tls.Conn", c.nc)
	}
	if _, ok := lastDataRecv(c.nc); !ok {
		t.Fatal("the kernel was not reached through *tls.Conn")
	}
	seen := c.LastSeen()

	time.Sleep(gap)
	if _, err := nc.Write(frameHeader(0x80|opPong, 0, []byte{0, 0, 0, 0})); err != nil {
		t.Fatal(err)
	}
	eventually(t, "LastHeard to report the pong", func() bool { return c.LastHeard().After(seen.Add(gap / 2)) })
	if got := c.LastSeen(); !got.Equal(seen) {
		t.Fatalf("LastSeen moved by %v while the reader was held", got.Sub(seen))
	}
}

// selfWrapper returns itself from NetConn: unwrapping must stop.
type selfWrapper struct{ net.Conn }

func (s selfWrapper) NetConn() net.Conn { return s }

// TestLastHeardFallback: where the kernel does not tell, LastHeard is
// LastSeen.
func TestLastHeardFallback(t *testing.T) {
	t.Parallel()
	pa, pb := net.Pipe()
	defer pa.Close()
	defer pb.Close()
	ua, ub, err := unixPair()
	if err != nil {
		t.Fatal(err)
	}
	defer ua.Close()
	defer ub.Close()
	for name, nc := range map[string]net.Conn{
		"net.Pipe":         pa,
		"unix socket":      ua,
		"endless wrapping": selfWrapper{pa},
	} {
		if _, ok := lastDataRecv(nc); ok {
			t.Errorf("%s: the kernel was asked", name)
		}
		c := &Conn{nc: nc}
		c.lastSeen.Store(time.Now().Add(-time.Hour).UnixNano())
		if !c.LastHeard().Equal(c.LastSeen()) {
			t.Errorf("%s: LastHeard %v, want LastSeen %v", name, c.LastHeard(), c.LastSeen())
		}
	}
	// A tcp_info with no bytes received (an emulated kernel's, or one
	// before Linux 4.1) says nothing.
	if _, ok := lastDataRecvFrom(&unix.TCPInfo{}, time.Now()); ok {
		t.Error("an empty tcp_info was believed")
	}
}

func unixPair() (net.Conn, net.Conn, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		return nil, nil, err
	}
	var conns [2]net.Conn
	for i, fd := range fds {
		f := os.NewFile(uintptr(fd), "socketpair")
		conns[i], err = net.FileConn(f)
		f.Close()
		if err != nil {
			return nil, nil, err
		}
	}
	return conns[0], conns[1], nil
}
