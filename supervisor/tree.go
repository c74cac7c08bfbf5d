package supervisor

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/asynkron/protoactor-go/actor"
)

// Tree is a server's supervision tree. Create it with [New]; it is safe for
// concurrent use.
type Tree struct {
	system *actor.ActorSystem
	root   *actor.PID
	conns  *actor.PID
	rooms  *actor.PID

	stopOnce sync.Once
	stopped  chan struct{} // closed when the root has stopped
	pool     *WarmPool     // the rooms' mailboxes; stopped with the tree

	// pending is the actor SpawnConnectionActor is spawning: set on the
	// connections branch just before its Spawn, taken by the shared
	// producer of ConnectionProps inside it.
	pending atomic.Pointer[pendingActor]
	// names makes connection actors' names (names.go); used only by the
	// connections branch, kept here so that a restarted branch goes on.
	names connNames
}

type pendingActor struct{ a actor.Actor }

// ErrStopped is returned when spawning into a tree that is shutting down.
var ErrStopped = errors.New("supervisor: tree stopped")

// New spawns a tree in system.
func New(system *actor.ActorSystem) (*Tree, error) {
	t := &Tree{system: system, stopped: make(chan struct{}), pool: NewWarmPool()}
	ready := make(chan error, 1)
	props := actor.PropsFromProducer(func() actor.Actor { return &rootActor{t: t, ready: ready} },
		actor.WithSupervisor(actor.NewOneForOneStrategy(0, 0, func(any) actor.Directive { return actor.ResumeDirective })))
	pid := system.Root.SpawnPrefix(props, "wsactor-tree")
	if err := <-ready; err != nil {
		system.Root.Stop(pid)
		return nil, err
	}
	t.root = pid
	return t, nil
}

// System returns the actor system the tree lives in.
func (t *Tree) System() *actor.ActorSystem { return t.system }

// Pool returns the tree's warm worker pool, which room.Spawn and
// room.Registry run their rooms' mailboxes on; it is stopped when the tree
// stops.
func (t *Tree) Pool() *WarmPool { return t.pool }

// Connections returns the PID of the connections branch.
func (t *Tree) Connections() *actor.PID { return t.conns }

// Rooms returns the PID of the rooms branch.
func (t *Tree) Rooms() *actor.PID { return t.rooms }

// SpawnConnection spawns a connection actor under the connections branch.
func (t *Tree) SpawnConnection(ctx context.Context, props *actor.Props) (*actor.PID, error) {
	return t.spawn(ctx, t.conns, props, "")
}

// ConnectionProps returns props for SpawnConnectionActor: one Props for
// every connection actor of a server, with opts applied, instead of one per
// connection (a Props is about 230 bytes, kept for its actor's life). Its
// producer yields the actor given to each SpawnConnectionActor; the
// connections branch stops a failed connection actor and never restarts it,
// so the producer runs once per actor. Use it for nothing else.
func (t *Tree) ConnectionProps(opts ...actor.PropsOption) *actor.Props {
	return actor.PropsFromProducer(t.takePending, opts...)
}

// SpawnConnectionActor spawns a under the connections branch with props
// from ConnectionProps.
func (t *Tree) SpawnConnectionActor(ctx context.Context, props *actor.Props, a actor.Actor) (*actor.PID, error) {
	if a == nil {
		return nil, errors.New("supervisor: SpawnConnectionActor of a nil actor")
	}
	return t.spawnReq(ctx, t.conns, &spawnRequest{props: props, actor: a})
}

func (t *Tree) takePending() actor.Actor {
	p := t.pending.Swap(nil)
	if p == nil {
		panic("supervisor: a ConnectionProps producer ran outside SpawnConnectionActor")
	}
	return p.a
}

// SpawnRoom spawns a room actor named name (empty: a generated name) under
// the rooms branch. A name already in use returns an error wrapping
// actor.ErrNameExists.
func (t *Tree) SpawnRoom(ctx context.Context, props *actor.Props, name string) (*actor.PID, error) {
	return t.spawn(ctx, t.rooms, props, name)
}

func (t *Tree) spawn(ctx context.Context, branch *actor.PID, props *actor.Props, name string) (*actor.PID, error) {
	return t.spawnReq(ctx, branch, &spawnRequest{props: props, name: name})
}

func (t *Tree) spawnReq(ctx context.Context, branch *actor.PID, req *spawnRequest) (*actor.PID, error) {
	select {
	case <-t.stopped:
		return nil, ErrStopped
	default:
	}
	req.reply = make(chan spawnReply, 1)
	t.system.Root.Send(branch, req)
	select {
	case r := <-req.reply:
		return r.pid, r.err
	case <-t.stopped:
		return nil, ErrStopped
	case <-ctx.Done():
		return nil, fmt.Errorf("supervisor: spawn: %w", ctx.Err())
	}
}

// Shutdown stops the rooms branch, then the connections branch, then the
// root, and waits for every actor in the tree to stop, or for ctx. Callers
// that want connections closed with a close frame (1001) do that first; the
// actors package's Handler.Shutdown does.
func (t *Tree) Shutdown(ctx context.Context) error {
	t.stopOnce.Do(func() { t.system.Root.Send(t.root, &shutdown{}) })
	select {
	case <-t.stopped:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("supervisor: shutdown: %w", ctx.Err())
	}
}

// Done is closed when the tree has stopped.
func (t *Tree) Done() <-chan struct{} { return t.stopped }

type spawnRequest struct {
	props *actor.Props
	name  string
	actor actor.Actor // for ConnectionProps' producer; nil otherwise
	reply chan spawnReply
}

type spawnReply struct {
	pid *actor.PID
	err error
}

type shutdown struct{}

// rootActor spawns the branches and stops them in order.
type rootActor struct {
	t     *Tree
	ready chan error
}

func (r *rootActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		stopChild := actor.NewOneForOneStrategy(0, 0, func(any) actor.Directive { return actor.StopDirective })
		conns, err := ctx.SpawnNamed(actor.PropsFromProducer(func() actor.Actor { return &branch{t: r.t} }, actor.WithSupervisor(stopChild)), "connections")
		if err != nil {
			r.ready <- err
			return
		}
		resume := actor.NewOneForOneStrategy(0, 0, func(any) actor.Directive { return actor.ResumeDirective })
		rooms, err := ctx.SpawnNamed(actor.PropsFromProducer(func() actor.Actor { return &branch{t: r.t} }, actor.WithSupervisor(resume)), "rooms")
		if err != nil {
			r.ready <- err
			return
		}
		r.t.conns, r.t.rooms = conns, rooms
		r.ready <- nil
	case *shutdown:
		ctx.Stop(r.t.rooms)
	case *actor.Terminated:
		switch {
		case m.Who.Equal(r.t.rooms):
			ctx.Stop(r.t.conns)
		case m.Who.Equal(r.t.conns):
			ctx.Stop(ctx.Self())
		}
	case *actor.Stopped:
		close(r.t.stopped)
		r.t.pool.Stop()
	}
}

// branch spawns children on request; its supervisor strategy (set by the
// root) decides what a child's failure does.
type branch struct{ t *Tree }

func (b *branch) Receive(ctx actor.Context) {
	if m, ok := ctx.Message().(*spawnRequest); ok {
		var (
			pid *actor.PID
			err error
		)
		if m.actor != nil {
			b.t.pending.Store(&pendingActor{m.actor})
			pid, err = ctx.SpawnNamed(m.props, b.t.names.next(ctx.Self().Id))
			b.t.pending.Store(nil)
			if err != nil {
				err = fmt.Errorf("supervisor: spawn a connection actor: %w", err)
				pid = nil
			}
		} else if m.name == "" {
			pid = ctx.Spawn(m.props)
		} else {
			pid, err = ctx.SpawnNamed(m.props, m.name)
			if err != nil {
				err = fmt.Errorf("supervisor: spawn %q: %w", m.name, err)
				pid = nil
			}
		}
		m.reply <- spawnReply{pid: pid, err: err}
	}
}
