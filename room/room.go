package room

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"

	"github.com/wsactor/wsactor/actors"
	"github.com/wsactor/wsactor/internal/turns"
	"github.com/wsactor/wsactor/supervisor"
	"github.com/wsactor/wsactor/transport"
)

// Room is a handle to a running room actor, returned by [Registry.Get] and
// [Spawn]. Its methods are safe from any goroutine. Those without a context
// post a message to the room's mailbox and return at once; those with one
// wait for the room's answer. A Room stays valid after the room stops:
// calls then return ErrStopped or do nothing.
//
// Inside an actor, prefer sending the messages yourself (ctx.Send or
// ctx.Request to [Room.PID]) over the blocking methods.
type Room struct {
	name   string
	pid    *actor.PID
	system *actor.ActorSystem
	done   chan struct{} // closed when the room actor has stopped
}

// Name returns the room's name.
func (r *Room) Name() string { return r.name }

// PID returns the room actor's PID: send Join, Leave, Broadcast, Send,
// Members and the behaviour's own messages to it.
func (r *Room) PID() *actor.PID { return r.pid }

// Done is closed when the room has stopped: by its idle timeout, by Stop,
// with its supervision tree, or because its behaviour panicked past its
// budget (Options.BehaviorPanic).
func (r *Room) Done() <-chan struct{} { return r.done }

// Tell posts msg to the room's mailbox (a *Broadcast, *Send, *Leave, or a
// message for the room's behaviour). Messages posted from one goroutine are
// handled in the order posted.
func (r *Room) Tell(msg any) { r.system.Root.Send(r.pid, msg) }

// Broadcast posts a broadcast of one message to every member. data must not
// be modified afterwards: the room copies it into the frame only when it
// handles the message.
func (r *Room) Broadcast(typ transport.MessageType, data []byte) {
	r.Tell(&Broadcast{Type: typ, Data: data})
}

// Leave posts a Leave for the connection pid.
func (r *Room) Leave(pid *actor.PID) { r.Tell(&Leave{PID: pid}) }

// Join adds j.Conn to the room and waits for the answer. The error is the
// JoinResult's Err (ErrNoConn, ErrTooManyRooms, ErrRoomFull, ErrStopped),
// or ctx's error wrapped. j is not modified.
func (r *Room) Join(ctx context.Context, j *Join) (*JoinResult, error) {
	if j == nil || pidOf(j.Conn) == nil {
		return nil, ErrNoConn
	}
	m := *j
	m.reply = make(chan *JoinResult, 1)
	r.Tell(&m)
	select {
	case res := <-m.reply:
		return res, res.Err
	case <-r.done:
		select {
		case res := <-m.reply:
			return res, res.Err
		default:
			return nil, ErrStopped
		}
	case <-ctx.Done():
		return nil, fmt.Errorf("room: join %s: %w", r.name, ctx.Err())
	}
}

// Members returns the room's members, in no particular order.
func (r *Room) Members(ctx context.Context) ([]Member, error) {
	m := &Members{reply: make(chan *MemberList, 1)}
	r.Tell(m)
	select {
	case l := <-m.reply:
		return l.Members, nil
	case <-r.done:
		return nil, ErrStopped
	case <-ctx.Done():
		return nil, fmt.Errorf("room: members of %s: %w", r.name, ctx.Err())
	}
}

// Stop stops the room once it has handled the messages already in its
// mailbox, and waits until it has stopped or ctx is done. Its members stay
// connected; they are simply no longer in the room. Presence events are not
// sent for a stopping room.
func (r *Room) Stop(ctx context.Context) error {
	select {
	case <-r.done:
		return nil
	default:
	}
	r.system.Root.Poison(r.pid)
	select {
	case <-r.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("room: stop %s: %w", r.name, ctx.Err())
	}
}

// Spawn starts a room named name under tree's rooms branch and returns its
// handle. An empty name gets a generated one. Rooms made by Spawn belong to
// no Registry: they are not counted against a connection's room limit and
// are not listed by any Registry. A name already in use returns an error
// wrapping actor.ErrNameExists.
func Spawn(ctx context.Context, tree *supervisor.Tree, name string, opts *Options) (*Room, error) {
	if name != "" && !validName(name) {
		return nil, fmt.Errorf("room: spawn %q: %w", name, ErrInvalidName)
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	return spawn(ctx, tree, name, o, nil)
}

func spawn(ctx context.Context, tree *supervisor.Tree, name string, o Options, reg *Registry) (*Room, error) {
	h := &Room{name: name, system: tree.System(), done: make(chan struct{})}
	c := newCore(h, o, reg)
	// The tree's warm pool runs the room's mailbox unless o.Props names a
	// dispatcher of its own (later options win).
	opts := append([]actor.PropsOption{actor.WithDispatcher(tree.Pool()),
		actor.WithMailbox(turns.Producer(actor.Unbounded()))}, o.Props...)
	props := actor.PropsFromProducer(func() actor.Actor { return c }, opts...)
	pid, err := tree.SpawnRoom(ctx, props, name)
	if errors.Is(err, supervisor.ErrStopped) {
		// One sentinel for every room call: the tree's stop is the room's.
		return nil, fmt.Errorf("room: spawn %q: %w: %w", name, ErrStopped, err)
	}
	if err != nil {
		return nil, fmt.Errorf("room: spawn %q: %w", name, err)
	}
	h.pid = pid
	if name == "" {
		h.name = baseName(pid)
	}
	return h, nil
}

func validName(name string) bool { return name != "" && !strings.ContainsRune(name, '/') }

// baseName is the last element of a child PID's id ("tree/rooms/name").
func baseName(pid *actor.PID) string {
	id := pid.Id
	if i := strings.LastIndexByte(id, '/'); i >= 0 {
		return id[i+1:]
	}
	return id
}

// pidKey identifies a PID in a map (PIDs compare by Address and Id, never
// by pointer). A PID on local, the address of the map's owner, is keyed by
// its Id alone: no allocation, and a map slot of 24 bytes instead of 40, for
// an index entry per member. Any other PID is keyed by NUL, its address,
// NUL and its Id (allocated); no local key starts with NUL, and an address
// holds none, so keys are unique.
type pidKey string

func keyOf(local string, pid *actor.PID) pidKey {
	if pid.Address == local && (pid.Id == "" || pid.Id[0] != 0) {
		return pidKey(pid.Id)
	}
	return pidKey("\x00" + pid.Address + "\x00" + pid.Id)
}

// keyOf keys pid in the room's index; the room's own address is local (it
// is set on Started, before any member is indexed).
func (c *core) keyOf(pid *actor.PID) pidKey { return keyOf(c.self.Address, pid) }

// member is one member of a room: 64 bytes, one per connection per room.
type member struct {
	pid   *actor.PID
	conn  Conn
	user  string
	meta  any
	since int64 // unix nanoseconds
}

func (m *member) value() Member {
	return Member{Conn: m.conn, User: m.user, Meta: m.meta, Since: time.Unix(0, m.since)}
}

// core is the room actor. The same core is returned by its producer every
// time, so membership, watches and timers belong to the room rather than to
// one actor instance and survive a supervisor's restart; see the package
// documentation. All its fields are touched only from Receive, except those
// set before the spawn.
type core struct {
	h      *Room
	name   string // h.name, which Spawn sets only after the spawn
	opts   Options
	reg    *Registry // nil for Spawn rooms
	stats  *counters // &reg.stats; nil for Spawn rooms, which count nothing
	log    zerolog.Logger
	state  *State
	self   *actor.PID
	ctx    actor.Context // the context of the Receive being run
	root   *actor.RootContext
	ticker *time.Timer

	members []*member
	index   map[pidKey]int
	users   map[string]int // connections per non-empty User

	host     *supervisor.Host // runs Options.Behavior; nil without one
	started  bool
	retiring bool // idle or given up: stopping, no more joins

	tickStart time.Time
	tickSeq   uint64

	idle    *time.Timer
	idleGen uint64
}

func newCore(h *Room, o Options, reg *Registry) *core {
	c := &core{h: h, name: h.name, opts: o, reg: reg, index: map[pidKey]int{}, users: map[string]int{}}
	c.state = &State{c: c}
	if reg != nil {
		c.stats = &reg.stats
	}
	if o.Behavior != nil {
		c.host = supervisor.NewHost(func() actor.Actor { return o.Behavior(c.state) }, supervisor.HostOptions{
			Policy: o.BehaviorPanic,
			Name:   "room behaviour",
			GiveUp: c.giveUp,
		})
	}
	return c
}

func (c *core) Receive(ctx actor.Context) {
	c.ctx = ctx
	switch m := ctx.Message().(type) {
	case *Broadcast:
		c.fanout(frameOf(m.Frame, m.Type, m.Data, m.Key), m.Except)
	case *Send:
		c.sendTo(m)
	case *Join:
		c.join(ctx, m)
	case *Leave:
		c.leave(m)
	case *Members:
		respond(ctx, m.reply, &MemberList{Room: c.name, Members: c.snapshot()})
	case *actor.Terminated:
		if i, ok := c.index[c.keyOf(m.Who)]; ok {
			c.remove(i, LeftStopped)
			return
		}
		c.deliver(ctx, nil)
	case *tickFired:
		c.tick(ctx)
	case *idleCheck:
		c.idleCheck(ctx, m)
	case *actor.Started:
		c.start(ctx)
	case *actor.Restarting:
		// A supervisor restarts the room actor: the behaviour is made anew
		// (on Started); membership and timers stay.
		c.log.Warn().Msg("room actor restarting; members kept, behaviour replaced")
		c.deliver(ctx, nil)
		if c.host != nil {
			c.host.Reset()
		}
	case *actor.Stopping:
		c.stopping(ctx)
	case *actor.Stopped:
		turns.Forget(ctx.ActorSystem(), ctx.Self().Id)
		c.stopped(ctx)
	default:
		c.deliver(ctx, nil)
	}
}

func (c *core) start(ctx actor.Context) {
	if !c.started {
		c.started = true
		c.self = ctx.Self()
		c.root = ctx.ActorSystem().Root
		if c.name == "" {
			c.name = baseName(c.self)
		}
		c.log = c.opts.Logger.With().Str("room", c.name).Logger()
		if c.host != nil {
			c.host.SetLogger(c.log)
		}
		if c.opts.TickInterval > 0 && c.opts.Behavior != nil {
			c.tickStart = time.Now()
			root, self := c.root, c.self
			c.ticker = time.AfterFunc(c.opts.TickInterval, func() { root.Send(self, &tickFired{}) })
		}
		c.armIdle()
		c.log.Debug().Msg("room started")
	}
	c.deliver(ctx, nil) // the first Started makes the behaviour
}

func (c *core) stopping(ctx actor.Context) {
	if c.ticker != nil {
		c.ticker.Stop()
	}
	c.disarmIdle()
	for _, m := range c.members {
		c.unwatch(ctx, m)
	}
	c.deliver(ctx, nil)
}

func (c *core) stopped(ctx actor.Context) {
	if c.reg != nil {
		for _, m := range c.members {
			c.reg.limits.release(m.pid)
		}
		c.reg.forget(c.name, c.h)
	}
	n := len(c.members)
	if c.stats != nil {
		c.stats.members.Add(-int64(n)) // the members leave with the room
		c.stats.leaves.Add(int64(n))
	}
	c.members, c.index, c.users = nil, nil, nil
	c.deliver(ctx, nil)
	c.log.Debug().Int("members", n).Msg("room stopped")
	close(c.h.done)
}

// fanout enqueues f on every member's connection but except's. It is the
// room's hot path: one SendFrame (a bounded, non-blocking queue append) per
// member, no actor message and no allocation of its own; in a Registry's
// room, two atomic adds per broadcast, whatever the member count.
func (c *core) fanout(f *transport.Frame, except *actor.PID) int {
	skip := -1
	if except != nil {
		if i, ok := c.index[c.keyOf(except)]; ok {
			skip = i
		}
	}
	if len(c.members) > 2 {
		f.MarkShared() // its sender writes no socket itself: the writers batch
	}
	sent := 0
	for i, m := range c.members {
		if i == skip {
			continue
		}
		// An error means the member's queue refused the frame (its policy
		// decides what that does to the connection) or the connection is
		// closing; a closing member leaves on *actor.Terminated.
		if m.conn.SendFrame(f) == nil {
			sent++
		}
	}
	if c.stats != nil {
		c.stats.broadcasts.Add(1)
		c.stats.deliveries.Add(int64(sent))
	}
	return sent
}

func frameOf(f *transport.Frame, typ transport.MessageType, data []byte, key string) *transport.Frame {
	if f != nil {
		return f
	}
	if typ == 0 {
		typ = transport.MessageText
	}
	if key != "" {
		return transport.NewKeyedFrame(typ, data, key)
	}
	return transport.NewFrame(typ, data)
}

func (c *core) sendTo(m *Send) {
	if m.To == nil {
		c.log.Debug().Msg("room: Send without To dropped")
		return
	}
	i, ok := c.index[c.keyOf(m.To)]
	if !ok {
		c.log.Debug().Str("to", m.To.Id).Msg("room: Send to a non-member dropped")
		return
	}
	_ = c.members[i].conn.SendFrame(frameOf(m.Frame, m.Type, m.Data, m.Key))
}

func (c *core) join(ctx actor.Context, m *Join) {
	res, ev := c.add(ctx, m)
	if m.reply == nil && ctx.Sender() == nil && res.Err != nil {
		c.log.Debug().Err(res.Err).Msg("room: join refused")
	}
	// The answer goes first: the joiner's connection actor receives its
	// JoinResult before its own Joined.
	respond(ctx, m.reply, res)
	if ev != nil {
		c.publish(ev)
	}
}

func (c *core) add(ctx actor.Context, m *Join) (*JoinResult, *Joined) {
	res := &JoinResult{Room: c.name}
	pid := pidOf(m.Conn)
	if pid == nil {
		res.Err = ErrNoConn
		return res, nil
	}
	if c.retiring {
		res.Err = ErrStopped
		return res, nil
	}
	key := c.keyOf(pid)
	if i, ok := c.index[key]; ok {
		c.members[i].meta = m.Meta
		res.Member = c.members[i].value()
		if m.Snapshot {
			res.Members = c.snapshot()
		}
		return res, nil
	}
	if c.opts.MaxMembers > 0 && len(c.members) >= c.opts.MaxMembers {
		res.Err = ErrRoomFull
		return res, nil
	}
	if c.reg != nil && !c.reg.limits.acquire(pid) {
		res.Err = ErrTooManyRooms
		return res, nil
	}
	mem := &member{pid: pid, conn: m.Conn, user: m.User, meta: m.Meta, since: time.Now().UnixNano()}
	c.index[key] = len(c.members)
	c.members = append(c.members, mem)
	c.watch(ctx, mem)
	if c.stats != nil {
		c.stats.joins.Add(1)
		c.stats.members.Add(1)
	}
	first := true
	if m.User != "" {
		c.users[m.User]++
		first = c.users[m.User] == 1
	}
	c.disarmIdle()
	res.Member = mem.value()
	if m.Snapshot {
		res.Members = c.snapshot()
	}
	return res, &Joined{Room: c.name, Member: res.Member, First: first}
}

// watch has the room told (*actor.Terminated) when mem's actor stops: a
// connection actor of this module through Conn.NotifyStopped, which costs the
// connection a slice entry instead of protoactor's watcher set; anything
// else through ctx.Watch.
func (c *core) watch(ctx actor.Context, mem *member) {
	if ac, ok := mem.conn.(*actors.Conn); ok {
		if !ac.NotifyStopped(ctx.Self()) {
			// Stopped already (or not a Handler's connection): as Watch
			// of a dead actor does, answer at once.
			ctx.Send(ctx.Self(), &actor.Terminated{Who: mem.pid})
		}
		return
	}
	ctx.Watch(mem.pid)
}

// unwatch undoes watch.
func (c *core) unwatch(ctx actor.Context, mem *member) {
	if ac, ok := mem.conn.(*actors.Conn); ok {
		ac.StopNotifying(ctx.Self())
		return
	}
	ctx.Unwatch(mem.pid)
}

func (c *core) leave(m *Leave) {
	pid := m.PID
	if pid == nil {
		pid = pidOf(m.Conn)
	}
	if pid == nil {
		c.log.Debug().Msg("room: Leave without Conn or PID dropped")
		return
	}
	if i, ok := c.index[c.keyOf(pid)]; ok {
		c.remove(i, LeftByRequest)
	}
}

// remove takes members[i] out (swapping the last member into its place),
// releases its room-limit slot and publishes Left.
func (c *core) remove(i int, why LeaveReason) {
	mem := c.members[i]
	last := len(c.members) - 1
	if i != last {
		c.members[i] = c.members[last]
		c.index[c.keyOf(c.members[i].pid)] = i
	}
	c.members[last] = nil
	c.members = c.members[:last]
	delete(c.index, c.keyOf(mem.pid))
	if why != LeftStopped {
		c.unwatch(c.ctx, mem)
	}
	if c.reg != nil {
		c.reg.limits.release(mem.pid)
	}
	if c.stats != nil {
		c.stats.members.Add(-1)
		c.stats.leaves.Add(1)
	}
	lastOfUser := true
	if mem.user != "" {
		c.users[mem.user]--
		if c.users[mem.user] <= 0 {
			delete(c.users, mem.user)
		} else {
			lastOfUser = false
		}
	}
	if len(c.members) == 0 {
		c.armIdle()
	}
	c.publish(&Left{Room: c.name, Member: mem.value(), Last: lastOfUser, Reason: why})
}

// publish sends a presence event to the members (with Options.Presence)
// and to the behaviour.
func (c *core) publish(ev any) {
	if c.opts.Presence {
		for _, m := range c.members {
			c.ctx.Send(m.pid, ev)
		}
	}
	c.deliver(c.ctx, ev)
}

func (c *core) snapshot() []Member {
	out := make([]Member, len(c.members))
	for i, m := range c.members {
		out[i] = m.value()
	}
	return out
}

// tickFired is sent by the tick timer.
type tickFired struct{}

func (*tickFired) IgnoreDeadLetterLogging() {}

func (c *core) tick(ctx actor.Context) {
	if c.ticker == nil || c.retiring {
		return
	}
	now := time.Now()
	iv := c.opts.TickInterval
	seq := uint64(now.Sub(c.tickStart) / iv)
	if seq <= c.tickSeq {
		seq = c.tickSeq + 1
	}
	c.tickSeq = seq
	next := c.tickStart.Add(time.Duration(seq+1) * iv)
	c.ticker.Reset(time.Until(next))
	c.deliver(ctx, &Tick{Seq: seq, Time: now})
}

func (c *core) armIdle() {
	if c.opts.IdleTimeout <= 0 || c.retiring {
		return
	}
	c.disarmIdle()
	gen := c.idleGen
	root, self := c.root, c.self
	c.idle = time.AfterFunc(c.opts.IdleTimeout, func() { root.Send(self, &idleCheck{gen: gen}) })
}

func (c *core) disarmIdle() {
	c.idleGen++
	if c.idle != nil {
		c.idle.Stop()
		c.idle = nil
	}
}

func (c *core) idleCheck(ctx actor.Context, m *idleCheck) {
	if m.gen != c.idleGen || len(c.members) > 0 || c.retiring {
		return
	}
	c.log.Debug().Dur("idle", c.opts.IdleTimeout).Msg("room idle; stopping")
	c.retire()
}

// retire stops the room: the registry forgets the name at once (the next
// Get makes a new room), joins still in the mailbox are refused with
// ErrStopped, and the room stops after them.
func (c *core) retire() {
	if c.retiring {
		return
	}
	c.retiring = true
	c.disarmIdle()
	if c.ticker != nil {
		c.ticker.Stop()
	}
	if c.reg != nil {
		c.reg.retire(c.name, c.h)
	}
	c.root.Poison(c.self)
}

// giveUp is the behaviour host's GiveUp: the behaviour panicked past its
// budget (or under Stop, or Options.Behavior panicked), so the room stops,
// as by Room.Stop. The behaviour
// then sees only *actor.Stopping and *actor.Stopped.
func (c *core) giveUp(*supervisor.PanicError) {
	c.log.Warn().Msg("room behaviour given up on; stopping the room")
	c.retire()
}

// deliver runs the behaviour's Receive with msg as the current message (nil:
// the context's own message) through the host, which applies
// Options.BehaviorPanic to a panic. Once the host has given up, only
// *actor.Stopping and *actor.Stopped are delivered.
func (c *core) deliver(ctx actor.Context, msg any) {
	if c.host == nil {
		return
	}
	if c.host.Failed() {
		m := msg
		if m == nil {
			m = ctx.Message()
		}
		switch m.(type) {
		case *actor.Stopping, *actor.Stopped:
		default:
			return
		}
	}
	if msg == nil {
		c.host.Receive(ctx)
		return
	}
	c.host.Deliver(ctx, msg)
}

func respond[T any](ctx actor.Context, ch chan T, v T) {
	switch {
	case ch != nil:
		ch <- v // buffered, one answer: never blocks
	case ctx.Sender() != nil:
		ctx.Respond(v)
	}
}
