// Command echo is the ws README's echo server and round-trip-time client in
// Go: it serves an echo endpoint on /ws and, unless -server-only is given,
// runs a Go client against it that prints each round trip.
//
//	go run ./examples/echo               # server on localhost:8080 plus a demo client
//	go run ./examples/echo -deflate      # the same with permessage-deflate negotiated
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

	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"

	"github.com/wsactor/wsactor/actors"
	"github.com/wsactor/wsactor/transport"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		log.Fatal(err)
	}
}

// run is the program: what it shows goes to stdout, its logs and usage to
// stderr.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("echo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "localhost:8080", "listen address")
	client := fs.String("client", "", "only run the client against this URL")
	serverOnly := fs.Bool("server-only", false, "do not run the demo client")
	count := fs.Int("n", 5, "messages the demo client sends")
	deflate := fs.Bool("deflate", false, "negotiate permessage-deflate: the server accepts it and the client offers it")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil // -h: the usage is printed, and that is all
		}
		return err
	}
	logger := newLogger(stderr).Level(zerolog.InfoLevel)
	system := actors.NewSystem(logger.Level(zerolog.WarnLevel))

	// permessage-deflate is off by default on servers and on by default on
	// clients, as in Node's ws; -deflate turns it on for both, and its
	// absence off for both.
	var compression transport.CompressionMode
	if *deflate {
		compression = transport.CompressionEnabled
	} else {
		compression = transport.CompressionDisabled
	}

	if *client != "" {
		return runClient(ctx, system, *client, *count, compression, stdout)
	}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	var opts actors.HandlerOptions
	opts.Logger = logger
	opts.Compression = compression
	h, err := actors.NewHandler(system, newEcho, &opts)
	if err != nil {
		return fmt.Errorf("echo: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/ws", h)
	srv := transport.NewServer(*addr, mux) // header, read and idle timeouts
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	url := "ws://" + ln.Addr().String() + "/ws"
	fmt.Fprintf(stdout, "echo server listening on %s\n", url)

	if !*serverOnly {
		if err := runClient(ctx, system, url, *count, compression, stdout); err != nil {
			fmt.Fprintf(stdout, "client: %v\n", err)
		}
		fmt.Fprintln(stdout, "server still running; press Ctrl-C to stop")
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
	fmt.Fprintln(stdout, "shut down")
	return err
}

// newLogger writes human-readable logs to w, in colour only when w is a
// terminal: a file or a pipe gets plain text.
func newLogger(w io.Writer) zerolog.Logger {
	f, ok := w.(*os.File)
	colour := ok && isatty.IsTerminal(f.Fd())
	return zerolog.New(zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly, NoColor: !colour}).
		With().Timestamp().Logger()
}
