package cluster

import (
	"context"
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/wsactor/wsactor/actors"
	"github.com/wsactor/wsactor/cluster/wire"
	"github.com/wsactor/wsactor/room"
	"github.com/wsactor/wsactor/transport"
)

// Room is a handle to a cluster room on one node. It is cheap (make one per
// call or keep it) and safe for concurrent use; the room itself lives in the
// cluster whether or not a handle exists.
type Room struct {
	n    *Node
	name string
}

// Room returns the handle of the room named name. The name must be
// non-empty and must not contain '/'; the methods return ErrInvalidName
// otherwise.
func (n *Node) Room(name string) *Room { return &Room{n: n, name: name} }

// Name returns the room's name.
func (r *Room) Name() string { return r.name }

// JoinOptions are the optional parts of a Join.
type JoinOptions struct {
	// User groups connections of one user; carried to Members.
	User string
	// Meta is carried to Members unchanged (e.g. a display name).
	Meta string
}

// Join adds conn to the room and waits until the room's grain has
// acknowledged it: from then on conn receives every broadcast the grain
// handles. The connection joins its node's shard of the room (a local room
// that watches it: a connection that stops leaves by itself); the shard
// tells the grain. Join waits through a failover, until ctx ends (the
// connection stays in the shard, and the grain learns about it when it can).
// It returns ErrNotMember if the connection left or closed first.
func (r *Room) Join(ctx context.Context, conn *actors.Conn, opts *JoinOptions) error {
	if !validName(r.name) {
		return ErrInvalidName
	}
	if err := r.n.ctx.Err(); err != nil {
		return ErrStopped
	}
	j := &room.Join{Conn: conn}
	if opts != nil {
		j.User, j.Meta = opts.User, opts.Meta
	} else {
		j.Meta = ""
	}
	shard, res, err := r.n.shards.Join(ctx, r.name, j)
	if err != nil {
		return fmt.Errorf("cluster: join %q: %w", r.name, err)
	}
	if res.Err != nil {
		return fmt.Errorf("cluster: join %q: %w", r.name, res.Err)
	}
	reply := make(chan error, 1)
	shard.Tell(&awaitJoin{id: conn.PID().Id, reply: reply})
	select {
	case err := <-reply:
		if err != nil {
			return fmt.Errorf("cluster: join %q: %w", r.name, err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("cluster: join %q: waiting for the room: %w", r.name, ctx.Err())
	}
}

// Leave removes conn from the room. Leaving a room one is not in does
// nothing. A connection that closes leaves its rooms by itself.
func (r *Room) Leave(conn *actors.Conn) {
	if s, ok := r.n.shards.Lookup(r.name); ok {
		s.Leave(conn.PID())
	}
}

// Broadcast is a message for every member of a room.
type Broadcast struct {
	// Type is transport.MessageText (the zero value means text) or
	// transport.MessageBinary.
	Type transport.MessageType
	// Data is copied; the caller may reuse it.
	Data []byte
	// Key, if set, makes every member's frame a keyed frame
	// (transport.NewKeyedFrame): latest value wins in a slow member's queue.
	Key string
	// Except, if set, is a connection that does not receive it (typically
	// the sender's).
	Except *actor.PID
}

// Publish sends b to every member of the room, on every node. It does not
// wait: the message goes to this node's shard of the room, which forwards
// it to the room's grain, which sends it once to each node with members,
// where one transport.Frame (compressed at most once) goes into every
// member's queue. Broadcasts from one node reach every member in the order
// they were published on that node.
//
// It returns ErrInvalidName, or ErrStopped once the node is shutting down.
func (r *Room) Publish(b *Broadcast) error {
	if !validName(r.name) {
		return ErrInvalidName
	}
	if r.n.ctx.Err() != nil {
		return ErrStopped
	}
	shard, err := r.n.shards.Get(r.n.ctx, r.name)
	if err != nil {
		return fmt.Errorf("cluster: publish to %q: %w", r.name, err)
	}
	typ := b.Type
	if typ == 0 {
		typ = transport.MessageText
	}
	p := &wire.Publish{Type: int32(typ), Data: append([]byte(nil), b.Data...), Key: b.Key}
	if b.Except != nil {
		p.Except = refOf(b.Except)
	}
	shard.Tell(&publishReq{p: p})
	return nil
}

// Broadcast is Publish of a message of type typ with no key and no
// exception.
func (r *Room) Broadcast(typ transport.MessageType, data []byte) error {
	return r.Publish(&Broadcast{Type: typ, Data: data})
}

// Member is one connection in a room, as the room's grain knows it.
type Member struct {
	// Node is the address of the connection's node.
	Node string
	// ID is the connection actor's PID id on that node.
	ID   string
	User string
	Meta string
	// Since is when it joined (its node's clock).
	Since time.Time
}

// Members is a room's membership as its grain reports it.
type Members struct {
	Room string
	// Host is the address of the node the room's grain runs on.
	Host    string
	Members []Member
}

// Members asks the room's grain (activating it if needed) for its members.
// It blocks until the answer or ctx ends.
func (r *Room) Members(ctx context.Context) (*Members, error) {
	if !validName(r.name) {
		return nil, ErrInvalidName
	}
	pid, err := r.n.lookup(ctx, r.name)
	if err != nil {
		return nil, err
	}
	timeout := r.n.cfg.LookupTimeout
	if d, ok := ctx.Deadline(); ok && time.Until(d) < timeout {
		timeout = time.Until(d)
	}
	res, err := r.n.system.Root.RequestFuture(pid, &wire.MembersRequest{}, timeout).Result()
	if err != nil {
		return nil, fmt.Errorf("cluster: members of %q: %w", r.name, err)
	}
	ml, ok := res.(*wire.MemberList)
	if !ok {
		return nil, fmt.Errorf("cluster: members of %q: answer %T", r.name, res)
	}
	out := &Members{Room: ml.Room, Host: ml.Host}
	for _, nm := range ml.Nodes {
		for _, m := range nm.Members {
			out.Members = append(out.Members, Member{
				Node: nm.Shard.GetAddress(), ID: m.Id, User: m.User, Meta: m.Meta,
				Since: time.Unix(0, m.SinceUnixNano),
			})
		}
	}
	return out, nil
}

// RoomMoved is sent to the connection actor of every member on a node when
// that node's shard of the room has registered with a new grain: the old
// one's node died (NodeLost) or the grain moved (a rebalance after a node
// joined, or a stale activation stopped). Members stay members; broadcasts
// published on surviving nodes during the move are delivered once the new
// grain has them (see docs/cluster.md for what can be lost). The same
// *RoomMoved goes to every member and must not be modified.
type RoomMoved struct {
	Room string
	// From and To are the addresses of the old and the new grain's nodes.
	From, To string
	NodeLost bool
}

// IgnoreDeadLetterLogging: a member may have gone.
func (*RoomMoved) IgnoreDeadLetterLogging() {}
