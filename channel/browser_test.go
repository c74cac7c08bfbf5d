package channel_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/wsactor/wsactor/actors"
	"github.com/wsactor/wsactor/channel"
	"github.com/wsactor/wsactor/internal/exampletest"
)

// browserStep bounds each step of the end-to-end test on the Go side.
const browserStep = 20 * time.Second

// browserPage is the page the end-to-end test serves: it loads the client
// from the hub's ClientHandler, joins room:e2e as ?user=..., and keeps what
// it saw in window.app (and on screen, for the screenshots).
const browserPage = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>wsactor channel e2e</title>
<style>
  body { font: 15px/1.4 system-ui, sans-serif; margin: 1em; }
  #status { font-weight: bold; }
  #people li, #messages li { list-style: none; }
</style>
</head>
<body data-state="loading">
<p>User <b id="user"></b>, <span id="status">loading</span></p>
<h3>Here</h3><ul id="people"></ul>
<h3>Messages</h3><ul id="messages"></ul>
<script type="module">
import {Socket, Presence} from '/wsactor/wsactor-channel.js';

const query = new URLSearchParams(location.search);
const user = query.get('user');
const encoding = query.get('enc') || 'json';
document.getElementById('user').textContent = user;
const app = window.app = {user, messages: [], joins: [], closes: [], presence: [], pushes: [], protocols: []};
const socket = new Socket('/ws', {params: {user}, reconnect: {min: 100, max: 1000}, timeout: 5000, encoding});
socket.onOpen(() => app.protocols.push(socket._ws && socket._ws.protocol)); // what the server chose
const room = socket.channel('room:e2e', {history: 100});
const presence = new Presence(room);

function render() {
  document.body.dataset.state = room.state;
  document.getElementById('status').textContent = room.state + ', joins: ' + app.joins.length;
  document.getElementById('people').replaceChildren(...app.presence.map((p) => {
    const li = document.createElement('li');
    li.textContent = p.key + ': ' + p.names.join(', ');
    return li;
  }));
  document.getElementById('messages').replaceChildren(...app.messages.map((m) => {
    const li = document.createElement('li');
    li.textContent = '#' + m.offset + ' ' + m.from + ': ' + m.text + (m.history ? ' (history)' : '');
    return li;
  }));
}

room.on('msg', (data, meta) => {
  app.messages.push({from: data.from, text: data.text, offset: meta.offset, history: meta.history});
  render();
});
room.onJoin((reply) => {
  app.joins.push({recovered: reply.recovered, reason: reply.reason || '', epoch: reply.epoch, offset: reply.offset, history: reply.history.length});
  render();
});
presence.onSync(() => {
  app.presence = presence.list().map((p) => ({key: p.key, metas: p.metas.length, names: p.metas.map((m) => m.meta && m.meta.name)}));
  render();
});
socket.onClose((e) => {
  app.closes.push(e.code);
  render();
});
app.send = async (text) => {
  const reply = await room.push('msg', {from: user, text});
  app.pushes.push(reply);
  return reply;
};
socket.connect();
room.join().then(render, (err) => {
  app.joinError = err.code;
  render();
});
</script>
</body>
</html>
`

// browserServer is the hub's HTTP side: the page, the client module and the
// hub, on one loopback address.
type browserServer struct {
	srv  *http.Server
	done chan error
}

func browserServe(t *testing.T, hub *channel.Hub, addr string) (*browserServer, string) {
	t.Helper()
	var ln net.Listener
	var err error
	// The address of a server just closed may take a moment to be free.
	for deadline := time.Now().Add(browserStep); ; {
		if ln, err = net.Listen("tcp", addr); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("listen on %s: %v", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/ws", hub)
	mux.Handle("/wsactor/", http.StripPrefix("/wsactor/", channel.ClientHandler()))
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(browserPage))
	})
	s := &browserServer{srv: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}, done: make(chan error, 1)}
	go func() { s.done <- s.srv.Serve(ln) }()
	return s, ln.Addr().String()
}

// close stops accepting and closes the server's idle connections; the
// hub's WebSockets (hijacked) are the hub's to close.
func (s *browserServer) close(t *testing.T) {
	t.Helper()
	if err := s.srv.Close(); err != nil {
		t.Errorf("closing the HTTP server: %v", err)
	}
	select {
	case err := <-s.done:
		if !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("HTTP server: %v", err)
		}
	case <-time.After(browserStep):
		t.Errorf("the HTTP server did not stop")
	}
}

// browserPageResult is what browser.js reports about one page at "done".
type browserPageResult struct {
	User      string   `json:"user"`
	Protocols []string `json:"protocols"`
	Messages  []struct {
		From    string `json:"from"`
		Text    string `json:"text"`
		Offset  uint64 `json:"offset"`
		History bool   `json:"history"`
	} `json:"messages"`
	Joins []struct {
		Recovered bool   `json:"recovered"`
		Reason    string `json:"reason"`
		Epoch     string `json:"epoch"`
		Offset    uint64 `json:"offset"`
		History   int    `json:"history"`
	} `json:"joins"`
	Closes   []int `json:"closes"`
	Presence []struct {
		Key   string   `json:"key"`
		Metas int      `json:"metas"`
		Names []string `json:"names"`
	} `json:"presence"`
	Pushes []struct {
		Offset uint64 `json:"offset"`
	} `json:"pushes"`
	JoinError string `json:"joinError"`
}

// TestBrowserClient runs the browser client in headless Chromium against a
// Hub: two pages (alice on the JSON encoding, bob on the binary one) join
// room:e2e with presence, see each
// other, and chat with acknowledged pushes. Then the server restarts on the
// same address (the HTTP server closed, Hub.Shutdown, three messages
// published meanwhile, Hub.Reopen and a new HTTP server); both pages
// reconnect, rejoin with recover, get recovered=true and see exactly the
// three missed messages, once each and in order, and chat again.
// Screenshots go to $WSACTOR_ARTIFACTS/TestBrowserClient, or a temp dir.
func TestBrowserClient(t *testing.T) {
	b := exampletest.RequireBrowser(t)
	logger := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	system := actors.NewSystem(logger)
	hub, err := channel.NewHub(system, &channel.Options{
		Topics: func(string) *channel.TopicOptions {
			return &channel.TopicOptions{ClientPublish: true, Presence: true, History: 100}
		},
		Authenticate: func(r *http.Request) (channel.Identity, error) {
			u := r.URL.Query().Get("user")
			if u == "" {
				return channel.Identity{}, errors.New("no user")
			}
			return channel.Identity{User: u, Meta: map[string]string{"name": strings.ToUpper(u[:1]) + u[1:]}}, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	// Cleanups run last first: the servers close before the hub does.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), browserStep)
		defer cancel()
		if err := hub.Close(ctx); err != nil {
			t.Errorf("closing the hub: %v", err)
		}
	})
	first, addr := browserServe(t, hub, "127.0.0.1:0")
	out := exampletest.ArtifactDir(t)
	p := b.RunNode(t, "testdata/browser.js", out, "http://"+addr)

	before := p.Next(t, "restart")
	var offsets map[string]uint64
	if err := json.Unmarshal(before.Result, &offsets); err != nil || offsets["alice"] == 0 || offsets["bob"] <= offsets["alice"] {
		t.Fatalf("restart result %s: want the offsets of alice's and then bob's message (%v)", before.Result, err)
	}

	// The restart: the HTTP server goes, the hub closes every connection
	// (1001) but keeps the topic, and three messages are published while
	// nobody is connected.
	first.close(t)
	ctx, cancel := context.WithTimeout(context.Background(), browserStep)
	defer cancel()
	if err := hub.Shutdown(ctx); err != nil {
		t.Fatalf("hub shutdown: %v", err)
	}
	var missed []channel.Position
	for i := 1; i <= 3; i++ {
		pos, err := hub.Publish(ctx, "room:e2e", "msg", map[string]string{"from": "server", "text": fmt.Sprintf("missed %d", i)})
		if err != nil {
			t.Fatalf("publish while down: %v", err)
		}
		missed = append(missed, pos)
	}
	if missed[0].Offset != offsets["bob"]+1 || missed[2].Offset != missed[0].Offset+2 {
		t.Fatalf("published at %v after bob's message at %d: want the next three offsets", missed, offsets["bob"])
	}
	if err := hub.Reopen(); err != nil {
		t.Fatalf("reopen: %v", err)
	}
	second, _ := browserServe(t, hub, addr) // the same address: the pages' reconnects land here
	defer second.close(t)

	done := p.Next(t, "done")
	p.Wait(t)
	for _, ev := range p.All("pageerror") {
		t.Errorf("page error: %s", ev.Raw)
	}
	exampletest.CheckResourcesLoaded(t, p)

	var pages map[string]browserPageResult
	if err := json.Unmarshal(done.Result, &pages); err != nil {
		t.Fatalf("done result %s: %v", done.Result, err)
	}
	want := []string{
		"alice: hello from alice", "bob: hello from bob",
		"server: missed 1", "server: missed 2", "server: missed 3",
		"bob: back again",
	}
	for _, user := range []string{"alice", "bob"} {
		r, ok := pages[user]
		if !ok {
			t.Fatalf("no result for %s in %s", user, done.Result)
		}
		checkBrowserPage(t, user, r, want, missed)
	}
	// Alice's page speaks JSON, Bob's the binary encoding, in one topic,
	// on each of their connections (before and after the restart).
	for user, proto := range map[string]string{"alice": channel.Subprotocol, "bob": channel.SubprotocolBinary} {
		got := pages[user].Protocols
		if len(got) < 2 || slices.IndexFunc(got, func(p string) bool { return p != proto }) >= 0 {
			t.Errorf("%s's connections spoke %q, want %s on each (two at least)", user, got, proto)
		}
	}
	// Each page's pushes were acknowledged with the offset its message got.
	if got := pages["alice"].Pushes; len(got) != 1 || got[0].Offset != offsets["alice"] {
		t.Errorf("alice's push replies %+v, want one with offset %d", got, offsets["alice"])
	}
	if got := pages["bob"].Pushes; len(got) != 2 || got[0].Offset != offsets["bob"] || got[1].Offset != missed[2].Offset+1 {
		t.Errorf("bob's push replies %+v, want offsets %d and %d", got, offsets["bob"], missed[2].Offset+1)
	}

	if len(done.Screenshots) != 4 {
		t.Fatalf("want 4 screenshots, got %v", done.Screenshots)
	}
	for _, path := range done.Screenshots {
		png, err := os.ReadFile(path)
		if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
			t.Fatalf("screenshot %s: %v (want a PNG)", path, err)
		}
	}
	t.Logf("screenshots in %s", out)
}

// checkBrowserPage checks what one page saw: every message once, in order
// of strictly growing offsets, the missed ones as recovered history; two
// joins, the second recovered in the same epoch; a 1001 close; and both
// users present with their names.
func checkBrowserPage(t *testing.T, user string, r browserPageResult, want []string, missed []channel.Position) {
	t.Helper()
	if r.User != user || r.JoinError != "" {
		t.Errorf("%s: page of %q, join error %q", user, r.User, r.JoinError)
	}
	var got []string
	var last uint64
	for i, m := range r.Messages {
		got = append(got, m.From+": "+m.Text)
		if m.Offset <= last {
			t.Errorf("%s: message %d (%s) has offset %d after %d", user, i, m.Text, m.Offset, last)
		}
		last = m.Offset
		isMissed := strings.HasPrefix(m.Text, "missed ")
		if isMissed != m.History {
			t.Errorf("%s: message %q came as history=%v, want %v", user, m.Text, m.History, isMissed)
		}
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s saw messages\n  %s\nwant\n  %s", user, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	for _, m := range r.Messages {
		var k int
		if _, err := fmt.Sscanf(m.Text, "missed %d", &k); err == nil && k >= 1 && k <= len(missed) && m.Offset != missed[k-1].Offset {
			t.Errorf("%s: %q at offset %d, published at %d", user, m.Text, m.Offset, missed[k-1].Offset)
		}
	}
	if len(r.Joins) != 2 {
		t.Fatalf("%s: joins %+v, want two (the first join and the rejoin)", user, r.Joins)
	}
	j0, j1 := r.Joins[0], r.Joins[1]
	if j0.Recovered || j1.Epoch != j0.Epoch || !j1.Recovered || j1.Reason != "" || j1.History != 3 || j1.Offset != missed[2].Offset {
		t.Errorf("%s: joins %+v; want the rejoin recovered in epoch %s with the 3 missed events, at offset %d", user, r.Joins, j0.Epoch, missed[2].Offset)
	}
	// The hub's shutdown, then perhaps reconnects that failed while the
	// server was down (1006).
	if len(r.Closes) == 0 || r.Closes[0] != 1001 {
		t.Errorf("%s: closes %v, want 1001 (the hub's shutdown) first", user, r.Closes)
	}
	for _, code := range r.Closes[min(1, len(r.Closes)):] {
		if code != 1006 {
			t.Errorf("%s: closes %v, want only failed reconnects (1006) after the 1001", user, r.Closes)
			break
		}
	}
	names := map[string]string{}
	for _, p := range r.Presence {
		if p.Metas != 1 || len(p.Names) != 1 {
			t.Errorf("%s: presence of %s: %+v, want one connection", user, p.Key, p)
			continue
		}
		names[p.Key] = p.Names[0]
	}
	if len(names) != 2 || names["alice"] != "Alice" || names["bob"] != "Bob" {
		t.Errorf("%s: presence %+v, want alice (Alice) and bob (Bob)", user, r.Presence)
	}
}
