package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/wsactor/wsactor/actors"
	"github.com/wsactor/wsactor/supervisor"
)

// config is what main's flags set.
type config struct {
	url       string
	proxy     string        // "" means HTTP_PROXY/HTTPS_PROXY/NO_PROXY from the environment
	heartbeat time.Duration // <= 0 disables it
	every     time.Duration // how often to send a message
	backoff   supervisor.Backoff
}

// client is the behaviour of the client connection actor. The actor lives
// across reconnects: each session starts with *actors.Opened (with a new
// Conn) and ends with *actors.Closed, and *actors.Reconnecting comes before
// every attempt. State that must survive a reconnect lives here.
type client struct {
	out     io.Writer
	every   time.Duration
	stopped chan<- *actors.Conn // gets the last session's Conn when the actor stops

	conn     *actors.Conn // the open session; nil between sessions
	last     *actors.Conn
	sessions int
	sent     int
	timer    *time.Timer
	quitting bool
}

// quit asks the client to close with 1000 and stop.
type quit struct{}

// tick sends the next message of a session.
type tick struct{ session int }

func (*tick) IgnoreDeadLetterLogging() {} // a timer may fire after the actor stopped

func (c *client) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actors.Opened:
		c.conn, c.last = m.Conn, m.Conn
		c.sessions++
		fmt.Fprintf(c.out, "connected to %s (session %d, deflate %t)\n", m.Conn.RemoteAddr(), c.sessions, m.Conn.Compressed())
		c.send(ctx)
	case *tick:
		if m.session == c.sessions && c.conn != nil {
			c.send(ctx)
		}
	case *actors.Message:
		fmt.Fprintf(c.out, "< %s\n", m.Text())
	case *actors.Closed:
		c.conn = nil
		c.stopTimer()
		line := fmt.Sprintf("closed: %d", m.Code)
		if m.Reason != "" {
			line += fmt.Sprintf(" %q", m.Reason)
		}
		if m.Err != nil {
			line += " (" + m.Err.Error() + ")"
		}
		fmt.Fprintln(c.out, line)
	case *actors.Reconnecting:
		if c.quitting {
			ctx.Stop(ctx.Self()) // give up reconnecting
			return
		}
		fmt.Fprintf(c.out, "reconnecting in %v (attempt %d)\n", m.Delay.Round(time.Millisecond), m.Attempt)
	case *quit:
		c.quitting = true
		if c.conn != nil {
			c.conn.Close(actors.StatusNormalClosure, "bye") // our clean close: no reconnect
			return
		}
		ctx.Stop(ctx.Self())
	case *actor.Stopped:
		c.stopTimer()
		c.stopped <- c.last
	}
}

// send sends the next message and schedules the one after.
func (c *client) send(ctx actor.Context) {
	c.sent++
	_ = c.conn.SendText(fmt.Sprintf("message %d", c.sent))
	root, self, session := ctx.ActorSystem().Root, ctx.Self(), c.sessions
	c.stopTimer()
	c.timer = time.AfterFunc(c.every, func() { root.Send(self, &tick{session: session}) })
}

func (c *client) stopTimer() {
	if c.timer != nil {
		c.timer.Stop()
	}
}

// runClient connects and keeps the connection up until ctx is done: a
// heartbeat notices a server that went silent, and a lost connection is
// dialed again with capped exponential backoff and full jitter.
func runClient(ctx context.Context, system *actor.ActorSystem, cfg config, out io.Writer) error {
	var opts actors.DialOptions
	if cfg.proxy != "" {
		u, err := url.Parse(cfg.proxy)
		if err != nil {
			return fmt.Errorf("client: -proxy: %w", err)
		}
		opts.Proxy = http.ProxyURL(u)
	}
	// Ping a server silent for heartbeat; give up on it after twice that.
	opts.Heartbeat = supervisor.HeartbeatOptions{Interval: cfg.heartbeat}
	if cfg.heartbeat <= 0 {
		opts.Heartbeat.Interval = -1 // off (zero would mean the default, 30s)
	}
	opts.Reconnect = &actors.ReconnectOptions{Backoff: cfg.backoff}

	stopped := make(chan *actors.Conn, 1)
	producer := func() actor.Actor { return &client{out: out, every: cfg.every, stopped: stopped} }
	conn, err := dial(ctx, system, cfg, producer, &opts, out)
	if err != nil {
		if ctx.Err() != nil {
			return nil // interrupted while the server was away
		}
		return err
	}
	var last *actors.Conn
	select {
	case <-ctx.Done():
		system.Root.Send(conn.PID(), &quit{})
		last = <-stopped
	case last = <-stopped: // only if the behaviour gives up by itself
	}
	<-last.Transport().Done() // the socket is closed and its goroutines gone
	fmt.Fprintln(out, "stopped")
	return nil
}

// dial makes the first connection. Reconnect takes over once a connection
// has been made; until then a server that is not up yet, or answers 5xx
// (503 while it drains or is full), is retried here with the same backoff,
// and a server that refuses the handshake (401, 404, ...) is an error.
func dial(ctx context.Context, system *actor.ActorSystem, cfg config, producer actor.Producer, opts *actors.DialOptions, out io.Writer) (*actors.Conn, error) {
	for attempt := 0; ; attempt++ {
		conn, resp, err := actors.Dial(ctx, system, cfg.url, producer, opts)
		if err == nil {
			return conn, nil
		}
		if resp != nil && resp.StatusCode < http.StatusInternalServerError {
			return nil, fmt.Errorf("client: server refused the handshake (%s): %w", resp.Status, err)
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("client: %w", ctx.Err())
		}
		d := cfg.backoff.Delay(attempt)
		fmt.Fprintf(out, "dial failed, retrying in %v: %v\n", d.Round(time.Millisecond), err)
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return nil, fmt.Errorf("client: %w", ctx.Err())
		}
	}
}
