package actors

import (
	"os"

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

// newConnSettings settles a connection actor's settings. Its mailbox is
// protoactor's lock-free unbounded one (a linked list) rather than the
// default ring: about 200 bytes less per idle connection, and a burst does
// not leave a grown ring behind for the connection's life (the ring never
// shrinks; docs/performance.md). InboxLimit and InboxBytes bound it.
func newConnSettings(system *actor.ActorSystem, log zerolog.Logger, inboxLimit, inboxBytes int, handlerPanic supervisor.Policy, turnsOff bool, props []actor.PropsOption) connSettings {
	if isZeroLogger(log) {
		log = systemLogger(system)
	}
	if inboxLimit <= 0 {
		inboxLimit = defaultInboxLimit
	}
	if inboxBytes == 0 {
		inboxBytes = defaultInboxBytes
	}
	mailbox := actor.UnboundedLockfree()
	if !turnsOff && !readerTurnsOffByEnv {
		mailbox = turnMailboxProducer(mailbox) // turn.go
	}
	return connSettings{
		log:          log,
		inboxLimit:   inboxLimit,
		inboxBytes:   inboxBytes,
		handlerPanic: handlerPanic,
		props:        append([]actor.PropsOption{actor.WithMailbox(mailbox)}, props...),
	}
}

// readerTurnsOffByEnv is DisableReaderTurns's default:
// WSACTOR_READER_TURNS=off turns reader turns off (CI runs both paths).
var readerTurnsOffByEnv = os.Getenv("WSACTOR_READER_TURNS") == "off"
