package guides_test

import (
	"context"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"

	"github.com/wsactor/wsactor/actors"
	"github.com/wsactor/wsactor/transport"
)

// The README's quick start, compiled and run: an echo server and a client,
// each a connection actor. README.md's snippets are excerpts of this file
// (TestSnippets checks it).

type echo struct{}

func (echo) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actors.Opened:
		m.Conn.Logger().Info().Msg("connected")
	case *actors.Message:
		_ = m.Conn.Send(m.Type, m.Data) // never blocks; bounded queue
	case *actors.Closed:
		m.Conn.Logger().Info().Int("code", int(m.Code)).Msg("gone")
	}
}

func Example_quickStart() {
	logger := zerolog.New(os.Stderr).Level(zerolog.WarnLevel)
	system := actors.NewSystem(logger) // protoactor's own logs go to logger too
	h, err := actors.NewHandler(system, func() actor.Actor { return echo{} },
		&actors.HandlerOptions{Logger: logger})
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/ws", h) // any mux or router; several handlers per server
	// Header, read and idle timeouts: never http.Serve or http.ListenAndServe,
	// which have none.
	srv := transport.NewServer("127.0.0.1:0", mux) // in a program, ":8080"
	ln, _ := net.Listen("tcp", srv.Addr)
	go srv.Serve(ln) // or srv.ListenAndServe()
	url := "ws://" + ln.Addr().String() + "/ws"

	// A client is a connection actor too.
	got := make(chan string)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, _, err := actors.Dial(ctx, system, url, func() actor.Actor {
		return actor.ReceiveFunc(func(ctx actor.Context) {
			if m, ok := ctx.Message().(*actors.Message); ok {
				got <- m.Text()
			}
		})
	}, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = conn.SendText("hello")
	fmt.Println("echo:", <-got)

	_ = h.Shutdown(ctx)   // closes every connection with 1001 and waits
	_ = srv.Shutdown(ctx) // then the HTTP server
	<-conn.Transport().Done()
	// Output: echo: hello
}
