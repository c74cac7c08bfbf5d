// Command auth serves two WebSocket endpoints from one http.Server:
//
//   - /ws checks a bearer token during the upgrade (401 without one) and
//     greets the user it names; permessage-deflate is on.
//   - /public takes anyone, with a 1 KiB read limit.
//
// Usage:
//
//	go run ./examples/auth
//	go run ./examples/auth -addr :8080 -tokens 's3cret=alice,hunter2=bob'
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
	"strings"
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
	fs := flag.NewFlagSet("auth", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "localhost:8080", "listen address")
	tokenList := fs.String("tokens", "s3cret=alice,hunter2=bob", "comma-separated token=user pairs")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil // -h: the usage is printed, and that is all
		}
		return err
	}
	users, err := parseTokens(*tokenList)
	if err != nil {
		return err
	}
	logger := newLogger(stderr)
	system := actors.NewSystem(logger.Level(zerolog.WarnLevel))

	s, err := newServer(system, logger, users)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return errors.Join(fmt.Errorf("auth: %w", err), s.Shutdown(ctx))
	}
	srv := transport.NewServer(*addr, s.mux) // header, read and idle timeouts
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	fmt.Fprintf(stdout, "listening on ws://%s (endpoints /ws and /public)\n", ln.Addr())

	select {
	case <-ctx.Done():
	case err = <-serveErr:
	}
	// WebSockets first (http.Server.Shutdown does not wait for hijacked
	// connections), then the HTTP server.
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = errors.Join(err, s.Shutdown(sctx), srv.Shutdown(sctx))
	fmt.Fprintln(stdout, "shut down")
	return err
}

// parseTokens parses "token=user,token=user".
func parseTokens(s string) (tokens, error) {
	t := tokens{}
	for _, pair := range strings.Split(s, ",") {
		tok, user, ok := strings.Cut(strings.TrimSpace(pair), "=")
		if !ok || tok == "" || user == "" {
			return nil, fmt.Errorf("auth: bad -tokens entry %q, want token=user", pair)
		}
		t[tok] = user
	}
	return t, nil
}

// newLogger writes human-readable logs to w, in colour only when w is a
// terminal: a file or a pipe gets plain text.
func newLogger(w io.Writer) zerolog.Logger {
	f, ok := w.(*os.File)
	colour := ok && isatty.IsTerminal(f.Fd())
	return zerolog.New(zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly, NoColor: !colour}).
		With().Timestamp().Logger()
}
