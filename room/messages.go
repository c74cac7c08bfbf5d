package room

import (
	"errors"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/wsactor/wsactor/actors"
	"github.com/wsactor/wsactor/transport"
)

// Conn is a member's connection as a room uses it: the PID of its actor,
// which the room watches (a member whose actor stops leaves) and sends
// presence events to, and a queue that takes the room's frames.
// *actors.Conn implements it, and is what a server passes. A test can pass
// a fake instead (wsactortest.Conn is one), so that a room and its
// behaviour run without sockets, on fake time under testing/synctest.
//
// SendFrame is called on the room's goroutine, once per member per
// broadcast: it must not block, nor modify the frame, which every member
// shares. Its error is the member's to act on; the room only counts it
// (see [State.Broadcast]).
type Conn interface {
	PID() *actor.PID
	SendFrame(f *transport.Frame) error
}

var _ Conn = (*actors.Conn)(nil)

// pidOf returns c's PID, or nil for a nil Conn (including a nil
// *actors.Conn in a non-nil interface).
func pidOf(c Conn) *actor.PID {
	if c == nil {
		return nil
	}
	if ac, ok := c.(*actors.Conn); ok && ac == nil {
		return nil
	}
	return c.PID()
}

// Sentinel errors. Callers branch on them with errors.Is.
var (
	// ErrNoConn is the JoinResult.Err of a Join without a connection (a nil
	// Conn, or a Conn whose PID is nil).
	ErrNoConn = errors.New("room: join needs a connection")
	// ErrTooManyRooms is the JoinResult.Err of a Join that would put a
	// connection in more rooms of one Registry than
	// RegistryOptions.MaxRoomsPerConn allows.
	ErrTooManyRooms = errors.New("room: connection is in too many rooms")
	// ErrRoomFull is the JoinResult.Err of a Join to a room that already has
	// Options.MaxMembers members.
	ErrRoomFull = errors.New("room: room is full")
	// ErrStopped is returned by calls on a room that has stopped (or is
	// stopping after its idle timeout), and is the JoinResult.Err of a Join
	// that reached a room after it decided to stop. [Registry.Join] retries
	// with a fresh room by itself. Spawn and Registry.Get wrap it too when
	// the tree the rooms live in has stopped (with supervisor.ErrStopped),
	// so one errors.Is(err, room.ErrStopped) covers every room call.
	ErrStopped = errors.New("room: room stopped")
	// ErrInvalidName is returned by [Registry.Get] for an empty room name or
	// one containing '/'.
	ErrInvalidName = errors.New("room: invalid room name")
	// ErrNotMember is returned by [State.Send] for a connection that is not
	// a member of the room.
	ErrNotMember = errors.New("room: not a member")
)

// Member is one connection in a room, as reported by Members, JoinResult and
// the presence events. It is a copy: changing it changes nothing in the room.
type Member struct {
	// Conn is the member's connection, as given in Join: on a server an
	// *actors.Conn (m.Conn.(*actors.Conn) for its other methods).
	Conn Conn
	// User identifies the user behind the connection, as given in Join. Empty
	// when the joiner gave none.
	User string
	// Meta is the metadata given in Join (e.g. a display name). The room never
	// looks inside it; it must not be modified after Join is sent.
	Meta any
	// Since is when the member joined.
	Since time.Time
}

// PID returns the member's connection PID (nil for the zero Member).
func (m Member) PID() *actor.PID { return pidOf(m.Conn) }

// Join asks a room (sent to its PID) to add a connection.
//
// Sent with actor.Context.Request (or RequestFuture) it is answered with a
// *JoinResult; sent with Send it is not answered, and a refused Join is only
// logged at debug level. [Room.Join] and [Registry.Join] wait for the answer.
//
// Joining a room the connection is already in replaces Meta and sends no
// presence events; User is kept.
type Join struct {
	// Conn is the connection to add, usually the *actors.Conn of an Opened
	// or Message. Required.
	Conn Conn
	// User groups connections of one user (several tabs or devices): the
	// presence events say whether a join is the user's first connection in
	// the room and a leave its last. Empty means the connection is its own
	// user.
	User string
	// Meta is carried in Member unchanged, e.g. a display name.
	Meta any
	// Snapshot asks for the member list (the new member included) in
	// JoinResult.Members.
	Snapshot bool

	reply chan *JoinResult
}

// JoinResult answers a Join sent with a request.
type JoinResult struct {
	// Room is the room's name.
	Room string
	// Member is the new member; zero when Err is set.
	Member Member
	// Members is the member list after the join, when Join.Snapshot was set.
	Members []Member
	// Err is nil, ErrNoConn, ErrTooManyRooms, ErrRoomFull or ErrStopped.
	Err error
}

// Leave asks a room (sent to its PID) to remove a connection. Set Conn or
// PID. Leaving a room one is not in does nothing. A connection whose actor
// stops leaves every room by itself: rooms watch their members.
type Leave struct {
	Conn Conn
	PID  *actor.PID
}

// Broadcast asks a room (sent to its PID) to send one message to every
// member, except Except when it is set.
//
// Set Frame to send a frame you built (e.g. with transport.NewKeyedFrame), or
// Type and Data; then the room builds the frame once, with the conflation key
// Key if it is not empty. Type zero means text. Data is copied into the frame
// and may be reused once the room has handled the message; until then it
// must not be modified.
//
// However many members there are, the message is encoded once and, with
// permessage-deflate, compressed at most once; see the package
// documentation for cost and ordering.
type Broadcast struct {
	Type   transport.MessageType
	Data   []byte
	Key    string
	Frame  *transport.Frame
	Except *actor.PID
}

// Send asks a room (sent to its PID) to send one message to one member, To.
// Fields are as in Broadcast. A Send to a connection that is not a member is
// dropped (and logged at debug level): the room only speaks to its members.
// Because it goes through the room, a Send is ordered with the room's
// broadcasts.
type Send struct {
	To    *actor.PID
	Type  transport.MessageType
	Data  []byte
	Key   string
	Frame *transport.Frame
}

// Members asks a room (sent to its PID with a request) for its member list;
// the answer is a *MemberList. [Room.Members] waits for it.
type Members struct {
	reply chan *MemberList
}

// MemberList answers Members.
type MemberList struct {
	Room    string
	Members []Member
}

// Joined is a presence event: Member joined the room. With
// Options.Presence it is sent to every member's connection actor, the new
// member's included (where it arrives after its JoinResult, if any); the
// room's behaviour always receives it. The same *Joined is shared by every
// recipient and must not be modified.
type Joined struct {
	Room   string
	Member Member
	// First is true when Member is the only connection of its User in the
	// room (always true for an empty User).
	First bool
}

// Left is a presence event: Member left the room. With Options.Presence it
// is sent to every remaining member's connection actor; the room's behaviour
// always receives it. The same *Left is shared by every recipient and must
// not be modified.
type Left struct {
	Room   string
	Member Member
	// Last is true when no other connection of Member's User is still in
	// the room (always true for an empty User).
	Last   bool
	Reason LeaveReason
}

// LeaveReason says why a member left.
type LeaveReason int

const (
	// LeftByRequest: a Leave was handled.
	LeftByRequest LeaveReason = iota
	// LeftStopped: the member's connection actor stopped (the connection
	// closed, was killed, or its actor was stopped).
	LeftStopped
	// LeftRemoved: the room's behaviour removed it with State.Remove.
	LeftRemoved
)

func (r LeaveReason) String() string {
	switch r {
	case LeftByRequest:
		return "leave"
	case LeftStopped:
		return "stopped"
	case LeftRemoved:
		return "removed"
	}
	return "invalid"
}

// Tick is sent to the room's behaviour every Options.TickInterval. Seq
// counts ticks from 1. Ticks do not queue up: the next tick is scheduled
// when this one is handled, at the next multiple of the interval after the
// first tick, so a room that falls behind skips ticks (Seq still counts
// the intervals).
type Tick struct {
	Seq  uint64
	Time time.Time
}

// idleCheck is sent by the idle timer; gen tells stale timers apart.
type idleCheck struct{ gen uint64 }

// IgnoreDeadLetterLogging marks messages that may reach a room or a
// connection after it stopped (a timer's, a broadcast in flight, a presence
// event, an answer to a requester that has gone): such dead letters are
// normal and not worth a log line. protoactor checks for the method.
func (*Tick) IgnoreDeadLetterLogging() {}

// IgnoreDeadLetterLogging: see [Tick.IgnoreDeadLetterLogging].
func (*Broadcast) IgnoreDeadLetterLogging() {}

// IgnoreDeadLetterLogging: see [Tick.IgnoreDeadLetterLogging].
func (*Send) IgnoreDeadLetterLogging() {}

// IgnoreDeadLetterLogging: see [Tick.IgnoreDeadLetterLogging].
func (*Leave) IgnoreDeadLetterLogging() {}

// IgnoreDeadLetterLogging: see [Tick.IgnoreDeadLetterLogging].
func (*Joined) IgnoreDeadLetterLogging() {}

// IgnoreDeadLetterLogging: see [Tick.IgnoreDeadLetterLogging].
func (*Left) IgnoreDeadLetterLogging() {}

// IgnoreDeadLetterLogging: see [Tick.IgnoreDeadLetterLogging].
func (*JoinResult) IgnoreDeadLetterLogging() {}

// IgnoreDeadLetterLogging: see [Tick.IgnoreDeadLetterLogging].
func (*MemberList) IgnoreDeadLetterLogging() {}

func (*idleCheck) IgnoreDeadLetterLogging() {}
