package actors

import (
	"context"
	"fmt"
	"net/http"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"

	"github.com/wsactor/wsactor/transport"
)

// DialOptions configures a client connection actor. A nil *DialOptions is
// valid.
type DialOptions struct {
	// DialOptions configures the handshake and the connection: headers,
	// subprotocols, proxy, TLS, compression (on by default), timeouts.
	transport.DialOptions
	// Logger receives the connection's logs. The zero value logs nothing.
	Logger zerolog.Logger
	// InboxLimit is as in HandlerOptions. Zero means 64.
	InboxLimit int
	// Props adds protoactor props options to the connection actor.
	Props []actor.PropsOption
}

// Dial connects to url and runs the connection as an actor made by producer,
// exactly like a server connection: the behaviour receives Opened, Message
// and Closed. Dial returns once Opened has been delivered. On a refused
// handshake the error wraps websocket.ErrBadHandshake and resp holds the
// server's answer.
func Dial(ctx context.Context, system *actor.ActorSystem, url string, producer actor.Producer, opts *DialOptions) (*Conn, *http.Response, error) {
	var o DialOptions
	if opts != nil {
		o = *opts
	}
	if o.InboxLimit <= 0 {
		o.InboxLimit = 64
	}
	t, resp, err := transport.Dial(ctx, url, &o.DialOptions)
	if err != nil {
		return nil, resp, err
	}
	c := &Conn{t: t}
	opened := make(chan struct{})
	a := &connActor{
		user:    producer(),
		conn:    c,
		credits: make(chan struct{}, o.InboxLimit),
		stopped: make(chan struct{}),
		root:    system.Root,
		log:     o.Logger,
		opened:  opened,
	}
	props := actor.PropsFromProducer(func() actor.Actor { return a }, o.Props...)
	system.Root.SpawnPrefix(props, "wsclient")
	select {
	case <-opened:
		return c, resp, nil
	case <-ctx.Done():
		t.Close(transport.StatusGoingAway, "")
		return nil, resp, fmt.Errorf("actors: dial: %w", ctx.Err())
	}
}
