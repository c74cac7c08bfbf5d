// Command echo is the ws README's echo server and round-trip-time client in
// Go: it serves an echo endpoint on /ws and, unless -server-only is given,
// runs a Go client against it that prints each round trip.
//
//	go run ./examples/echo               # server on localhost:8080 plus a demo client
//	go run ./examples/echo -client ws://localhost:8080/ws
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/wsactor/wsactor/actors"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("echo", flag.ContinueOnError)
	addr := fs.String("addr", "localhost:8080", "listen address")
	client := fs.String("client", "", "only run the client against this URL")
	serverOnly := fs.Bool("server-only", false, "do not run the demo client")
	count := fs.Int("n", 5, "messages the demo client sends")
	if err := fs.Parse(args); err != nil {
		return err
	}
	logger := zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr, TimeFormat: time.TimeOnly}).Level(zerolog.InfoLevel).With().Timestamp().Logger()
	system := actors.NewSystem(logger.Level(zerolog.WarnLevel))

	if *client != "" {
		return runClient(ctx, system, *client, *count, out)
	}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	h := actors.NewHandler(system, newEcho, &actors.HandlerOptions{Logger: logger})
	mux := http.NewServeMux()
	mux.Handle("/ws", h)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	url := "ws://" + ln.Addr().String() + "/ws"
	fmt.Fprintf(out, "echo server listening on %s\n", url)

	if !*serverOnly {
		if err := runClient(ctx, system, url, *count, out); err != nil {
			fmt.Fprintf(out, "client: %v\n", err)
		}
		fmt.Fprintln(out, "server still running; press Ctrl-C to stop")
	}

	select {
	case <-ctx.Done():
	case err := <-serveErr:
		return err
	}
	// Shutdown order: WebSockets first (http.Server.Shutdown does not wait for
	// hijacked connections), then the HTTP server.
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = errors.Join(h.Shutdown(sctx), srv.Shutdown(sctx))
	fmt.Fprintln(out, "shut down")
	return err
}
