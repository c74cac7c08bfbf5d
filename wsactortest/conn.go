package wsactortest

import (
	"sync"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/wsactor/wsactor/transport"
)

// Conn is a fake connection for testing rooms (it satisfies room.Conn) and
// the code around them. Its PID is a probe actor's, which records the
// actor messages sent to it (a room's presence events, say); SendFrame
// records the frames a room would write to the socket. Join it to a room
// like an *actors.Conn:
//
//	alice := wsactortest.NewConn(system)
//	r.Join(ctx, &room.Join{Conn: alice, User: "alice"})
//	r.Broadcast(transport.MessageText, []byte("hi"))
//	synctest.Wait() // in a testing/synctest bubble: every actor is idle
//	alice.Texts()   // ["hi"]
//
// Inside a testing/synctest bubble, call synctest.Wait before reading what
// it recorded; outside one, poll. Its methods are safe from any goroutine.
type Conn struct {
	root    *actor.RootContext
	pid     *actor.PID
	stopped chan struct{}

	mu      sync.Mutex
	frames  []*transport.Frame
	msgs    []any
	sendErr error
	closed  bool
}

// NewConn spawns the probe actor of a new fake connection in system.
// Stop it (or shut the system down) at the end of the test.
func NewConn(system *actor.ActorSystem) *Conn {
	c := &Conn{root: system.Root, stopped: make(chan struct{})}
	c.pid = system.Root.Spawn(actor.PropsFromFunc(c.receive))
	return c
}

func (c *Conn) receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started, *actor.Stopping, *actor.Restarting:
	case *actor.Stopped:
		c.mu.Lock()
		c.closed = true
		c.mu.Unlock()
		close(c.stopped)
	default:
		c.mu.Lock()
		c.msgs = append(c.msgs, m)
		c.mu.Unlock()
	}
}

// PID returns the probe actor's PID.
func (c *Conn) PID() *actor.PID { return c.pid }

// SendFrame records f and returns the error set by SetSendError (nil by
// default), or transport.ErrClosed once the probe has stopped, as a real
// connection would. A refused frame is not recorded.
func (c *Conn) SendFrame(f *transport.Frame) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.closed:
		return transport.ErrClosed
	case c.sendErr != nil:
		return c.sendErr
	}
	c.frames = append(c.frames, f)
	return nil
}

// SetSendError makes SendFrame refuse frames with err from now on (e.g.
// transport.ErrQueueFull for a member that stopped reading); nil accepts
// them again.
func (c *Conn) SetSendError(err error) {
	c.mu.Lock()
	c.sendErr = err
	c.mu.Unlock()
}

// Frames returns the frames recorded so far, oldest first.
func (c *Conn) Frames() []*transport.Frame {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*transport.Frame(nil), c.frames...)
}

// Texts returns the payloads of the frames recorded so far as strings.
func (c *Conn) Texts() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, len(c.frames))
	for i, f := range c.frames {
		out[i] = string(f.Payload())
	}
	return out
}

// Messages returns the actor messages the probe received so far, oldest
// first, without protoactor's lifecycle messages (*actor.Started and the
// like).
func (c *Conn) Messages() []any {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]any(nil), c.msgs...)
}

// Reset forgets the recorded frames and messages.
func (c *Conn) Reset() {
	c.mu.Lock()
	c.frames, c.msgs = nil, nil
	c.mu.Unlock()
}

// Stop stops the probe actor, as a real connection's actor stops when the
// connection closes: rooms it is in see it leave (room.LeftStopped).
// SendFrame then returns transport.ErrClosed. Stop waits until the actor
// has stopped; calling it again does nothing.
func (c *Conn) Stop() {
	c.root.Stop(c.pid)
	<-c.stopped
}
