package guides_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"

	"github.com/wsactor/wsactor/actors"
	"github.com/wsactor/wsactor/supervisor"
	"github.com/wsactor/wsactor/transport"
)

// The server heartbeat's production values: the defaults, spelled out.
// Compiled, not run.
func Example_serverHeartbeatProgram() {
	system := actors.NewSystem(zerolog.Nop())
	var opts actors.HandlerOptions
	opts.Heartbeat = supervisor.HeartbeatOptions{Interval: 30 * time.Second, Timeout: 30 * time.Second}
	h, err := actors.NewHandler(system, func() actor.Actor { return actor.ReceiveFunc(func(actor.Context) {}) }, &opts)
	if err != nil {
		log.Fatal(err)
	}
	log.Fatal(transport.NewServer(":8080", h).ListenAndServe())
}

// The server pings a connection not heard from for Interval and terminates
// it once it has not been heard from, not even a pong, for Interval+Timeout.
// On a 50 ms clock, so that the example ends at once.
func Example_serverHeartbeat() {
	system := actors.NewSystem(zerolog.Nop())
	closed := make(chan *actors.Closed, 1)
	var opts actors.HandlerOptions
	opts.Heartbeat = supervisor.HeartbeatOptions{Interval: 50 * time.Millisecond, Timeout: 50 * time.Millisecond}
	h, err := actors.NewHandler(system, func() actor.Actor {
		return actor.ReceiveFunc(func(ctx actor.Context) {
			if m, ok := ctx.Message().(*actors.Closed); ok {
				closed <- m
			}
		})
	}, &opts)
	if err != nil {
		log.Fatal(err)
	}
	url, stop := serve(h)
	defer stop()

	// A client that never reads never answers a ping: it is as good as gone.
	c, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	m := <-closed
	fmt.Println(int(m.Code), errors.Is(m.Err, supervisor.ErrHeartbeatTimeout))
	// Output: 1006 true
}

// A client that reconnects: the actor and its state outlive each
// connection; every session starts with Opened and ends with Closed.
func Example_clientReconnect() {
	system := actors.NewSystem(zerolog.Nop())
	var sessions atomic.Int32
	server, err := actors.NewHandler(system, func() actor.Actor {
		return actor.ReceiveFunc(func(ctx actor.Context) {
			if m, ok := ctx.Message().(*actors.Opened); ok && sessions.Add(1) == 1 {
				m.Conn.Close(transport.StatusServiceRestart, "restarting") // the first session is cut short
			}
		})
	}, nil)
	if err != nil {
		log.Fatal(err)
	}
	url, stop := serve(server)
	defer stop()

	stopped := make(chan *actors.Conn, 1)
	var opts actors.DialOptions
	opts.Heartbeat = supervisor.HeartbeatOptions{Interval: 30 * time.Second}
	opts.Reconnect = &actors.ReconnectOptions{
		Backoff: supervisor.Backoff{Min: 10 * time.Millisecond, Max: time.Second},
	}
	var last *actors.Conn
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, _, err = actors.Dial(ctx, system, url, func() actor.Actor {
		opened := 0 // state kept across sessions
		return actor.ReceiveFunc(func(ctx actor.Context) {
			switch m := ctx.Message().(type) {
			case *actors.Opened:
				opened++
				last = m.Conn
				fmt.Println("opened, session", opened)
				// Join rooms, resubscribe, resend what was not acknowledged here.
				if opened == 2 {
					m.Conn.Close(actors.StatusNormalClosure, "") // our own clean close: no reconnect
				}
			case *actors.Closed:
				fmt.Println("closed", int(m.Code), m.Reason)
			case *actors.Reconnecting:
				fmt.Println("reconnecting, attempt", m.Attempt) // m.Delay is jittered
			case *actor.Stopped:
				stopped <- last
			}
		})
	}, &opts)
	if err != nil {
		log.Fatal(err)
	}
	<-(<-stopped).Transport().Done()
	// Output:
	// opened, session 1
	// closed 1012 restarting
	// reconnecting, attempt 1
	// opened, session 2
	// closed 1000
}

// envelope is the JSON shape of every message of the application protocol.
type envelope struct {
	Type string `json:"type"`
	Text string `json:"text,omitempty"`
}

// Browsers answer pings but cannot send them or see them, so a page that
// wants to notice a dead server sends its own ping message. The server
// answers it like any other message.
func Example_applicationPing() {
	system := actors.NewSystem(zerolog.Nop())
	var opts actors.HandlerOptions
	// Decode runs on the connection's reader goroutine, before the actor;
	// an error closes the connection with 1007.
	opts.Decode = func(_ actors.MessageType, data []byte) (any, error) {
		var e envelope
		err := json.Unmarshal(data, &e)
		return e, err
	}
	h, err := actors.NewHandler(system, func() actor.Actor {
		return actor.ReceiveFunc(func(ctx actor.Context) {
			m, ok := ctx.Message().(*actors.Message)
			if !ok {
				return
			}
			switch e := m.Value.(envelope); e.Type {
			case "ping":
				_ = m.Conn.SendText(`{"type":"pong"}`)
			case "say":
				// ...
			}
		})
	}, &opts)
	if err != nil {
		log.Fatal(err)
	}
	url, stop := serve(h)
	defer stop()

	c, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	_ = c.WriteMessage(websocket.TextMessage, []byte(`{"type":"ping"}`))
	_, p, _ := c.ReadMessage()
	fmt.Println(string(p))
	_ = c.WriteMessage(websocket.TextMessage, []byte(`not json`))
	_, _, err = c.ReadMessage()
	fmt.Println(err)
	// Output:
	// {"type":"pong"}
	// websocket: close 1007 (invalid payload data): invalid message
}

// hungServer serves connections whose behaviour does not return from
// Receive for the first message until the test calls release: a handler
// stuck on a slow call. With InboxLimit 1 the second message then holds the
// connection's reader (backpressure), so nothing more is read from the
// socket. The heartbeat pings after 100ms and gives 400ms more: short, with
// room for a busy test machine to schedule the peer's pong.
type hungServer struct {
	url     string
	entered chan struct{}       // closed when Receive is stuck
	closed  chan *actors.Closed // the connection's Closed
	release func()              // lets Receive return; idempotent
	hb      supervisor.HeartbeatOptions
}

func startHungServer(t *testing.T) *hungServer {
	t.Helper()
	s := &hungServer{
		entered: make(chan struct{}),
		closed:  make(chan *actors.Closed, 1),
		hb:      supervisor.HeartbeatOptions{Interval: 100 * time.Millisecond, Timeout: 400 * time.Millisecond},
	}
	unblock := make(chan struct{})
	var once sync.Once
	s.release = func() { once.Do(func() { close(unblock) }) }

	system := actors.NewSystem(zerolog.New(zerolog.NewTestWriter(t)))
	var opts actors.HandlerOptions
	opts.InboxLimit = 1 // the second message holds the reader
	opts.Heartbeat = s.hb
	h, err := actors.NewHandler(system, func() actor.Actor {
		first := true
		return actor.ReceiveFunc(func(ctx actor.Context) {
			switch m := ctx.Message().(type) {
			case *actors.Message:
				if first {
					first = false
					close(s.entered)
					<-unblock // stuck, as on a call that does not return
				}
				_ = m.Conn.SendText("ok " + string(m.Data))
			case *actors.Closed:
				s.closed <- m
			}
		})
	}, &opts)
	if err != nil {
		t.Fatal(err)
	}
	url, stop := serve(h)
	t.Cleanup(func() {
		s.release() // before stop: Shutdown waits for the actor
		stop()
	})
	s.url = url
	return s
}

// wait returns what ch yields, failing the test if nothing comes within a
// generous bound (a safety net against a hang, not a timing assertion).
func wait[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		var zero T
		return zero
	}
}

// rawPeer completes the WebSocket handshake over a plain TCP connection and
// returns it: a peer that sends exactly the frames the test writes and never
// answers a ping.
func rawPeer(t *testing.T, wsURL string) (net.Conn, *bufio.Reader) {
	t.Helper()
	host := strings.TrimPrefix(wsURL, "ws://")
	nc, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	_, err = fmt.Fprintf(nc, "GET / HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", host)
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: %v %v", resp, err)
	}
	return nc, br
}

// maskedText is a client text frame; its zero mask key leaves the payload
// as it is.
func maskedText(s string) []byte {
	return append([]byte{0x81, 0x80 | byte(len(s)), 0, 0, 0, 0}, s...)
}

// A dead peer (it sent two messages and then nothing, and answers no ping)
// behind a handler that is stuck is terminated by the heartbeat while the
// handler is still stuck: the held reader does not keep it alive.
func TestHeartbeatReapsDeadPeerBehindHungHandler(t *testing.T) {
	s := startHungServer(t)
	nc, br := rawPeer(t, s.url)
	if _, err := nc.Write(append(maskedText("one"), maskedText("two")...)); err != nil {
		t.Fatal(err)
	}
	wait(t, s.entered, "Receive to be stuck")

	// The peer reads what the server sends (pings, which it never answers)
	// until the server closes the socket. The deadline is a safety net.
	_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := io.Copy(io.Discard, br)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("the dead peer was not terminated while the handler was stuck")
	}
	if n == 0 {
		t.Error("the dead peer was not pinged before it was terminated")
	}

	s.release() // only now: the socket was closed while Receive was stuck
	m := wait(t, s.closed, "Closed")
	if m.Code != transport.StatusAbnormalClosure || !errors.Is(m.Err, supervisor.ErrHeartbeatTimeout) {
		t.Fatalf("Closed = %d %v, want 1006 and ErrHeartbeatTimeout", m.Code, m.Err)
	}
}

// A live peer (it answers every ping) behind the same stuck handler is kept:
// on Linux the kernel reports the pongs that wait unread behind the held
// reader. The heartbeat pings an unheard connection at most once per
// Interval, so the peer has lived through 5 x (Interval+Timeout) once it has
// answered 1 + 5 x (Interval+Timeout)/Interval pings.
func TestHeartbeatKeepsLivePeerBehindHungHandler(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("only Linux reports data that reached the socket unread; elsewhere this peer is terminated (documented)")
	}
	s := startHungServer(t)
	c, _, err := websocket.DefaultDialer.Dial(s.url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	pings := make(chan struct{}, 64)
	c.SetPingHandler(func(data string) error {
		select {
		case pings <- struct{}{}:
		default:
		}
		return c.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
	})
	for _, text := range []string{"one", "two"} {
		if err := c.WriteMessage(websocket.TextMessage, []byte(text)); err != nil {
			t.Fatal(err)
		}
	}
	replies, readErr := make(chan string, 8), make(chan error, 1)
	go func() {
		for {
			_, p, err := c.ReadMessage()
			if err != nil {
				readErr <- err
				return
			}
			replies <- string(p)
		}
	}()
	wait(t, s.entered, "Receive to be stuck")

	want := 1 + int(5*(s.hb.Interval+s.hb.Timeout)/s.hb.Interval)
	for i := range want {
		select {
		case <-pings:
		case err := <-readErr:
			t.Fatalf("the live peer was dropped after %d pings: %v", i, err)
		case <-time.After(10 * time.Second):
			t.Fatalf("ping %d did not come", i+1)
		}
	}

	// Still open: once Receive returns, both messages are answered.
	s.release()
	for _, want := range []string{"ok one", "ok two"} {
		select {
		case got := <-replies:
			if got != want {
				t.Fatalf("reply %q, want %q", got, want)
			}
		case err := <-readErr:
			t.Fatalf("the live peer was dropped: %v", err)
		case <-time.After(10 * time.Second):
			t.Fatalf("no reply %q", want)
		}
	}
	_ = c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	if m := wait(t, s.closed, "Closed"); m.Code != transport.StatusNormalClosure {
		t.Fatalf("Closed = %d %v, want 1000", m.Code, m.Err)
	}
}

// A live peer that keeps sending while the handler is stuck fills the
// connection's receive buffer; then it cannot send anything more, not even
// a pong, so it looks silent and is terminated like a dead peer (as
// documented).
func TestHeartbeatReapsFloodingPeerBehindHungHandler(t *testing.T) {
	s := startHungServer(t)
	c, _, err := websocket.DefaultDialer.Dial(s.url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetPingHandler(func(data string) error {
		_ = c.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
		return nil // the pong may not get through; keep reading
	})
	go func() {
		for {
			if _, _, err := c.ReadMessage(); err != nil {
				return
			}
		}
	}()
	writeErr := make(chan error, 1)
	go func() {
		chunk := make([]byte, 16<<10)
		for {
			if err := c.WriteMessage(websocket.BinaryMessage, chunk); err != nil {
				writeErr <- err // blocks once the buffers are full, fails once terminated
				return
			}
		}
	}()
	wait(t, s.entered, "Receive to be stuck")
	wait(t, writeErr, "the flooding peer to be terminated")

	s.release()
	if m := wait(t, s.closed, "Closed"); !errors.Is(m.Err, supervisor.ErrHeartbeatTimeout) {
		t.Fatalf("Closed = %d %v, want ErrHeartbeatTimeout", m.Code, m.Err)
	}
}
