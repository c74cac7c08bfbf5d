// Command stream treats a WebSocket connection as a byte stream, like ws's
// createWebSocketStream: transport.NetConn makes it a net.Conn, so io.Copy,
// bufio and any code written for TCP work on it.
//
// By default it starts a server on /upper, which answers each line in upper
// case, and a client that pipes stdin to it and the answers to stdout:
//
//	go run ./examples/stream               # type lines, get them back in upper case
//	echo hello | go run ./examples/stream
//	go run ./examples/stream -server-only
//	go run ./examples/stream -connect ws://localhost:8080/upper
//	go run ./examples/stream -connect ws://localhost:8080/ws   # any server, e.g. examples/echo
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

	"github.com/wsactor/wsactor/transport"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr); err != nil {
		log.Fatal(err)
	}
}

// run pipes in and out through the stream; messages for people go to
// errOut, so stdout carries only what the server sent.
func run(ctx context.Context, args []string, in io.Reader, out, errOut io.Writer) error {
	fs := flag.NewFlagSet("stream", flag.ContinueOnError)
	fs.SetOutput(errOut)
	addr := fs.String("addr", "localhost:8080", "listen address")
	connect := fs.String("connect", "", "only run the client, against this URL")
	serverOnly := fs.Bool("server-only", false, "only run the server")
	linger := fs.Duration("q", time.Second, "after stdin ends, wait until the server has been quiet this long")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil // -h: the usage is printed, and that is all
		}
		return err
	}
	if *connect != "" {
		return pipe(ctx, *connect, in, out, *linger)
	}

	logger := newLogger(errOut)
	streams, err := newStreamServer(logger, nil) // nil: the default options
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("stream: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/upper", streams)
	srv := transport.NewServer(*addr, mux) // header, read and idle timeouts
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	url := "ws://" + ln.Addr().String() + "/upper"
	fmt.Fprintf(errOut, "listening on %s\n", url)

	clientDone := make(chan error, 1)
	if !*serverOnly {
		go func() { clientDone <- pipe(ctx, url, in, out, *linger) }()
	}
	select {
	case <-ctx.Done():
	case err = <-serveErr:
	case err = <-clientDone: // stdin ended: the demo is over
		clientDone <- nil
	}
	// Streams first (http.Server.Shutdown does not wait for hijacked
	// connections), then the HTTP server.
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = errors.Join(err, streams.Shutdown(sctx), srv.Shutdown(sctx))
	if !*serverOnly {
		err = errors.Join(err, <-clientDone)
	}
	fmt.Fprintln(errOut, "shut down")
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
