package room

import (
	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"

	"github.com/wsactor/wsactor/transport"
)

// State is a room seen from inside: what its behaviour (Options.Behavior)
// uses to read the members and to send to them. Its methods act at once, on
// the room's own goroutine, so they are valid only while the room is running
// the behaviour's Receive; a behaviour keeps the *State it was made with and
// must not hand it to other goroutines. From anywhere else, use the [Room]
// handle or messages.
type State struct {
	c *core
}

// Name returns the room's name.
func (s *State) Name() string { return s.c.name }

// Room returns the room's handle, which may be handed to other goroutines
// and actors. The behaviour itself must not call the handle's blocking
// methods (Join, Members, Stop): they wait for the room, which is busy
// running the behaviour, until their context ends.
func (s *State) Room() *Room { return s.c.h }

// Logger returns the room's logger (with the room's name).
func (s *State) Logger() *zerolog.Logger { return &s.c.log }

// Len returns the number of members.
func (s *State) Len() int { return len(s.c.members) }

// Members returns a copy of the member list, in no particular order.
func (s *State) Members() []Member { return s.c.snapshot() }

// Range calls f for each member until f returns false. f must not add or
// remove members.
func (s *State) Range(f func(Member) bool) {
	for _, m := range s.c.members {
		if !f(m.value()) {
			return
		}
	}
}

// Member returns the member whose connection is pid.
func (s *State) Member(pid *actor.PID) (Member, bool) {
	if pid == nil {
		return Member{}, false
	}
	i, ok := s.c.index[s.c.keyOf(pid)]
	if !ok {
		return Member{}, false
	}
	return s.c.members[i].value(), true
}

// Broadcast sends f to every member but except (nil: everyone), exactly as
// a *Broadcast message would, and returns how many members' queues took it.
// For a ticking room's state snapshots, build f with transport.NewKeyedFrame
// so that a slow member gets the latest state instead of a backlog.
func (s *State) Broadcast(f *transport.Frame, except *actor.PID) int {
	if f == nil {
		return 0
	}
	return s.c.fanout(f, except)
}

// Send sends f to the member pid. It returns ErrNotMember if pid is not in
// the room, or the connection's error (transport.ErrClosed,
// transport.ErrQueueFull).
func (s *State) Send(pid *actor.PID, f *transport.Frame) error {
	if pid == nil || f == nil {
		return ErrNotMember
	}
	i, ok := s.c.index[s.c.keyOf(pid)]
	if !ok {
		return ErrNotMember
	}
	return s.c.members[i].conn.SendFrame(f)
}

// Remove takes the member pid out of the room, as a Leave would, with
// Left.Reason LeftRemoved; its connection stays open. It reports whether pid
// was a member. The behaviour receives the *Left during this call.
func (s *State) Remove(pid *actor.PID) bool {
	if pid == nil {
		return false
	}
	i, ok := s.c.index[s.c.keyOf(pid)]
	if !ok {
		return false
	}
	s.c.remove(i, LeftRemoved)
	return true
}
