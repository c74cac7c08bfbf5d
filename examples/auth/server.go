package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"

	"github.com/wsactor/wsactor/actors"
	"github.com/wsactor/wsactor/transport"
)

// errBadToken is why an upgrade without a known token is refused.
var errBadToken = errors.New("auth: missing or unknown token")

// tokens maps bearer tokens to the user they authenticate.
type tokens map[string]string

// authenticate is /ws's AcceptOptions.Authenticate. It runs before the
// upgrade (ws's authenticate-on-upgrade example): an error refuses the
// request with the HTTPError's status and headers, and no actor is spawned.
// What it returns is the connection's principal (Conn.Principal).
func (t tokens) authenticate(r *http.Request) (any, error) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		// Browsers cannot set headers on a WebSocket, so a page passes the
		// token in the query. Keep such tokens short-lived: URLs get logged.
		tok = r.URL.Query().Get("token")
	}
	user, found := t[tok]
	if tok == "" || !found {
		return nil, &transport.HTTPError{
			Status: http.StatusUnauthorized,
			Header: http.Header{"WWW-Authenticate": {`Bearer realm="wsactor"`}},
			Err:    errBadToken,
		}
	}
	return user, nil
}

// member is the behaviour of an authenticated connection on /ws: the
// principal is on every Opened, Message and Closed.
type member struct{}

func (member) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actors.Opened:
		user := m.Conn.Principal().(string)
		m.Conn.Logger().Info().Str("user", user).Bool("deflate", m.Conn.Compressed()).Msg("signed in")
		_ = m.Conn.SendText("hello " + user)
	case *actors.Message:
		_ = m.Conn.SendText(fmt.Sprintf("%s: %s", m.Conn.Principal(), m.Text()))
	}
}

// guest is the behaviour of an anonymous connection on /public.
type guest struct{}

func (guest) Receive(ctx actor.Context) {
	if m, ok := ctx.Message().(*actors.Message); ok {
		_ = m.Conn.SendText("guest: " + m.Text())
	}
}

// publicReadLimit is /public's ReadLimit: anonymous peers may send little.
const publicReadLimit = 1024

// server is two WebSocket endpoints with different options on one mux,
// served by one http.Server: ws's "multiple servers sharing a single HTTP
// server" (noServer) in Go is just two Handlers.
type server struct {
	members, guests *actors.Handler
	mux             *http.ServeMux
}

func newServer(system *actor.ActorSystem, logger zerolog.Logger, users tokens) (*server, error) {
	// /ws: token required, permessage-deflate offered to clients that ask.
	var private actors.HandlerOptions
	private.Logger = logger.With().Str("endpoint", "/ws").Logger()
	private.Authenticate = users.authenticate
	private.Compression = transport.CompressionEnabled

	// /public: anyone, no compression (the server default), small messages.
	var public actors.HandlerOptions
	public.Logger = logger.With().Str("endpoint", "/public").Logger()
	public.ReadLimit = publicReadLimit

	members, err := actors.NewHandler(system, func() actor.Actor { return member{} }, &private)
	if err != nil {
		return nil, fmt.Errorf("auth: /ws: %w", err)
	}
	guests, err := actors.NewHandler(system, func() actor.Actor { return guest{} }, &public)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("auth: /public: %w", err), members.Shutdown(context.Background()))
	}
	s := &server{members: members, guests: guests, mux: http.NewServeMux()}
	s.mux.Handle("/ws", s.members)
	s.mux.Handle("/public", s.guests)
	return s, nil
}

// Shutdown closes every connection of both endpoints with 1001 and waits for
// them; call it before http.Server.Shutdown.
func (s *server) Shutdown(ctx context.Context) error {
	return errors.Join(s.members.Shutdown(ctx), s.guests.Shutdown(ctx))
}
