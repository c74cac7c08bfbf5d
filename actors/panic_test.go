package actors_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http/httptest"
	"strings"
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

// TestPanicPastBudgetWritesEarlierRepliesFirst: the peer sends "a", "b" and
// then a message whose handling (or decoding) panics past the budget. The
// replies to "a" and "b" were sent before the panic, so they reach the peer
// before the 1011 close frame, whether they were queued directly
// (Conn.SendText) or sent as *actors.Send through the actor's mailbox.
func TestPanicPastBudgetWritesEarlierRepliesFirst(t *testing.T) {
	closeAtOnce := supervisor.Policy{Directive: supervisor.Stop}
	tests := []struct {
		name    string
		viaPID  bool
		decoder bool
	}{
		{"handler panic, Conn.SendText", false, false},
		{"handler panic, Send to the PID", true, false},
		{"decoder panic, Conn.SendText", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			events := make(chan any, 16)
			opts := &actors.HandlerOptions{HandlerPanic: closeAtOnce, DecodePanic: closeAtOnce}
			if tt.decoder {
				opts.Decode = func(_ actors.MessageType, p []byte) (any, error) {
					if string(p) == "boom" {
						panic("decoder asked to")
					}
					return nil, nil
				}
			}
			_, url, _ := testServer(t, func() actor.Actor {
				return actor.ReceiveFunc(func(ctx actor.Context) {
					switch m := ctx.Message().(type) {
					case *actors.Message:
						if m.Text() == "boom" {
							panic("handler asked to")
						}
						reply := "ok " + m.Text()
						if tt.viaPID {
							ctx.Send(m.Conn.PID(), &actors.Send{Type: actors.Text, Data: []byte(reply)})
						} else {
							_ = m.Conn.SendText(reply)
						}
					case *actors.Closed:
						events <- m
					}
				})
			}, opts)
			c := dial(t, url)
			for _, s := range []string{"a", "b", "boom", "c"} {
				if err := c.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
					t.Fatal(err)
				}
			}
			for _, want := range []string{"ok a", "ok b"} {
				_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
				_, p, err := c.ReadMessage()
				if err != nil {
					t.Fatalf("want %q, got %v", want, err)
				}
				if string(p) != want {
					t.Fatalf("got %q, want %q", p, want)
				}
			}
			if code, _ := readClose(t, c); code != int(transport.StatusInternalError) {
				t.Fatalf("close %d, want 1011", code)
			}
			closed := waitFor[*actors.Closed](t, events)
			var pe *actors.PanicError
			if closed.Code != transport.StatusInternalError || closed.ByPeer || !errors.As(closed.Err, &pe) {
				t.Fatalf("Closed = %+v, want our 1011 with a *PanicError", closed)
			}
		})
	}
}

// TestPanicLoggedToSystemLoggerByDefault: with nil HandlerOptions, a
// handler panic is logged once, with its stack, to the logger the system was
// built with: NewSystem's zerolog logger, or the slog logger of a system
// made by protoactor directly.
func TestPanicLoggedToSystemLoggerByDefault(t *testing.T) {
	tests := []struct {
		name   string
		system func(*lockedBuffer) *actor.ActorSystem
	}{
		{"NewSystem", func(buf *lockedBuffer) *actor.ActorSystem {
			return actors.NewSystem(zerolog.New(buf))
		}},
		{"protoactor slog", func(buf *lockedBuffer) *actor.ActorSystem {
			return actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
				return slog.New(slog.NewJSONHandler(buf, nil))
			}))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf lockedBuffer
			h, err := actors.NewHandler(tt.system(&buf), echoProducer(nil), nil)
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(h)
			c, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				_ = c.Close() // the connection ends at once, not after a close timeout
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				if err := h.Shutdown(ctx); err != nil {
					t.Error(err)
				}
				srv.Close()
			}()
			// The panic is resumed (default policy); the echo of "after"
			// comes once the panic has been handled, and logged.
			for _, s := range []string{"panic", "after"} {
				if err := c.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
					t.Fatal(err)
				}
			}
			if got := readText(t, c); got != "after" {
				t.Fatalf("echo %q", got)
			}
			var logged []map[string]any
			for _, line := range buf.lines() {
				var m map[string]any
				if json.Unmarshal([]byte(line), &m) == nil && strings.Contains(line, "panicked") {
					logged = append(logged, m)
				}
			}
			if len(logged) != 1 {
				t.Fatalf("%d panic log lines, want 1:\n%s", len(logged), strings.Join(buf.lines(), "\n"))
			}
			stack, _ := logged[0]["stack"].(string)
			if !strings.Contains(stack, "actors_test.(*echo).Receive") || !strings.Contains(logged[0]["panic"].(string), "handler asked to panic") {
				t.Fatalf("panic log lacks the panic or its stack: %v", logged[0])
			}
		})
	}
}

// TestProducerPanicClosesWith1011: a producer that panics leaves the
// connection nothing to run: the panic is logged with its stack and the
// connection closes with 1011; the Handler goes on serving.
func TestProducerPanicClosesWith1011(t *testing.T) {
	var calls atomic.Int32
	_, url, _ := testServer(t, func() actor.Actor {
		if calls.Add(1) == 1 {
			panic("cannot build")
		}
		return &echo{}
	}, nil)
	c := dial(t, url)
	if code, _ := readClose(t, c); code != int(transport.StatusInternalError) {
		t.Fatalf("close %d, want 1011", code)
	}
	ok := dial(t, url)
	_ = ok.WriteMessage(websocket.TextMessage, []byte("hi"))
	if got := readText(t, ok); got != "hi" {
		t.Fatalf("echo %q", got)
	}
}
