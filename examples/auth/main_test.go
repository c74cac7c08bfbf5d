package main

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsactor/wsactor/internal/exampletest"
)

func TestMain(m *testing.M) { exampletest.Main(m, main) }

// start runs the example on a loopback port, as main does; stop is what
// SIGINT does. It returns the server's address.
func start(t *testing.T) (addr string, stop func() error, out *exampletest.Buffer) {
	t.Helper()
	out = new(exampletest.Buffer)
	logs := exampletest.NewLogWriter(t, nil)
	r := exampletest.Start(t, func(ctx context.Context) error {
		return run(ctx, []string{"-addr", "127.0.0.1:0", "-tokens", "s3cret=alice,hunter2=bob"}, out, logs)
	})
	return out.Wait(t, regexp.MustCompile(`listening on ws://(\S+) `))[1], r.Stop, out
}

func read(t *testing.T, c *websocket.Conn) (int, string) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	typ, p, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return typ, string(p)
}

// closeCode reads until the connection ends and returns the close code
// (-1 if it ended without a close frame).
func closeCode(c *websocket.Conn) int {
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		if _, _, err := c.ReadMessage(); err != nil {
			if ce, ok := err.(*websocket.CloseError); ok {
				return ce.Code
			}
			return -1
		}
	}
}

func TestAuth(t *testing.T) {
	addr, stop, out := start(t)
	dialer := &websocket.Dialer{EnableCompression: true, HandshakeTimeout: 5 * time.Second}
	dial := func(t *testing.T, path string, h http.Header) (*websocket.Conn, *http.Response, error) {
		t.Helper()
		c, resp, err := dialer.Dial("ws://"+addr+path, h)
		if c != nil {
			t.Cleanup(func() { c.Close() })
		}
		return c, resp, err
	}

	refused := []struct {
		name   string
		path   string
		header http.Header
	}{
		{"no token", "/ws", nil},
		{"unknown bearer token", "/ws", http.Header{"Authorization": {"Bearer nope"}}},
		{"unknown query token", "/ws?token=nope", nil},
		{"not bearer", "/ws", http.Header{"Authorization": {"Basic czNjcmV0"}}},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			_, resp, err := dial(t, tt.path, tt.header)
			if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("got %v, %v; want 401", resp, err)
			}
			if got := resp.Header.Get("WWW-Authenticate"); got != `Bearer realm="wsactor"` {
				t.Fatalf("WWW-Authenticate = %q", got)
			}
		})
	}

	accepted := []struct {
		name   string
		path   string
		header http.Header
		user   string
	}{
		{"bearer header", "/ws", http.Header{"Authorization": {"Bearer s3cret"}}, "alice"},
		{"query token", "/ws?token=hunter2", nil, "bob"},
	}
	for _, tt := range accepted {
		t.Run(tt.name, func(t *testing.T) {
			c, resp, err := dial(t, tt.path, tt.header)
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			if ext := resp.Header.Get("Sec-WebSocket-Extensions"); !strings.HasPrefix(ext, "permessage-deflate") {
				t.Fatalf("/ws did not negotiate compression: %q", ext)
			}
			if _, got := read(t, c); got != "hello "+tt.user {
				t.Fatalf("greeting %q, want the principal %q", got, tt.user)
			}
			_ = c.WriteMessage(websocket.TextMessage, []byte("hi"))
			if _, got := read(t, c); got != tt.user+": hi" {
				t.Fatalf("reply %q", got)
			}
		})
	}

	t.Run("public needs no token and has its own options", func(t *testing.T) {
		c, resp, err := dial(t, "/public", nil)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		if ext := resp.Header.Get("Sec-WebSocket-Extensions"); ext != "" {
			t.Fatalf("/public negotiated %q; its compression is off", ext)
		}
		_ = c.WriteMessage(websocket.TextMessage, []byte(strings.Repeat("a", publicReadLimit)))
		if _, got := read(t, c); got != "guest: "+strings.Repeat("a", publicReadLimit) {
			t.Fatalf("reply of %d bytes", len(got))
		}
		_ = c.WriteMessage(websocket.TextMessage, []byte(strings.Repeat("a", publicReadLimit+1)))
		if code := closeCode(c); code != websocket.CloseMessageTooBig {
			t.Fatalf("close %d, want 1009", code)
		}
	})

	t.Run("wrong path", func(t *testing.T) {
		_, resp, err := dial(t, "/nope", nil)
		if err == nil || resp == nil || resp.StatusCode != http.StatusNotFound {
			t.Fatalf("got %v, %v; want 404", resp, err)
		}
	})

	// Shutdown (SIGINT) closes open connections of both endpoints with 1001.
	private, _, err := dial(t, "/ws", http.Header{"Authorization": {"Bearer s3cret"}})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	read(t, private)
	public, _, err := dial(t, "/public", nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	codes := make(chan int, 2)
	for _, c := range []*websocket.Conn{private, public} {
		go func() { codes <- closeCode(c) }()
	}
	if err := stop(); err != nil {
		t.Fatalf("run: %v", err)
	}
	for range 2 {
		if code := <-codes; code != websocket.CloseGoingAway {
			t.Fatalf("close %d on shutdown, want 1001", code)
		}
	}
	if !strings.Contains(out.String(), "shut down") {
		t.Fatalf("output:\n%s", out.String())
	}
}

// TestHelp: -h prints the usage and exits 0, with no log line.
func TestHelp(t *testing.T) { exampletest.CheckHelp(t, "auth", "addr", "tokens") }

// TestLogColour: logs are coloured on a terminal only.
func TestLogColour(t *testing.T) { exampletest.CheckLogColour(t, newLogger) }
