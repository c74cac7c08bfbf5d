package guides_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"

	"github.com/wsactor/wsactor/actors"
	"github.com/wsactor/wsactor/transport"
)

// greeter is the behaviour of one connection. Its state (how many messages
// this client sent) lives in the struct and is touched only by Receive, one
// message at a time: no locks.
type greeter struct {
	count int
}

func (g *greeter) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actors.Opened:
		_ = m.Conn.SendText("welcome")
	case *actors.Message:
		g.count++
		_ = m.Conn.SendText(fmt.Sprintf("#%d: %s", g.count, m.Text()))
	case *actors.Closed:
		m.Conn.Logger().Info().Int("code", int(m.Code)).Int("messages", g.count).Msg("gone")
	}
}

// A server with the greeter behaviour, and a Go client for it.
func Example_gettingStarted() {
	system := actors.NewSystem(zerolog.Nop())
	h, err := actors.NewHandler(system, func() actor.Actor { return &greeter{} }, nil)
	if err != nil {
		log.Fatal(err)
	}
	url, stop := serve(h)
	defer stop()

	// The client is a connection actor too: it says hello, then closes after
	// the second answer.
	done := make(chan struct{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, _, err := actors.Dial(ctx, system, url, func() actor.Actor {
		return actor.ReceiveFunc(func(ctx actor.Context) {
			switch m := ctx.Message().(type) {
			case *actors.Message:
				fmt.Println(m.Text())
				switch m.Text() {
				case "welcome":
					_ = m.Conn.SendText("hello")
				case "#1: hello":
					_ = m.Conn.SendText("again")
				default:
					m.Conn.Close(actors.StatusNormalClosure, "bye")
				}
			case *actors.Closed:
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
	// welcome
	// #1: hello
	// #2: again
}

// A complete server program: the greeter on :8080/ws, stopped cleanly by
// Ctrl-C or SIGTERM. (Compiled, not run.)
func Example_program() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	logger := zerolog.New(os.Stderr).With().Timestamp().Logger()
	system := actors.NewSystem(logger)
	h, err := actors.NewHandler(system, func() actor.Actor { return &greeter{} },
		&actors.HandlerOptions{Logger: logger})
	if err != nil {
		log.Fatal(err)
	}

	mux := http.NewServeMux()
	mux.Handle("/ws", h)
	srv := transport.NewServer(":8080", mux) // an http.Server with timeouts and limits
	go func() {
		if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
			log.Fatal(err)
		}
	}()

	<-ctx.Done()
	// WebSockets first: http.Server.Shutdown does not wait for them.
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := errors.Join(h.Shutdown(sctx), srv.Shutdown(sctx)); err != nil {
		log.Fatal(err)
	}
}
