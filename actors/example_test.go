package actors_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"

	"github.com/wsactor/wsactor/actors"
	"github.com/wsactor/wsactor/transport"
)

// An echo server: each connection is an actor; every message goes back.
func ExampleNewHandler() {
	system := actors.NewSystem(zerolog.Nop())
	h, err := actors.NewHandler(system, func() actor.Actor {
		return actor.ReceiveFunc(func(ctx actor.Context) {
			if m, ok := ctx.Message().(*actors.Message); ok {
				_ = m.Conn.Send(m.Type, m.Data)
			}
		})
	}, nil)
	if err != nil {
		log.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	defer h.Shutdown(context.Background()) // runs before srv.Close: closes the WebSockets with 1001

	c, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	_ = c.WriteMessage(websocket.TextMessage, []byte("hello"))
	_, p, _ := c.ReadMessage()
	fmt.Println(string(p))
	// Output: hello
}

// Authentication runs before the upgrade: a refused request gets 401 and no
// actor is ever spawned; the principal is on every message's Conn.
func ExampleHandlerOptions_authenticate() {
	system := actors.NewSystem(zerolog.Nop())
	greeted := make(chan string, 1)
	h, err := actors.NewHandler(system, func() actor.Actor {
		return actor.ReceiveFunc(func(ctx actor.Context) {
			if m, ok := ctx.Message().(*actors.Opened); ok {
				greeted <- fmt.Sprint("hello ", m.Conn.Principal())
			}
		})
	}, &actors.HandlerOptions{AcceptOptions: transport.AcceptOptions{
		Authenticate: func(r *http.Request) (any, error) {
			if r.Header.Get("Authorization") != "Bearer s3cret" {
				return nil, fmt.Errorf("bad token")
			}
			return "alice", nil
		},
	}})
	if err != nil {
		log.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	defer h.Shutdown(context.Background())
	url := "ws" + strings.TrimPrefix(srv.URL, "http")

	_, resp, _ := websocket.DefaultDialer.Dial(url, nil)
	fmt.Println("without token:", resp.StatusCode)

	c, _, err := websocket.DefaultDialer.Dial(url, http.Header{"Authorization": {"Bearer s3cret"}})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	fmt.Println(<-greeted)
	// Output:
	// without token: 401
	// hello alice
}

// A client connection is an actor too. Dial returns once it is open.
func ExampleDial() {
	system := actors.NewSystem(zerolog.Nop())
	server, err := actors.NewHandler(system, func() actor.Actor {
		return actor.ReceiveFunc(func(ctx actor.Context) {
			if m, ok := ctx.Message().(*actors.Message); ok {
				_ = m.Conn.SendText("echo: " + m.Text())
			}
		})
	}, nil)
	if err != nil {
		log.Fatal(err)
	}
	srv := httptest.NewServer(server)
	defer srv.Close()
	defer server.Shutdown(context.Background())

	got := make(chan string, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, _, err := actors.Dial(ctx, system, srv.URL, func() actor.Actor {
		return actor.ReceiveFunc(func(ctx actor.Context) {
			switch m := ctx.Message().(type) {
			case *actors.Opened:
				_ = m.Conn.SendText("hi")
			case *actors.Message:
				got <- m.Text()
				m.Conn.Close(actors.StatusNormalClosure, "bye")
			}
		})
	}, nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(<-got)
	<-conn.Transport().Done()
	// Output: echo: hi
}

// Any actor or goroutine can write to a connection through its PID; with
// ReplyTo set, the outcome comes back as *actors.Sent (ws's send callback).
func ExampleSend() {
	system := actors.NewSystem(zerolog.Nop())
	opened := make(chan *actors.Conn, 1)
	h, err := actors.NewHandler(system, func() actor.Actor {
		return actor.ReceiveFunc(func(ctx actor.Context) {
			if m, ok := ctx.Message().(*actors.Opened); ok {
				opened <- m.Conn
			}
		})
	}, nil)
	if err != nil {
		log.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	defer h.Shutdown(context.Background())
	c, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	conn := <-opened

	outcome := make(chan error, 1)
	notifier := system.Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
		if s, ok := ctx.Message().(*actors.Sent); ok {
			outcome <- s.Err
		}
	}))
	system.Root.Send(conn.PID(), &actors.Send{Type: actors.Text, Data: []byte("news"), ReplyTo: notifier, ID: 1})
	_, p, _ := c.ReadMessage()
	fmt.Println(string(p), "written:", <-outcome == nil)
	system.Root.Stop(notifier)
	// Output: news written: true
}
