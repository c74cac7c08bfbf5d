// Command client is a Go WebSocket client that stays connected: it pings a
// silent server and drops it (heartbeat), dials again after any loss with
// capped exponential backoff and full jitter, and goes through an HTTP proxy
// when one is configured. It sends a message every second and prints what
// comes back.
//
//	go run ./examples/echo -server-only    # in one shell
//	go run ./examples/client               # in another; stop and restart the server to see it reconnect
//	go run ./examples/client -url wss://example.com/ws -proxy http://proxy.internal:3128
package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"log"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"

	"github.com/wsactor/wsactor/actors"
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
	var cfg config
	fs := flag.NewFlagSet("client", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.url, "url", "ws://localhost:8080/ws", "server URL")
	fs.StringVar(&cfg.proxy, "proxy", "", "HTTP proxy URL (default: HTTPS_PROXY for wss://, HTTP_PROXY for ws://, honouring NO_PROXY)")
	fs.DurationVar(&cfg.heartbeat, "heartbeat", 30*time.Second, "ping a server silent this long, drop it after twice that (0: off)")
	fs.DurationVar(&cfg.every, "every", time.Second, "send a message this often")
	fs.DurationVar(&cfg.backoff.Min, "backoff-min", 100*time.Millisecond, "first reconnect delay ceiling")
	fs.DurationVar(&cfg.backoff.Max, "backoff-max", 30*time.Second, "largest reconnect delay")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil // -h: the usage is printed, and that is all
		}
		return err
	}
	logger := newLogger(stderr)
	system := actors.NewSystem(logger.Level(zerolog.WarnLevel))
	return runClient(ctx, system, cfg, stdout)
}

// newLogger writes human-readable logs to w, in colour only when w is a
// terminal: a file or a pipe gets plain text.
func newLogger(w io.Writer) zerolog.Logger {
	f, ok := w.(*os.File)
	colour := ok && isatty.IsTerminal(f.Fd())
	return zerolog.New(zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly, NoColor: !colour}).
		With().Timestamp().Logger()
}
