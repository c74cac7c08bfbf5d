package interop

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"

	"github.com/wsactor/wsactor/actors"
	"github.com/wsactor/wsactor/transport"
	"github.com/wsactor/wsactor/wsactortest"
)

func TestMain(m *testing.M) {
	// protoactor's dead-letter throttle keeps a goroutine for its interval
	// (1s) after a dead letter is logged; it ends by itself.
	wsactortest.VerifyTestMain(m)
}

// Bounds on every wait, so a broken peer fails a test instead of hanging it.
const (
	waitTimeout = 15 * time.Second // one expected event
	procTimeout = 45 * time.Second // one node process, start to exit
)

// Payloads shared with the node scripts and page.html, which build the same.
var (
	smallText   = "hello wsactor \u2603"
	smallBinary = func() []byte {
		b := make([]byte, 256)
		for i := range b {
			b[i] = byte(i)
		}
		return b
	}()
	bigText   = strings.Repeat("wsactor interop ", 1024) // 16 KiB, compressible
	bigBinary = func() []byte {
		b := make([]byte, 16384)
		for i := range b {
			b[i] = byte(i % 16)
		}
		return b
	}()
	// fragText is what the fragmented text messages reassemble to; the
	// snowman's three UTF-8 bytes are split across two fragments.
	fragText = "frag-ment-\u2603-ed"
)

// Wire-size bounds: the four echo payloads are over 32 KiB uncompressed and
// compress to a few hundred bytes, so a connection that really compressed
// carries well under compressedMax and one that did not carries over plainMin.
const (
	compressedMax = 8 << 10
	plainMin      = 32 << 10
)

// summary is how the peers report a message: type, length, SHA-256, and the
// text itself for short text messages.
type summary struct {
	Type   string `json:"type"`
	Len    int    `json:"len"`
	SHA256 string `json:"sha256"`
	Text   string `json:"text,omitempty"`
}

func sum(typ string, data []byte) summary {
	h := sha256.Sum256(data)
	s := summary{Type: typ, Len: len(data), SHA256: hex.EncodeToString(h[:])}
	if typ == "text" && len(data) <= 64 {
		s.Text = string(data)
	}
	return s
}

func textSum(s string) summary   { return sum("text", []byte(s)) }
func binarySum(b []byte) summary { return sum("binary", b) }

// --- peers and their prerequisites ------------------------------------------

// missing skips the test because a peer is not installed, except under CI
// (CI=true), which installs every peer in .ci/run and so must fail instead.
func missing(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s (CI=true: .ci/run installs it, so this is a failure)", msg)
	}
	t.Skipf("skipping: %s (install with .ci/run's steps: npm ci --prefix interop/node; apt-get install chromium)", msg)
}

func nodeDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("node")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// requireNode returns the node binary, or skips (fails under CI) when node or
// the npm packages are missing.
func requireNode(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		missing(t, "node is not installed: %v", err)
	}
	if _, err := os.Stat(filepath.Join(nodeDir(t), "node_modules", "ws", "package.json")); err != nil {
		missing(t, "interop/node/node_modules lacks ws (run npm ci --prefix interop/node): %v", err)
	}
	return node
}

// requireChromium returns node and the Chromium binary ($WSACTOR_CHROMIUM or
// /usr/bin/chromium), or skips (fails under CI) when either is missing.
func requireChromium(t *testing.T) (node, chromium string) {
	t.Helper()
	node = requireNode(t)
	if _, err := os.Stat(filepath.Join(nodeDir(t), "node_modules", "playwright-core", "package.json")); err != nil {
		missing(t, "interop/node/node_modules lacks playwright-core (run npm ci --prefix interop/node): %v", err)
	}
	chromium = os.Getenv("WSACTOR_CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	if _, err := os.Stat(chromium); err != nil {
		missing(t, "Chromium is not installed at %s (Debian package chromium): %v", chromium, err)
	}
	return node, chromium
}

// artifactDir is $WSACTOR_ARTIFACTS/<test name> if set, else a temp dir.
func artifactDir(t *testing.T) string {
	t.Helper()
	base := os.Getenv("WSACTOR_ARTIFACTS")
	if base == "" {
		return t.TempDir()
	}
	dir := filepath.Join(base, strings.NewReplacer("/", "_", " ", "_").Replace(t.Name()))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// --- node processes ----------------------------------------------------------

// nodeEvent is one JSON line a node script printed. Each script uses the
// fields that fit the event.
type nodeEvent struct {
	Event string `json:"event"`
	ID    int    `json:"id"`
	summary
	Data         string          `json:"data"`
	Code         int             `json:"code"`
	Reason       string          `json:"reason"`
	Extensions   string          `json:"extensions"`
	Response     string          `json:"response"`
	Offered      string          `json:"offered"`
	Port         int             `json:"port"`
	Pings        int             `json:"pings"`
	Terminated   bool            `json:"terminated"`
	BytesRead    int             `json:"bytesRead"`
	BytesWritten int             `json:"bytesWritten"`
	Error        string          `json:"error"`
	Waiting      string          `json:"waiting"`
	Name         string          `json:"name"`
	Screenshot   string          `json:"screenshot"`
	Result       json.RawMessage `json:"result"`
	Version      string          `json:"version"`
	Protocol     string          `json:"protocol"`
	Received     int             `json:"received"`
	Mismatches   int             `json:"mismatches"`
	Raw          string          `json:"-"`
}

// nodeProc is a running node script: its stdout events arrive on events.
type nodeProc struct {
	name   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	events chan nodeEvent
	exited chan struct{}
	err    error // Wait's result, set before exited is closed

	mu         sync.Mutex
	transcript []string
	stderr     bytes.Buffer
}

// lockedWriter appends a process's stderr to its buffer under its lock.
type lockedWriter struct{ p *nodeProc }

func (w lockedWriter) Write(b []byte) (int, error) {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	return w.p.stderr.Write(b)
}

// startNode runs `node script args...` in interop/node with env added. The
// process is killed when procTimeout passes; at cleanup its stdin is closed
// and it is waited for, and its transcript is logged if the test failed.
func startNode(t *testing.T, script string, env []string, args ...string) *nodeProc {
	t.Helper()
	node := requireNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), procTimeout)
	cmd := exec.CommandContext(ctx, node, append([]string{script}, args...)...)
	cmd.Dir = nodeDir(t)
	cmd.Env = append(os.Environ(), env...)
	cmd.WaitDelay = 5 * time.Second
	p := &nodeProc{name: script, cmd: cmd, events: make(chan nodeEvent, 4096), exited: make(chan struct{})}
	cmd.Stderr = lockedWriter{p}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	p.stdin = stdin
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start node %s: %v", script, err)
	}
	var reading sync.WaitGroup
	reading.Add(1)
	go func() {
		defer reading.Done()
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
		for sc.Scan() {
			line := sc.Text()
			var ev nodeEvent
			if err := json.Unmarshal([]byte(line), &ev); err != nil {
				ev = nodeEvent{Event: "raw"}
			}
			ev.Raw = line
			p.mu.Lock()
			p.transcript = append(p.transcript, line)
			p.mu.Unlock()
			select {
			case p.events <- ev:
			default: // nobody is reading this many; the transcript keeps it
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	go func() {
		reading.Wait() // Wait closes stdout: read it all first
		p.err = cmd.Wait()
		cancel()
		close(p.exited)
		close(p.events)
	}()
	t.Cleanup(func() {
		_ = p.stdin.Close()
		select {
		case <-p.exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			t.Logf("node %s %s transcript:\n%s\nstderr:\n%s", script, strings.Join(args, " "), p.Transcript(), p.Stderr())
		}
	})
	return p
}

func (p *nodeProc) Transcript() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.transcript, "\n")
}

func (p *nodeProc) Stderr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// waitExit waits for the script to exit and fails the test unless it exited 0.
func (p *nodeProc) waitExit(t *testing.T) {
	t.Helper()
	select {
	case <-p.exited:
	case <-time.After(procTimeout + 10*time.Second):
		t.Fatalf("node %s did not exit", p.name)
	}
	if p.err != nil {
		t.Fatalf("node %s: %v\ntranscript:\n%s\nstderr:\n%s", p.name, p.err, p.Transcript(), p.Stderr())
	}
}

// runNode runs a script to its end and returns every event it printed.
func runNode(t *testing.T, script string, env []string, args ...string) []nodeEvent {
	t.Helper()
	p := startNode(t, script, env, args...)
	var evs []nodeEvent
	for ev := range p.events {
		evs = append(evs, ev)
	}
	p.waitExit(t)
	return evs
}

// next returns the next event that matches, dropping the others, or fails
// the test after waitTimeout.
func (p *nodeProc) next(t *testing.T, what string, match func(nodeEvent) bool) nodeEvent {
	t.Helper()
	timeout := time.After(waitTimeout)
	for {
		select {
		case ev, ok := <-p.events:
			if !ok {
				t.Fatalf("node %s exited (%v) while waiting for %s\ntranscript:\n%s\nstderr:\n%s", p.name, p.err, what, p.Transcript(), p.Stderr())
			}
			if match(ev) {
				return ev
			}
		case <-timeout:
			t.Fatalf("timed out waiting for %s from node %s", what, p.name)
		}
	}
}

// byEvent selects the events of a kind, of one connection (id 0: any).
func byEvent(kind string, id int) func(nodeEvent) bool {
	return func(ev nodeEvent) bool { return ev.Event == kind && (id == 0 || ev.ID == id) }
}

// filter returns the events of a kind, in order.
func filter(evs []nodeEvent, kind string) []nodeEvent {
	var out []nodeEvent
	for _, ev := range evs {
		if ev.Event == kind {
			out = append(out, ev)
		}
	}
	return out
}

// only returns the single event of a kind, failing the test otherwise.
func only(t *testing.T, evs []nodeEvent, kind string) nodeEvent {
	t.Helper()
	got := filter(evs, kind)
	if len(got) != 1 {
		t.Fatalf("want exactly one %q event, got %d in:\n%s", kind, len(got), rawEvents(evs))
	}
	return got[0]
}

func summaries(evs []nodeEvent) []summary {
	var out []summary
	for _, ev := range filter(evs, "message") {
		out = append(out, ev.summary)
	}
	return out
}

func rawEvents(evs []nodeEvent) string {
	lines := make([]string, len(evs))
	for i, ev := range evs {
		lines[i] = ev.Raw
	}
	return strings.Join(lines, "\n")
}

func equalSummaries(t *testing.T, what string, got, want []summary) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: got %d messages %+v, want %d %+v", what, len(got), got, len(want), want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("%s: message %d = %+v, want %+v", what, i, got[i], want[i])
		}
	}
}

// --- our server --------------------------------------------------------------

// echoActor is the server behaviour the peers talk to. It reports every
// Opened, Message and Closed on events and echoes every data message, except
// text commands:
//
//	!close CODE REASON   close with that code and reason
//	!ping DATA           send a ping carrying DATA
//	!heartbeat N         send N pings ("hb-1".."hb-N") 20ms apart, then stop
type echoActor struct{ events chan<- any }

func (e *echoActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actors.Opened:
		e.events <- m
	case *actors.Message:
		e.events <- m
		if m.Type == actors.Text && strings.HasPrefix(m.Text(), "!") {
			e.command(m)
			return
		}
		_ = m.Conn.Send(m.Type, m.Data)
	case *actors.Closed:
		e.events <- m
	}
}

func (e *echoActor) command(m *actors.Message) {
	cmd, arg, _ := strings.Cut(m.Text(), " ")
	switch cmd {
	case "!close":
		codeStr, reason, _ := strings.Cut(arg, " ")
		code, _ := strconv.Atoi(codeStr)
		m.Conn.Close(actors.StatusCode(code), reason)
	case "!ping":
		_ = m.Conn.Ping([]byte(arg))
	case "!heartbeat":
		n, _ := strconv.Atoi(arg)
		c := m.Conn
		go func() {
			for i := 1; i <= n; i++ {
				if c.Ping([]byte(fmt.Sprintf("hb-%d", i))) != nil {
					return
				}
				select {
				case <-time.After(20 * time.Millisecond):
				case <-c.Transport().Done():
					return
				}
			}
		}()
	default:
		m.Conn.Close(transport.StatusUnsupportedData, "unknown command")
	}
}

// server is an httptest server whose connections are counted byte by byte.
type server struct {
	URL      string // http://127.0.0.1:port
	events   map[string]chan any
	handlers map[string]*actors.Handler
	ln       *countingListener
}

// route is one WebSocket endpoint of a test server.
type route struct {
	path string
	opts actors.HandlerOptions
}

// startServer serves one echo Handler per route (and extra plain handlers)
// on 127.0.0.1. Each route's Opened/Message/Closed arrive on
// srv.events[path]. With count, every connection's bytes are counted (see
// countingListener; the wrapper hides the TCP socket's writev, so only the
// browser test, which cannot see its own bytes, uses it). At cleanup the
// handlers are shut down first (httptest's Close does not wait for hijacked
// connections), then the server.
func startServer(t *testing.T, routes []route, extra map[string]http.Handler, count bool) *server {
	t.Helper()
	logger := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	system := actors.NewSystem(logger)
	mux := http.NewServeMux()
	srv := &server{events: map[string]chan any{}, handlers: map[string]*actors.Handler{}}
	var handlers []*actors.Handler
	for _, r := range routes {
		events := make(chan any, 8192)
		srv.events[r.path] = events
		opts := r.opts
		opts.Logger = logger
		h, err := actors.NewHandler(system, func() actor.Actor { return &echoActor{events: events} }, &opts)
		if err != nil {
			t.Fatal(err)
		}
		handlers = append(handlers, h)
		srv.handlers[r.path] = h
		mux.Handle(r.path, h)
	}
	for p, h := range extra {
		mux.Handle(p, h)
	}
	hs := httptest.NewUnstartedServer(mux)
	if count {
		srv.ln = &countingListener{Listener: hs.Listener}
		hs.Listener = srv.ln
	}
	hs.Start()
	srv.URL = hs.URL
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, h := range handlers {
			if err := h.Shutdown(ctx); err != nil {
				buf := make([]byte, 1<<20)
				n := runtime.Stack(buf, true)
				t.Errorf("handler shutdown: %v\n%s", err, buf[:n])
			}
		}
		hs.Close()
	})
	return srv
}

// wsURL is the ws:// URL of a path on the server.
func (s *server) wsURL(path string) string {
	return "ws" + strings.TrimPrefix(s.URL, "http") + path
}

// waitFor returns the next event of type T on ch, dropping others.
func waitFor[T any](t *testing.T, ch <-chan any) T {
	t.Helper()
	timeout := time.After(waitTimeout)
	for {
		select {
		case m := <-ch:
			if v, ok := m.(T); ok {
				return v
			}
		case <-timeout:
			var zero T
			t.Fatalf("timed out waiting for %T", zero)
			return zero
		}
	}
}

// connEvents collects one connection's events from Opened to Closed.
type connEvents struct {
	opened   *actors.Opened
	messages []*actors.Message
	closed   *actors.Closed
}

// collectConn reads the next connection's Opened, its Messages and its Closed.
// Connections of one route must not overlap.
// stashes holds, per event channel, events read ahead by collectConn that
// belong to a later connection: the handler's events of two connections
// share one channel, and nothing orders one connection's Closed before the
// next one's Opened (a browser reconnects as soon as it sees our close).
var stashes sync.Map // <-chan any -> *[]any

// collectConn returns the events of the next connection on ch, from Opened
// to Closed, keeping other connections' events for later calls.
func collectConn(t *testing.T, ch <-chan any) connEvents {
	t.Helper()
	v, _ := stashes.LoadOrStore(ch, new([]any))
	stash := v.(*[]any)
	var (
		ce       connEvents
		deferred []any
	)
	timeout := time.After(waitTimeout)
	for {
		var m any
		if len(*stash) > 0 {
			m, *stash = (*stash)[0], (*stash)[1:]
		} else {
			select {
			case m = <-ch:
			case <-timeout:
				t.Fatalf("timed out waiting for a connection's Closed (opened %v, messages so far: %d)", ce.opened != nil, len(ce.messages))
			}
		}
		mine := false
		switch m := m.(type) {
		case *actors.Opened:
			if ce.opened == nil {
				ce.opened, mine = m, true
			}
		case *actors.Message:
			if ce.opened != nil && m.Conn == ce.opened.Conn {
				ce.messages, mine = append(ce.messages, m), true
			}
		case *actors.Closed:
			if ce.opened != nil && m.Conn == ce.opened.Conn {
				ce.closed = m
				*stash = append(deferred, *stash...)
				return ce
			}
		default:
			mine = true // not a connection event: drop it
		}
		if !mine {
			deferred = append(deferred, m)
		}
	}
}

func serverSummaries(msgs []*actors.Message) []summary {
	out := make([]summary, len(msgs))
	for i, m := range msgs {
		typ := "binary"
		if m.Type == actors.Text {
			typ = "text"
		}
		out[i] = sum(typ, m.Data)
	}
	return out
}

// checkClosed compares a Closed with the expected code, reason and side.
func checkClosed(t *testing.T, got *actors.Closed, code int, reason string, byPeer bool, wantErr error) {
	t.Helper()
	if int(got.Code) != code || got.Reason != reason || got.ByPeer != byPeer || !errors.Is(got.Err, wantErr) || (wantErr == nil && got.Err != nil) {
		t.Fatalf("Closed = {Code:%d Reason:%q ByPeer:%v Err:%v}, want {Code:%d Reason:%q ByPeer:%v Err:%v}",
			got.Code, got.Reason, got.ByPeer, got.Err, code, reason, byPeer, wantErr)
	}
}

// --- byte counting -----------------------------------------------------------

// countingListener counts the bytes of every accepted connection, so a test
// can tell whether a peer really compressed.
type countingListener struct {
	net.Listener
	mu    sync.Mutex
	conns []*countingConn
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	cc := &countingConn{Conn: c}
	l.mu.Lock()
	l.conns = append(l.conns, cc)
	l.mu.Unlock()
	return cc, nil
}

// traffic sums the bytes of the connections whose first request line was
// "GET <path> ...": read is from the peer, written is to it.
func (l *countingListener) traffic(path string) (conns int, read, written int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	prefix := "GET " + path + " "
	for _, c := range l.conns {
		if strings.HasPrefix(c.head(), prefix) {
			conns++
			read += c.read.Load()
			written += c.written.Load()
		}
	}
	return conns, read, written
}

// countingConn counts bytes both ways and keeps the first bytes read.
type countingConn struct {
	net.Conn
	read, written atomic.Int64
	mu            sync.Mutex
	first         []byte
}

func (c *countingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.read.Add(int64(n))
	c.mu.Lock()
	if len(c.first) < 64 {
		c.first = append(c.first, b[:min(n, 64-len(c.first))]...)
	}
	c.mu.Unlock()
	return n, err
}

func (c *countingConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.written.Add(int64(n))
	return n, err
}

func (c *countingConn) head() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return string(c.first)
}

// checkTraffic asserts that a connection's wire bytes show compression (or
// its absence) for the echo payloads.
func checkTraffic(t *testing.T, who string, compressed bool, read, written int64) {
	t.Helper()
	if compressed && (read >= compressedMax || written >= compressedMax) {
		t.Fatalf("%s: deflate negotiated but %d bytes read, %d written (want < %d each: compressed)", who, read, written, compressedMax)
	}
	if !compressed && (read <= plainMin || written <= plainMin) {
		t.Fatalf("%s: no deflate but %d bytes read, %d written (want > %d each)", who, read, written, plainMin)
	}
}
