package cluster_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wsactor/wsactor/channel"
	"github.com/wsactor/wsactor/cluster"
	"github.com/wsactor/wsactor/transport"
)

// hubNode is a node of the shared group serving a channel Hub (the user is
// the URL's ?user=) and the cluster user index.
type hubNode struct {
	node  *cluster.Node
	hub   *channel.Hub
	users *cluster.Users
	url   string
}

func hubsOf(t *testing.T) []*hubNode {
	t.Helper()
	var out []*hubNode
	for _, tn := range nodesOf(t, "shared", serveOptions{}) {
		hub, err := channel.NewHub(tn.node.System(), &channel.Options{
			Authenticate: func(r *http.Request) (channel.Identity, error) {
				return channel.Identity{User: r.URL.Query().Get("user")}, nil
			},
			Logger: testLogger(t),
		})
		if err != nil {
			t.Fatal(err)
		}
		users, err := tn.node.ServeUsers(hub)
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(hub)
		hn := &hubNode{node: tn.node, hub: hub, users: users, url: "ws" + strings.TrimPrefix(srv.URL, "http")}
		out = append(out, hn)
		t.Cleanup(func() {
			users.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := hub.Close(ctx); err != nil {
				t.Errorf("hub close: %v", err)
			}
			srv.Close()
		})
	}
	return out
}

// userClient is a channel client of user on hn, joined to "user:<user>".
type userClient struct {
	c      *channel.Client
	events chan channel.Event
}

func dialUser(t *testing.T, hn *hubNode, user string) *userClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := channel.Dial(ctx, hn.node.System(), hn.url+"/?user="+user, &channel.ClientOptions{NoReconnect: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	uc := &userClient{c: c, events: make(chan channel.Event, 16)}
	if _, _, err := c.Join(ctx, "user:"+user, &channel.JoinOptions{Handler: func(e channel.Event) { uc.events <- e }}); err != nil {
		t.Fatal(err)
	}
	return uc
}

func (uc *userClient) next(t *testing.T) channel.Event {
	t.Helper()
	select {
	case e := <-uc.events:
		return e
	case <-time.After(10 * time.Second):
		t.Fatal("no event")
		return channel.Event{}
	}
}

// SendUser, Sessions and DisconnectUser called on one node reach the user's
// sessions on every node, JSON and bytes payloads alike, and nobody else's.
func TestUsersAcrossNodes(t *testing.T) {
	hubs := hubsOf(t)
	alice0 := dialUser(t, hubs[0], "alice")
	alice1 := dialUser(t, hubs[1], "alice")
	bob2 := dialUser(t, hubs[2], "bob")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	n, err := hubs[2].users.SendUser(ctx, "alice", "user:alice", "note", map[string]string{"text": "hi"})
	if err != nil || n != 2 {
		t.Fatalf("SendUser: %d sessions, %v; want 2", n, err)
	}
	for _, uc := range []*userClient{alice0, alice1} {
		if e := uc.next(t); e.Event != "note" || string(e.Data) != `{"text":"hi"}` {
			t.Fatalf("event %q data %s", e.Event, e.Data)
		}
	}
	n, err = hubs[0].users.SendUser(ctx, "alice", "user:alice", "blob", []byte{0, 1, 2})
	if err != nil || n != 2 {
		t.Fatalf("SendUser bytes: %d sessions, %v; want 2", n, err)
	}
	for _, uc := range []*userClient{alice0, alice1} {
		if e := uc.next(t); e.Event != "blob" || string(e.Bin) != "\x00\x01\x02" {
			t.Fatalf("event %q bin %v data %s", e.Event, e.Bin, e.Data)
		}
	}
	select {
	case e := <-bob2.events:
		t.Fatalf("bob got alice's %q", e.Event)
	default:
	}

	ss, err := hubs[1].users.Sessions(ctx, "alice")
	if err != nil || len(ss) != 2 {
		t.Fatalf("Sessions: %+v, %v", ss, err)
	}
	nodes := map[string]bool{}
	for _, s := range ss {
		nodes[s.Node] = true
		if len(s.Topics) != 1 || s.Topics[0] != "user:alice" {
			t.Fatalf("session %+v", s)
		}
	}
	if !nodes[hubs[0].node.Address()] || !nodes[hubs[1].node.Address()] {
		t.Fatalf("sessions on %v, want nodes 0 and 1", nodes)
	}

	if n, err := hubs[2].users.SendUser(ctx, "carol", "user:carol", "x", nil); err != nil || n != 0 {
		t.Fatalf("SendUser to nobody: %d, %v", n, err)
	}
	if _, err := hubs[2].users.SendUser(ctx, "alice", "user:alice", "x", []byte("not json")); err != nil {
		t.Fatalf("bytes payload refused: %v", err)
	}
	if _, err := hubs[2].users.SendUser(ctx, "alice", "user:alice", "x", func() {}); err == nil {
		t.Fatal("an unmarshallable payload was sent")
	}

	n, err = hubs[2].users.DisconnectUser(ctx, "alice", "banned")
	if err != nil || n != 2 {
		t.Fatalf("DisconnectUser: %d, %v; want 2", n, err)
	}
	for _, uc := range []*userClient{alice0, alice1} {
		select {
		case <-uc.c.Done():
		case <-time.After(10 * time.Second):
			t.Fatal("alice's client still connected")
		}
		var ce transport.CloseError
		if err := uc.c.Err(); !errors.As(err, &ce) || ce.Code != transport.StatusPolicyViolation || ce.Reason != "banned" {
			t.Fatalf("alice's client ended with %v", err)
		}
	}
	if ss, err := hubs[0].users.Sessions(ctx, "bob"); err != nil || len(ss) != 1 {
		t.Fatalf("bob's sessions after alice's disconnect: %+v, %v", ss, err)
	}
}

// A node that serves no users is named in an ErrPartial, and the others'
// answers still count.
func TestUsersPartial(t *testing.T) {
	hubs := hubsOf(t)
	alice0 := dialUser(t, hubs[0], "alice")
	hubs[1].users.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n, err := hubs[2].users.SendUser(ctx, "alice", "user:alice", "note", nil)
	if n != 1 || !errors.Is(err, cluster.ErrPartial) || !strings.Contains(err.Error(), hubs[1].node.Address()) {
		t.Fatalf("SendUser: %d sessions, %v; want 1 and ErrPartial naming node 1", n, err)
	}
	if e := alice0.next(t); e.Event != "note" {
		t.Fatalf("event %q", e.Event)
	}

	// No time left: the local node answers, the others are named.
	late, cancelLate := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancelLate()
	n, err = hubs[0].users.SendUser(late, "alice", "user:alice", "late", nil)
	if n != 1 || !errors.Is(err, cluster.ErrPartial) || !strings.Contains(err.Error(), hubs[2].node.Address()) {
		t.Fatalf("SendUser past the deadline: %d sessions, %v; want 1 and ErrPartial naming node 2", n, err)
	}
	if e := alice0.next(t); e.Event != "late" {
		t.Fatalf("event %q", e.Event)
	}
}
