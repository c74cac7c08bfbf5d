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
	fs := flag.NewFlagSet("broadcast", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "localhost:8080", "listen address")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil // -h: the usage is printed, and that is all
		}
		return err
	}
	logger := newLogger(stderr)
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
	srv := transport.NewServer(*addr, s.mux) // header, read and idle timeouts
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	fmt.Fprintf(stdout, "listening on ws://%s (endpoints /all and /others)\n", ln.Addr())

	select {
	case <-ctx.Done():
	case err = <-serveErr:
	}
	// WebSockets and rooms first, then the HTTP server.
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = errors.Join(err, s.Shutdown(sctx), srv.Shutdown(sctx))
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
