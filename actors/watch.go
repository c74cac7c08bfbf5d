package actors

import (
	"sync"

	"github.com/asynkron/protoactor-go/actor"
)

// stopWatchers are the actors told when a connection actor stops (see
// Conn.NotifyStopped). protoactor's Watch does the same through the
// watched actor's context, at about 600 bytes per watched connection (a
// set with a map); rooms watch every member, so a connection in a room
// would pay that for as long as it lives. This costs a slice.
type stopWatchers struct {
	mu      sync.Mutex
	pids    []*actor.PID
	stopped bool
}

// add records pid; false if the actor has stopped already.
func (w *stopWatchers) add(pid *actor.PID) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		return false
	}
	for _, p := range w.pids {
		if p.Equal(pid) {
			return true
		}
	}
	w.pids = append(w.pids, pid)
	return true
}

// remove forgets pid.
func (w *stopWatchers) remove(pid *actor.PID) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for i, p := range w.pids {
		if p.Equal(pid) {
			last := len(w.pids) - 1
			w.pids[i] = w.pids[last]
			w.pids[last] = nil
			w.pids = w.pids[:last]
			if len(w.pids) == 0 {
				w.pids = nil
			}
			return
		}
	}
}

// stop marks the actor stopped and tells every watcher, as protoactor's
// Watch would: with *actor.Terminated naming the actor.
func (w *stopWatchers) stop(ctx actor.Context) {
	w.mu.Lock()
	pids := w.pids
	w.pids, w.stopped = nil, true
	w.mu.Unlock()
	for _, p := range pids {
		ctx.Send(p, &actor.Terminated{Who: ctx.Self()})
	}
}

// NotifyStopped arranges for the actor pid to receive *actor.Terminated
// (Who: the connection's PID) once the connection actor has stopped, as
// actor.Context.Watch would, at a fraction of Watch's memory per
// connection; rooms use it for their members. Terminated arrives as a user
// message, after what the connection sent pid before stopping. It reports
// false, and sends nothing, when the actor has stopped already; watching the
// same pid twice tells it once.
func (c *Conn) NotifyStopped(pid *actor.PID) bool {
	if c == nil || c.watch == nil {
		return false // not a Handler's or Dial's connection
	}
	return c.watch.add(pid)
}

// StopNotifying undoes NotifyStopped for pid.
func (c *Conn) StopNotifying(pid *actor.PID) {
	if c != nil && c.watch != nil {
		c.watch.remove(pid)
	}
}
