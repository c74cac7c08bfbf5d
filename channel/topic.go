package channel

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/wsactor/wsactor/actors"
	"github.com/wsactor/wsactor/room"
	"github.com/wsactor/wsactor/supervisor"
	"github.com/wsactor/wsactor/transport"
)

// TopicOptions configures a topic. A nil *TopicOptions is valid and means
// all defaults: 100 events of history kept for as long as they fit, no
// presence, no pushes from clients, idle for 10 minutes before it stops.
type TopicOptions struct {
	// History is how many events the topic keeps for joins and recovery.
	// Zero means 100; negative keeps none (offsets still count).
	History int
	// HistoryTTL drops kept events older than this. Zero keeps them until
	// newer ones push them out.
	HistoryTTL time.Duration
	// HistoryBytes bounds the data kept (events' payloads and names): the
	// oldest go first. Zero means 4 MiB; negative, no bound. With clients
	// allowed to publish, this is what bounds a topic's memory.
	HistoryBytes int
	// Presence tracks who is in the topic and sends presence_state and
	// presence_diff to its members.
	Presence bool
	// ClientPublish, when Handler is nil, publishes every client push as a
	// kept event to all members (the sender too) and replies with its
	// offset. Without it (and without a Handler) pushes are refused with
	// no_handler.
	ClientPublish bool
	// Handler makes the topic's behaviour: an ordinary actor, made once when
	// the topic starts (and again after a restart under HandlerPanic) with
	// the topic's handle. It runs on the topic's actor, one message at a
	// time, and receives *Push for client pushes, *Joined and *Left, a
	// *room.Tick every TickInterval, the actor lifecycle, and any message
	// sent to the topic's PID. Nil means none (see ClientPublish).
	Handler func(*Topic) actor.Actor
	// TickInterval sends *room.Tick to Handler's behaviour at a fixed rate.
	TickInterval time.Duration
	// IdleTimeout stops the topic once it has had no member for this long;
	// its history goes with it (the next topic of the name has a new epoch).
	// Zero means 10 minutes; negative means never.
	IdleTimeout time.Duration
	// MaxMembers refuses joins past this many members (topic_full). Zero
	// means no limit.
	MaxMembers int
	// PushRate limits each connection's pushes to this topic, on top of the
	// connection's and user's limits. The zero value adds no limit.
	PushRate Limit
	// HandlerPanic is the policy for a panic in Handler's behaviour: the push
	// being handled is answered with "internal"; see room.Options.BehaviorPanic
	// for the rest. The zero value resumes 3 times a minute, then stops the
	// topic (its members get "left" with reason "stopped").
	HandlerPanic supervisor.Policy
}

const (
	defaultHistory      = 100
	defaultIdleTimeout  = 10 * time.Minute
	defaultHistoryBytes = 4 << 20
)

func (o *TopicOptions) withDefaults() TopicOptions {
	var t TopicOptions
	if o != nil {
		t = *o
	}
	if t.History == 0 {
		t.History = defaultHistory
	}
	if t.IdleTimeout == 0 {
		t.IdleTimeout = defaultIdleTimeout
	}
	if t.HistoryBytes == 0 {
		t.HistoryBytes = defaultHistoryBytes
	}
	return t
}

// Member is a connection in a topic.
type Member struct {
	// ID is the connection's id in the Hub: random, also its presence id
	// and Hub.Request's address.
	ID string
	// User is who the connection authenticated as (Identity.User); empty
	// for an anonymous connection.
	User string
	// Meta is the connection's presence meta: what Authorize returned as
	// meta for this join, or else Identity.Meta.
	Meta any
	// Conn is the connection.
	Conn *actors.Conn
	// Binary says the connection speaks the binary encoding
	// (SubprotocolBinary).
	Binary bool
}

// key is the member's presence key: its user, or its id.
func (m *Member) key() string {
	if m.User != "" {
		return m.User
	}
	return m.ID
}

// Joined tells a topic's behaviour that a member joined. It arrives after
// the member got its join reply, history and presence state.
type Joined struct {
	Member Member
	// Params is what the client sent with its join.
	Params json.RawMessage
	// Recovered says the join resumed an earlier position without a gap.
	Recovered bool
}

// Left tells a topic's behaviour that a member left: it asked to, its
// connection closed, or the behaviour removed it.
type Left struct {
	Member Member
	Reason room.LeaveReason
}

// Push is a client's push to a topic, delivered to the topic's behaviour.
// Answer it with Reply or Fail while handling it, or keep it and answer
// later from the behaviour (Defer); an unanswered push is answered "ok"
// with no data once the behaviour's Receive returns.
type Push struct {
	From  Member
	Event string
	// Data is a JSON payload, Bin a bytes payload: at most one is set
	// (docs/channels-protocol.md, "Payloads").
	Data json.RawMessage
	Bin  []byte

	ref      uint64
	session  *actor.PID
	system   *actor.ActorSystem
	answered bool
	deferred bool
	topic    string
	reply    func(*pushAnswer) // on a cluster: to the member's node
}

// Reply answers the push with data: a []byte is a bytes payload, a
// json.RawMessage JSON, nil none, anything else is marshalled to JSON. Only
// the first answer counts.
func (p *Push) Reply(data any) {
	pl, err := toPayload(data)
	if err != nil {
		p.Fail(fmt.Errorf("reply: %w", err))
		return
	}
	p.answer(&pushAnswer{ref: p.ref, topic: p.topic, p: pl})
}

// Fail answers the push with an error reply: err's code when it is an
// *Error, "internal" otherwise (its text is not sent to the client).
func (p *Push) Fail(err error) {
	p.answer(&pushAnswer{ref: p.ref, topic: p.topic, err: replyError(err)})
}

// Defer keeps the push open after Receive returns, to be answered later
// (before the server's PushTimeout, or the client gets "timeout").
func (p *Push) Defer() { p.deferred = true }

func (p *Push) answer(a *pushAnswer) {
	if p.answered {
		return
	}
	p.answered = true
	switch {
	case p.ref == 0:
	case p.reply != nil:
		p.reply(a)
	case p.session != nil && p.system != nil:
		p.system.Root.Send(p.session, a)
	}
}

// pushAnswer goes from a topic to the session that pushed.
type pushAnswer struct {
	ref   uint64
	topic string
	p     payload
	err   *Error
}

func replyError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Code: CodeInternal, Message: "the topic failed to handle the request"}
}

// Topic is a topic seen from its behaviour: what TopicOptions.Handler's
// behaviour uses to publish, send and read members. Like room.State, its
// methods act at once on the topic's goroutine and are valid only inside
// the behaviour's Receive.
type Topic struct {
	name    string
	state   *room.State // nil when the topic runs on a cluster
	members memberSet
	hist    *history
	pres    *presence
	opts    TopicOptions
	hub     *Hub
	shared  *roomShared
}

// roomShared is what a topic's room keeps across its behaviour's restarts
// (like its members), besides the history.
type roomShared struct {
	live    atomic.Bool  // counted in Hub.liveTopics
	binary  int          // members speaking the binary encoding
	members atomic.Int64 // channel members (written by the topic, read by Hub.TopicCounts)
}

// started counts a topic's room in the Hub's live topics (once: not again
// after a restart of its behaviour).
func (s *roomShared) started(h *Hub) {
	if s.live.CompareAndSwap(false, true) {
		h.liveTopics.Add(1)
	}
}

// stopped takes a topic's room out of the Hub's counts and maps.
func (s *roomShared) stopped(h *Hub, name string) {
	if s.live.CompareAndSwap(true, false) {
		h.liveTopics.Add(-1)
		// A stopping room sends no Left: its members leave the gauge here.
		h.counters.members.Add(-s.members.Swap(0))
		// Forget the topic's entries: names churn, the maps must not grow
		// with every topic that ever ran.
		h.shared.CompareAndDelete(name, s)
		h.topicOpts.Delete(name)
	}
}

// count counts a channel member joining (d = 1) or leaving (d = -1) a
// topic's room on this node.
func (s *roomShared) count(h *Hub, m *Member, d int) {
	if d > 0 {
		h.counters.joins.Add(1)
	}
	h.counters.members.Add(int64(d))
	s.members.Add(int64(d))
	if m.Binary {
		s.binary += d
	}
}

// Name returns the topic's name.
func (t *Topic) Name() string { return t.name }

// Position returns the topic's epoch and latest offset.
func (t *Topic) Position() Position { return Position{Epoch: t.hist.epoch, Offset: t.hist.last} }

// Room returns the room underneath, for what Topic does not offer (keyed
// frames for game snapshots, say). It is nil when the Hub runs on a cluster
// (Options.Cluster): the topic's members are then on several nodes.
func (t *Topic) Room() *room.State { return t.state }

// Publish keeps event in the topic's history and sends it to every member,
// encoded (and compressed) once. It returns the event's position.
func (t *Topic) Publish(event string, data any) (Position, error) {
	if err := checkName("event", event); err != nil {
		return Position{}, fmt.Errorf("channel: publish: %w", err)
	}
	pl, err := toPayload(data)
	if err != nil {
		return Position{}, err
	}
	return t.publish(event, pl), nil
}

// Broadcast sends event to every member but except (nil: all) without
// keeping it: it has no offset and is never resent (typing indicators,
// game ticks).
func (t *Topic) Broadcast(event string, data any, except *Member) error {
	if err := checkName("event", event); err != nil {
		return fmt.Errorf("channel: broadcast: %w", err)
	}
	pl, err := toPayload(data)
	if err != nil {
		return err
	}
	t.members.sendAll(eventFrames(t.name, event, pl, 0), except)
	t.hub.counters.broadcasts.Add(1)
	return nil
}

// publish keeps and sends an event whose name and data are checked.
func (t *Topic) publish(event string, p payload) Position {
	now := time.Now()
	t.hist.expire(now)
	off := t.hist.append(event, p, now)
	t.members.sendAll(eventFrames(t.name, event, p, off), nil)
	t.hub.counters.published.Add(1)
	return Position{Epoch: t.hist.epoch, Offset: off}
}

func (t *Topic) broadcast(m *wireMsg, except *Member) { t.members.sendAll(msgFrames(m), except) }

// memberSet is where a topic's members are: in its room (one process), or
// on the nodes of a cluster (clusterMembers). It belongs to the topic's
// actor.
type memberSet interface {
	// sendAll sends to every member but except (nil: all), one shared
	// frame per encoding in use.
	sendAll(fr *frames, except *Member)
	// sendTo sends to one member.
	sendTo(m *Member, fr *frames)
	find(id string) (Member, bool)
	list() []Member
	// remove ends id's membership: the client gets "left" with reason
	// "removed".
	remove(id string) bool
}

// roomMembers is the member set of a topic in one process: its room's.
type roomMembers struct{ t *Topic }

func (r roomMembers) sendAll(fr *frames, except *Member) {
	var pid *actor.PID
	if except != nil && except.Conn != nil {
		pid = except.Conn.PID()
	}
	t := r.t
	switch nb := t.shared.binary; {
	case nb == 0:
		t.state.Broadcast(fr.get(false), pid)
	case nb == t.state.Len():
		t.state.Broadcast(fr.get(true), pid)
	default:
		t.state.Range(func(m room.Member) bool {
			if pid == nil || !m.PID().Equal(pid) {
				_ = m.Conn.SendFrame(fr.get(isBinary(m)).MarkShared())
			}
			return true
		})
	}
}

func (r roomMembers) sendTo(m *Member, fr *frames) {
	if m.Conn != nil {
		_ = m.Conn.SendFrame(fr.get(m.Binary))
	}
}

func isBinary(m room.Member) bool {
	jm, ok := m.Meta.(*joinMeta)
	return ok && jm.member.Binary
}

// Send sends event to one member, not kept, ordered with the topic's
// broadcasts. It reports false when id is not a member.
func (t *Topic) Send(id string, event string, data any) (bool, error) {
	pl, err := toPayload(data)
	if err != nil {
		return false, err
	}
	m, ok := t.members.find(id)
	if !ok {
		return false, nil
	}
	t.members.sendTo(&m, eventFrames(t.name, event, pl, 0))
	return true, nil
}

func (r roomMembers) member(id string) (room.Member, bool) { return memberByID(r.t.state, id) }

// memberByID finds the channel member with connection id id in a topic's
// room.
func memberByID(s *room.State, id string) (room.Member, bool) {
	var found room.Member
	ok := false
	s.Range(func(m room.Member) bool {
		if jm, is := m.Meta.(*joinMeta); is && jm.member.ID == id {
			found, ok = m, true
			return false
		}
		return true
	})
	return found, ok
}

func (r roomMembers) find(id string) (Member, bool) {
	m, ok := r.member(id)
	if !ok {
		return Member{}, false
	}
	return m.Meta.(*joinMeta).member, true
}

func (r roomMembers) list() []Member {
	out := make([]Member, 0, r.t.state.Len())
	r.t.state.Range(func(m room.Member) bool {
		if jm, ok := m.Meta.(*joinMeta); ok {
			out = append(out, jm.member)
		}
		return true
	})
	return out
}

func (r roomMembers) remove(id string) bool {
	m, ok := r.member(id)
	if !ok {
		return false
	}
	t := r.t
	t.hub.system.Root.Send(m.PID(), &topicGone{topic: t.name, reason: leftRemoved})
	return t.state.Remove(m.PID())
}

// Members returns the topic's members, in no particular order. On a
// cluster (Options.Cluster) they are on every node and their Conn is nil.
func (t *Topic) Members() []Member { return t.members.list() }

// Presence returns the topic's presence (nil unless TopicOptions.Presence):
// for each key, its connections' metas.
func (t *Topic) Presence() map[string][]PresenceMeta {
	if t.pres == nil {
		return nil
	}
	return t.pres.list()
}

// Remove takes member id out of the topic; the client gets "left" with
// reason "removed". It reports whether id was a member.
func (t *Topic) Remove(id string) bool { return t.members.remove(id) }

// joinMeta travels in room.Join.Meta from the session to the topic.
type joinMeta struct {
	member  Member
	ref     uint64
	params  json.RawMessage
	recover *Position
	history int
	reply   json.RawMessage
}

// topicGone tells a session that a topic ended its membership. The session
// forgets it, then tells the client ("left" with reason): a client that
// joins again at once finds the membership gone.
type topicGone struct{ topic, reason string }

// leaveDone follows a room.Leave from a session: the topic answers the
// client's leave once the member is out, so nothing of the topic follows
// the reply.
type leaveDone struct {
	conn   *actors.Conn
	binary bool
	ref    uint64
	topic  string
}

// publishReq asks a topic to publish (Hub.Publish); answered on done
// (buffered, so the topic never waits).
type publishReq struct {
	event string
	data  payload
	done  chan publishResult
}

type publishResult struct {
	pos Position
	err error
}

// topicActor is the room's behaviour: history, presence and the protocol,
// around the user's behaviour.
type topicActor struct {
	t    *Topic
	user actor.Actor
}

func newTopicActor(hub *Hub, name string, opts TopicOptions, hist *history) func(*room.State) actor.Actor {
	shared := &roomShared{}
	hub.shared.Store(name, shared)
	var pres *presence
	if opts.Presence {
		pres = &presence{} // kept across restarts, as the members are
	}
	return func(s *room.State) actor.Actor {
		t := &Topic{name: name, state: s, hist: hist, pres: pres, opts: opts, hub: hub, shared: shared}
		t.members = roomMembers{t}
		a := &topicActor{t: t}
		if opts.Handler != nil {
			a.user = opts.Handler(t)
		}
		return a
	}
}

func (a *topicActor) Receive(ctx actor.Context) {
	t := a.t
	switch m := ctx.Message().(type) {
	case *room.Joined:
		a.joined(ctx, m)
	case *room.Left:
		a.left(ctx, m)
	case *Push:
		m.system = ctx.ActorSystem()
		if _, ok := t.state.Member(m.session); !ok {
			m.Fail(&Error{Code: CodeNotJoined, Message: "not in topic " + t.name})
			return
		}
		a.push(ctx, m)
	case *leaveDone:
		_ = m.conn.SendFrame(msgFrames(&wireMsg{T: typeReply, Ref: m.ref, Topic: m.topic, Status: "ok"}).get(m.binary))
	case *publishReq:
		m.done <- publishResult{pos: t.publish(m.event, m.data)}
	case *actor.Started:
		t.shared.started(t.hub)
		if a.user != nil {
			a.user.Receive(ctx)
		}
	case *actor.Stopped:
		t.shared.stopped(t.hub, t.name)
		if a.user != nil {
			a.user.Receive(ctx)
		}
	case *room.Tick:
		t.hist.expire(time.Now())
		if a.user != nil {
			a.user.Receive(ctx)
		}
	default:
		if a.user != nil {
			a.user.Receive(ctx)
		}
	}
}

func (a *topicActor) joined(ctx actor.Context, m *room.Joined) {
	jm, ok := m.Member.Meta.(*joinMeta)
	if !ok {
		return // a plain room.Join from user code: not a channel member
	}
	a.t.shared.count(a.t.hub, &jm.member, 1)
	a.join(ctx, jm)
}

// join answers a member's join (reply, history, presence state), tells the
// others and the behaviour.
func (a *topicActor) join(ctx actor.Context, jm *joinMeta) {
	t := a.t
	t.hist.expire(time.Now())
	h := t.hist
	// The reply is appended by hand (the history entries were encoded when
	// kept): a recovery wave of many clients is this loop, on the topic's
	// goroutine. Its bytes are what encode would make of a JoinReply.
	n, reason, recovered := 0, "", false
	if jm.recover != nil {
		if n, reason = h.missed(*jm.recover); reason == "" {
			recovered = true
		}
	}
	if !recovered {
		n = min(jm.history, max(t.opts.History, 0))
	}
	if jm.recover != nil {
		outcome := reason
		if recovered {
			outcome = "ok"
		}
		t.hub.counters.recovery(outcome)
	}
	b := make([]byte, 0, 256)
	if !jm.member.Binary {
		b = append(b, `{"t":"reply","ref":`...)
		b = strconv.AppendUint(b, jm.ref, 10)
		b = append(b, `,"topic":`...)
		b = appendString(b, t.name)
		b = append(b, `,"status":"ok","data":`...)
	}
	body := len(b)
	b = append(b, `{"epoch":`...)
	b = appendString(b, h.epoch)
	b = append(b, `,"offset":`...)
	b = strconv.AppendUint(b, h.last, 10)
	b = append(b, `,"recovered":`...)
	b = strconv.AppendBool(b, recovered)
	if reason != "" {
		b = append(b, `,"reason":`...)
		b = appendString(b, reason)
	}
	b = append(b, `,"history":[`...)
	b = h.appendEntries(b, n)
	b = append(b, ']')
	if len(jm.reply) > 0 {
		b = append(b, `,"reply":`...)
		b = append(b, jm.reply...)
	}
	b = append(b, '}')
	reply := &frames{}
	if jm.member.Binary {
		b = encodeBin(&wireMsg{T: typeReply, Ref: jm.ref, Topic: t.name, Status: "ok", Data: b[body:]})
		reply.bin = transport.NewFrame(transport.MessageBinary, b)
	} else {
		reply.txt = transport.NewFrame(transport.MessageText, append(b, '}'))
	}
	t.members.sendTo(&jm.member, reply)
	if t.pres != nil {
		meta := presenceMeta(jm.member.ID, jm.member.Meta)
		t.pres.join(jm.member.key(), meta)
		t.members.sendTo(&jm.member, msgFrames(&wireMsg{T: typePresenceState, Topic: t.name, State: t.pres.state()}))
		t.broadcast(&wireMsg{T: typePresenceDiff, Topic: t.name, Joins: one(jm.member.key(), meta), Leaves: map[string]*PresenceEntry{}}, &jm.member)
	}
	if a.user != nil {
		a.deliver(ctx, &Joined{Member: jm.member, Params: jm.params, Recovered: recovered})
	}
	// The member's Meta lives as long as the membership: keep nothing of
	// the request that is not needed any more.
	jm.params, jm.reply, jm.recover = nil, nil, nil
}

func (a *topicActor) left(ctx actor.Context, m *room.Left) {
	jm, ok := m.Member.Meta.(*joinMeta)
	if !ok {
		return
	}
	a.t.shared.count(a.t.hub, &jm.member, -1)
	a.leave(ctx, &jm.member, m.Reason)
}

// leave tells the others (presence) and the behaviour that m left.
func (a *topicActor) leave(ctx actor.Context, m *Member, reason room.LeaveReason) {
	t := a.t
	if t.pres != nil {
		if meta, ok := t.pres.leave(m.key(), m.ID); ok {
			t.broadcast(&wireMsg{T: typePresenceDiff, Topic: t.name, Joins: map[string]*PresenceEntry{}, Leaves: one(m.key(), meta)}, nil)
		}
	}
	if a.user != nil {
		a.deliver(ctx, &Left{Member: *m, Reason: reason})
	}
}

func (a *topicActor) push(ctx actor.Context, p *Push) {
	t := a.t
	if a.user == nil {
		if !t.opts.ClientPublish {
			p.Fail(&Error{Code: CodeNoHandler, Message: "topic " + t.name + " takes no pushes"})
			return
		}
		pos := t.publish(p.Event, payload{json: p.Data, bin: p.Bin}) // checked by the session's decode
		p.Reply(map[string]uint64{"offset": pos.Offset})
		return
	}
	// A panic in the behaviour answers the push with "internal", then goes
	// on to the room's host, which logs it and applies HandlerPanic.
	defer func() {
		if r := recover(); r != nil {
			p.Fail(&Error{Code: CodeInternal, Message: "the topic failed to handle the push"})
			panic(r)
		}
	}()
	if ctx.Message() == any(p) {
		a.user.Receive(ctx)
	} else {
		a.deliver(ctx, p) // on a cluster the owner's message is the link's
	}
	if !p.deferred {
		p.Reply(nil)
	}
}

// deliver hands the user's behaviour a message of ours in place of the
// one being handled.
func (a *topicActor) deliver(ctx actor.Context, msg any) {
	a.user.Receive(&swapped{Context: ctx, msg: msg})
}

// swapped is the topic's context with another message in it.
type swapped struct {
	actor.Context
	msg any
}

func (s *swapped) Message() any { return s.msg }
