package cluster

import (
	"fmt"
	"runtime/debug"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	pcluster "github.com/asynkron/protoactor-go/cluster"
	"github.com/rs/zerolog"

	"github.com/wsactor/wsactor/cluster/wire"
)

// grain is a room's virtual actor: one per room in the whole cluster, on the
// node disthash places it on. It knows, per node, the shard that fans its
// broadcasts out there and that shard's members; it never touches a
// connection. Its state is rebuilt from the shards' Registers whenever it is
// activated (first use, failover, rebalance).
type grain struct {
	n    *Node
	name string
	self *actor.PID
	ref  *wire.Ref
	log  zerolog.Logger

	shards map[refKey]*shardState
	seq    uint64 // broadcasts fanned out

	// history holds the recent Delivers (at most ReplayWindow, none older
	// than twice ReplayAge), sent to a shard that registers again after
	// losing its grain: it may have missed them.
	history []historyEntry

	checkTimer *time.Timer
	notOwner   int
}

type historyEntry struct {
	d  *wire.Deliver
	at time.Time
}

type shardState struct {
	pid     *actor.PID
	remote  bool
	members map[string]*wire.Member
}

// refKey identifies an actor by address and id (PIDs compare by value).
type refKey struct{ address, id string }

func keyOfPID(p *actor.PID) refKey { return refKey{p.Address, p.Id} }
func keyOfRef(r *wire.Ref) refKey  { return refKey{r.GetAddress(), r.GetId()} }
func refOf(p *actor.PID) *wire.Ref { return &wire.Ref{Address: p.Address, Id: p.Id} }
func pidOf(r *wire.Ref) *actor.PID { return actor.NewPID(r.GetAddress(), r.GetId()) }
func samePID(a, b *actor.PID) bool {
	return a != nil && b != nil && a.Address == b.Address && a.Id == b.Id
}
func sameRef(r *wire.Ref, p *actor.PID) bool {
	return r != nil && p != nil && r.Address == p.Address && r.Id == p.Id
}

// ownerCheck is the periodic ownership check, sent by the grain's timer.
type ownerCheck struct{}

func (*ownerCheck) IgnoreDeadLetterLogging() {}

func newGrain(n *Node) actor.Actor {
	return &grain{n: n, log: n.log, shards: map[refKey]*shardState{}}
}

// Receive recovers a panic and drops the message: a restart would replace
// the grain with an empty one under the same PID, and no shard would notice
// that it had to register again.
func (g *grain) Receive(ctx actor.Context) {
	defer func() {
		if r := recover(); r != nil {
			g.log.Error().Str("panic", fmt.Sprint(r)).Str("message", fmt.Sprintf("%T", ctx.Message())).
				Bytes("stack", debug.Stack()).Msg("room grain panicked; message dropped")
		}
	}()
	switch m := ctx.Message().(type) {
	case *wire.Publish:
		g.n.stats.published.Add(1)
		g.fanout(ctx, m)
	case *wire.Register:
		g.register(ctx, m)
	case *wire.MemberJoin:
		st := g.shards[keyOfRef(m.Shard)]
		if st == nil {
			g.ack(ctx, m.Shard, m.Seq, false)
			return
		}
		st.members[m.Member.GetId()] = m.Member
		g.ack(ctx, m.Shard, m.Seq, true)
	case *wire.MemberLeave:
		if st := g.shards[keyOfRef(m.Shard)]; st != nil {
			delete(st.members, m.Id)
		}
	case *wire.Check:
		st := g.shards[keyOfRef(m.Shard)]
		g.ack(ctx, m.Shard, m.Seq, st != nil && len(st.members) == int(m.Members))
	case *wire.Unregister:
		if st := g.shards[keyOfRef(m.Shard)]; st != nil {
			ctx.Unwatch(st.pid)
			delete(g.shards, keyOfRef(m.Shard))
		}
	case *wire.MembersRequest:
		ctx.Respond(g.memberList())
	case *actor.Terminated:
		// A shard stopped, or its node died (AddressTerminated): its members
		// went with it.
		if st, ok := g.shards[keyOfPID(m.Who)]; ok {
			delete(g.shards, keyOfPID(m.Who))
			g.log.Debug().Str("shard", m.Who.Address).Int("members", len(st.members)).
				Str("why", m.Why.String()).Msg("room dropped a node's members")
		}
	case *ownerCheck:
		g.checkOwner(ctx)
	case *pcluster.ClusterInit:
		g.name = m.Identity.GetIdentity()
		g.log = g.n.log.With().Str("room", g.name).Logger()
		g.log.Debug().Msg("room grain activated")
	case *actor.Started:
		g.self = ctx.Self()
		g.ref = refOf(g.self)
		g.n.stats.roomsActivated.Add(1)
		root, self := ctx.ActorSystem().Root, ctx.Self()
		g.checkTimer = time.AfterFunc(g.n.cfg.CheckInterval, func() { root.Send(self, &ownerCheck{}) })
	case *actor.Stopping:
		g.checkTimer.Stop()
		g.log.Debug().Int("shards", len(g.shards)).Msg("room grain stopping")
	}
}

// register replaces what the grain knows about one shard.
func (g *grain) register(ctx actor.Context, m *wire.Register) {
	key := keyOfRef(m.Shard)
	st := g.shards[key]
	if st == nil {
		st = &shardState{pid: pidOf(m.Shard), remote: m.Shard.GetAddress() != g.self.Address}
		g.shards[key] = st
		ctx.Watch(st.pid)
	}
	st.members = make(map[string]*wire.Member, len(m.Members))
	for _, mem := range m.Members {
		st.members[mem.GetId()] = mem
	}
	if m.Restore {
		// The shard lost its grain (this one's predecessor, or this one
		// across a broken connection) and may have missed what this grain
		// fanned out before it registered: send it the recent history; it
		// drops what it already has. Its members then get everything in
		// this grain's order.
		g.trimHistory()
		for _, h := range g.history {
			ctx.Send(st.pid, h.d)
		}
		g.n.stats.historySent.Add(int64(len(g.history)))
	}
	g.ack(ctx, m.Shard, m.Seq, true)
}

func (g *grain) ack(ctx actor.Context, shard *wire.Ref, seq uint64, known bool) {
	if shard == nil {
		return
	}
	ctx.Send(pidOf(shard), &wire.Ack{Room: g.ref, Seq: seq, Known: known})
}

// fanout sends one Deliver to every shard with members: one message per
// node, whatever the number of members there.
func (g *grain) fanout(ctx actor.Context, p *wire.Publish) {
	g.seq++
	d := &wire.Deliver{Publish: p, RoomSeq: g.seq}
	var sent, remote int64
	for _, st := range g.shards {
		if len(st.members) == 0 {
			continue
		}
		ctx.Send(st.pid, d)
		sent++
		if st.remote {
			remote++
		}
	}
	g.n.stats.deliversSentLocal.Add(sent - remote)
	g.n.stats.deliversSentRemote.Add(remote)
	g.history = append(g.history, historyEntry{d: d, at: time.Now()})
	if len(g.history) > g.n.cfg.ReplayWindow+g.n.cfg.ReplayWindow/4 {
		g.trimHistory()
	}
}

// trimHistory keeps at most ReplayWindow entries, none older than twice
// ReplayAge.
func (g *grain) trimHistory() {
	i := max(0, len(g.history)-g.n.cfg.ReplayWindow)
	for i < len(g.history) && time.Since(g.history[i].at) > 2*g.n.cfg.ReplayAge {
		i++
	}
	if i > 0 {
		clear(g.history[:i])
		g.history = g.history[i:]
	}
}

func (g *grain) memberList() *wire.MemberList {
	out := &wire.MemberList{Room: g.name, Host: g.self.Address}
	for _, st := range g.shards {
		nm := &wire.NodeMembers{Shard: refOf(st.pid)}
		for _, m := range st.members {
			nm.Members = append(nm.Members, m)
		}
		out.Nodes = append(out.Nodes, nm)
	}
	return out
}

// checkOwner stops a grain whose node no longer owns its room (a stale
// activation, made by a caller with an old view of the topology) after two
// checks in a row; its shards then find the owner's grain.
func (g *grain) checkOwner(ctx actor.Context) {
	owner := g.n.Owner(g.name)
	if owner != "" && owner != g.self.Address {
		g.notOwner++
	} else {
		g.notOwner = 0
	}
	if g.notOwner >= 2 {
		g.log.Warn().Str("owner", owner).Msg("room grain is not on its owner; stopping so that shards move to the owner")
		ctx.Stop(ctx.Self())
		return
	}
	root, self := ctx.ActorSystem().Root, ctx.Self()
	g.checkTimer = time.AfterFunc(g.n.cfg.CheckInterval, func() { root.Send(self, &ownerCheck{}) })
}
