package actors

import (
	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"

	"github.com/wsactor/wsactor/supervisor"
)

// connSettings are the connection actor's settings that [HandlerOptions]
// and [DialOptions] share, with their defaults applied once, by
// [NewHandler] or [Dial]: the same field means the same on both sides.
type connSettings struct {
	log          zerolog.Logger
	inboxLimit   int
	inboxBytes   int // < 0: no byte budget
	handlerPanic supervisor.Policy
	props        []actor.PropsOption
}

func newConnSettings(system *actor.ActorSystem, log zerolog.Logger, inboxLimit, inboxBytes int, handlerPanic supervisor.Policy, props []actor.PropsOption) connSettings {
	if isZeroLogger(log) {
		log = systemLogger(system)
	}
	if inboxLimit <= 0 {
		inboxLimit = defaultInboxLimit
	}
	if inboxBytes == 0 {
		inboxBytes = defaultInboxBytes
	}
	return connSettings{
		log:          log,
		inboxLimit:   inboxLimit,
		inboxBytes:   inboxBytes,
		handlerPanic: handlerPanic,
		props:        append([]actor.PropsOption(nil), props...),
	}
}
