package main

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsactor/wsactor/internal/exampletest"
)

func TestMain(m *testing.M) { exampletest.Main(m, main) }

// start runs the example on a loopback port, as main does; stop is what
// SIGINT does.
func start(t *testing.T) (addr string, stop func() error, out *exampletest.Buffer) {
	t.Helper()
	out = new(exampletest.Buffer)
	logs := exampletest.NewLogWriter(t, nil)
	r := exampletest.Start(t, func(ctx context.Context) error {
		return run(ctx, []string{"-addr", "127.0.0.1:0"}, out, logs)
	})
	return out.Wait(t, regexp.MustCompile(`listening on ws://(\S+) `))[1], r.Stop, out
}

// client is a test client that knows its name.
type client struct {
	name string
	c    *websocket.Conn
}

// connect dials path and waits until the server says the client joined, so
// that it receives every broadcast from then on; n is how many clients the
// room should have then (0: do not check).
func connect(t *testing.T, addr, path, name string, n int) *client {
	t.Helper()
	c, _, err := websocket.DefaultDialer.Dial("ws://"+addr+path, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", path, err)
	}
	t.Cleanup(func() { c.Close() })
	cl := &client{name: name, c: c}
	want := fmt.Sprintf("joined %s: %d connected", strings.TrimPrefix(path, "/"), n)
	if _, got := cl.read(t); got != want && (n > 0 || !strings.HasPrefix(got, want[:strings.Index(want, ":")+1])) {
		t.Fatalf("%s: welcome %q", name, got)
	}
	return cl
}

func (cl *client) read(t *testing.T) (int, string) {
	t.Helper()
	_ = cl.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	typ, p, err := cl.c.ReadMessage()
	if err != nil {
		t.Fatalf("%s: read: %v", cl.name, err)
	}
	return typ, string(p)
}

func (cl *client) send(t *testing.T, typ int, s string) {
	t.Helper()
	if err := cl.c.WriteMessage(typ, []byte(s)); err != nil {
		t.Fatalf("%s: write: %v", cl.name, err)
	}
}

// expect checks that each client's next message is typ/want.
func expect(t *testing.T, typ int, want string, clients ...*client) {
	t.Helper()
	for _, cl := range clients {
		if gt, got := cl.read(t); gt != typ || got != want {
			t.Fatalf("%s got %d %q, want %d %q", cl.name, gt, got, typ, want)
		}
	}
}

func TestBroadcast(t *testing.T) {
	addr, stop, out := start(t)

	t.Run("to all, sender included", func(t *testing.T) {
		a := connect(t, addr, "/all", "a", 1)
		b := connect(t, addr, "/all", "b", 2)
		c := connect(t, addr, "/all", "c", 3)
		a.send(t, websocket.TextMessage, "hi from a")
		expect(t, websocket.TextMessage, "hi from a", a, b, c)
		b.send(t, websocket.BinaryMessage, "\x00\x01")
		expect(t, websocket.BinaryMessage, "\x00\x01", a, b, c) // isBinary is kept
	})

	t.Run("to others, sender excluded", func(t *testing.T) {
		a := connect(t, addr, "/others", "a", 1)
		b := connect(t, addr, "/others", "b", 2)
		c := connect(t, addr, "/others", "c", 3)
		a.send(t, websocket.TextMessage, "hi from a")
		expect(t, websocket.TextMessage, "hi from a", b, c)
		// A room delivers broadcasts in one order to every member: had a got
		// its own message, it would read it before b's.
		b.send(t, websocket.TextMessage, "hi from b")
		expect(t, websocket.TextMessage, "hi from b", a, c)
	})

	// The subtests' clients are closed, but the rooms may not have seen
	// them leave yet: do not check the counts.
	a := connect(t, addr, "/all", "a", 0)
	o := connect(t, addr, "/others", "o", 0)
	codes := make(chan int, 2)
	for _, cl := range []*client{a, o} {
		go func() {
			_ = cl.c.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, _, err := cl.c.ReadMessage()
			if ce, ok := err.(*websocket.CloseError); ok {
				codes <- ce.Code
				return
			}
			codes <- -1
		}()
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
func TestHelp(t *testing.T) { exampletest.CheckHelp(t, "broadcast", "addr") }

// TestLogColour: logs are coloured on a terminal only.
func TestLogColour(t *testing.T) { exampletest.CheckLogColour(t, newLogger) }
