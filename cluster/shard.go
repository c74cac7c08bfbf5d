package cluster

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/wsactor/wsactor/cluster/wire"
	"github.com/wsactor/wsactor/room"
	"github.com/wsactor/wsactor/transport"
)

// shard is the behaviour of a node's local room (package room) for one
// cluster room: the per-node fan-out actor. The local room owns the local
// members (joined by Join, watched, dropped when their connection stops)
// and puts one shared transport.Frame into each member's queue; the shard
// adds the cluster side:
//
//   - it finds the room's grain (activating it on its owner) and registers
//     its members there, and again with a new grain after the old one
//     stopped or its node died (it watches the grain);
//   - it forwards the node's broadcasts to the grain, in order, keeping the
//     recent ones to replay to a new grain after a failover;
//   - it turns each Deliver from the grain into one frame for all local
//     members, dropping Delivers it has already delivered.
//
// It runs on the local room's goroutine, so it never blocks: lookups run in
// a goroutine that reports back with a message.
type shard struct {
	n      *Node
	name   string
	state  *room.State
	self   *actor.PID
	ref    *wire.Ref
	origin *wire.Origin
	quit   chan struct{}
	root   *actor.RootContext

	grain     *actor.PID // nil while looking it up
	hadGrain  bool       // a grain was known before: the next Register is a restore
	lostFrom  string     // address of the grain lost last
	lostNode  bool       // it was lost with its node (AddressTerminated)
	gen       uint64     // lookup generation
	resolving bool

	ctlSeq  uint64            // seq of Register, MemberJoin, Check
	acked   uint64            // highest seq the current grain acknowledged
	need    map[string]uint64 // member id → seq that carried it to the grain
	waiters map[string][]chan error

	outSeq uint64
	ring   []ringEntry // recent broadcasts, oldest first
	seen   map[originKey]uint64

	checkTimer *time.Timer
}

type ringEntry struct {
	p    *wire.Publish
	at   time.Time
	sent bool
}

type originKey struct {
	address string
	epoch   uint64
}

// Messages a shard sends itself or gets from this package.
type (
	resolved struct {
		gen uint64
		pid *actor.PID
	}
	checkTick  struct{}
	publishReq struct{ p *wire.Publish }
	awaitJoin  struct {
		id    string
		reply chan error
	}
)

func (*resolved) IgnoreDeadLetterLogging()   {}
func (*checkTick) IgnoreDeadLetterLogging()  {}
func (*publishReq) IgnoreDeadLetterLogging() {}
func (*awaitJoin) IgnoreDeadLetterLogging()  {}

const unsent = math.MaxUint64 // need[id] for a member not yet sent to a grain

func newShard(n *Node, name string, s *room.State) actor.Actor {
	return &shard{
		n: n, name: name, state: s,
		need:    map[string]uint64{},
		waiters: map[string][]chan error{},
		seen:    map[originKey]uint64{},
	}
}

func (s *shard) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *wire.Deliver:
		s.deliver(m)
	case *publishReq:
		s.publish(ctx, m.p)
	case *room.Joined:
		s.joined(ctx, m.Member)
	case *room.Left:
		id := m.Member.PID().Id
		delete(s.need, id)
		s.fail(id, ErrNotMember)
		if s.grain != nil {
			ctx.Send(s.grain, &wire.MemberLeave{Shard: s.ref, Id: id})
		}
	case *wire.Ack:
		s.onAck(ctx, m)
	case *awaitJoin:
		seq, ok := s.need[m.id]
		switch {
		case !ok:
			m.reply <- ErrNotMember
		case s.grain != nil && seq <= s.acked:
			m.reply <- nil
		default:
			s.waiters[m.id] = append(s.waiters[m.id], m.reply)
		}
	case *actor.Terminated:
		if samePID(m.Who, s.grain) {
			s.lost(ctx, m)
		}
	case *resolved:
		s.onResolved(ctx, m)
	case *checkTick:
		s.check(ctx)
	case *actor.Started:
		s.self = ctx.Self()
		s.ref = refOf(s.self)
		s.origin = &wire.Origin{Address: s.self.Address, Epoch: rand.Uint64()}
		s.quit = make(chan struct{})
		s.root = ctx.ActorSystem().Root
		s.resolve()
		s.armCheck()
	case *actor.Stopping:
		close(s.quit)
		if s.checkTimer != nil {
			s.checkTimer.Stop()
		}
		if s.grain != nil {
			ctx.Send(s.grain, &wire.Unregister{Shard: s.ref})
			ctx.Unwatch(s.grain)
		}
		for id := range s.waiters {
			s.fail(id, ErrStopped)
		}
	}
}

func (s *shard) joined(ctx actor.Context, mem room.Member) {
	id := mem.PID().Id
	if s.grain == nil {
		s.need[id] = unsent
		return
	}
	s.ctlSeq++
	s.need[id] = s.ctlSeq
	ctx.Send(s.grain, &wire.MemberJoin{Shard: s.ref, Seq: s.ctlSeq, Member: toWire(mem)})
}

func toWire(m room.Member) *wire.Member {
	meta, _ := m.Meta.(string)
	return &wire.Member{Id: m.PID().Id, User: m.User, Meta: meta, SinceUnixNano: m.Since.UnixNano()}
}

// register sends the grain every local member; it replaces what the grain
// knew about this shard.
func (s *shard) register(ctx actor.Context, restore bool) {
	s.ctlSeq++
	reg := &wire.Register{Shard: s.ref, Seq: s.ctlSeq, Restore: restore}
	s.state.Range(func(m room.Member) bool {
		reg.Members = append(reg.Members, toWire(m))
		s.need[m.PID().Id] = s.ctlSeq
		return true
	})
	ctx.Send(s.grain, reg)
}

func (s *shard) onAck(ctx actor.Context, m *wire.Ack) {
	if !sameRef(m.Room, s.grain) {
		return // from a grain this shard has left
	}
	if !m.Known {
		// The grain lost this shard (it saw the connection break, or the
		// member count differs): tell it everything again.
		s.register(ctx, true) // it may have missed broadcasts: ask for history
		return
	}
	if m.Seq > s.acked {
		s.acked = m.Seq
	}
	for id, chans := range s.waiters {
		if seq, ok := s.need[id]; ok && seq <= s.acked {
			for _, c := range chans {
				c <- nil
			}
			delete(s.waiters, id)
		}
	}
}

func (s *shard) fail(id string, err error) {
	for _, c := range s.waiters[id] {
		c <- err
	}
	delete(s.waiters, id)
}

// publish forwards one of this node's broadcasts to the grain, or keeps it
// until the grain is found. Either way it stays in the replay ring for a
// while.
func (s *shard) publish(ctx actor.Context, p *wire.Publish) {
	s.outSeq++
	p.Origin, p.OriginSeq = s.origin, s.outSeq
	e := ringEntry{p: p, at: time.Now()}
	if s.grain != nil {
		ctx.Send(s.grain, p)
		e.sent = true
	} else {
		s.n.stats.buffered.Add(1)
	}
	s.ring = append(s.ring, e)
	s.trim()
}

// trim drops sent broadcasts older than ReplayAge, and the oldest ones past
// ReplayWindow (counting those never sent as dropped).
func (s *shard) trim() {
	i := 0
	now := time.Now()
	for i < len(s.ring) && s.ring[i].sent && now.Sub(s.ring[i].at) > s.n.cfg.ReplayAge {
		i++
	}
	for len(s.ring)-i > s.n.cfg.ReplayWindow {
		if !s.ring[i].sent {
			s.n.stats.dropped.Add(1)
		}
		i++
	}
	if i > 0 {
		clear(s.ring[:i])
		s.ring = s.ring[i:]
	}
}

// deliver puts one Deliver into every local member's queue as one frame.
func (s *shard) deliver(d *wire.Deliver) {
	s.n.stats.deliversReceived.Add(1)
	p := d.GetPublish()
	if p == nil {
		return
	}
	ok := originKey{p.GetOrigin().GetAddress(), p.GetOrigin().GetEpoch()}
	if last, seen := s.seen[ok]; seen && p.OriginSeq <= last {
		s.n.stats.duplicates.Add(1)
		return
	}
	if len(s.seen) >= 4096 {
		clear(s.seen) // origins come and go; only recent ones matter
	}
	s.seen[ok] = p.OriginSeq
	typ := transport.MessageType(p.Type)
	var f *transport.Frame
	if p.Key != "" {
		f = transport.NewKeyedFrame(typ, p.Data, p.Key)
	} else {
		f = transport.NewFrame(typ, p.Data)
	}
	var except *actor.PID
	if e := p.GetExcept(); e != nil && e.Address == s.self.Address {
		except = pidOf(e)
	}
	s.n.stats.framesQueued.Add(int64(s.state.Broadcast(f, except)))
}

// lost handles the grain's Terminated: it stopped (moved by a rebalance,
// or stopped itself) or its node died (AddressTerminated).
func (s *shard) lost(ctx actor.Context, m *actor.Terminated) {
	s.lostFrom = s.grain.Address
	s.lostNode = m.Why == actor.TerminatedReason_AddressTerminated
	if s.lostNode {
		s.n.suspect(s.grain.Address)
	}
	s.n.log.Info().Str("room", s.name).Str("grain", s.grain.Address).Str("why", m.Why.String()).
		Msg("room grain lost; looking it up again")
	s.grain = nil
	s.hadGrain = true
	s.resolve()
}

// resolve looks the grain up in a goroutine, retrying with backoff (and at
// every topology change) until it is found or the shard stops.
func (s *shard) resolve() {
	if s.resolving {
		return
	}
	s.resolving = true
	s.gen++
	gen, name, n, root, self, quit := s.gen, s.name, s.n, s.root, s.self, s.quit
	go func() {
		delay := 20 * time.Millisecond
		for {
			ctx, cancel := context.WithCancel(n.ctx)
			pid, err := n.lookup(ctx, name)
			cancel()
			if err == nil {
				root.Send(self, &resolved{gen: gen, pid: pid})
				return
			}
			if !errors.Is(err, errSuspect) && !errors.Is(err, ErrNoOwner) {
				n.log.Debug().Err(err).Str("room", name).Msg("room lookup failed; retrying")
			}
			t := time.NewTimer(delay)
			select {
			case <-quit:
				t.Stop()
				return
			case <-n.ctx.Done():
				t.Stop()
				return
			case <-n.topologyChanged():
				t.Stop()
			case <-t.C:
			}
			delay = min(delay*2, 250*time.Millisecond)
		}
	}()
}

func (s *shard) onResolved(ctx actor.Context, m *resolved) {
	if m.gen != s.gen {
		return
	}
	s.resolving = false
	if samePID(m.pid, s.grain) {
		return
	}
	if s.grain != nil {
		// Moving from a grain that is still alive: leave it first, so it
		// stops delivering here.
		ctx.Send(s.grain, &wire.Unregister{Shard: s.ref})
		ctx.Unwatch(s.grain)
		s.lostFrom, s.lostNode, s.hadGrain = s.grain.Address, false, true
	}
	s.grain = m.pid
	s.acked = 0
	ctx.Watch(s.grain)
	restore := s.hadGrain
	s.register(ctx, restore)
	// Broadcasts in order: after a failover every kept one (receivers drop
	// those they already delivered), otherwise those that waited.
	replayed := int64(0)
	for i := range s.ring {
		e := &s.ring[i]
		if e.sent && !restore {
			continue
		}
		if e.sent {
			replayed++
		}
		ctx.Send(s.grain, e.p)
		e.sent = true
	}
	if restore {
		s.n.stats.restores.Add(1)
		s.n.stats.replayed.Add(replayed)
		ev := &RoomMoved{Room: s.name, From: s.lostFrom, To: s.grain.Address, NodeLost: s.lostNode}
		s.state.Range(func(mem room.Member) bool {
			ctx.Send(mem.PID(), ev)
			return true
		})
		s.n.log.Info().Str("room", s.name).Str("from", s.lostFrom).Str("to", s.grain.Address).
			Int64("replayed", replayed).Int("members", s.state.Len()).Msg("room grain found again; members re-registered")
	}
}

// check asks the grain whether it still knows this shard's members, or
// looks it up again if it is not known.
func (s *shard) check(ctx actor.Context) {
	s.trim()
	if s.grain != nil {
		s.ctlSeq++
		ctx.Send(s.grain, &wire.Check{Shard: s.ref, Seq: s.ctlSeq, Members: uint32(s.state.Len())})
	} else {
		s.resolve()
	}
	s.armCheck()
}

func (s *shard) armCheck() {
	root, self := s.root, s.self
	s.checkTimer = time.AfterFunc(s.n.cfg.CheckInterval, func() { root.Send(self, &checkTick{}) })
}
