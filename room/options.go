package room

import (
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"

	"github.com/wsactor/wsactor/supervisor"
)

// Options configures a room. A nil *Options is valid and means all defaults:
// a plain broadcast room with no behaviour, no presence events, no member
// limit, that lives until stopped.
type Options struct {
	// Logger receives the room's logs, with the room's name added. The zero
	// value logs nothing. Rooms made by a Registry log to
	// RegistryOptions.Logger instead.
	Logger zerolog.Logger

	// Behavior, if set, makes the room's own behaviour: an ordinary actor
	// that receives the room's lifecycle messages (*actor.Started,
	// *actor.Stopping, *actor.Stopped), a *Joined or *Left for every
	// membership change, a *Tick every TickInterval, and every message sent
	// to the room that the room does not handle itself (anything but Join,
	// Leave, Broadcast, Send and Members), e.g. game inputs sent by
	// connection actors. It is called once when the room starts (and again
	// after a restart, see BehaviorPanic) with the room's State, which the
	// behaviour keeps to broadcast and to read the members. Nil means none:
	// unhandled messages are dropped.
	Behavior func(*State) actor.Actor

	// TickInterval, if positive, sends *Tick to the behaviour at this fixed
	// rate, e.g. 50ms for a 20 Hz game. Ticks stop when the room stops.
	// Zero means no ticks; so does a nil Behavior.
	TickInterval time.Duration

	// Presence sends *Joined and *Left to the members' connection actors (one
	// actor message per member per event; leave it off in very large rooms).
	// The zero value sends none; the behaviour gets them either way.
	Presence bool

	// IdleTimeout, if positive, stops the room once it has been empty for
	// this long (a new room counts as empty from its start). A Registry then
	// forgets it, and the next Get of its name makes a new room. Zero means
	// the room lives until stopped.
	IdleTimeout time.Duration

	// MaxMembers refuses joins past this many members with ErrRoomFull.
	// Zero means no limit.
	MaxMembers int

	// BehaviorPanic is the policy for a panic in the behaviour (or in
	// Behavior itself). Every panic is recovered by the room and logged once
	// at error level with its stack; the message being handled is dropped,
	// and the members, watches and timers are kept. Within the budget,
	// supervisor.Resume keeps the behaviour and its state, and
	// supervisor.Restart replaces it with a fresh one from Behavior, which
	// receives *actor.Started and can rebuild from State.Members. Past the
	// budget (or at the first panic under supervisor.Stop) the room stops,
	// as with Room.Stop; so does a panic in Behavior itself, which leaves
	// nothing to run. The zero value resumes up to 3 times a minute, then
	// stops the room.
	BehaviorPanic supervisor.Policy

	// Props adds protoactor props options (e.g. receiver middleware) to the
	// room actor.
	Props []actor.PropsOption
}
