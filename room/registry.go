package room

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"

	"github.com/wsactor/wsactor/supervisor"
)

// DefaultMaxRoomsPerConn is the per-connection room limit of a Registry whose
// RegistryOptions.MaxRoomsPerConn is zero.
const DefaultMaxRoomsPerConn = 128

// RegistryOptions configures a Registry. A nil *RegistryOptions is valid and
// means all defaults.
type RegistryOptions struct {
	// Logger receives the registry's logs and those of every room it makes
	// (each with its room's name). The zero value logs nothing.
	Logger zerolog.Logger

	// Options returns the options of the room named name; it is called once
	// per room, when Get makes it, and may return nil for defaults. Its
	// Logger is replaced by the registry's. Nil means defaults for every
	// room.
	Options func(name string) *Options

	// MaxRoomsPerConn is how many of this registry's rooms one connection
	// may be in at once; past it, Join fails with ErrTooManyRooms. Zero means
	// DefaultMaxRoomsPerConn (128); a negative value means no limit.
	MaxRoomsPerConn int
}

// Registry finds rooms by name, making them on first use, under a
// supervision tree's rooms branch. It is safe for concurrent use: concurrent
// Gets of the same new name make one room.
//
// A room made by a Registry leaves it when it stops (idle timeout, Stop,
// tree shutdown); the next Get of the name makes a new room. Registries
// sharing one tree must use distinct room names: a name is unique in the
// tree.
type Registry struct {
	tree   *supervisor.Tree
	opts   RegistryOptions
	limits *connLimits
	stats  counters // see Stats; the rooms keep all but rooms

	mu       sync.Mutex
	rooms    map[string]*entry
	retiring map[string]*Room // idle rooms forgotten but not yet stopped
}

// entry is a room being made (ready open) or made (room or err set).
type entry struct {
	ready chan struct{}
	room  *Room
	err   error
}

// NewRegistry returns a Registry whose rooms live under tree's rooms branch.
func NewRegistry(tree *supervisor.Tree, opts *RegistryOptions) *Registry {
	g := &Registry{tree: tree, rooms: map[string]*entry{}, retiring: map[string]*Room{}}
	if opts != nil {
		g.opts = *opts
	}
	limit := g.opts.MaxRoomsPerConn
	if limit == 0 {
		limit = DefaultMaxRoomsPerConn
	}
	g.limits = &connLimits{max: limit, addr: tree.System().Address(), n: map[pidKey]int{}}
	return g
}

// Get returns the room named name, making it if there is none. It waits
// while another caller makes the same room (honouring ctx), and for the
// spawn round-trip to the tree when it makes it itself. The name must be
// non-empty and must not contain '/' (ErrInvalidName).
//
// The room may stop at any time after Get returns (e.g. its idle timeout);
// calls on its handle then return ErrStopped. [Registry.Join] deals with
// that by itself.
func (g *Registry) Get(ctx context.Context, name string) (*Room, error) {
	if !validName(name) {
		return nil, fmt.Errorf("room: get %q: %w", name, ErrInvalidName)
	}
	for {
		g.mu.Lock()
		e := g.rooms[name]
		if e == nil {
			e = &entry{ready: make(chan struct{})}
			g.rooms[name] = e
			g.mu.Unlock()
			r, err := g.create(ctx, name)
			g.mu.Lock()
			e.room, e.err = r, err
			if err != nil && g.rooms[name] == e {
				delete(g.rooms, name)
			}
			if err == nil && g.rooms[name] == e {
				g.stats.rooms.Add(1)
			}
			g.mu.Unlock()
			close(e.ready)
			return r, err
		}
		g.mu.Unlock()
		select {
		case <-e.ready:
		case <-ctx.Done():
			return nil, fmt.Errorf("room: get %q: %w", name, ctx.Err())
		}
		if e.err != nil {
			// The maker failed (perhaps only its own context): try ourselves.
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("room: get %q: %w", name, err)
			}
			continue
		}
		select {
		case <-e.room.done:
			// Stopped before it could forget itself; make a new one.
			g.forget(name, e.room)
			continue
		default:
		}
		return e.room, nil
	}
}

// create spawns the room. The spawn itself is not abandoned when ctx ends:
// a room spawned for a caller that gave up would hold the name without
// being in the registry.
func (g *Registry) create(ctx context.Context, name string) (*Room, error) {
	o := &Options{}
	if g.opts.Options != nil {
		if p := g.opts.Options(name); p != nil {
			o = p
		}
	}
	opts := *o
	opts.Logger = g.opts.Logger
	for attempt := 0; ; attempt++ {
		r, err := spawn(context.WithoutCancel(ctx), g.tree, name, opts, g)
		if err == nil || !errors.Is(err, actor.ErrNameExists) {
			return r, err
		}
		// The name is still held: by this registry's previous room of that
		// name, which is stopping after its idle timeout, or by an actor
		// this registry does not know.
		g.mu.Lock()
		old := g.retiring[name]
		g.mu.Unlock()
		switch {
		case old != nil:
			select {
			case <-old.done:
			case <-ctx.Done():
				return nil, fmt.Errorf("room: get %q: %w", name, ctx.Err())
			}
		case attempt > 0:
			return nil, err
		}
		// Without a retiring room, one more try: it may have finished
		// stopping between the spawn and the look-up.
	}
}

// Join gets the room named name (making it if needed) and joins j.Conn to
// it, as [Room.Join]. If the room stops between the two, Join tries again
// with a new room, so a join never lands in a room that is going away.
func (g *Registry) Join(ctx context.Context, name string, j *Join) (*Room, *JoinResult, error) {
	const attempts = 8
	var err error
	for range attempts {
		var r *Room
		r, err = g.Get(ctx, name)
		if err != nil {
			return nil, nil, err
		}
		var res *JoinResult
		res, err = r.Join(ctx, j)
		if !errors.Is(err, ErrStopped) {
			return r, res, err
		}
	}
	return nil, nil, err
}

// Lookup returns the room named name if the registry has one running. It
// never makes a room.
func (g *Registry) Lookup(name string) (*Room, bool) {
	g.mu.Lock()
	e := g.rooms[name]
	g.mu.Unlock()
	if e == nil {
		return nil, false
	}
	select {
	case <-e.ready:
	default:
		return nil, false // being made
	}
	if e.err != nil {
		return nil, false
	}
	select {
	case <-e.room.done:
		return nil, false
	default:
		return e.room, true
	}
}

// Rooms returns the registry's running rooms, sorted by name.
func (g *Registry) Rooms() []*Room {
	g.mu.Lock()
	names := make([]string, 0, len(g.rooms))
	for name := range g.rooms {
		names = append(names, name)
	}
	g.mu.Unlock()
	sort.Strings(names)
	out := make([]*Room, 0, len(names))
	for _, name := range names {
		if r, ok := g.Lookup(name); ok {
			out = append(out, r)
		}
	}
	return out
}

// RoomCount returns how many of the registry's rooms the connection pid is
// in: the number its MaxRoomsPerConn limits.
func (g *Registry) RoomCount(pid *actor.PID) int {
	if pid == nil {
		return 0
	}
	return g.limits.count(pid)
}

// retire is called by an idle room before it stops: the name is free for a
// new room at once, and create waits for this one to finish stopping.
func (g *Registry) retire(name string, r *Room) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if e := g.rooms[name]; e != nil && e.room == r {
		delete(g.rooms, name)
		g.stats.rooms.Add(-1)
	}
	g.retiring[name] = r
}

// forget is called by a room when it has stopped (and by Get when it finds
// a stopped room).
func (g *Registry) forget(name string, r *Room) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if e := g.rooms[name]; e != nil && e.room == r {
		delete(g.rooms, name)
		g.stats.rooms.Add(-1)
	}
	if g.retiring[name] == r {
		delete(g.retiring, name)
	}
}

// connLimits counts each connection's rooms in one registry. Rooms acquire
// a slot when a connection joins and release it when it leaves, so the
// count is exact across rooms running in parallel.
type connLimits struct {
	max  int    // negative: count only
	addr string // the registry's system's address: local for keyOf
	mu   sync.Mutex
	n    map[pidKey]int
}

func (l *connLimits) acquire(pid *actor.PID) bool {
	k := keyOf(l.addr, pid)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.max > 0 && l.n[k] >= l.max {
		return false
	}
	l.n[k]++
	return true
}

func (l *connLimits) release(pid *actor.PID) {
	k := keyOf(l.addr, pid)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n[k] <= 1 {
		delete(l.n, k)
		return
	}
	l.n[k]--
}

func (l *connLimits) count(pid *actor.PID) int {
	k := keyOf(l.addr, pid)
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n[k]
}

// JoinAsync is Join for actors, which must not block their mailbox: it
// returns at once, gets (or makes) the room and joins j.Conn to it on
// another goroutine, and sends the outcome to replyTo as a *JoinResult
// (Err set if the room could not be had within timeout; zero means 10s).
func (g *Registry) JoinAsync(name string, j *Join, replyTo *actor.PID, timeout time.Duration) {
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	root := g.tree.System().Root
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		_, res, err := g.Join(ctx, name, j)
		if res == nil {
			res = &JoinResult{Room: name, Err: err}
		}
		root.Send(replyTo, res)
	}()
}
