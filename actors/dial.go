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
// valid.
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
	// Heartbeat, if set, pings the server when it has been silent for
	// Interval and terminates the connection when it has sent nothing for
	// Interval+Timeout (the ws README's client heartbeat): a server that
	// stopped answering is treated as gone. Nil disables it.
	Heartbeat *supervisor.HeartbeatOptions
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
func Dial(ctx context.Context, system *actor.ActorSystem, url string, producer actor.Producer, opts *DialOptions) (*Conn, *http.Response, error) {
	var o DialOptions
	if opts != nil {
		o = *opts
	}
	if o.InboxLimit <= 0 {
		o.InboxLimit = defaultInboxLimit
	}
	if o.InboxBytes == 0 {
		o.InboxBytes = defaultInboxBytes
	}
	if isZeroLogger(o.Logger) {
		o.Logger = systemLogger(system)
	}
	t, resp, err := transport.Dial(ctx, url, &o.DialOptions)
	if err != nil {
		return nil, resp, err
	}
	c := &Conn{t: t}
	opened := make(chan struct{})
	a := newConnActor(c, producer, failurePolicies{handlerPanic: o.HandlerPanic}, o.Logger)
	a.inbox = newInbox(o.InboxLimit, o.InboxBytes)
	a.root = system.Root
	a.opened = opened
	if o.Reconnect != nil || o.Heartbeat != nil {
		a.redial = &redialer{hb: o.Heartbeat}
		if o.Reconnect != nil {
			topts := o.DialOptions
			a.redial.backoff, a.redial.max = o.Reconnect.Backoff, o.Reconnect.MaxAttempts
			a.redial.dial = func(ctx context.Context) (*transport.Conn, error) {
				t, resp, err := transport.Dial(ctx, url, &topts)
				if err != nil && resp != nil && permanentRefusal(resp.StatusCode) {
					err = fmt.Errorf("%w: %d %s: %w", ErrRefused, resp.StatusCode, http.StatusText(resp.StatusCode), err)
				}
				return t, err
			}
		}
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
