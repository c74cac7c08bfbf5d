package channel_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/wsactor/wsactor/channel"
)

func TestFileStore(t *testing.T) {
	dir := t.TempDir()
	s, err := channel.NewFileStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if epoch, last, events, err := s.Load("room/1", 3); epoch != "" || last != 0 || events != nil || err != nil {
		t.Fatalf("empty store: %q %d %v %v", epoch, last, events, err)
	}
	if err := s.Reset("room/1", "E1"); err != nil {
		t.Fatal(err)
	}
	for i := uint64(1); i <= 100; i++ {
		if err := s.Append("room/1", "E1", channel.StoredEvent{Offset: i, Event: "n", Data: json.RawMessage(fmt.Sprint(i)), Time: time.Now()}, 3); err != nil {
			t.Fatal(err)
		}
	}
	epoch, last, events, err := s.Load("room/1", 3)
	if err != nil || epoch != "E1" || last != 100 || len(events) != 3 || events[0].Offset != 98 || string(events[2].Data) != "100" {
		t.Fatalf("after 100 appends keeping 3: %q %d %+v %v", epoch, last, events, err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	if len(files) != 1 {
		t.Fatalf("files %v, want one per topic (the topic name escaped)", files)
	}
	if fi, _ := os.Stat(files[0]); fi.Size() > 4<<10 {
		t.Fatalf("file of %d bytes: not compacted", fi.Size())
	}
	// A torn last line (a crash mid-write) is ignored.
	f, _ := os.OpenFile(files[0], os.O_WRONLY|os.O_APPEND, 0)
	_, _ = f.WriteString(`{"offset":101,"ev`)
	f.Close()
	s2, _ := channel.NewFileStore(dir)
	defer s2.Close()
	if _, last, _, err := s2.Load("room/1", 3); err != nil || last != 100 {
		t.Fatalf("torn line: last %d, %v", last, err)
	}
	// Garbage before the end is an error: the file cannot be trusted.
	_ = os.WriteFile(files[0], []byte("{\"epoch\":\"E1\"}\nnonsense\n{\"offset\":5,\"event\":\"n\"}\n"), 0o644)
	if _, _, _, err := s2.Load("room/1", 3); err == nil {
		t.Fatal("garbage mid-file: no error")
	}
}

// With a FileStore, history survives the whole Hub: a new Hub (a restarted
// process) on the same directory keeps the epoch and offsets, and a client
// recovers across the restart.
func TestHistorySurvivesRestartWithStore(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	start := func() (*hubEnv, *channel.FileStore) {
		s, err := channel.NewFileStore(dir)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return newHubEnv(t, &channel.Options{Store: s, Topics: publishing}), s
	}
	e1, _ := start()
	c := e1.dial(t, "alice")
	r := c.join(1, "room:1", nil)
	c.send(`{"t":"push","ref":2,"topic":"room:1","event":"msg","data":"before"}`)
	c.expect("event")
	c.reply(2)
	c.c.Close()
	if err := e1.hub.Close(ctx); err != nil {
		t.Fatal(err)
	}

	e2, _ := start()
	for _, d := range []string{"while away 1", "while away 2"} {
		if _, err := e2.hub.Publish(ctx, "room:1", "msg", d); err != nil {
			t.Fatal(err)
		}
	}
	c = e2.dial(t, "alice")
	got := c.join(1, "room:1", map[string]any{"recover": channel.Position{Epoch: r.Epoch, Offset: 1}})
	if !got.Recovered || got.Epoch != r.Epoch || got.Offset != 3 || len(got.History) != 2 || string(got.History[0].Data) != `"while away 1"` {
		t.Fatalf("after a restart: %+v (first epoch %s)", got, r.Epoch)
	}
}

// HistoryBytes bounds what a topic keeps: the oldest events go first, and a
// recovery from before them says "expired".
func TestHistoryBytesBound(t *testing.T) {
	e := newHubEnv(t, &channel.Options{Topics: func(string) *channel.TopicOptions {
		return &channel.TopicOptions{History: 100, HistoryBytes: 1000}
	}})
	ctx := context.Background()
	var first channel.Position
	for i := range 10 {
		pos, err := e.hub.Publish(ctx, "big", "e", fmt.Sprintf("%0298d", i)) // 300 bytes of JSON
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = pos
		}
	}
	c := e.dial(t, "alice")
	r := c.join(1, "big", map[string]any{"history": 100})
	if len(r.History) != 3 || r.History[0].Offset != 8 || r.History[2].Offset != 10 {
		t.Fatalf("kept %d events (%+v), want the last 3 (each costs 301 bytes of 1000)", len(r.History), r.History)
	}
	c2 := e.dial(t, "bob")
	if r := c2.join(1, "big", map[string]any{"recover": first}); r.Recovered || r.Reason != channel.ReasonExpired {
		t.Fatalf("recovery from the first event: %+v, want expired", r)
	}
}
