package channel

import (
	"fmt"
	"runtime/debug"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/wsactor/wsactor/room"
	"github.com/wsactor/wsactor/supervisor"
)

// owner is a topic's actor on its owner node when the Hub runs on a
// cluster: the topic's history, presence and behaviour (a topicActor whose
// members are on every node), and the cluster side:
//
//   - when it starts it gathers the copies of the topic's history from every
//     live node (the previous owner's backup holds one) and continues the
//     newest, same epoch and offsets; with none, it starts a new epoch;
//   - it replicates every kept event to the backup node (the second in the
//     topic's ranking, the node that owns the topic if this one goes) and
//     sends nothing to members, and answers nothing, before the backup has
//     acknowledged every event kept so far: what any client saw or was told
//     survives this node's death;
//   - it stops when its node no longer owns the topic (the new owner
//     gathers from it), or after IdleTimeout without members.
type owner struct {
	p    *ClusterPort
	name string
	self *actor.PID
	opts TopicOptions
	a    *topicActor // nil while gathering

	term     uint64
	expect   map[string]bool          // nodes asked in the gather, true once answered
	best     *linkMsg                 // the newest copy gathered
	copies   map[string]bool          // nodes that answered with a copy
	partial  map[string][]StoredEvent // a copy's events whose last chunk has not come
	waiting  []*linkIn                // requests that came while gathering
	gathered *time.Timer              // the gather's deadline
	backup   string                   // "" with no other node
	acked    uint64                   // the backup's acknowledged offset, this term
	outbox   []outItem                // what waits for the backup's acknowledgement
	members  map[string]*rmember      // by member id
	nodes    map[string]*nodeCount
	seqOut   map[string]uint64    // messages sent to each edge node, this term
	seqIn    map[string]*seqCheck // messages from each edge node
	active   map[string]bool      // edge nodes sent something since the last check
	checker  *time.Timer
	stopping bool

	idle   *time.Timer
	tick   *time.Timer
	seq    uint64
	panics *supervisor.Counter // the behaviour's, against HandlerPanic's budget
}

type outItem struct {
	need uint64
	node string
	m    *linkMsg
}

type rmember struct {
	m    Member
	node string
}

type nodeCount struct{ text, bin int }

// Messages the owner sends itself.
type (
	gatherDeadline struct{ term uint64 }
	ownerIdle      struct{}
	ownerTick      struct{}
	ownerCheck     struct{}
	removedMember  struct{ m Member }
)

func (*gatherDeadline) IgnoreDeadLetterLogging() {}
func (*ownerIdle) IgnoreDeadLetterLogging()      {}
func (*ownerTick) IgnoreDeadLetterLogging()      {}
func (*ownerCheck) IgnoreDeadLetterLogging()     {}

// GatherTimeout bounds how long a new owner waits for nodes' copies of a
// topic's history before it goes on with those it has.
const gatherTimeout = 2 * time.Second

func newOwner(p *ClusterPort, name string) *owner {
	var to *TopicOptions
	if p.h.opts.Topics != nil {
		to = p.h.opts.Topics(name)
	}
	return &owner{
		p: p, name: name, opts: to.withDefaults(),
		members: map[string]*rmember{}, nodes: map[string]*nodeCount{},
		seqOut: map[string]uint64{}, seqIn: map[string]*seqCheck{}, active: map[string]bool{},
	}
}

func (o *owner) Receive(ctx actor.Context) {
	defer func() {
		if r := recover(); r != nil {
			o.p.h.log.Error().Str("topic", o.name).Str("panic", fmt.Sprint(r)).
				Str("message", fmt.Sprintf("%T", ctx.Message())).Bytes("stack", debug.Stack()).
				Msg("topic behaviour panicked; message dropped")
			o.panicked(ctx)
		}
	}()
	switch m := ctx.Message().(type) {
	case *linkIn:
		o.link(ctx, m)
	case *gatherDeadline:
		if m.term == o.term && o.a == nil {
			o.adopt(ctx)
		}
	case *topologyChanged:
		o.topology(ctx)
	case *removedMember:
		if o.a != nil {
			o.a.leave(ctx, &m.m, room.LeftRemoved)
			o.checkIdle(ctx)
		}
	case *ownerIdle:
		o.idle = nil
		if o.a != nil && len(o.members) == 0 && !o.stopping {
			// A topic that ended forgets its history; one whose node no
			// longer owns it leaves the copy to the next owner.
			ranks := o.p.c.Rank(o.name)
			o.stop(ctx, len(ranks) == 0 || ranks[0] == o.p.self)
		}
	case *ownerCheck:
		o.checker = nil
		for node := range o.active {
			o.toEdge(node, &linkMsg{K: linkCheck, Topic: o.name})
		}
		clear(o.active)
	case *ownerTick:
		if o.a != nil {
			o.a.t.hist.expire(time.Now())
			if o.a.user != nil {
				o.seq++
				o.a.deliver(ctx, &room.Tick{Seq: o.seq})
			}
			o.armTick(ctx)
		}
	case *actor.Started:
		o.self = ctx.Self()
		o.startGather(ctx, uint64(time.Now().UnixNano()))
	case *actor.Stopping:
		o.p.ownerDone(o.name, o.self)
		o.stopTimers()
		if o.a != nil && o.a.user != nil {
			o.a.user.Receive(ctx)
		}
	case *actor.Stopped:
		if o.a != nil && o.a.user != nil {
			o.a.user.Receive(ctx)
		}
	default:
		if o.a != nil && o.a.user != nil {
			o.a.user.Receive(ctx)
		}
	}
}

// panicked applies TopicOptions.HandlerPanic, as a room does in one
// process: resume or restart the behaviour within the budget; past it (or
// at once under supervisor.Stop) the topic stops: every member is told
// "left" / "stopped", its history is dropped (the next topic of the name
// starts a new epoch, and rejoining clients are told).
func (o *owner) panicked(ctx actor.Context) {
	if o.a == nil || o.stopping {
		return
	}
	pol := o.opts.HandlerPanic
	if o.panics == nil {
		o.panics = supervisor.NewCounter(pol.Budget)
	}
	if pol.Directive == supervisor.Stop || !o.panics.Fail(time.Now()) {
		o.p.h.log.Error().Str("topic", o.name).Str("policy", pol.Directive.String()).
			Msg("topic behaviour failed past its HandlerPanic policy; the topic stops")
		nodes := make([]string, 0, len(o.nodes))
		for node := range o.nodes {
			nodes = append(nodes, node)
		}
		// Stopped first (the port forgets this owner), then the members are
		// told: their rejoins reach the next owner, not this one.
		o.stop(ctx, true)
		for _, node := range nodes {
			o.toEdge(node, &linkMsg{K: linkResync, Topic: o.name})
		}
		return
	}
	if pol.Directive == supervisor.Restart && o.opts.Handler != nil {
		o.a.user = o.opts.Handler(o.a.t)
		o.a.deliver(ctx, &actor.Started{})
	}
}

// startGather asks every live node for its copy of the topic's history.
func (o *owner) startGather(ctx actor.Context, term uint64) {
	o.term = max(term, o.term+1)
	o.expect, o.copies, o.best = map[string]bool{}, map[string]bool{}, nil
	o.partial = map[string][]StoredEvent{}
	for _, n := range o.p.c.Rank(o.name) {
		o.expect[n] = false
	}
	o.expect[o.p.self] = false
	if o.gathered != nil {
		o.gathered.Stop()
	}
	root, self, term := ctx.ActorSystem().Root, ctx.Self(), o.term
	o.gathered = time.AfterFunc(gatherTimeout, func() { root.Send(self, &gatherDeadline{term: term}) })
	for n := range o.expect {
		o.p.send(n, &linkMsg{K: linkGather, Topic: o.name, Term: o.term})
	}
}

func (o *owner) link(ctx actor.Context, in *linkIn) {
	m := in.m
	switch m.K {
	case linkState:
		o.state(ctx, in.from, m)
		return
	case linkReplAck:
		o.replAck(ctx, in.from, m)
		return
	case linkGather:
		if m.Term > o.term {
			o.handOver(ctx, in.from, m) // a newer owner elsewhere
		} else {
			o.p.send(in.from, &linkMsg{K: linkState, Topic: o.name, Term: o.term})
		}
		return
	}
	if (m.K == linkJoin || m.K == linkLeave || m.K == linkPush || m.K == linkPublish || m.K == linkCheck) && !in.checked {
		in.checked = true
		c := o.seqIn[in.from]
		if c == nil {
			c = &seqCheck{}
			o.seqIn[in.from] = c
		}
		if !c.next(m, c.inc == 0) && !o.stopping {
			o.resync(ctx, in.from)
		}
	}
	if m.K == linkCheck {
		return // numbered, nothing else
	}
	if o.stopping {
		if m.K != linkLeave {
			o.p.send(in.from, &linkMsg{K: linkRedirect, Topic: o.name, Of: m.K, ID: m.ID, Ref: m.Ref})
		}
		return
	}
	if o.a == nil {
		o.waiting = append(o.waiting, in)
		return
	}
	switch m.K {
	case linkJoin:
		o.join(ctx, in.from, m)
	case linkLeave:
		if r := o.members[m.ID]; r != nil && r.node == in.from {
			o.drop(r)
			o.a.leave(ctx, &r.m, leaveReasonOf(m.Reason))
			o.checkIdle(ctx)
		}
	case linkPush:
		o.push(ctx, in.from, m)
	case linkResync: // queued while gathering
		o.emit(in.from, &linkMsg{K: linkResync, Topic: o.name})
	case linkPublish:
		pos := o.a.t.publish(m.Event, payload{json: m.Data, bin: m.Bytes})
		o.emit(in.from, &linkMsg{K: linkPublished, Topic: o.name, Ref: m.Ref, OK: true, Epoch: pos.Epoch, Last: pos.Offset})
	}
}

// state takes one node's answer to the gather.
func (o *owner) state(ctx actor.Context, from string, m *linkMsg) {
	if o.a != nil {
		return
	}
	switch {
	case !m.OK && m.Reason == reasonNotOwner:
		// That node does not see this one as the owner: serving now could
		// fork the stream. Stop; the members' nodes ask again later.
		if m.Term == o.term {
			o.p.h.log.Debug().Str("topic", o.name).Str("node", from).Msg("topic gather refused: the node sees another owner")
			o.stop(ctx, false)
		}
		return
	case !m.OK:
		// That node saw a newer owner's gather: outbid it.
		if m.Term >= o.term {
			o.startGather(ctx, m.Term+1)
		}
		return
	case m.Term != o.term:
		return
	case m.More:
		o.partial[from] = append(o.partial[from], m.Events...)
		return
	}
	if part := o.partial[from]; part != nil {
		m.Events = append(part, m.Events...)
		delete(o.partial, from)
	}
	if _, asked := o.expect[from]; asked {
		o.expect[from] = true
	}
	if m.Have {
		o.copies[from] = true
		if o.best == nil || m.Epoch == o.best.Epoch && m.Last > o.best.Last || m.Epoch != o.best.Epoch && m.Term > o.best.Term {
			o.best = m
		}
	}
	for _, done := range o.expect {
		if !done {
			return
		}
	}
	o.adopt(ctx)
}

// adopt starts serving: with the newest copy gathered (same epoch and
// offsets), or a new epoch.
func (o *owner) adopt(ctx actor.Context) {
	if o.gathered != nil {
		o.gathered.Stop()
	}
	h := newHistory(o.opts.History, o.opts.HistoryTTL, o.opts.HistoryBytes)
	h.topic, h.log = o.name, o.p.h.log
	if b := o.best; b != nil && b.Epoch != "" {
		h.epoch = b.Epoch
		for _, e := range b.Events {
			h.last = e.Offset - 1
			h.keep(e.Event, payload{json: e.Data, bin: e.Bin}, e.Time)
		}
		h.last = b.Last
	}
	h.store = &replStore{o: o}
	t := &Topic{name: o.name, hist: h, opts: o.opts, hub: o.p.h, shared: &roomShared{}}
	t.members = &clusterMembers{o: o}
	if o.opts.Presence {
		t.pres = &presence{}
	}
	o.a = &topicActor{t: t}
	o.p.h.log.Debug().Str("topic", o.name).Str("epoch", h.epoch).Uint64("offset", h.last).
		Bool("recovered", o.best != nil).Msg("topic owner serving")
	// Nodes holding older copies forget them; the backup gets everything.
	ranks := o.p.c.Rank(o.name)
	o.setBackup(ranks)
	for n := range o.copies {
		if n != o.backup {
			o.p.send(n, &linkMsg{K: linkDrop, Topic: o.name, Term: o.term})
		}
	}
	o.best, o.copies, o.expect, o.partial = nil, nil, nil, nil
	if o.opts.Handler != nil {
		o.a.user = o.opts.Handler(t)
		o.a.user.Receive(ctx) // *actor.Started
	}
	o.armTick(ctx)
	waiting := o.waiting
	o.waiting = nil
	for _, in := range waiting {
		o.link(ctx, in)
	}
	o.checkIdle(ctx)
}

// setBackup picks the backup (the second node of the ranking) and sends it
// the whole history.
func (o *owner) setBackup(ranks []string) {
	next := ""
	for _, n := range ranks {
		if n != o.p.self {
			next = n
			break
		}
	}
	if next == o.backup && next != "" {
		return
	}
	old := o.backup
	o.backup, o.acked = next, 0
	if old != "" && old != next {
		o.p.send(old, &linkMsg{K: linkDrop, Topic: o.name, Term: o.term})
	}
	if next != "" {
		o.sendReset()
	}
	o.flush()
}

// sendReset sends the backup the whole history: a reset with the first
// chunk of events, the others as appends.
func (o *owner) sendReset() {
	h := o.a.t.hist
	chunks := chunkEvents(o.events())
	for i, c := range chunks {
		m := &linkMsg{K: linkRepl, Topic: o.name, Term: o.term, Epoch: h.epoch, Keep: max(o.opts.History, 0), Events: c}
		if i == 0 {
			m.Reset, m.Last = true, h.last
			if len(chunks) > 1 {
				m.Last = c[len(c)-1].Offset
			}
		}
		o.p.send(o.backup, m)
	}
}

// events returns the kept events as a Store holds them.
func (o *owner) events() []StoredEvent {
	h := o.a.t.hist
	out := make([]StoredEvent, 0, h.n)
	for i := range h.n {
		k := h.at(i)
		out = append(out, StoredEvent{Offset: k.offset, Event: k.event, Data: k.p.json, Bin: k.p.bin, Time: k.at})
	}
	return out
}

func (o *owner) replAck(ctx actor.Context, from string, m *linkMsg) {
	if from != o.backup || o.a == nil {
		return
	}
	switch {
	case m.Term > o.term:
		// The backup follows a newer owner: this one is stale.
		o.p.h.log.Info().Str("topic", o.name).Msg("topic owner fenced by a newer owner; stopping")
		o.stop(ctx, false)
	case m.Term < o.term:
	case !m.OK:
		o.sendReset()
	default:
		o.acked = max(o.acked, m.Last)
		o.flush()
	}
}

// committed says whether the events up to offset are safe: acknowledged
// by the backup, or there is no backup (one node), or nothing is kept.
func (o *owner) committed(offset uint64) bool {
	return o.backup == "" || o.opts.History < 0 || o.acked >= offset
}

// emit sends m to node once every event kept so far is committed, in
// order with everything emitted before it.
func (o *owner) emit(node string, m *linkMsg) {
	need := o.a.t.hist.last
	if len(o.outbox) == 0 && o.committed(need) {
		o.toEdge(node, m)
		return
	}
	o.outbox = append(o.outbox, outItem{need: need, node: node, m: m})
}

// toEdge sends m to an edge node, numbered.
func (o *owner) toEdge(node string, m *linkMsg) {
	o.seqOut[node]++
	m.Inc, m.Seq = o.term, o.seqOut[node]
	o.p.send(node, m)
	if m.K != linkCheck {
		o.active[node] = true
		if o.checker == nil && o.self != nil {
			root, self := o.p.h.system.Root, o.self
			o.checker = time.AfterFunc(linkCheckInterval, func() { root.Send(self, &ownerCheck{}) })
		}
	}
}

// resync handles a gap in an edge node's messages (a lost join, leave or
// push): that node's members are dropped here, and the node is told to end
// their memberships; they rejoin.
func (o *owner) resync(ctx actor.Context, node string) {
	o.p.h.log.Warn().Str("topic", o.name).Str("node", node).Msg("topic: a message from a node was lost; its members rejoin")
	if o.a != nil {
		for _, r := range o.members {
			if r.node == node {
				o.drop(r)
				o.a.leave(ctx, &r.m, room.LeftStopped)
			}
		}
		o.emit(node, &linkMsg{K: linkResync, Topic: o.name})
		return
	}
	o.waiting = append(o.waiting, &linkIn{from: node, m: &linkMsg{K: linkResync, Topic: o.name}})
}

func (o *owner) flush() {
	i := 0
	for i < len(o.outbox) && o.committed(o.outbox[i].need) {
		it := o.outbox[i]
		o.toEdge(it.node, it.m)
		i++
	}
	if i > 0 {
		clear(o.outbox[:i])
		o.outbox = o.outbox[i:]
	}
}

func (o *owner) join(ctx actor.Context, from string, m *linkMsg) {
	lm := m.Member
	if lm == nil || lm.ID == "" {
		return
	}
	if old := o.members[lm.ID]; old != nil {
		o.drop(old) // the same connection again (after a move): the new join counts
	}
	var meta any
	if len(lm.Meta) > 0 {
		meta = lm.Meta
	}
	r := &rmember{m: Member{ID: lm.ID, User: lm.User, Meta: meta, Binary: lm.Binary}, node: from}
	o.members[lm.ID] = r
	nc := o.nodes[from]
	if nc == nil {
		nc = &nodeCount{}
		o.nodes[from] = nc
	}
	if lm.Binary {
		nc.bin++
	} else {
		nc.text++
	}
	o.a.join(ctx, &joinMeta{member: r.m, ref: m.Ref, params: m.Params, recover: m.Recover, history: m.History, reply: m.Reply})
	o.stopIdle()
}

func (o *owner) drop(r *rmember) {
	delete(o.members, r.m.ID)
	if nc := o.nodes[r.node]; nc != nil {
		if r.m.Binary {
			nc.bin--
		} else {
			nc.text--
		}
		if nc.bin+nc.text <= 0 {
			delete(o.nodes, r.node)
		}
	}
}

func (o *owner) push(ctx actor.Context, from string, m *linkMsg) {
	answer := func(a *pushAnswer) {
		o.emit(from, &linkMsg{K: linkAnswer, Topic: o.name, ID: m.ID, Ref: a.ref, Data: a.p.json, Bytes: a.p.bin, Err: a.err})
	}
	r := o.members[m.ID]
	p := &Push{Event: m.Event, Data: m.Data, Bin: m.Bytes, ref: m.Ref, topic: o.name, reply: answer}
	if r == nil || r.node != from {
		p.Fail(&Error{Code: CodeNotJoined, Message: "not in topic " + o.name})
		return
	}
	p.From = r.m
	p.system = ctx.ActorSystem()
	o.a.push(ctx, p)
}

// topology drops the members of nodes that left, moves the backup, and
// hands the topic over when this node no longer owns it.
func (o *owner) topology(ctx actor.Context) {
	ranks := o.p.c.Rank(o.name)
	if len(ranks) > 0 && ranks[0] != o.p.self {
		if o.a == nil {
			o.stop(ctx, false)
		}
		// Wait for the new owner's gather (handOver); if it never comes,
		// the members' nodes moved to the new owner anyway.
		return
	}
	if o.a == nil {
		return
	}
	live := make(map[string]bool, len(ranks))
	for _, n := range ranks {
		live[n] = true
	}
	for _, r := range o.members {
		if !live[r.node] && r.node != o.p.self {
			o.drop(r)
			o.a.leave(ctx, &r.m, room.LeftStopped)
		}
	}
	o.setBackup(ranks)
	o.checkIdle(ctx)
}

// handOver answers a newer owner's gather with this owner's history and
// stops.
func (o *owner) handOver(ctx actor.Context, from string, m *linkMsg) {
	st := &linkMsg{K: linkState, Topic: o.name, Term: m.Term, OK: true}
	var events []StoredEvent
	if o.a != nil {
		h := o.a.t.hist
		st.Have, st.Epoch, st.Last, st.Keep = true, h.epoch, h.last, max(o.opts.History, 0)
		events = o.events()
	}
	o.p.sendState(from, st, events)
	o.p.h.log.Info().Str("topic", o.name).Str("to", from).Msg("topic owner handed over")
	o.stop(ctx, false)
}

// stop ends this owner. forget tells the backup to drop its copy (the
// topic ends: idle); otherwise the copy stays for the next owner.
func (o *owner) stop(ctx actor.Context, forget bool) {
	if o.stopping {
		return
	}
	o.stopping = true
	o.p.ownerDone(o.name, o.self)
	if forget && o.backup != "" {
		o.p.send(o.backup, &linkMsg{K: linkDrop, Topic: o.name, Term: o.term})
	}
	// Requests waiting for a gather or a commit go unanswered: the members'
	// nodes fail them when they see the owner change.
	for _, in := range o.waiting {
		if in.m.K != linkLeave {
			o.p.send(in.from, &linkMsg{K: linkRedirect, Topic: o.name, Of: in.m.K, ID: in.m.ID, Ref: in.m.Ref})
		}
	}
	o.waiting, o.outbox = nil, nil
	// A poison pill, not Stop: what the port routed here before ownerDone
	// is handled first (answered with redirects), not dropped.
	ctx.Poison(ctx.Self())
}

func (o *owner) stopTimers() {
	for _, t := range []*time.Timer{o.gathered, o.idle, o.tick, o.checker} {
		if t != nil {
			t.Stop()
		}
	}
}

func (o *owner) checkIdle(ctx actor.Context) {
	if len(o.members) > 0 || o.opts.IdleTimeout < 0 || o.idle != nil {
		return
	}
	root, self := ctx.ActorSystem().Root, ctx.Self()
	o.idle = time.AfterFunc(o.opts.IdleTimeout, func() { root.Send(self, &ownerIdle{}) })
}

func (o *owner) stopIdle() {
	if o.idle != nil {
		o.idle.Stop()
		o.idle = nil
	}
}

func (o *owner) armTick(ctx actor.Context) {
	if o.opts.TickInterval <= 0 || o.a == nil || o.a.user == nil {
		return
	}
	root, self := ctx.ActorSystem().Root, ctx.Self()
	o.tick = time.AfterFunc(o.opts.TickInterval, func() { root.Send(self, &ownerTick{}) })
}

func leaveReasonOf(s string) room.LeaveReason {
	switch s {
	case room.LeftStopped.String():
		return room.LeftStopped
	case room.LeftRemoved.String():
		return room.LeftRemoved
	}
	return room.LeftByRequest
}

// replStore is the owner's history's Store: it replicates each kept event
// to the backup node.
type replStore struct{ o *owner }

func (s *replStore) Load(string, int) (string, uint64, []StoredEvent, error) { return "", 0, nil, nil }

func (s *replStore) Append(topic, epoch string, e StoredEvent, keep int) error {
	o := s.o
	if o.backup != "" {
		o.p.send(o.backup, &linkMsg{K: linkRepl, Topic: topic, Term: o.term, Epoch: epoch, Keep: keep, Events: []StoredEvent{e}})
	}
	return nil
}

func (s *replStore) Reset(topic, epoch string) error {
	o := s.o
	if o.backup != "" {
		o.p.send(o.backup, &linkMsg{K: linkRepl, Topic: topic, Term: o.term, Reset: true, Epoch: epoch, Keep: max(o.opts.History, 0)})
	}
	return nil
}

// clusterMembers is the member set of a topic whose members are on the
// nodes of a cluster: everything for them goes to their nodes, one message
// per node for a broadcast, through the owner's outbox.
type clusterMembers struct{ o *owner }

func (c *clusterMembers) sendAll(fr *frames, except *Member) {
	exceptID := ""
	if except != nil {
		exceptID = except.ID
	}
	for node, nc := range c.o.nodes {
		m := &linkMsg{K: linkOut, Topic: c.o.name, All: true, ID: exceptID}
		if nc.text > 0 {
			m.Text = fr.get(false).Payload()
		}
		if nc.bin > 0 {
			m.Bin = fr.get(true).Payload()
		}
		c.o.emit(node, m)
	}
}

func (c *clusterMembers) sendTo(m *Member, fr *frames) {
	r := c.o.members[m.ID]
	if r == nil {
		return
	}
	out := &linkMsg{K: linkOut, Topic: c.o.name, ID: m.ID}
	if m.Binary {
		out.Bin = fr.get(true).Payload()
	} else {
		out.Text = fr.get(false).Payload()
	}
	c.o.emit(r.node, out)
}

func (c *clusterMembers) find(id string) (Member, bool) {
	if r := c.o.members[id]; r != nil {
		return r.m, true
	}
	return Member{}, false
}

func (c *clusterMembers) list() []Member {
	out := make([]Member, 0, len(c.o.members))
	for _, r := range c.o.members {
		out = append(out, r.m)
	}
	return out
}

func (c *clusterMembers) remove(id string) bool {
	r := c.o.members[id]
	if r == nil {
		return false
	}
	c.o.emit(r.node, &linkMsg{K: linkRemove, Topic: c.o.name, ID: id})
	c.o.drop(r)
	// The behaviour hears of it after the message it is handling.
	c.o.p.h.system.Root.Send(c.o.self, &removedMember{m: r.m})
	return true
}
