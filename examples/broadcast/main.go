// Command broadcast is the ws README's two server-broadcast examples side by
// side: on /all a message goes to every client, the sender included; on
// /others it goes to every client but the sender.
//
//	go run ./examples/broadcast
//	# connect several clients to ws://localhost:8080/all and ws://localhost:8080/others
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
	fs := flag.NewFlagSet("broadcast", flag.ContinueOnError)
	addr := fs.String("addr", "localhost:8080", "listen address")
	if err := fs.Parse(args); err != nil {
		return err
	}
	logger := zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr, TimeFormat: time.TimeOnly}).With().Timestamp().Logger()
	system := actors.NewSystem(logger.Level(zerolog.WarnLevel))

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("broadcast: %w", err)
	}
	s, err := newServer(ctx, system, logger)
	if err != nil {
		ln.Close()
		return err
	}
	srv := &http.Server{Handler: s.mux, ReadHeaderTimeout: 10 * time.Second}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	fmt.Fprintf(out, "listening on ws://%s (endpoints /all and /others)\n", ln.Addr())

	select {
	case <-ctx.Done():
	case err = <-serveErr:
	}
	// WebSockets and rooms first, then the HTTP server.
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = errors.Join(err, s.Shutdown(sctx), srv.Shutdown(sctx))
	fmt.Fprintln(out, "shut down")
	return err
}
