package main

import (
	"github.com/asynkron/protoactor-go/actor"

	"github.com/wsactor/wsactor/actors"
)

// echo is the behaviour of one server connection: every message goes back to
// the peer unchanged. Its state (a message counter) lives in the actor.
type echo struct {
	received int
}

func (e *echo) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actors.Opened:
		m.Conn.Logger().Info().Str("client", m.Conn.ClientIP().String()).
			Bool("permessage-deflate", m.Conn.Transport().Compressed()).Msg("connected")
	case *actors.Message:
		e.received++
		if err := m.Conn.Send(m.Type, m.Data); err != nil {
			m.Conn.Logger().Warn().Err(err).Msg("echo not sent")
		}
	case *actors.Closed:
		m.Conn.Logger().Info().Int("code", int(m.Code)).Int("messages", e.received).Msg("disconnected")
	}
}

func newEcho() actor.Actor { return &echo{} }
