package actors

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"

	"github.com/wsactor/wsactor/supervisor"
	"github.com/wsactor/wsactor/transport"
)

// DialOptions configures a client connection actor. A nil *DialOptions is
// valid and means all defaults. [Dial] checks it and applies its defaults
// once, and reconnects with the same values.
//
// As in [HandlerOptions], every setting is one level deep (the socket's in
// the embedded [transport.DialOptions]), and the fields both share mean the
// same on both.
type DialOptions struct {
	// DialOptions configures the handshake and the connection: headers,
	// subprotocols, proxy, TLS, compression (on by default), timeouts.
	transport.DialOptions
	// Logger receives the connection's logs. The zero value means the
	// system's logger, as in HandlerOptions; zerolog.Nop() logs nothing.
	Logger zerolog.Logger
	// InboxLimit is as in HandlerOptions. Zero means 64.
	InboxLimit int
	// InboxBytes is as in HandlerOptions. Zero means 4 MiB; negative turns
	// the byte budget off.
	InboxBytes int
	// Props adds protoactor props options to the connection actor.
	Props []actor.PropsOption
	// HandlerPanic is as in HandlerOptions.
	HandlerPanic supervisor.Policy
	// DisableReaderTurns is as in HandlerOptions.
	DisableReaderTurns bool
	// Decode is as in HandlerOptions: it runs on the reader goroutine and
	// its value is Message.Value; an error closes with 1007.
	Decode func(MessageType, []byte) (any, error)
	// DecodePanic is as in HandlerOptions.
	DecodePanic supervisor.Policy
	// Heartbeat is as in HandlerOptions: the server is pinged when it has not
	// been heard from for Interval, and the connection is terminated when it
	// has not been heard from for Interval+Timeout (the ws README's client
	// heartbeat), so a server that stopped answering is treated as gone. The
	// zero value pings after 30s and terminates after 60s; a negative
	// Interval disables it.
	Heartbeat supervisor.HeartbeatOptions
	// Reconnect, if set, redials after the connection ends for any reason but
	// our own clean Close: the behaviour gets *Closed, then *Reconnecting
	// before each attempt, then *Opened with a new Conn. Nil disables it.
	Reconnect *ReconnectOptions
}

// ErrRefused is the Reconnecting.Err (and the reason reconnecting stops)
// when the server answers a reconnect attempt with a 4xx status other than
// 408 or 429, e.g. 401 for an expired token: retrying cannot help.
var ErrRefused = errors.New("actors: server refused the connection")

func permanentRefusal(status int) bool {
	return status >= 400 && status < 500 && status != http.StatusRequestTimeout && status != http.StatusTooManyRequests
}

// ReconnectOptions configures reconnecting a dialed connection.
type ReconnectOptions struct {
	// Backoff between attempts: capped exponential with full jitter. The
	// zero value waits up to 100ms, 200ms, 400ms, ... capped at 30s.
	Backoff supervisor.Backoff
	// MaxAttempts per outage; the actor stops after that many failed
	// attempts. Zero means no limit.
	MaxAttempts int
}

// Dial connects to url and runs the connection as an actor made by producer,
// exactly like a server connection: the behaviour receives Opened, Message
// and Closed. Dial returns once Opened has been delivered. On a refused
// handshake the error wraps transport.ErrBadHandshake and resp holds the
// server's answer.
//
// opts is checked and its defaults applied before anything is dialed: an
// invalid value (see [transport.NewDialer]) is an error.
func Dial(ctx context.Context, system *actor.ActorSystem, url string, producer actor.Producer, opts *DialOptions) (*Conn, *http.Response, error) {
	var o DialOptions
	if opts != nil {
		o = *opts
	}
	dialer, err := transport.NewDialer(&o.DialOptions)
	if err != nil {
		return nil, nil, fmt.Errorf("actors: dial options: %w", err)
	}
	cs := newConnSettings(system, o.Logger, o.InboxLimit, o.InboxBytes, o.HandlerPanic, o.DisableReaderTurns, o.Props)
	t, resp, err := dialer.Dial(ctx, url)
	if err != nil {
		dialer.Close()
		return nil, resp, err
	}
	c := &Conn{t: t}
	opened := make(chan struct{})
	a := newConnActor(c, producer, failurePolicies{
		handlerPanic: cs.handlerPanic,
		decodeFail:   o.DecodePanic,
		decode:       o.Decode,
	}, &cs.log, newInbox(cs.inboxLimit, cs.inboxBytes))
	a.root = system.Root
	a.cl = &clientParts{opened: opened, dialer: dialer}
	if hb := supervisor.NewHeartbeat(o.Heartbeat); hb.Enabled() {
		a.cl.hb = hb // this connection's own: its goroutine runs while it is open
	}
	if o.Reconnect != nil {
		a.cl.redial = &redialer{
			backoff: o.Reconnect.Backoff,
			max:     o.Reconnect.MaxAttempts,
			dial: func(ctx context.Context) (*transport.Conn, error) {
				t, resp, err := dialer.Dial(ctx, url)
				if err != nil && resp != nil && permanentRefusal(resp.StatusCode) {
					err = fmt.Errorf("%w: %d %s: %w", ErrRefused, resp.StatusCode, http.StatusText(resp.StatusCode), err)
				}
				return t, err
			},
		}
	}
	props := actor.PropsFromProducer(func() actor.Actor { return a }, cs.props...)
	system.Root.SpawnPrefix(props, "wsclient")
	select {
	case <-opened:
		return c, resp, nil
	case <-ctx.Done():
		t.Close(transport.StatusGoingAway, "")
		return nil, resp, fmt.Errorf("actors: dial: %w", ctx.Err())
	}
}
