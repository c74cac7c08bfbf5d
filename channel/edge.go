package channel

import (
	"encoding/json"
	"math/rand/v2"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/wsactor/wsactor/room"
	"github.com/wsactor/wsactor/transport"
)

// edge is the behaviour of a topic's room on a node of a cluster: the
// room holds this node's members of the topic (watched, as in one
// process), and the edge relays between them and the topic's owner node.
// Joins, leaves, pushes and publishes go to the owner; what the owner
// sends to members comes back as one message per node, which the edge
// turns into one shared frame per encoding for its members.
//
// When the topic's owner changes (a node died or joined), the edge ends its
// members' memberships with "left" and reason "stopped": clients join again
// at once with the last position they applied and recover from the new
// owner, which continues the same stream from the backup's copy. Requests
// on their way to the old owner are answered "unavailable".
type edge struct {
	h      *Hub
	p      *ClusterPort
	name   string
	state  *room.State
	shared *roomShared
	owner  string

	joins     map[string]*linkMsg // member id → its join, until the owner answers it
	pushes    map[pushKey]*actor.PID
	publishes map[uint64]*publishReq
	ref       uint64
	inc, seq  uint64      // numbering of this edge's messages to its owner
	in        seqCheck    // the owner's messages
	checker   *time.Timer // a check to the owner, after sending it anything
	retry     *time.Timer
	backoff   time.Duration // before resending refused joins; doubles to 2s
	self      *actor.PID
}

type pushKey struct {
	id  string
	ref uint64
}

// edgeRetry resends joins that a node that was not the owner refused;
// edgeCheck sends the owner a numbered check.
type (
	edgeRetry struct{}
	edgeCheck struct{}
)

func (*edgeRetry) IgnoreDeadLetterLogging() {}
func (*edgeCheck) IgnoreDeadLetterLogging() {}

func newEdge(h *Hub, name string) func(*room.State) actor.Actor {
	shared := &roomShared{}
	h.shared.Store(name, shared)
	return func(s *room.State) actor.Actor {
		return &edge{
			h: h, p: h.port, name: name, state: s, shared: shared,
			joins: map[string]*linkMsg{}, pushes: map[pushKey]*actor.PID{}, publishes: map[uint64]*publishReq{},
		}
	}
}

func (e *edge) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *room.Joined:
		e.joined(m)
	case *room.Left:
		e.left(m)
	case *Push:
		e.push(ctx, m)
	case *leaveDone:
		_ = m.conn.SendFrame(msgFrames(&wireMsg{T: typeReply, Ref: m.ref, Topic: m.topic, Status: "ok"}).get(m.binary))
	case *publishReq:
		e.ref++
		e.publishes[e.ref] = m
		e.toOwner(&linkMsg{K: linkPublish, Topic: e.name, Ref: e.ref, Event: m.event, Data: m.data.json, Bytes: m.data.bin})
	case *linkIn:
		e.link(ctx, m)
	case *topologyChanged:
		if o := e.p.owner(e.name); o != e.owner {
			e.moved(ctx, o)
		}
	case *edgeCheck:
		e.checker = nil
		e.toOwner(&linkMsg{K: linkCheck, Topic: e.name, Of: "owner"})
	case *edgeRetry:
		e.retry = nil
		for _, j := range e.joins {
			e.toOwner(j)
		}
	case *actor.Started:
		e.self = ctx.Self()
		e.owner = e.p.owner(e.name)
		e.inc = rand.Uint64()
		e.shared.started(e.h)
	case *actor.Stopped:
		if e.retry != nil {
			e.retry.Stop()
		}
		if e.checker != nil {
			e.checker.Stop()
		}
		e.failPending(ctx)
		e.shared.stopped(e.h, e.name)
	}
}

func (e *edge) joined(m *room.Joined) {
	jm, ok := m.Member.Meta.(*joinMeta)
	if !ok {
		return
	}
	e.shared.count(e.h, &jm.member, 1)
	meta, err := marshalData(jm.member.Meta)
	if err != nil {
		meta = json.RawMessage("null")
	}
	j := &linkMsg{
		K: linkJoin, Topic: e.name, ID: jm.member.ID, Ref: jm.ref,
		Member:  &linkMember{ID: jm.member.ID, User: jm.member.User, Meta: meta, Binary: jm.member.Binary},
		Params:  jm.params,
		Recover: jm.recover, History: jm.history, Reply: jm.reply,
	}
	jm.params, jm.reply, jm.recover = nil, nil, nil
	e.joins[jm.member.ID] = j
	e.toOwner(j)
}

func (e *edge) left(m *room.Left) {
	jm, ok := m.Member.Meta.(*joinMeta)
	if !ok {
		return
	}
	e.shared.count(e.h, &jm.member, -1)
	delete(e.joins, jm.member.ID)
	e.toOwner(&linkMsg{K: linkLeave, Topic: e.name, ID: jm.member.ID, Reason: m.Reason.String()})
}

func (e *edge) push(ctx actor.Context, p *Push) {
	p.system = ctx.ActorSystem()
	if _, ok := e.state.Member(p.session); !ok {
		p.Fail(&Error{Code: CodeNotJoined, Message: "not in topic " + e.name})
		return
	}
	if p.ref != 0 {
		e.pushes[pushKey{p.From.ID, p.ref}] = p.session
	}
	e.toOwner(&linkMsg{K: linkPush, Topic: e.name, ID: p.From.ID, Ref: p.ref, Event: p.Event, Data: p.Data, Bytes: p.Bin})
}

func (e *edge) link(ctx actor.Context, in *linkIn) {
	m := in.m
	if in.from != e.owner && m.K != linkRedirect {
		return // from an owner this edge has left
	}
	if m.K != linkRedirect && !e.in.next(m, false) {
		e.resync(ctx, "a message from the owner was lost")
		return
	}
	if m.K == linkResync {
		e.resync(ctx, "the owner lost a message from this node")
		return
	}
	switch m.K {
	case linkOut:
		e.out(m)
	case linkRemove:
		if mem, ok := e.member(m.ID); ok {
			ctx.Send(mem.PID(), &topicGone{topic: e.name, reason: leftRemoved})
			e.state.Remove(mem.PID())
		}
	case linkAnswer:
		k := pushKey{m.ID, m.Ref}
		if pid := e.pushes[k]; pid != nil {
			delete(e.pushes, k)
			ctx.Send(pid, &pushAnswer{ref: m.Ref, topic: e.name, p: payload{json: m.Data, bin: m.Bytes}, err: m.Err})
		}
	case linkPublished:
		if req := e.publishes[m.Ref]; req != nil {
			delete(e.publishes, m.Ref)
			req.done <- publishResult{pos: Position{Epoch: m.Epoch, Offset: m.Last}}
		}
	case linkRedirect:
		e.redirected(ctx, m)
	}
}

// out sends the owner's message to its local targets.
func (e *edge) out(m *linkMsg) {
	var txt, bin *transport.Frame
	if m.Text != nil {
		txt = transport.NewFrame(transport.MessageText, m.Text)
	}
	if m.Bin != nil {
		bin = transport.NewFrame(transport.MessageBinary, m.Bin)
	}
	pick := func(rm room.Member) *transport.Frame {
		if isBinary(rm) {
			return bin
		}
		return txt
	}
	if !m.All {
		if e.joins[m.ID] != nil {
			delete(e.joins, m.ID) // the first message to a member is its join's answer
			e.backoff = 0
		}
		if mem, ok := e.member(m.ID); ok {
			if f := pick(mem); f != nil {
				_ = mem.Conn.SendFrame(f)
			}
		}
		return
	}
	var except *actor.PID
	if m.ID != "" {
		if mem, ok := e.member(m.ID); ok {
			except = mem.PID()
		}
	}
	// Members whose join the owner has not answered yet get nothing sent
	// to all: it was sent before their join took effect (their join reply
	// comes first, with what they missed).
	switch nb := e.shared.binary; {
	case len(e.joins) > 0:
		e.state.Range(func(rm room.Member) bool {
			jm, ok := rm.Meta.(*joinMeta)
			if ok && e.joins[jm.member.ID] == nil && (except == nil || !rm.PID().Equal(except)) {
				if f := pick(rm); f != nil {
					_ = rm.Conn.SendFrame(f.MarkShared())
				}
			}
			return true
		})
	case nb == 0 && txt != nil:
		e.state.Broadcast(txt, except)
	case nb == e.state.Len() && bin != nil:
		e.state.Broadcast(bin, except)
	default:
		e.state.Range(func(rm room.Member) bool {
			if except == nil || !rm.PID().Equal(except) {
				if f := pick(rm); f != nil {
					_ = rm.Conn.SendFrame(f.MarkShared())
				}
			}
			return true
		})
	}
}

func (e *edge) member(id string) (room.Member, bool) { return memberByID(e.state, id) }

// redirected handles a refusal from a node that does not own the topic
// (its view of the cluster, or ours, is behind): joins are sent again
// shortly, pushes and publishes are answered "unavailable".
func (e *edge) redirected(ctx actor.Context, m *linkMsg) {
	switch m.Of {
	case linkJoin:
		if e.retry == nil {
			e.backoff = min(max(2*e.backoff, 50*time.Millisecond), 2*time.Second)
			root, self := ctx.ActorSystem().Root, ctx.Self()
			e.retry = time.AfterFunc(e.backoff, func() { root.Send(self, &edgeRetry{}) })
		}
	case linkPush:
		k := pushKey{m.ID, m.Ref}
		if pid := e.pushes[k]; pid != nil {
			delete(e.pushes, k)
			ctx.Send(pid, &pushAnswer{ref: m.Ref, topic: e.name, err: errUnavailable})
		}
	case linkPublish:
		if req := e.publishes[m.Ref]; req != nil {
			delete(e.publishes, m.Ref)
			req.done <- publishResult{err: ErrMoved}
		}
	}
}

// toOwner sends m to the owner, numbered.
func (e *edge) toOwner(m *linkMsg) {
	e.seq++
	m.Inc, m.Seq = e.inc, e.seq
	e.p.send(e.owner, m)
	if m.K != linkCheck && e.checker == nil && e.self != nil {
		root, self := e.h.system.Root, e.self
		e.checker = time.AfterFunc(linkCheckInterval, func() { root.Send(self, &edgeCheck{}) })
	}
}

// resync recovers from a lost message between this node and the owner
// (a broken link): every local membership ends with "stopped" and the
// clients rejoin, recovering what they missed; joins not answered yet are
// sent again.
func (e *edge) resync(ctx actor.Context, why string) {
	e.h.log.Warn().Str("topic", e.name).Str("owner", e.owner).Int("members", e.state.Len()).
		Msg("topic: " + why + "; members rejoin")
	e.rejoin(ctx, e.owner)
}

// moved follows the topic to its new owner: every local membership ends
// with "stopped" (clients join again and recover from the new owner), and
// requests on their way to the old owner are answered.
func (e *edge) moved(ctx actor.Context, to string) {
	e.h.log.Debug().Str("topic", e.name).Str("from", e.owner).Str("to", to).Int("members", e.state.Len()).
		Msg("topic owner changed; members rejoin")
	e.rejoin(ctx, to)
}

// rejoin ends the local members' memberships (but those still joining)
// and continues with owner to.
func (e *edge) rejoin(ctx actor.Context, to string) {
	var kicked []room.Member
	e.state.Range(func(m room.Member) bool {
		if jm, ok := m.Meta.(*joinMeta); ok && e.joins[jm.member.ID] == nil {
			kicked = append(kicked, m)
		}
		return true
	})
	for _, m := range kicked {
		ctx.Send(m.PID(), &topicGone{topic: e.name, reason: leftStopped})
		e.state.Remove(m.PID()) // its Left tells the old owner
	}
	joins := e.joins
	e.joins = map[string]*linkMsg{}
	e.failPending(ctx)
	if to != e.owner {
		e.owner, e.in = to, seqCheck{}
		e.inc, e.seq = rand.Uint64(), 0
	}
	// Joins not answered yet go (again) to the owner: their clients have
	// had nothing from it.
	for id, j := range joins {
		e.joins[id] = j
		e.toOwner(j)
	}
}

func (e *edge) failPending(ctx actor.Context) {
	for k, pid := range e.pushes {
		ctx.Send(pid, &pushAnswer{ref: k.ref, topic: e.name, err: errUnavailable})
	}
	clear(e.pushes)
	for _, req := range e.publishes {
		req.done <- publishResult{err: ErrMoved}
	}
	clear(e.publishes)
	clear(e.joins)
}
