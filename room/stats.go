package room

import "sync/atomic"

// RegistryStats is a snapshot of a Registry's counters, for metrics: how
// many rooms and members it has now, and what its rooms have done since the
// Registry was made. Rooms made by [Spawn] belong to no Registry and are
// counted nowhere.
//
// Each field is read atomically, but not all at one instant: a snapshot
// taken while rooms are busy may see one counter a moment later than
// another (Members, say, need not equal Joins minus Leaves then; it does
// once the rooms are idle).
type RegistryStats struct {
	// Rooms is the number of rooms the registry holds now: those made by
	// Get (or Join) and not yet stopped, the rooms [Registry.Rooms] lists.
	// A room leaves the count when it stops, or when it decides to stop
	// after its idle timeout or a behaviour past its panic budget.
	Rooms int

	// Members is the number of memberships in the registry's rooms now: a
	// connection in three rooms counts three times. A member stops counting
	// when it leaves (Leave, its connection stopping, [State.Remove]) or
	// when its room stops. A room that is stopping still counts its members
	// until it has stopped, though Rooms no longer counts the room.
	Members int64

	// Joins counts the memberships begun since the registry was made: joins
	// that added a connection. A refused join, or a join by a connection
	// already in the room, counts nothing.
	Joins int64

	// Leaves counts the memberships ended since the registry was made: by
	// Leave, by the member's connection stopping, by [State.Remove], or by
	// the room stopping with the member in it.
	Leaves int64

	// Broadcasts counts the broadcasts the registry's rooms have sent since
	// it was made: every [Broadcast] message a room handled and every
	// [State.Broadcast] call with a frame, whatever the number of members
	// (an empty room's broadcast counts too). [Send] and [State.Send], to
	// one member, are not broadcasts and are not counted.
	Broadcasts int64

	// Deliveries counts the frames those broadcasts put into member queues:
	// for each broadcast, the members whose queue took the frame, which is
	// what State.Broadcast returns. A member skipped by Except, or whose
	// queue refused the frame (full, or its connection closing), is not
	// counted; a frame taken and later evicted or replaced in the queue
	// (transport.OverflowDropOldest, a keyed frame) is.
	Deliveries int64
}

// counters are a Registry's counters. The registry keeps rooms, under its
// mu; its rooms keep the others, each on its own goroutine, through a
// pointer given to them when they are made (core.stats).
type counters struct {
	rooms, members         atomic.Int64
	joins, leaves          atomic.Int64
	broadcasts, deliveries atomic.Int64
}

// Stats returns a snapshot of the registry's counters. It never blocks and
// costs a few atomic loads, whatever the number of rooms and members: the
// rooms keep the counts as they go (two atomic adds per join, per leave
// and per broadcast, however many members it reaches), so a scrape asks no
// room anything.
func (g *Registry) Stats() RegistryStats {
	c := &g.stats
	// A room counts a leave after its join, and a broadcast before its
	// deliveries: loading the later count first keeps Leaves <= Joins and
	// the Deliveries within what the Broadcasts could reach.
	var st RegistryStats
	st.Leaves = c.leaves.Load()
	st.Joins = c.joins.Load()
	st.Deliveries = c.deliveries.Load()
	st.Broadcasts = c.broadcasts.Load()
	st.Members = c.members.Load()
	st.Rooms = int(c.rooms.Load())
	return st
}
