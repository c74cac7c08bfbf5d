package guides_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"

	"github.com/wsactor/wsactor/actors"
	"github.com/wsactor/wsactor/supervisor"
	"github.com/wsactor/wsactor/transport"
)

// The server pings a connection idle for Interval and terminates it once it
// has sent nothing, not even a pong, for Interval+Timeout.
func Example_serverHeartbeat() {
	system := actors.NewSystem(zerolog.Nop())
	closed := make(chan *actors.Closed, 1)
	var opts actors.HandlerOptions
	opts.Heartbeat = supervisor.HeartbeatOptions{Interval: 50 * time.Millisecond, Timeout: 50 * time.Millisecond}
	h := actors.NewHandler(system, func() actor.Actor {
		return actor.ReceiveFunc(func(ctx actor.Context) {
			if m, ok := ctx.Message().(*actors.Closed); ok {
				closed <- m
			}
		})
	}, &opts)
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
	server := actors.NewHandler(system, func() actor.Actor {
		return actor.ReceiveFunc(func(ctx actor.Context) {
			if m, ok := ctx.Message().(*actors.Opened); ok && sessions.Add(1) == 1 {
				m.Conn.Close(transport.StatusServiceRestart, "restarting") // the first session is cut short
			}
		})
	}, nil)
	url, stop := serve(server)
	defer stop()

	stopped := make(chan *actors.Conn, 1)
	var opts actors.DialOptions
	opts.Heartbeat = &supervisor.HeartbeatOptions{Interval: 30 * time.Second}
	opts.Reconnect = &actors.ReconnectOptions{
		Backoff: supervisor.Backoff{Min: 10 * time.Millisecond, Max: time.Second},
	}
	var last *actors.Conn
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, _, err := actors.Dial(ctx, system, url, func() actor.Actor {
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
	h := actors.NewHandler(system, func() actor.Actor {
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
