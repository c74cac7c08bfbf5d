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
	"net/http"
	"os"
	"os/signal"
	"strings"
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
	fs := flag.NewFlagSet("auth", flag.ContinueOnError)
	addr := fs.String("addr", "localhost:8080", "listen address")
	tokenList := fs.String("tokens", "s3cret=alice,hunter2=bob", "comma-separated token=user pairs")
	if err := fs.Parse(args); err != nil {
		return err
	}
	users, err := parseTokens(*tokenList)
	if err != nil {
		return err
	}
	logger := zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr, TimeFormat: time.TimeOnly}).With().Timestamp().Logger()
	system := actors.NewSystem(logger.Level(zerolog.WarnLevel))

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("auth: %w", err)
	}
	s := newServer(system, logger, users)
	srv := &http.Server{Handler: s.mux, ReadHeaderTimeout: 10 * time.Second}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	fmt.Fprintf(out, "listening on ws://%s (endpoints /ws and /public)\n", ln.Addr())

	select {
	case <-ctx.Done():
	case err = <-serveErr:
	}
	// WebSockets first (http.Server.Shutdown does not wait for hijacked
	// connections), then the HTTP server.
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = errors.Join(err, s.Shutdown(sctx), srv.Shutdown(sctx))
	fmt.Fprintln(out, "shut down")
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
