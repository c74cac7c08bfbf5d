package migrate_test

import (
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"

	"github.com/wsactor/wsactor/actors"
	"github.com/wsactor/wsactor/supervisor"
	"github.com/wsactor/wsactor/transport"
)

// ws README FAQ: "How to detect and close broken connections?", the
// server side, as a program sets it (compiled, not run). The isAlive sweep
// is built in: connections idle for Interval are pinged, and those silent
// (no pong, nothing) for Interval+Timeout are terminated. The zero value is
// ws's 30s, as here; a negative Interval turns it off.
func Example_heartbeatServerProgram() {
	system := actors.NewSystem(zerolog.Nop())
	var opts actors.HandlerOptions
	opts.Heartbeat = supervisor.HeartbeatOptions{Interval: 30 * time.Second, Timeout: 30 * time.Second}
	h, err := actors.NewHandler(system, func() actor.Actor { return &echo{} }, &opts)
	if err != nil {
		log.Fatal(err)
	}
	log.Fatal(transport.NewServer(":8080", h).ListenAndServe())
}

// The server-side heartbeat at work, on a 50 ms clock so that the example
// ends at once: a client that never answers is terminated.
func Example_heartbeatServer() {
	system := actors.NewSystem(zerolog.Nop())
	closed := make(chan error, 1)
	var opts actors.HandlerOptions
	opts.Heartbeat = supervisor.HeartbeatOptions{Interval: 50 * time.Millisecond, Timeout: 50 * time.Millisecond}
	h, err := actors.NewHandler(system, func() actor.Actor {
		return actor.ReceiveFunc(func(ctx actor.Context) {
			if m, ok := ctx.Message().(*actors.Closed); ok {
				closed <- m.Err
			}
		})
	}, &opts)
	if err != nil {
		log.Fatal(err)
	}
	url, stop := serve(h)
	defer stop()

	c, _, err := websocket.DefaultDialer.Dial(url, nil) // never reads, so never pongs
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	fmt.Println("terminated:", errors.Is(<-closed, supervisor.ErrHeartbeatTimeout))
	// Output: terminated: true
}

// ws README FAQ, the client side, as a program sets it (compiled, not run):
// a client that stops hearing from its server terminates the connection.
// DialOptions.Heartbeat pings a server silent for Interval itself, so it
// works with any server, pinging or not, and drops one silent for
// Interval+Timeout.
func Example_heartbeatClientProgram() {
	system := actors.NewSystem(zerolog.Nop())
	var opts actors.DialOptions
	opts.Heartbeat = supervisor.HeartbeatOptions{Interval: 30 * time.Second, Timeout: 30 * time.Second}
	ctx, cancel := dialTimeout()
	defer cancel()
	if _, _, err := actors.Dial(ctx, system, "wss://example.com/ws", func() actor.Actor { return &echo{} }, &opts); err != nil {
		log.Fatal(err)
	}
}

// The client-side heartbeat at work, on a 50 ms clock so that the example
// ends at once, against a server that never answers a ping.
func Example_heartbeatClient() {
	up := websocket.Upgrader{}
	hung := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		c.SetPingHandler(func(string) error { return nil }) // a server that hangs: no pong
		for {
			if _, _, err := c.ReadMessage(); err != nil {
				return
			}
		}
	}))
	defer hung.Close()

	system := actors.NewSystem(zerolog.Nop())
	closed := make(chan *actors.Closed, 1)
	var opts actors.DialOptions
	opts.Heartbeat = supervisor.HeartbeatOptions{Interval: 50 * time.Millisecond, Timeout: 50 * time.Millisecond}
	ctx, cancel := dialTimeout()
	defer cancel()
	conn, _, err := actors.Dial(ctx, system, "ws"+strings.TrimPrefix(hung.URL, "http"), func() actor.Actor {
		return actor.ReceiveFunc(func(ctx actor.Context) {
			if m, ok := ctx.Message().(*actors.Closed); ok { // ws: client.on('close')
				closed <- m
			}
		})
	}, &opts)
	if err != nil {
		log.Fatal(err)
	}
	m := <-closed
	fmt.Println(int(m.Code), m.Err)
	<-conn.Transport().Done()
	// Output: 1006 supervisor: heartbeat timeout
}

// ws README: "Round-trip time". The client sends the time; the echo tells
// the round trip. Conn.Ping's pong measures it too (Conn.RTT).
func Example_roundTripTime() {
	system := actors.NewSystem(zerolog.Nop())
	url, stop := echoServer(system)
	defer stop()

	done := make(chan struct{})
	ctx, cancel := dialTimeout()
	defer cancel()
	conn, _, err := actors.Dial(ctx, system, url, func() actor.Actor {
		rounds := 0
		return actor.ReceiveFunc(func(ctx actor.Context) {
			switch m := ctx.Message().(type) {
			case *actors.Opened:
				fmt.Println("connected")
				_ = m.Conn.Ping(nil)
				_ = m.Conn.SendText(strconv.FormatInt(time.Now().UnixNano(), 10))
			case *actors.Message:
				sent, _ := strconv.ParseInt(m.Text(), 10, 64)
				rtt := time.Since(time.Unix(0, sent))
				_ = rtt // fmt.Printf("Round-trip time: %v\n", rtt)
				if rounds++; rounds < 3 {
					// ws waits 500 ms with setTimeout; an actor would schedule a message to itself.
					_ = m.Conn.SendText(strconv.FormatInt(time.Now().UnixNano(), 10))
					return
				}
				fmt.Println("round trips:", rounds, "ping RTT measured:", m.Conn.RTT() > 0)
				m.Conn.Close(actors.StatusNormalClosure, "")
			case *actors.Closed:
				fmt.Println("disconnected")
				close(done)
			}
		})
	}, nil)
	if err != nil {
		log.Fatal(err)
	}
	<-done
	<-conn.Transport().Done()
	// Output:
	// connected
	// round trips: 3 ping RTT measured: true
	// disconnected
}
