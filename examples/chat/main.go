// Command chat is wsactor's main example: a chat on package channel, with
// rooms, history on join, recovery after a reconnect or a restart, presence
// and join/leave notices, and the page that uses it.
//
//	go run ./examples/chat    # then open http://localhost:8080 in two tabs
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
	"path/filepath"
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
	if err := run(ctx, os.Args[1:], os.Stderr); err != nil {
		log.Fatal(err)
	}
}

// run serves the chat until ctx is done, then shuts down in order. Logs go
// to out.
func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("chat", flag.ContinueOnError)
	fs.SetOutput(out)
	addr := fs.String("addr", "localhost:8080", "listen address")
	verbose := fs.Bool("v", false, "log every connection and room event")
	dataDir := fs.String("data", filepath.Join(os.TempDir(), "wsactor-chat"),
		"keep the rooms' history in this directory, so that a restart keeps it (empty: in memory)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil // -h: the usage is printed, and that is all
		}
		return err
	}
	level := zerolog.InfoLevel
	if *verbose {
		level = zerolog.DebugLevel
	}
	logger := newLogger(out).Level(level)
	system := actors.NewSystem(logger.Level(zerolog.WarnLevel))

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	app, err := newServer(system, logger, *dataDir)
	if err != nil {
		_ = ln.Close()
		return err
	}
	srv := transport.NewServer(*addr, app) // header, read and idle timeouts
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	logger.Info().Msgf("chat on http://%s (Ctrl-C to stop)", ln.Addr())
	if *dataDir != "" {
		logger.Info().Msgf("history in %s", *dataDir)
	} else {
		logger.Info().Msg("history in memory: a restart forgets it")
	}

	var failed error
	select {
	case <-ctx.Done():
	case failed = <-serveErr:
	}
	// The WebSockets first (each page gets 1001 and reconnects), then the
	// rooms and their history files, then the HTTP server, whose Shutdown
	// does not wait for hijacked connections.
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = errors.Join(failed, app.Shutdown(sctx), srv.Shutdown(sctx))
	if err != nil {
		return fmt.Errorf("chat: %w", err)
	}
	logger.Info().Msg("shut down")
	return nil
}

// newLogger writes human-readable logs to w, in colour only when w is a
// terminal: a file or a pipe gets plain text.
func newLogger(w io.Writer) zerolog.Logger {
	f, ok := w.(*os.File)
	colour := ok && isatty.IsTerminal(f.Fd())
	return zerolog.New(zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly, NoColor: !colour}).
		With().Timestamp().Logger()
}
