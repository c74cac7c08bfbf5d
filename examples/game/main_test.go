package main

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"

	"github.com/wsactor/wsactor/actors"
	"github.com/wsactor/wsactor/internal/exampletest"
)

func TestMain(m *testing.M) { exampletest.Main(m, main) }

// waitTimeout bounds every wait for one expected event.
const waitTimeout = 15 * time.Second

// startServer serves the game made by newServer on loopback. A positive
// sndbuf caps the send buffer of the server's sockets, so that a client that
// stops reading stalls the server's writes within a fraction of a second
// rather than after megabytes. At cleanup the game is shut down first
// (httptest's Close does not wait for hijacked connections), then the HTTP
// server.
func startServer(t *testing.T, cfg config, sndbuf int) (*server, string) {
	t.Helper()
	logger := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel)
	system := actors.NewSystem(logger.Level(zerolog.WarnLevel))
	app, err := newServer(t.Context(), system, logger, cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(app)
	if sndbuf > 0 {
		hs.Listener = smallSendBuffers{hs.Listener, sndbuf}
	}
	hs.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		if err := app.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		hs.Close()
	})
	return app, "ws" + strings.TrimPrefix(hs.URL, "http") + "/ws"
}

// smallSendBuffers sets the send buffer of every accepted TCP connection.
type smallSendBuffers struct {
	net.Listener
	size int
}

func (l smallSendBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		if err := tc.SetWriteBuffer(l.size); err != nil {
			_ = c.Close()
			return nil, err
		}
	}
	return c, nil
}

// gameRun is run() on a loopback port, as `go run ./examples/game -addr
// ADDR` runs it.
type gameRun struct {
	URL  string // http://127.0.0.1:port
	stop func() error
}

// Stop does what SIGINT does and returns run's error; it is also called at
// cleanup.
func (g *gameRun) Stop() error { return g.stop() }

var listening = regexp.MustCompile(`game on (http://\S+)`)

func startRun(t *testing.T, args ...string) *gameRun {
	t.Helper()
	out := exampletest.NewLogWriter(t, listening)
	r := exampletest.Start(t, func(ctx context.Context) error {
		return run(ctx, append([]string{"-addr", "127.0.0.1:0", "-v"}, args...), out)
	})
	g := &gameRun{stop: r.Stop}
	t.Cleanup(func() {
		if err := g.Stop(); err != nil {
			t.Errorf("game server: %v", err)
		}
	})
	select {
	case m := <-out.Match():
		g.URL = m[1]
	case <-r.Done():
		t.Fatalf("run: %v", r.Err())
	case <-time.After(waitTimeout):
		t.Fatal("the game server did not start")
	}
	return g
}

// client is a Go player.
type client struct {
	t *testing.T
	c *websocket.Conn
}

// dial connects a player.
func dial(t *testing.T, url string) *client {
	t.Helper()
	c, resp, err := websocket.DefaultDialer.DialContext(t.Context(), url, nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	_ = resp.Body.Close()
	t.Cleanup(func() { _ = c.Close() })
	return &client{t: t, c: c}
}

func (c *client) send(v any) {
	c.t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		c.t.Fatal(err)
	}
	_ = c.c.SetWriteDeadline(time.Now().Add(waitTimeout))
	if err := c.c.WriteMessage(websocket.TextMessage, data); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// read returns the next message's raw JSON and its type.
func (c *client) read() (string, []byte) {
	c.t.Helper()
	_ = c.c.SetReadDeadline(time.Now().Add(waitTimeout))
	_, data, err := c.c.ReadMessage()
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	var head struct{ Type string }
	if err := json.Unmarshal(data, &head); err != nil {
		c.t.Fatalf("not JSON: %q", data)
	}
	return head.Type, data
}

func (c *client) welcome() welcome {
	c.t.Helper()
	typ, data := c.read()
	var w welcome
	if typ != "welcome" || json.Unmarshal(data, &w) != nil || w.ID == 0 {
		c.t.Fatalf("want a welcome, got %s", data)
	}
	return w
}

// snapshot returns the next state snapshot, skipping other messages.
func (c *client) snapshot() snapshot {
	c.t.Helper()
	for {
		typ, data := c.read()
		if typ != "state" {
			continue
		}
		var s snapshot
		if err := json.Unmarshal(data, &s); err != nil {
			c.t.Fatalf("bad snapshot %s: %v", data, err)
		}
		return s
	}
}

// closed reads until the server's close frame and returns it.
func (c *client) closed() *websocket.CloseError {
	c.t.Helper()
	_ = c.c.SetReadDeadline(time.Now().Add(waitTimeout))
	for {
		if _, _, err := c.c.ReadMessage(); err != nil {
			var ce *websocket.CloseError
			if !errors.As(err, &ce) {
				c.t.Fatalf("want a close frame, got %v", err)
			}
			return ce
		}
	}
}

func find(s snapshot, id int) (player, bool) {
	for _, p := range s.Players {
		if p.ID == id {
			return *p, true
		}
	}
	return player{}, false
}

// TestHelp: -h prints the usage and exits 0, with no log line.
func TestHelp(t *testing.T) { exampletest.CheckHelp(t, "game", "addr", "tick", "v") }

// TestLogColour: logs are coloured on a terminal only.
func TestLogColour(t *testing.T) { exampletest.CheckLogColour(t, newLogger) }
