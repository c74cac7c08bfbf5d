package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/wsactor/wsactor/channel"
	"github.com/wsactor/wsactor/cluster/wire"
)

// Users is the user index of a cluster of channel Hubs: SendUser,
// DisconnectUser and Sessions reach a user's sessions on every node, as
// channel.Hub's methods of the same names do in one process. Each node that
// serves a Hub calls ServeUsers with it once; a call on any node then asks
// every member of the cluster (the node itself directly, the others through
// their users actor, one request each, in parallel) and adds up the answers.
//
// The answer is what the nodes reached said when they answered. A node that
// does not answer in time (dead, partitioned, overloaded) or serves no Hub
// makes the call return what the others said together with an error
// wrapping ErrPartial; a session on a node that joins meanwhile may be
// missed. This is Phoenix's "broadcast to every node" design: a user's
// sessions are not tracked centrally, so there is nothing to keep consistent
// when a node dies.
type Users struct {
	n     *Node
	hub   *channel.Hub
	pid   *actor.PID
	close sync.Once
}

// ErrPartial: some nodes did not answer a Users call; the figures returned
// count only the nodes that did. errors.Is finds it; the message names the
// nodes.
var ErrPartial = errors.New("cluster: not every node answered")

// usersActorName is the users actor's name on every node: known, so that a
// node can address another's without a lookup.
const usersActorName = "wsactor-users"

// ServeUsers makes hub's users reachable from the other nodes and returns
// the index. Call it once per node (a second call fails until Close); the
// hub must run on this node's actor system.
func (n *Node) ServeUsers(hub *channel.Hub) (*Users, error) {
	if hub == nil {
		return nil, errors.New("cluster: ServeUsers needs a hub")
	}
	props := actor.PropsFromProducer(func() actor.Actor { return &usersActor{hub: hub} })
	pid, err := n.system.Root.SpawnNamed(props, usersActorName)
	if err != nil {
		return nil, fmt.Errorf("cluster: serve users: %w", err)
	}
	return &Users{n: n, hub: hub, pid: pid}, nil
}

// Close stops answering the other nodes' calls (they then count this node
// as not answering). The hub is not touched. Calls after the first do
// nothing.
func (u *Users) Close() {
	u.close.Do(func() { _ = u.n.system.Root.StopFuture(u.pid).Wait() })
}

// SendUser sends a push on topic to every session of user on every node,
// whether or not it joined topic (see channel.Hub.SendUser), and returns how
// many sessions took it. data is a payload as channel.Hub.SendUser takes it
// ([]byte: bytes; json.RawMessage: JSON as is; nil: none; anything else is
// marshalled to JSON), encoded once for the other nodes.
func (u *Users) SendUser(ctx context.Context, user, topic, event string, data any) (int, error) {
	msg := &wire.UserSend{User: user, Topic: topic, Event: event}
	switch d := data.(type) {
	case nil:
		msg.NoData = true
	case []byte:
		msg.Data, msg.Bin = d, true
	case json.RawMessage:
		if !json.Valid(d) {
			return 0, errors.New("cluster: send to user: invalid JSON payload")
		}
		msg.Data = d
	default:
		b, err := json.Marshal(d)
		if err != nil {
			return 0, fmt.Errorf("cluster: send to user: %w", err)
		}
		msg.Data = b
	}
	res, err := u.ask(ctx, msg, func() *wire.UserResult { return serveUsers(u.hub, msg) })
	n := 0
	for _, r := range res {
		n += int(r.Sessions)
	}
	return n, err
}

// DisconnectUser closes every session of user on every node with 1008 and
// reason (see channel.Hub.DisconnectUser) and returns how many it closed.
func (u *Users) DisconnectUser(ctx context.Context, user, reason string) (int, error) {
	msg := &wire.UserDisconnect{User: user, Reason: reason}
	res, err := u.ask(ctx, msg, func() *wire.UserResult { return serveUsers(u.hub, msg) })
	n := 0
	for _, r := range res {
		n += int(r.Sessions)
	}
	return n, err
}

// UserSession is one session of a user somewhere in the cluster.
type UserSession struct {
	// Node is the address of the node the session is connected to.
	Node   string
	ID     string
	Topics []string
}

// Sessions returns user's sessions on every node, sorted by node and id.
func (u *Users) Sessions(ctx context.Context, user string) ([]UserSession, error) {
	msg := &wire.UserSessionsRequest{User: user}
	res, err := u.ask(ctx, msg, func() *wire.UserResult { return serveUsers(u.hub, msg) })
	var out []UserSession
	for node, r := range res {
		for _, s := range r.List {
			out = append(out, UserSession{Node: node, ID: s.Id, Topics: s.Topics})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Node != out[j].Node {
			return out[i].Node < out[j].Node
		}
		return out[i].ID < out[j].ID
	})
	return out, err
}

// ask sends msg to every member's users actor but this node's, where local
// answers, and returns the answers by node address. Nodes that did not
// answer by ctx's deadline (LookupTimeout without one), or answered with an
// error, are named in an error wrapping ErrPartial.
func (u *Users) ask(ctx context.Context, msg any, local func() *wire.UserResult) (map[string]*wire.UserResult, error) {
	if err := u.n.ctx.Err(); err != nil {
		return nil, ErrStopped
	}
	timeout := u.n.cfg.LookupTimeout
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	var (
		mu       sync.Mutex
		wg       sync.WaitGroup
		res      = map[string]*wire.UserResult{}
		failures []string
	)
	record := func(node string, r *wire.UserResult, why string) {
		mu.Lock()
		defer mu.Unlock()
		if why == "" && r.Error != "" {
			why = r.Error
		}
		if why != "" {
			failures = append(failures, node+": "+why)
			return
		}
		res[node] = r
	}
	for _, node := range u.n.Members() {
		if node == u.n.Address() {
			record(node, local(), "")
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if timeout <= 0 {
				record(node, nil, "no time left")
				return
			}
			f := u.n.system.Root.RequestFuture(actor.NewPID(node, usersActorName), msg, timeout)
			answer, err := f.Result()
			switch r := answer.(type) {
			case *wire.UserResult:
				record(node, r, "")
			case *actor.DeadLetterResponse:
				record(node, nil, "serves no users")
			default:
				why := fmt.Sprintf("answer %T", answer)
				if err != nil {
					why = err.Error()
				}
				record(node, nil, why)
			}
		}()
	}
	wg.Wait()
	if len(failures) == 0 {
		return res, nil
	}
	sort.Strings(failures)
	return res, fmt.Errorf("%w: %v", ErrPartial, failures)
}

// usersActor answers the other nodes' calls with its node's hub.
type usersActor struct{ hub *channel.Hub }

func (a *usersActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *wire.UserSend, *wire.UserDisconnect, *wire.UserSessionsRequest:
		ctx.Respond(serveUsers(a.hub, m))
	}
}

// serveUsers carries out one request on hub.
func serveUsers(hub *channel.Hub, m any) *wire.UserResult {
	switch m := m.(type) {
	case *wire.UserSend:
		var data any
		switch {
		case m.NoData:
		case m.Bin:
			data = m.Data
		default:
			data = json.RawMessage(m.Data)
		}
		n, err := hub.SendUser(m.User, m.Topic, m.Event, data)
		if err != nil {
			return &wire.UserResult{Error: err.Error()}
		}
		return &wire.UserResult{Sessions: int32(n)}
	case *wire.UserDisconnect:
		return &wire.UserResult{Sessions: int32(hub.DisconnectUser(m.User, m.Reason))}
	case *wire.UserSessionsRequest:
		r := &wire.UserResult{}
		for _, s := range hub.Sessions(m.User) {
			r.List = append(r.List, &wire.UserSession{Id: s.ID, Topics: s.Topics})
		}
		r.Sessions = int32(len(r.List))
		return r
	}
	return &wire.UserResult{Error: fmt.Sprintf("unknown request %T", m)}
}
