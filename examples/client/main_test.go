package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"

	"github.com/wsactor/wsactor/actors"
	"github.com/wsactor/wsactor/internal/exampletest"
	"github.com/wsactor/wsactor/transport"
)

func TestMain(m *testing.M) { exampletest.Main(m, main) }

// startClient runs the example with fast timings; stop is what SIGINT does.
func startClient(t *testing.T, args ...string) (out *exampletest.Buffer, stop func() error) {
	t.Helper()
	args = append([]string{"-every", "20ms", "-backoff-min", "10ms", "-backoff-max", "50ms"}, args...)
	out = new(exampletest.Buffer)
	logs := exampletest.NewLogWriter(t, nil)
	r := exampletest.Start(t, func(ctx context.Context) error { return run(ctx, args, out, logs) })
	return out, r.Stop
}

// echoServer is a wsactor echo server on addr ("127.0.0.1:0" for any port).
type echoServer struct {
	h   *actors.Handler
	srv *http.Server
	url string
}

func startEcho(t *testing.T, addr string) *echoServer {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	system := actors.NewSystem(zerolog.Nop())
	h, err := actors.NewHandler(system, func() actor.Actor {
		return actor.ReceiveFunc(func(ctx actor.Context) {
			if m, ok := ctx.Message().(*actors.Message); ok {
				_ = m.Conn.SendText("echo: " + m.Text())
			}
		})
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := &echoServer{h: h, srv: transport.NewServer("", h), url: "ws://" + ln.Addr().String() + "/ws"}
	go func() { _ = s.srv.Serve(ln) }()
	t.Cleanup(s.stop)
	return s
}

func (s *echoServer) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = s.h.Shutdown(ctx)
	_ = s.srv.Shutdown(ctx)
}

func TestReconnectsAfterServerRestart(t *testing.T) {
	server := startEcho(t, "127.0.0.1:0")
	out, stop := startClient(t, "-url", server.url)
	out.Wait(t, regexp.MustCompile(`session 1, deflate false\)\n(.*\n)*< echo: message 2\n`))

	server.stop() // closes the client with 1001
	out.Wait(t, regexp.MustCompile(`closed: 1001 "server shutting down"\n(.*\n)*reconnecting in \S+ \(attempt 2\)`))

	startEcho(t, strings.TrimSuffix(strings.TrimPrefix(server.url, "ws://"), "/ws")) // same address
	out.Wait(t, regexp.MustCompile(`session 2, deflate false\)\n(.*\n)*< echo: message \d+\n`))

	if err := stop(); err != nil {
		t.Fatalf("run: %v", err)
	}
	out.Wait(t, regexp.MustCompile(`closed: 1000\nstopped\n$`))
}

func TestRetriesFirstDial(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nobody listens there yet
	out, stop := startClient(t, "-url", "ws://"+addr+"/ws")
	out.Wait(t, regexp.MustCompile(`dial failed, retrying in`))
	startEcho(t, addr)
	out.Wait(t, regexp.MustCompile(`session 1,(.*\n)*< echo: message 1\n`))
	if err := stop(); err != nil {
		t.Fatalf("run: %v", err)
	}
}

// A server that answers 503 (draining, or at MaxConnections) is retried.
func TestRetriesUnavailableServer(t *testing.T) {
	server := startEcho(t, "127.0.0.1:0")
	var refused atomic.Int32
	busy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if refused.Add(1) <= 2 {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		server.h.ServeHTTP(w, r)
	}))
	defer busy.Close()
	out, stop := startClient(t, "-url", busy.URL)
	out.Wait(t, regexp.MustCompile(`(dial failed, retrying in .*\n){2}connected to .*session 1,`))
	if err := stop(); err != nil {
		t.Fatalf("run: %v", err)
	}
}

func TestRefusedHandshakeIsAnError(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no", http.StatusUnauthorized)
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out := new(exampletest.Buffer)
	if err := run(ctx, []string{"-url", srv.URL}, out, exampletest.NewLogWriter(t, nil)); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("run: %v, want the 401\n%s", err, out.String())
	}
}

// silentServer accepts WebSocket connections and never answers a ping, like
// a server whose process hangs or a link that dropped without a FIN.
func silentServer(t *testing.T) string {
	t.Helper()
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		c.SetPingHandler(func(string) error { return nil }) // no pong
		for {
			if _, _, err := c.ReadMessage(); err != nil {
				return // the client terminated us
			}
		}
	}))
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http")
}

func TestHeartbeatDropsSilentServer(t *testing.T) {
	url := silentServer(t)
	out, stop := startClient(t, "-url", url, "-heartbeat", "50ms")
	out.Wait(t, regexp.MustCompile(`session 1,(.*\n)*closed: 1006 \(supervisor: heartbeat timeout\)\nreconnecting in`))
	out.Wait(t, regexp.MustCompile(`session 2,`))
	if err := stop(); err != nil {
		t.Fatalf("run: %v", err)
	}
}

// connectProxy is an HTTP proxy that only does CONNECT, and records the
// hosts it was asked for.
type connectProxy struct {
	mu    sync.Mutex
	hosts []string
}

func (p *connectProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodConnect {
		http.Error(w, "CONNECT only", http.StatusMethodNotAllowed)
		return
	}
	p.mu.Lock()
	p.hosts = append(p.hosts, r.Host)
	p.mu.Unlock()
	upstream, err := net.Dial("tcp", r.Host)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer upstream.Close()
	client, buf, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer client.Close()
	_, _ = io.WriteString(client, "HTTP/1.1 200 Connection established\r\n\r\n")
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(upstream, buf) // buf holds what the client sent after CONNECT
		upstream.Close()
		close(done)
	}()
	_, _ = io.Copy(client, upstream)
	client.Close()
	<-done
}

func TestDialsThroughProxy(t *testing.T) {
	server := startEcho(t, "127.0.0.1:0")
	proxy := &connectProxy{}
	ps := httptest.NewServer(proxy)
	defer ps.Close()

	out, stop := startClient(t, "-url", server.url, "-proxy", ps.URL)
	out.Wait(t, regexp.MustCompile(`< echo: message 1\n`))
	if err := stop(); err != nil {
		t.Fatalf("run: %v", err)
	}
	proxy.mu.Lock()
	defer proxy.mu.Unlock()
	want := strings.TrimSuffix(strings.TrimPrefix(server.url, "ws://"), "/ws")
	if len(proxy.hosts) != 1 || proxy.hosts[0] != want {
		t.Fatalf("proxy was asked for %q, want [%s]", proxy.hosts, want)
	}
}

// TestHelp: -h prints the usage and exits 0, with no log line.
func TestHelp(t *testing.T) {
	exampletest.CheckHelp(t, "client", "url", "proxy", "heartbeat", "every", "backoff-min", "backoff-max")
}

// TestLogColour: logs are coloured on a terminal only.
func TestLogColour(t *testing.T) { exampletest.CheckLogColour(t, newLogger) }
