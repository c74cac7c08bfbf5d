package channel_test

import (
	"context"
	"sync"
	"testing"

	"github.com/wsactor/wsactor/channel"
)

// While a topic publishes without pause, clients join, leave and rejoin
// with recover: each sees a stream with no gap and no repeat. The join
// reply's history ends at the reply's offset, and the first event after it
// has the next offset, whatever was being published during the join.
func TestJoinIsGaplessUnderPublishing(t *testing.T) {
	e := newHubEnv(t, &channel.Options{Topics: func(string) *channel.TopicOptions {
		return &channel.TopicOptions{History: 1000}
	}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the publisher: bounded, and stops with the test
		defer wg.Done()
		for i := 0; i < 200000 && ctx.Err() == nil; i++ {
			if _, err := e.hub.Publish(ctx, "feed", "tick", i); err != nil && ctx.Err() == nil {
				t.Errorf("publish: %v", err)
				return
			}
		}
	}()
	defer wg.Wait()
	defer cancel()

	c := e.dial(t, "reader")
	var pos channel.Position
	for round := range 20 {
		extra := map[string]any{"history": 5}
		if round > 0 {
			extra = map[string]any{"recover": pos}
		}
		r := c.join(uint64(round*10+1), "feed", extra)
		if round > 0 && !r.Recovered {
			t.Fatalf("round %d: not recovered: %+v", round, r)
		}
		next := r.Offset + 1
		if n := len(r.History); n > 0 {
			if r.History[n-1].Offset != r.Offset {
				t.Fatalf("round %d: history ends at %d, reply offset %d", round, r.History[n-1].Offset, r.Offset)
			}
			for i := 1; i < n; i++ {
				if r.History[i].Offset != r.History[i-1].Offset+1 {
					t.Fatalf("round %d: history gap at %d", round, i)
				}
			}
			if round > 0 && r.History[0].Offset != pos.Offset+1 {
				t.Fatalf("round %d: recovery starts at %d, want %d", round, r.History[0].Offset, pos.Offset+1)
			}
		} else if round > 0 && r.Offset != pos.Offset {
			t.Fatalf("round %d: nothing recovered but offset moved from %d to %d", round, pos.Offset, r.Offset)
		}
		// Read a few live events: they follow without a gap.
		for range 10 {
			m := c.expect("event")
			if m.Offset != next {
				t.Fatalf("round %d: event %d after %d", round, m.Offset, next-1)
			}
			next++
		}
		pos = channel.Position{Epoch: r.Epoch, Offset: next - 1}
		c.send(map[string]any{"t": "leave", "ref": round*10 + 2, "topic": "feed"})
		for { // events sent before the leave took effect, then the reply
			m := c.read()
			if m.T == "reply" && m.Ref == uint64(round*10+2) {
				if m.Status != "ok" {
					t.Fatalf("round %d: leave refused: %s", round, m.raw)
				}
				break
			}
			if m.T != "event" || m.Offset != next {
				t.Fatalf("round %d: while leaving got %s, want event %d", round, m.raw, next)
			}
			pos.Offset = next
			next++
		}
	}
	cancel()
}

// Requests pipelined behind a join (a push, then a leave, sent before the
// join's reply) are handled in order once the join settles.
func TestPipelinedAfterJoin(t *testing.T) {
	e := newHubEnv(t, &channel.Options{Topics: publishing})
	c := e.dial(t, "alice")
	for round := range 20 {
		ref := uint64(round * 10)
		c.send(map[string]any{"t": "join", "ref": ref + 1, "topic": "room:p"})
		c.send(map[string]any{"t": "push", "ref": ref + 2, "topic": "room:p", "event": "msg", "data": round})
		c.send(map[string]any{"t": "leave", "ref": ref + 3, "topic": "room:p"})
		got := map[uint64]string{}
		for len(got) < 3 {
			m := c.read()
			if m.T == "reply" {
				got[m.Ref] = m.Status
			}
		}
		if got[ref+1] != "ok" || got[ref+2] != "ok" || got[ref+3] != "ok" {
			t.Fatalf("round %d: replies %v, want all ok", round, got)
		}
	}
}

// Hub.TopicCounts follows joins and leaves.
func TestTopicCounts(t *testing.T) {
	e := newHubEnv(t, &channel.Options{Topics: publishing})
	a, b := e.dial(t, "alice"), e.dial(t, "bob")
	a.join(1, "t1", nil)
	b.join(1, "t1", nil)
	b.join(2, "t2", nil)
	if got := e.hub.TopicCounts(); got["t1"] != 2 || got["t2"] != 1 || len(got) != 2 {
		t.Fatalf("TopicCounts %v, want t1:2 t2:1", got)
	}
	b.send(`{"t":"leave","ref":3,"topic":"t1"}`)
	b.reply(3)
	if got := e.hub.TopicCounts(); got["t1"] != 1 {
		t.Fatalf("after a leave: %v", got)
	}
	if e.hub.Handler() == nil || e.hub.Handler().Len() != 2 {
		t.Fatal("Hub.Handler")
	}
}
