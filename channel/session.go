package channel

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/wsactor/wsactor/actors"
	"github.com/wsactor/wsactor/room"
	"github.com/wsactor/wsactor/transport"
)

// session is the actor of one channel connection: it speaks the protocol,
// keeps the connection's memberships, limits and pending requests, and
// talks to topics by message. Its state is touched only by its Receive,
// except names (for Hub.Sessions), under mu.
type session struct {
	hub    *Hub
	conn   *actors.Conn
	self   *actor.PID
	binary bool // the connection speaks SubprotocolBinary
	id     string
	user   string
	meta   any
	done   chan struct{}

	bucket     *bucket
	userBucket *bucket // set by the user index
	malformed  strikes
	refused    strikes

	topics  map[string]*membership
	pending map[uint64]pendingPush // refs of pushes waiting for a topic
	outRef  uint64
	out     map[uint64]*outWait // our requests waiting for the client

	mu    sync.Mutex
	names []string
}

type membership struct {
	joinAt  time.Time // when the join came, for the join latency
	joined  bool
	pid     *actor.PID
	member  Member
	queued  []wireMsg // pushes (and a leave) that came while joining
	leaving bool      // a leave came while joining
	bucket  *bucket   // TopicOptions.PushRate
	ref     uint64    // the join's ref
}

func newSession(h *Hub) *session {
	return &session{
		hub:       h,
		done:      make(chan struct{}),
		topics:    map[string]*membership{},
		pending:   map[uint64]pendingPush{},
		out:       map[uint64]*outWait{},
		malformed: strikes{limit: h.opts.AbuseLimit},
		refused:   strikes{limit: h.opts.AbuseLimit},
	}
}

// pendingPush is a push that asked for a reply, waiting for its topic.
type pendingPush struct {
	timer *time.Timer // PushTimeout
	at    time.Time   // when it came, for the push latency
}

// refTimeout fires when a topic has not answered push ref in time.
type refTimeout struct{ ref uint64 }

// outRequest asks the session to push to its client and wait for the reply.
type outRequest struct {
	topic, event string
	data         payload
	ctx          context.Context
	answer       chan<- outAnswer
}

type outAnswer struct {
	p   payload
	err error
}

type outWait struct {
	answer chan<- outAnswer
	stop   func() bool
	at     time.Time // when the push was sent, for the request latency
}

type outCancel struct{ ref uint64 }

func (s *session) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actors.Opened:
		s.opened(ctx, m)
	case *actors.Message:
		s.message(ctx, m)
	case *room.JoinResult:
		s.joinResult(ctx, m)
	case *pushAnswer:
		if p, ok := s.pending[m.ref]; ok {
			p.timer.Stop()
			delete(s.pending, m.ref)
			s.hub.counters.pushLatency.Observe(time.Since(p.at))
			if m.err != nil {
				s.replyError(m.ref, m.topic, m.err)
			} else {
				s.send(&wireMsg{T: typeReply, Ref: m.ref, Topic: m.topic, Status: "ok", Data: m.p.json, Bin: m.p.bin})
			}
		}
	case *refTimeout:
		if _, ok := s.pending[m.ref]; ok {
			delete(s.pending, m.ref)
			s.replyError(m.ref, "", &Error{Code: CodeTimeout, Message: "the topic did not answer in time"})
		}
	case *topicGone:
		if _, ok := s.topics[m.topic]; ok {
			s.drop(ctx, m.topic)
			s.send(&wireMsg{T: typeLeft, Topic: m.topic, Reason: m.reason})
		}
	case *actor.Terminated:
		for name, ms := range s.topics {
			if ms.pid != nil && ms.pid.Equal(m.Who) {
				s.send(&wireMsg{T: typeLeft, Topic: name, Reason: leftStopped})
				s.drop(ctx, name)
			}
		}
	case *outRequest:
		s.request(ctx, m)
	case *outCancel:
		if w, ok := s.out[m.ref]; ok {
			delete(s.out, m.ref)
			w.answer <- outAnswer{err: ErrTimeout}
		}
	case *actor.Stopped:
		s.stopped()
	}
}

func (s *session) opened(ctx actor.Context, m *actors.Opened) {
	s.conn, s.self = m.Conn, ctx.Self()
	s.binary = m.Conn.Subprotocol() == SubprotocolBinary
	if s.id == "" {
		s.id = randomID(12) // 72 bits: the presence id, Hub.Request's address
	}
	if id, ok := m.Conn.Principal().(*Identity); ok && id != nil {
		s.user, s.meta = id.User, id.Meta
	}
	s.bucket = newBucket(s.hub.opts.Rate, time.Now())
	s.hub.addSession(s)
}

func (s *session) stopped() {
	if s.conn == nil {
		return
	}
	s.hub.removeSession(s)
	for _, p := range s.pending {
		p.timer.Stop()
	}
	for ref, w := range s.out {
		w.stop()
		w.answer <- outAnswer{err: fmt.Errorf("channel: %w", transport.ErrClosed)}
		delete(s.out, ref)
	}
	select {
	case <-s.done:
	default:
		close(s.done)
	}
}

func (s *session) info() SessionInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	return SessionInfo{ID: s.id, User: s.user, Topics: append([]string(nil), s.names...), Conn: s.conn}
}

func (s *session) updateNames() {
	names := make([]string, 0, len(s.topics))
	for n, ms := range s.topics {
		if ms.joined {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	s.mu.Lock()
	s.names = names
	s.mu.Unlock()
}

func (s *session) send(m *wireMsg) {
	if s.binary {
		_ = s.conn.SendFrame(transport.NewFrame(transport.MessageBinary, encodeBin(m)))
		return
	}
	_ = s.conn.SendFrame(transport.NewFrame(transport.MessageText, encode(m)))
}

func (s *session) replyError(ref uint64, topic string, e *Error) {
	s.hub.counters.refuse(e.Code)
	if ref == 0 {
		return // a push without ref expects no answer, errors included
	}
	s.send(&wireMsg{T: typeReply, Ref: ref, Topic: topic, Status: "error", Error: e})
}

func (s *session) message(ctx actor.Context, msg *actors.Message) {
	if s.binary != (msg.Type == actors.Binary) {
		if s.binary {
			msg.Conn.Close(transport.StatusUnsupportedData, "text messages are not part of "+SubprotocolBinary)
		} else {
			msg.Conn.Close(transport.StatusUnsupportedData, "binary messages are not part of "+Subprotocol)
		}
		return
	}
	var (
		m   wireMsg
		err error
	)
	if s.binary {
		m, err = decodeBin(msg.Data)
	} else {
		m, err = decode(msg.Data)
	}
	if err != nil {
		// Answered even without a usable ref (ref 0): the sender learns
		// what was wrong.
		s.hub.counters.refuse(CodeBadRequest)
		s.send(&wireMsg{T: typeReply, Ref: m.Ref, Topic: m.Topic, Status: "error", Error: &Error{Code: CodeBadRequest, Message: err.Error()}})
		if s.malformed.add(time.Now()) {
			s.conn.Close(StatusMalformed, "too many malformed messages")
		}
		return
	}
	switch m.T {
	case typePing:
		if s.admit(m.Ref, "", nil) {
			s.send(&wireMsg{T: typeReply, Ref: m.Ref, Status: "ok"})
		}
	case typeJoin:
		if s.admit(m.Ref, m.Topic, nil) {
			s.join(ctx, &m)
		}
	case typeLeave:
		if s.admit(m.Ref, m.Topic, nil) {
			s.leave(ctx, &m)
		}
	case typePush:
		if strings.HasPrefix(m.Event, reservedPrefix) {
			s.replyError(m.Ref, m.Topic, &Error{Code: CodeBadRequest, Message: "event names starting with " + reservedPrefix + " are reserved"})
			return
		}
		ms := s.topics[m.Topic]
		if ms == nil {
			s.replyError(m.Ref, m.Topic, &Error{Code: CodeNotJoined, Message: "join " + m.Topic + " first"})
			return
		}
		if !s.admit(m.Ref, m.Topic, ms.bucket) {
			return
		}
		if ms.leaving {
			s.replyError(m.Ref, m.Topic, &Error{Code: CodeNotJoined, Message: "leaving " + m.Topic})
			return
		}
		if !ms.joined {
			if len(ms.queued) >= s.hub.opts.MaxPending {
				s.refuse(m.Ref, m.Topic, "too many pushes waiting for the join", time.Second)
				return
			}
			ms.queued = append(ms.queued, m)
			return
		}
		s.push(ctx, ms, &m)
	case typeReply:
		w, ok := s.out[m.Ref]
		if !ok {
			return // we stopped waiting (timeout): dropped, as the protocol says
		}
		delete(s.out, m.Ref)
		w.stop()
		s.hub.counters.requestLatency.Observe(time.Since(w.at))
		if m.Status == "ok" {
			w.answer <- outAnswer{p: payload{json: m.Data, bin: m.Bin}}
		} else {
			w.answer <- outAnswer{err: m.Error}
		}
	default:
		s.replyError(m.Ref, m.Topic, &Error{Code: CodeBadRequest, Message: m.T + " is sent by servers only"})
		if s.malformed.add(time.Now()) {
			s.conn.Close(StatusMalformed, "too many malformed messages")
		}
	}
}

// admit spends one token of the connection's, the user's and (for a push)
// the topic's budget, and checks the pending bound. On refusal it answers
// rate_limited and counts a strike.
func (s *session) admit(ref uint64, topic string, extra *bucket) bool {
	now := time.Now()
	for _, b := range []*bucket{s.bucket, s.userBucket, extra} {
		if ok, wait := b.take(now); !ok {
			s.refuse(ref, topic, "rate limit exceeded", wait)
			return false
		}
	}
	if ref != 0 && len(s.pending) >= s.hub.opts.MaxPending {
		s.refuse(ref, topic, "too many requests waiting for an answer", time.Second)
		return false
	}
	return true
}

func (s *session) refuse(ref uint64, topic, why string, wait time.Duration) {
	s.replyError(ref, topic, &Error{Code: CodeRateLimited, Message: why, RetryAfter: max(1, wait.Milliseconds())})
	if s.refused.add(time.Now()) {
		s.conn.Close(StatusRateAbuse, "too many refused requests")
	}
}

func (s *session) join(ctx actor.Context, m *wireMsg) {
	joinAt := time.Now()
	if _, ok := s.topics[m.Topic]; ok {
		s.replyError(m.Ref, m.Topic, &Error{Code: CodeAlreadyJoined, Message: "already in " + m.Topic})
		return
	}
	if _, running := s.hub.topics.Lookup(m.Topic); !running && s.hub.opts.MaxLiveTopics > 0 && s.hub.liveTopics.Load() >= int64(s.hub.opts.MaxLiveTopics) {
		s.replyError(m.Ref, m.Topic, &Error{Code: CodeUnavailable, Message: "the server has too many topics"})
		return
	}
	if len(s.topics) >= s.hub.opts.MaxTopics {
		s.replyError(m.Ref, m.Topic, &Error{Code: CodeTooManyTopics, Message: fmt.Sprintf("at most %d topics per connection", s.hub.opts.MaxTopics)})
		return
	}
	member := Member{ID: s.id, User: s.user, Meta: s.meta, Conn: s.conn, Binary: s.binary}
	var reply json.RawMessage
	if auth := s.hub.opts.Authorize; auth != nil {
		grant, err := s.authorize(auth, &JoinRequest{Topic: m.Topic, Params: m.Params, Member: member})
		if err != nil {
			e := &Error{Code: CodeUnauthorized, Message: "join refused"}
			var ue *Error
			if errors.As(err, &ue) {
				e = ue
			}
			s.replyError(m.Ref, m.Topic, e)
			return
		}
		if grant.Meta != nil {
			member.Meta = grant.Meta
		}
		if reply, err = marshalData(grant.Reply); err != nil {
			s.hub.log.Error().Err(err).Str("topic", m.Topic).Msg("Authorize returned a reply that is not JSON")
			s.replyError(m.Ref, m.Topic, &Error{Code: CodeInternal, Message: "join failed"})
			return
		}
	}
	ms := &membership{member: member, ref: m.Ref, joinAt: joinAt}
	s.topics[m.Topic] = ms
	jm := &joinMeta{member: member, ref: m.Ref, params: m.Params, recover: m.Recover, history: m.History, reply: reply}
	s.hub.topics.JoinAsync(m.Topic, &room.Join{Conn: s.conn, User: member.key(), Meta: jm}, ctx.Self(), s.hub.opts.PushTimeout)
}

// authorize runs the hook, turning a panic into a refusal.
func (s *session) authorize(auth func(*JoinRequest) (Authorization, error), j *JoinRequest) (g Authorization, err error) {
	defer func() {
		if r := recover(); r != nil {
			s.hub.log.Error().Interface("panic", r).Str("topic", j.Topic).Msg("Authorize panicked; join refused")
			err = &Error{Code: CodeInternal, Message: "join failed"}
		}
	}()
	return auth(j)
}

func (s *session) joinResult(ctx actor.Context, r *room.JoinResult) {
	ms := s.topics[r.Room]
	if ms == nil || ms.joined {
		return
	}
	if r.Err != nil {
		delete(s.topics, r.Room)
		code := CodeUnavailable
		if errors.Is(r.Err, room.ErrRoomFull) {
			code = CodeTopicFull
		}
		s.replyError(ms.ref, r.Room, &Error{Code: code, Message: "cannot join " + r.Room})
		for _, q := range ms.queued {
			s.replyError(q.Ref, r.Room, &Error{Code: CodeNotJoined, Message: "the join of " + r.Room + " failed"})
		}
		return
	}
	t, ok := s.hub.topics.Lookup(r.Room)
	if !ok {
		// Joined, then the topic stopped at once.
		s.send(&wireMsg{T: typeLeft, Topic: r.Room, Reason: leftStopped})
		delete(s.topics, r.Room)
		return
	}
	ms.joined, ms.pid = true, t.PID()
	s.hub.counters.joinLatency.Observe(time.Since(ms.joinAt))
	if to, ok := s.hub.topicOptions(r.Room); ok && to.PushRate.Rate > 0 {
		ms.bucket = newBucket(to.PushRate.orDefault(to.PushRate), time.Now())
	}
	ctx.Watch(ms.pid)
	s.updateNames()
	// What came for this topic while joining, in order: the client may send
	// as soon as it has the join reply, which the topic writes before this
	// answer reaches us.
	queued := ms.queued
	ms.queued = nil
	for i := range queued {
		if queued[i].T == typeLeave {
			s.leave(ctx, &queued[i])
			return // anything after a leave was refused when it came
		}
		s.push(ctx, ms, &queued[i])
	}
}

func (s *session) push(ctx actor.Context, ms *membership, m *wireMsg) {
	if m.Ref != 0 {
		ref := m.Ref
		self := s.self
		system := ctx.ActorSystem()
		if old, dup := s.pending[ref]; dup {
			old.timer.Stop() // a client reusing a ref it still waits for: the newest wins
		}
		s.pending[ref] = pendingPush{
			timer: time.AfterFunc(s.hub.opts.PushTimeout, func() { system.Root.Send(self, &refTimeout{ref: ref}) }),
			at:    time.Now(),
		}
	}
	s.hub.counters.pushes.Add(1)
	ctx.Send(ms.pid, &Push{From: ms.member, Event: m.Event, Data: m.Data, Bin: m.Bin, ref: m.Ref, session: s.self, topic: m.Topic})
}

func (s *session) leave(ctx actor.Context, m *wireMsg) {
	ms := s.topics[m.Topic]
	if ms == nil || !ms.joined && ms.leaving {
		s.replyError(m.Ref, m.Topic, &Error{Code: CodeNotJoined, Message: "not in " + m.Topic})
		return
	}
	if !ms.joined {
		ms.queued = append(ms.queued, *m) // done once joined
		ms.leaving = true
		return
	}
	ctx.Send(ms.pid, &room.Leave{PID: s.self})
	ctx.Send(ms.pid, &leaveDone{conn: s.conn, binary: s.binary, ref: m.Ref, topic: m.Topic})
	s.drop(ctx, m.Topic)
}

// drop forgets membership of topic (the topic already let us go).
func (s *session) drop(ctx actor.Context, topic string) {
	ms := s.topics[topic]
	if ms == nil {
		return
	}
	if ms.pid != nil {
		ctx.Unwatch(ms.pid)
	}
	delete(s.topics, topic)
	s.updateNames()
}

func (s *session) request(ctx actor.Context, r *outRequest) {
	if r.ctx.Err() != nil {
		r.answer <- outAnswer{err: r.ctx.Err()}
		return
	}
	s.outRef++
	ref := s.outRef
	self, system := s.self, ctx.ActorSystem()
	stop := context.AfterFunc(r.ctx, func() { system.Root.Send(self, &outCancel{ref: ref}) })
	s.out[ref] = &outWait{answer: r.answer, stop: stop, at: time.Now()}
	s.send(&wireMsg{T: typePush, Ref: ref, Topic: r.topic, Event: r.event, Data: r.data.json, Bin: r.data.bin})
}
