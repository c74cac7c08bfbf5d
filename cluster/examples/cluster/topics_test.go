package main

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/wsactor/wsactor/actors"
	"github.com/wsactor/wsactor/channel"
)

// topicSub is a Go channel client subscribed to one topic, recording
// every event its handler gets (the client drops duplicates by offset;
// this checks it never hands one over).
type topicSub struct {
	name string
	c    *channel.Client
	sub  *channel.Subscription

	mu       sync.Mutex
	got      map[uint64]int
	last     uint64
	bad      []string
	rejoins  []*channel.JoinReply
	rejoinEr []error
}

func subscribe(t *testing.T, p *proc, user, topic string, binary bool) *topicSub {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s := &topicSub{name: user, got: map[uint64]int{}}
	c, err := channel.Dial(ctx, actors.NewSystem(zerolog.Nop()), "ws://"+p.http+"/channels?user="+user, &channel.ClientOptions{Binary: binary})
	if err != nil {
		t.Fatalf("dial node %d: %v", p.i, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	s.c = c
	s.sub, _, err = c.Join(ctx, topic, &channel.JoinOptions{
		Handler: func(e channel.Event) {
			s.mu.Lock()
			defer s.mu.Unlock()
			var n int
			if e.Event != "n" || json.Unmarshal(e.Data, &n) != nil || e.Offset <= s.last {
				s.bad = append(s.bad, fmt.Sprintf("%+v after offset %d", e, s.last))
				return
			}
			s.got[e.Offset], s.last = n, e.Offset
		},
		OnRejoin: func(r *channel.JoinReply, err error) {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.rejoins = append(s.rejoins, r)
			s.rejoinEr = append(s.rejoinEr, err)
		},
	})
	if err != nil {
		t.Fatalf("join on node %d: %v", p.i, err)
	}
	return s
}

func (s *topicSub) reached() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

// kill -9 of a topic's owner process while a client on another node pushes
// events to it (each acknowledged with its offset once the backup has it):
// the survivors' clients rejoin by themselves and recover, and every
// acknowledged event reaches each of them exactly once, in order; the dead
// node's member leaves presence. The pause, the failed pushes and the
// counts are logged (docs/cluster.md).
func TestThreeProcessesTopicFailover(t *testing.T) {
	procs := startThreeNodes(t)
	const topic = "feed"
	var rank []string
	if err := getJSON("http://"+procs[0].http+"/debug/rank?topic="+topic, &rank); err != nil || len(rank) != 3 {
		t.Fatalf("rank: %v %v", rank, err)
	}
	byRemote := map[string]*proc{}
	for _, p := range procs {
		byRemote[p.remote] = p
	}
	owner, backup, other := byRemote[rank[0]], byRemote[rank[1]], byRemote[rank[2]]
	if owner == nil || backup == nil || other == nil {
		t.Fatalf("rank %v does not name the three nodes", rank)
	}
	subs := []*topicSub{subscribe(t, backup, "sub-backup", topic, false), subscribe(t, other, "sub-other", topic, true)}
	ghost := subscribe(t, owner, "ghost", topic, false) // dies with the owner
	_ = ghost
	pub := subscribe(t, other, "pub", topic, false)

	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	var (
		acked          = map[uint64]int{}
		last           uint64
		failed         int
		firstAfterKill time.Duration
		killAt         time.Time
	)
	push := func(v int) {
		pctx, pcancel := context.WithTimeout(ctx, 15*time.Second)
		defer pcancel()
		r, err := pub.sub.Push(pctx, "n", v)
		if err != nil {
			if killAt.IsZero() {
				t.Fatalf("push %d before the kill: %v", v, err)
			}
			failed++
			return
		}
		var ack struct{ Offset uint64 }
		if err := json.Unmarshal(r.Data, &ack); err != nil || ack.Offset <= last {
			t.Fatalf("push %d: reply %s after offset %d", v, r.Data, last)
		}
		acked[ack.Offset], last = v, ack.Offset
		if !killAt.IsZero() && firstAfterKill == 0 {
			firstAfterKill = time.Since(killAt)
		}
	}
	v := 0
	tick := time.NewTicker(25 * time.Millisecond) // 40/s: under the hub's default rate limit (50/s)
	defer tick.Stop()
	for ; len(acked) < 100; v++ {
		<-tick.C
		push(v)
	}
	killAt = time.Now()
	if err := owner.cmd.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	<-owner.done
	before := len(acked)
	for ; len(acked) < before+150 || firstAfterKill == 0 || time.Since(killAt) < firstAfterKill+2*time.Second; v++ {
		<-tick.C
		push(v)
		if ctx.Err() != nil {
			t.Fatalf("no acknowledged push within %v of the kill (%d failed)", time.Since(killAt), failed)
		}
	}
	waitUntil(t, 30*time.Second, "the subscribers reach the last acknowledged offset", func() bool {
		for _, s := range subs {
			if s.reached() < last {
				return false
			}
		}
		return true
	})
	for _, s := range subs {
		s.mu.Lock()
		if len(s.bad) > 0 {
			t.Errorf("%s: events out of order or duplicated: %v", s.name, s.bad)
		}
		lost := 0
		for off, n := range acked {
			if g, ok := s.got[off]; !ok || g != n {
				lost++
			}
		}
		if lost > 0 {
			t.Errorf("%s: %d acknowledged events lost", s.name, lost)
		}
		if len(s.rejoins) != 1 || s.rejoinEr[0] != nil || !s.rejoins[0].Recovered {
			t.Errorf("%s: rejoins %+v (errors %v), want one that recovered", s.name, s.rejoins, s.rejoinEr)
		}
		s.mu.Unlock()
	}
	waitUntil(t, 20*time.Second, "presence without the dead node's member", func() bool {
		var keys []string
		for _, k := range subs[1].sub.Presence() {
			keys = append(keys, k.Key)
		}
		slices.Sort(keys)
		return slices.Equal(keys, []string{"pub", "sub-backup", "sub-other"})
	})
	t.Logf("kill -9 of the owner of %q (node %d): %d events acknowledged before the kill and %d after, last offset %d; %d pushes failed (unavailable or timed out: not acknowledged); first acknowledgement %v after the kill; lost 0, duplicates 0, both subscribers recovered",
		topic, owner.i, before, len(acked)-before, last, failed, firstAfterKill.Round(time.Millisecond))
}
