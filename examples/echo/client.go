package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/wsactor/wsactor/actors"
	"github.com/wsactor/wsactor/transport"
)

// rttClient is the ws README's round-trip-time demo as a client actor: it
// sends the current time, and each echo tells how long the round trip took.
type rttClient struct {
	out   io.Writer
	count int
	done  chan<- struct{}
	sent  int
}

func (c *rttClient) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actors.Opened:
		fmt.Fprintf(c.out, "connected (permessage-deflate: %v)\n", m.Conn.Transport().Compressed())
		_ = m.Conn.Ping(nil) // the pong updates Conn.RTT
		c.sendNow(m.Conn)
	case *actors.Message:
		ns, err := strconv.ParseInt(m.Text(), 10, 64)
		if err != nil {
			fmt.Fprintf(c.out, "unexpected echo %q\n", m.Text())
			return
		}
		rtt := time.Since(time.Unix(0, ns))
		fmt.Fprintf(c.out, "echo %d: round trip %v (ping RTT %v)\n", c.sent, rtt.Round(time.Microsecond), m.Conn.RTT().Round(time.Microsecond))
		if c.sent < c.count {
			c.sendNow(m.Conn)
			return
		}
		m.Conn.Close(actors.StatusNormalClosure, "done")
	case *actors.Closed:
		fmt.Fprintf(c.out, "closed: %d %s\n", m.Code, m.Reason)
		close(c.done)
	}
}

func (c *rttClient) sendNow(conn *actors.Conn) {
	c.sent++
	_ = conn.SendText(strconv.FormatInt(time.Now().UnixNano(), 10))
}

// runClient dials url, offering permessage-deflate as compression says,
// exchanges count messages and returns once the connection has closed.
func runClient(ctx context.Context, system *actor.ActorSystem, url string, count int, compression transport.CompressionMode, out io.Writer) error {
	done := make(chan struct{})
	var opts actors.DialOptions
	opts.Compression = compression
	_, _, err := actors.Dial(ctx, system, url, func() actor.Actor {
		return &rttClient{out: out, count: count, done: done}
	}, &opts)
	if err != nil {
		return err
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
