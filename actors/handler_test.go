package actors_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"

	"github.com/wsactor/wsactor/actors"
	"github.com/wsactor/wsactor/supervisor"
	"github.com/wsactor/wsactor/transport"
	"github.com/wsactor/wsactor/wsactortest"
)

func TestMain(m *testing.M) {
	// goleak, ignoring only protoactor's dead-letter throttle (a goroutine
	// for 1s after a dead letter is logged), transport's idle-reader poller
	// (one per process) and pooled writers waiting idle for work.
	wsactortest.VerifyTestMain(m)
}

// testServer serves h on loopback and shuts both down at cleanup: the
// handler first (httptest's Close does not wait for hijacked connections).
func testServer(t *testing.T, producer actor.Producer, opts *actors.HandlerOptions) (*actors.Handler, string, *actor.ActorSystem) {
	t.Helper()
	system := actors.NewSystem(zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.DebugLevel))
	if opts == nil {
		opts = &actors.HandlerOptions{}
	}
	opts.Logger = zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.DebugLevel)
	h, err := actors.NewHandler(system, producer, opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := h.Shutdown(ctx); err != nil {
			buf := make([]byte, 1<<20)
			n := runtime.Stack(buf, true)
			t.Errorf("shutdown: %v\n%s", err, buf[:n])
		}
		srv.Close()
	})
	return h, "ws" + strings.TrimPrefix(srv.URL, "http"), system
}

func dial(t *testing.T, url string) *websocket.Conn {
	t.Helper()
	c, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func readText(t *testing.T, c *websocket.Conn) string {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, p, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return string(p)
}

// readClose reads until the close frame and returns its code and text.
func readClose(t *testing.T, c *websocket.Conn) (int, string) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		_, _, err := c.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			return ce.Code, ce.Text
		}
		t.Fatalf("want a close frame, got %v", err)
	}
}

// echo answers every message and records its lifecycle.
type echo struct {
	events chan<- any
}

func (e *echo) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actors.Opened:
		e.emit(m)
	case *actors.Message:
		if m.Text() == "panic" {
			panic("handler asked to panic")
		}
		_ = m.Conn.Send(m.Type, m.Data)
	case *actors.Closed:
		e.emit(m)
	case string:
		e.emit(m)
	}
}

func (e *echo) emit(m any) {
	if e.events != nil {
		e.events <- m
	}
}

func echoProducer(events chan<- any) actor.Producer {
	return func() actor.Actor { return &echo{events: events} }
}

func waitFor[T any](t *testing.T, ch <-chan any) T {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case m := <-ch:
			if v, ok := m.(T); ok {
				return v
			}
		case <-timeout:
			var zero T
			t.Fatalf("timed out waiting for %T", zero)
			return zero
		}
	}
}

func TestEchoAndLifecycle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		events := make(chan any, 16)
		h, srv, _ := fakeServer(t, echoProducer(events), nil)
		c := fakeDial(t, srv)
		opened := waitFor[*actors.Opened](t, events)
		if opened.Conn.PID() == nil || opened.Conn.Request() == nil {
			t.Fatalf("Opened lacks PID or request: %+v", opened.Conn)
		}
		for i := range 100 {
			msg := fmt.Sprintf("hello %d", i)
			if err := c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
				t.Fatal(err)
			}
			if got := readText(t, c); got != msg {
				t.Fatalf("echo = %q, want %q", got, msg)
			}
		}
		if h.Len() != 1 {
			t.Fatalf("Len = %d, want 1", h.Len())
		}
		_ = c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(4000, "done"), time.Now().Add(time.Second))
		closed := waitFor[*actors.Closed](t, events)
		if closed.Code != 4000 || closed.Reason != "done" || !closed.ByPeer || closed.Err != nil {
			t.Fatalf("Closed = %+v, want 4000 done by peer", closed)
		}
		if code, _ := readClose(t, c); code != 4000 {
			t.Fatalf("server echoed close %d, want 4000", code)
		}
		select {
		case m := <-events:
			t.Fatalf("unexpected event after Closed: %#v", m)
		default:
		}
	})
}

func TestHandlerPanicClosesOnlyThatConnection(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		events := make(chan any, 16)
		_, srv, _ := fakeServer(t, echoProducer(events), &actors.HandlerOptions{HandlerPanic: supervisor.Policy{Directive: supervisor.Stop}})
		bad, good := fakeDial(t, srv), fakeDial(t, srv)
		waitFor[*actors.Opened](t, events)
		waitFor[*actors.Opened](t, events)

		if err := bad.WriteMessage(websocket.TextMessage, []byte("panic")); err != nil {
			t.Fatal(err)
		}
		if code, _ := readClose(t, bad); code != int(transport.StatusInternalError) {
			t.Fatalf("close code %d, want 1011", code)
		}
		closed := waitFor[*actors.Closed](t, events)
		var pe *actors.PanicError
		if !errors.As(closed.Err, &pe) || len(pe.Stack) == 0 {
			t.Fatalf("Closed.Err = %v, want *PanicError with stack", closed.Err)
		}
		if err := good.WriteMessage(websocket.TextMessage, []byte("still here")); err != nil {
			t.Fatal(err)
		}
		if got := readText(t, good); got != "still here" {
			t.Fatalf("other connection got %q", got)
		}
	})
}

func TestSendThroughPIDReportsOutcome(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		events := make(chan any, 16)
		_, srv, system := fakeServer(t, echoProducer(events), nil)
		c := fakeDial(t, srv)
		conn := waitFor[*actors.Opened](t, events).Conn

		replies := make(chan *actors.Sent, 4)
		probe := system.Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
			if s, ok := ctx.Message().(*actors.Sent); ok {
				replies <- s
			}
		}))
		defer system.Root.Stop(probe)

		system.Root.Send(conn.PID(), &actors.Send{Type: actors.Text, Data: []byte("from afar"), ReplyTo: probe, ID: 7})
		if got := readText(t, c); got != "from afar" {
			t.Fatalf("got %q", got)
		}
		select {
		case s := <-replies:
			if s.ID != 7 || s.Err != nil {
				t.Fatalf("Sent = %+v, want ID 7 nil error", s)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no Sent reply")
		}

		// A plain goroutine can send through the handle too.
		var wg sync.WaitGroup
		for i := range 10 {
			wg.Add(1)
			go func() { defer wg.Done(); _ = conn.SendText(fmt.Sprint(i)) }()
		}
		wg.Wait()
		for range 10 {
			readText(t, c)
		}

		system.Root.Send(conn.PID(), &actors.Close{Code: transport.StatusNormalClosure, Reason: "bye"})
		if code, text := readClose(t, c); code != 1000 || text != "bye" {
			t.Fatalf("close %d %q, want 1000 bye", code, text)
		}
		closed := waitFor[*actors.Closed](t, events)
		if closed.Code != 1000 || closed.ByPeer {
			t.Fatalf("Closed = %+v", closed)
		}

		// After the close, a send is refused with ErrClosed.
		system.Root.Send(conn.PID(), &actors.Send{Type: actors.Text, Data: []byte("late"), ReplyTo: probe, ID: 8})
		if err := conn.SendText("late"); !errors.Is(err, transport.ErrClosed) {
			t.Fatalf("send after close: %v, want ErrClosed", err)
		}
	})
}

func TestShutdownClosesEveryConnectionWith1001(t *testing.T) {
	system := actors.NewSystem(zerolog.Nop())
	var closedCount atomic.Int32
	h, err := actors.NewHandler(system, func() actor.Actor {
		return actor.ReceiveFunc(func(ctx actor.Context) {
			if _, ok := ctx.Message().(*actors.Closed); ok {
				closedCount.Add(1)
			}
		})
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	url := "ws" + strings.TrimPrefix(srv.URL, "http")
	const n = 50
	clients := make([]*websocket.Conn, n)
	for i := range clients {
		clients[i] = dial(t, url)
	}
	for h.Len() < n {
		time.Sleep(5 * time.Millisecond)
	}
	codes := make(chan int, n)
	for _, c := range clients {
		go func() {
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			for {
				if _, _, err := c.ReadMessage(); err != nil {
					var ce *websocket.CloseError
					if errors.As(err, &ce) {
						codes <- ce.Code
					} else {
						codes <- -1
					}
					return
				}
			}
		}()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	for range n {
		if code := <-codes; code != 1001 {
			t.Fatalf("client got %d, want 1001", code)
		}
	}
	if h.Len() != 0 || closedCount.Load() != n {
		t.Fatalf("after shutdown: Len %d, Closed delivered %d times, want 0 and %d", h.Len(), closedCount.Load(), n)
	}
	// New upgrades are refused with 503.
	_, resp, err := websocket.DefaultDialer.Dial(url, nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("dial after shutdown: %v %v, want 503", err, resp)
	}
}

func TestMaxConnections503(t *testing.T) {
	h, url, _ := testServer(t, echoProducer(nil), &actors.HandlerOptions{MaxConnections: 2})
	dial(t, url)
	dial(t, url)
	_, resp, err := websocket.DefaultDialer.Dial(url, nil)
	if err == nil || resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("third dial: err %v status %v, want 503 with Retry-After", err, resp)
	}
	if h.Len() != 2 {
		t.Fatalf("Len = %d", h.Len())
	}
}

func TestAuthenticateBeforeUpgrade(t *testing.T) {
	var spawned atomic.Int32
	events := make(chan any, 4)
	_, url, _ := testServer(t, func() actor.Actor {
		spawned.Add(1)
		return &echo{events: events}
	}, &actors.HandlerOptions{AcceptOptions: transport.AcceptOptions{
		Authenticate: func(r *http.Request) (any, error) {
			if tok := r.URL.Query().Get("token"); tok == "s3cret" {
				return "alice", nil
			}
			return nil, errors.New("bad token")
		},
	}})
	_, resp, err := websocket.DefaultDialer.Dial(url+"?token=nope", nil)
	if err == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("bad token: %v %v, want 401", err, resp)
	}
	if spawned.Load() != 0 {
		t.Fatal("a connection actor was made for a refused request")
	}
	dial(t, url+"?token=s3cret")
	if p := waitFor[*actors.Opened](t, events).Conn.Principal(); p != "alice" {
		t.Fatalf("principal %v, want alice", p)
	}
}

func TestExternalStopDeliversClosedOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		events := make(chan any, 16)
		h, srv, system := fakeServer(t, echoProducer(events), nil)
		c := fakeDial(t, srv)
		conn := waitFor[*actors.Opened](t, events).Conn
		system.Root.Stop(conn.PID())
		closed := waitFor[*actors.Closed](t, events)
		if !errors.Is(closed.Err, actors.ErrStopped) || closed.Code != 1001 {
			t.Fatalf("Closed = %+v, want 1001 ErrStopped", closed)
		}
		if code, _ := readClose(t, c); code != 1001 {
			t.Fatalf("client got %d, want 1001", code)
		}
		deadline := time.Now().Add(5 * time.Second)
		for h.Len() != 0 && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		if h.Len() != 0 {
			t.Fatal("connection still counted after its actor stopped")
		}
		select {
		case m := <-events:
			if _, dup := m.(*actors.Closed); dup {
				t.Fatal("Closed delivered twice")
			}
		case <-time.After(100 * time.Millisecond):
		}
	})
}

// slow handles one message at a time, each only when released.
type slow struct {
	got     chan<- string
	release <-chan struct{}
}

func (s *slow) Receive(ctx actor.Context) {
	if m, ok := ctx.Message().(*actors.Message); ok {
		<-s.release
		s.got <- m.Text()
	}
}

func TestInboxLimitPausesReading(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		got := make(chan string, 1000)
		release := make(chan struct{})
		var once sync.Once
		defer once.Do(func() { close(release) })
		h, srv, _ := fakeServer(t, func() actor.Actor { return &slow{got: got, release: release} },
			&actors.HandlerOptions{InboxLimit: 4, DisableReaderTurns: true}) // the inbox, read ahead
		c := fakeDial(t, srv)
		waiting := make(chan int, 1)
		defer actors.SetInboxWaitHook(func(_ *actors.Conn, msgs, _ int) {
			select {
			case waiting <- msgs:
			default:
			}
		})()
		const n = 200
		go func() {
			for i := range n {
				if c.WriteMessage(websocket.TextMessage, []byte(fmt.Sprint(i))) != nil {
					return
				}
			}
		}()
		// While the actor is stuck, the reader takes InboxLimit messages (the
		// one being handled among them), then waits for room.
		select {
		case msgs := <-waiting:
			if msgs != 4 {
				t.Fatalf("reader waits with %d messages held, want 4", msgs)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the reader never waited for inbox room")
		}
		once.Do(func() { close(release) })
		for i := range n {
			select {
			case m := <-got:
				if m != fmt.Sprint(i) {
					t.Fatalf("message %d = %q: out of order", i, m)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("only %d of %d messages arrived", i, n)
			}
		}
		_ = h
	})
}

// TestStopWakesReaderWaitingForInbox: a connection actor stopped while its
// reader waits for inbox room lets the reader go: the connection closes
// with 1001, nothing more is delivered, and no goroutine is left waiting.
func TestStopWakesReaderWaitingForInbox(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		got := make(chan string, 100)
		release := make(chan struct{})
		var once sync.Once
		defer once.Do(func() { close(release) })
		h, srv, system := fakeServer(t, func() actor.Actor { return &slow{got: got, release: release} },
			&actors.HandlerOptions{InboxLimit: 2, DisableReaderTurns: true}) // the inbox, read ahead
		var conn *actors.Conn
		waiting := make(chan struct{}, 1)
		defer actors.SetInboxWaitHook(func(c *actors.Conn, _, _ int) {
			conn = c
			select {
			case waiting <- struct{}{}:
			default:
			}
		})()
		c := fakeDial(t, srv)
		for i := range 5 {
			if err := c.WriteMessage(websocket.TextMessage, []byte(fmt.Sprint(i))); err != nil {
				t.Fatal(err)
			}
		}
		<-waiting // the reader holds 2 and waits with the third
		system.Root.Stop(conn.PID())
		once.Do(func() { close(release) }) // the message being handled returns; then Stop
		if code, _ := readClose(t, c); code != 1001 {
			t.Fatalf("close code %d, want 1001", code)
		}
		synctest.Wait()
		if n := len(got); n > 2 {
			t.Fatalf("%d messages delivered after the stop, want at most the 2 admitted", n)
		}
		if h.Len() != 0 {
			t.Fatalf("%d connections still counted", h.Len())
		}
	})
}
