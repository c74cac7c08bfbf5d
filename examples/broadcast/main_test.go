package main

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// protoactor's dead-letter throttle keeps a goroutine for its interval
	// (1s) after a dead letter is logged; it ends by itself.
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("github.com/asynkron/protoactor-go/actor.NewDeadLetter.NewThrottle.func4.1"))
}

// output collects what run prints; wait blocks until a line matches.
type output struct {
	mu      sync.Mutex
	b       strings.Builder
	changed chan struct{}
}

func newOutput() *output { return &output{changed: make(chan struct{})} }

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	close(o.changed)
	o.changed = make(chan struct{})
	return o.b.Write(p)
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}

// wait returns the first submatches of re in the output, waiting for them
// for at most 10 seconds.
func (o *output) wait(t *testing.T, re *regexp.Regexp) []string {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		o.mu.Lock()
		m, changed := re.FindStringSubmatch(o.b.String()), o.changed
		o.mu.Unlock()
		if m != nil {
			return m
		}
		select {
		case <-changed:
		case <-timeout:
			t.Fatalf("output never matched %v:\n%s", re, o.String())
		}
	}
}

// start runs the example on a loopback port, as main does; stop is what
// SIGINT does.
func start(t *testing.T) (addr string, stop func() error, out *output) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out = newOutput()
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"-addr", "127.0.0.1:0"}, out) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() { cancel(); err = <-done })
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return out.wait(t, regexp.MustCompile(`listening on ws://(\S+) `))[1], stop, out
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
