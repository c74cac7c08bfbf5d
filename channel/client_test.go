package channel_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"

	"github.com/wsactor/wsactor/actors"
	"github.com/wsactor/wsactor/channel"
	"github.com/wsactor/wsactor/supervisor"
	"github.com/wsactor/wsactor/transport"
)

// clWait bounds every wait of these tests for something that must happen.
const clWait = 10 * time.Second

// clWire is any protocol message as the fake server reads or writes it.
type clWire struct {
	T       string                            `json:"t"`
	Ref     uint64                            `json:"ref,omitempty"`
	Topic   string                            `json:"topic,omitempty"`
	Event   string                            `json:"event,omitempty"`
	Data    json.RawMessage                   `json:"data,omitempty"`
	Bin     []byte                            `json:"data_b64,omitempty"`
	Params  json.RawMessage                   `json:"params,omitempty"`
	Recover *channel.Position                 `json:"recover,omitempty"`
	History int                               `json:"history,omitempty"`
	Status  string                            `json:"status,omitempty"`
	Error   *channel.Error                    `json:"error,omitempty"`
	Offset  uint64                            `json:"offset,omitempty"`
	Reason  string                            `json:"reason,omitempty"`
	State   map[string]*channel.PresenceEntry `json:"state,omitempty"`
	Joins   map[string]*channel.PresenceEntry `json:"joins,omitempty"`
	Leaves  map[string]*channel.PresenceEntry `json:"leaves,omitempty"`

	raw []byte // as the client sent it
}

// The binary encoding (docs/channels-protocol.md, "Binary encoding"),
// written here from the spec and not with the package's codec, so that
// the two check each other.

var clBinTypes = []string{"", "join", "leave", "push", "reply", "ping", "event", "presence_state", "presence_diff", "left"}

// clRest is the "rest" field: the JSON fields of a message that have no
// binary field of their own.
type clRest struct {
	Status  string                            `json:"status,omitempty"`
	Error   *channel.Error                    `json:"error,omitempty"`
	Params  json.RawMessage                   `json:"params,omitempty"`
	Recover *channel.Position                 `json:"recover,omitempty"`
	History int                               `json:"history,omitempty"`
	Reason  string                            `json:"reason,omitempty"`
	State   map[string]*channel.PresenceEntry `json:"state,omitempty"`
	Joins   map[string]*channel.PresenceEntry `json:"joins,omitempty"`
	Leaves  map[string]*channel.PresenceEntry `json:"leaves,omitempty"`
}

var clRestKeys = map[string]bool{"status": true, "error": true, "params": true, "recover": true, "history": true,
	"reason": true, "state": true, "joins": true, "leaves": true}

func clUvarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

func clLenBytes(b, p []byte) []byte {
	return append(clUvarint(b, uint64(len(p))), p...)
}

// clEncodeBin encodes m as the binary encoding says. A Bin that is not
// nil is a bytes payload, even empty.
func clEncodeBin(m clWire) []byte {
	code := slices.Index(clBinTypes, m.T)
	if code <= 0 {
		panic("clEncodeBin: type " + m.T)
	}
	rest := clRest{m.Status, m.Error, m.Params, m.Recover, m.History, m.Reason, m.State, m.Joins, m.Leaves}
	restJSON, err := json.Marshal(rest)
	if err != nil {
		panic(err)
	}
	var flags byte
	var body []byte
	if m.Ref != 0 {
		flags |= 0x01
		body = clUvarint(body, m.Ref)
	}
	if m.Topic != "" {
		flags |= 0x02
		body = clLenBytes(body, []byte(m.Topic))
	}
	if m.Event != "" {
		flags |= 0x04
		body = clLenBytes(body, []byte(m.Event))
	}
	if m.Offset != 0 {
		flags |= 0x08
		body = clUvarint(body, m.Offset)
	}
	switch {
	case len(m.Data) > 0:
		flags |= 0x10 | 0x20
		body = clLenBytes(body, m.Data)
	case m.Bin != nil:
		flags |= 0x10
		body = clLenBytes(body, m.Bin)
	}
	if string(restJSON) != "{}" {
		flags |= 0x40
		body = clLenBytes(body, restJSON)
	}
	return append([]byte{byte(code), flags}, body...)
}

// clDecodeBin decodes one binary message strictly: anything the spec
// does not allow is an error.
func clDecodeBin(p []byte) (clWire, error) {
	var m clWire
	if len(p) < 2 {
		return m, errors.New("shorter than the header")
	}
	code, flags := int(p[0]), p[1]
	if code == 0 || code >= len(clBinTypes) {
		return m, fmt.Errorf("type code %d", code)
	}
	if flags&0x80 != 0 || flags&0x20 != 0 && flags&0x10 == 0 {
		return m, fmt.Errorf("flags %#x", flags)
	}
	m.T = clBinTypes[code]
	p = p[2:]
	uvarint := func() (uint64, error) {
		var v uint64
		for i := 0; i < 10; i++ {
			if len(p) == 0 {
				return 0, errors.New("varint cut short")
			}
			c := p[0]
			p = p[1:]
			v |= uint64(c&0x7f) << (7 * i)
			if c < 0x80 {
				return v, nil
			}
		}
		return 0, errors.New("varint longer than 10 bytes")
	}
	field := func() ([]byte, error) {
		n, err := uvarint()
		if err != nil {
			return nil, err
		}
		if n > uint64(len(p)) {
			return nil, errors.New("field cut short")
		}
		f := p[:n]
		p = p[n:]
		return f, nil
	}
	var err error
	if flags&0x01 != 0 {
		if m.Ref, err = uvarint(); err != nil {
			return m, err
		}
		if m.Ref == 0 {
			return m, errors.New("ref 0 sent")
		}
	}
	if flags&0x02 != 0 {
		f, err := field()
		if err != nil {
			return m, err
		}
		m.Topic = string(f)
	}
	if flags&0x04 != 0 {
		f, err := field()
		if err != nil {
			return m, err
		}
		m.Event = string(f)
	}
	if flags&0x08 != 0 {
		if m.Offset, err = uvarint(); err != nil {
			return m, err
		}
	}
	if flags&0x10 != 0 {
		f, err := field()
		if err != nil {
			return m, err
		}
		if flags&0x20 != 0 {
			if !json.Valid(f) {
				return m, fmt.Errorf("data flagged JSON is not: %q", f)
			}
			m.Data = slices.Clone(json.RawMessage(f))
		} else {
			m.Bin = append([]byte{}, f...)
		}
	}
	if flags&0x40 != 0 {
		f, err := field()
		if err != nil {
			return m, err
		}
		var keys map[string]json.RawMessage
		if err := json.Unmarshal(f, &keys); err != nil || len(f) == 0 || f[0] != '{' {
			return m, fmt.Errorf("rest is not a JSON object: %q", f)
		}
		for k := range keys {
			if !clRestKeys[k] {
				return m, fmt.Errorf("rest has %q", k)
			}
		}
		var r clRest
		if err := json.Unmarshal(f, &r); err != nil {
			return m, err
		}
		m.Status, m.Error, m.Params, m.Recover, m.History = r.Status, r.Error, r.Params, r.Recover, r.History
		m.Reason, m.State, m.Joins, m.Leaves = r.Reason, r.State, r.Joins, r.Leaves
	}
	if len(p) != 0 {
		return m, fmt.Errorf("%d bytes after the last field", len(p))
	}
	return m, nil
}

// TestClBinCodec checks the test's codec against the spec's examples.
func TestClBinCodec(t *testing.T) {
	t.Parallel()
	ev := clEncodeBin(clWire{T: "event", Topic: "t", Event: "e", Offset: 300, Bin: []byte{0xff}})
	want := []byte{6, 0x02 | 0x04 | 0x08 | 0x10, 1, 't', 1, 'e', 0xac, 0x02, 1, 0xff}
	if !bytes.Equal(ev, want) {
		t.Fatalf("event % x, want % x", ev, want)
	}
	for _, m := range []clWire{
		{T: "reply", Ref: 1 << 52, Status: "ok", Data: json.RawMessage(`{"a":1}`)},
		{T: "reply", Ref: 2, Status: "error", Error: &channel.Error{Code: "x"}},
		{T: "push", Topic: "t", Event: "e", Bin: []byte{}},
		{T: "join", Ref: 1, Topic: "t", Recover: &channel.Position{Epoch: "E", Offset: 3}, History: 4, Params: json.RawMessage(`"p"`)},
		{T: "ping", Ref: 9},
	} {
		got, err := clDecodeBin(clEncodeBin(m))
		if err != nil {
			t.Fatalf("%+v: %v", m, err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Fatalf("round trip %+v, want %+v", got, m)
		}
	}
	for _, bad := range [][]byte{{}, {6}, {0, 0}, {10, 0}, {6, 0x80}, {6, 0x20}, {6, 0x02, 5, 'a'}, {5, 0x01, 1, 0}, {5, 0x01, 0x80}} {
		if _, err := clDecodeBin(bad); err == nil {
			t.Fatalf("% x decoded", bad)
		}
	}
}

// clFake is a scripted channels server on loopback: the test reads what
// the client sends and writes the answers itself.
type clFake struct {
	srv     *httptest.Server
	url     string
	proto   string // the subprotocol the fake chooses
	peers   chan *clPeer
	gated   bool
	arrived chan struct{} // gated: an upgrade request came in
	admit   chan struct{} // gated: lets one upgrade proceed
	stop    chan struct{}

	mu  sync.Mutex
	all []*clPeer
}

// clPeer is one connection of the fake server. Only the test's goroutine
// writes to it.
type clPeer struct {
	t   *testing.T
	ws  *websocket.Conn
	bin bool        // the connection speaks the binary encoding
	in  chan clWire // closed when the connection ends
	// closeCode is the client's close code (-1 for none); read it after in
	// is closed.
	closeCode int
}

// clModes runs f in parallel subtests, once per encoding.
func clModes(t *testing.T, f func(t *testing.T, bin bool)) {
	t.Parallel()
	for _, bin := range []bool{false, true} {
		name := "json"
		if bin {
			name = "bin"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f(t, bin)
		})
	}
}

// clProto is the subprotocol of an encoding.
func clProto(bin bool) string {
	if bin {
		return channel.SubprotocolBinary
	}
	return channel.Subprotocol
}

// clNewFake starts a fake server that speaks the binary encoding if bin,
// else JSON; the client must offer it.
func clNewFake(t *testing.T, bin, gated bool) *clFake {
	t.Helper()
	return clNewFakeProto(t, clProto(bin), gated)
}

// clNewFakeProto starts a fake server choosing the subprotocol proto
// ("": none, which is JSON).
func clNewFakeProto(t *testing.T, proto string, gated bool) *clFake {
	t.Helper()
	f := &clFake{
		proto:   proto,
		peers:   make(chan *clPeer, 16),
		gated:   gated,
		arrived: make(chan struct{}, 16),
		admit:   make(chan struct{}, 16),
		stop:    make(chan struct{}),
	}
	up := websocket.Upgrader{}
	if proto != "" {
		up.Subprotocols = []string{proto}
	}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f.gated {
			f.arrived <- struct{}{}
			select {
			case <-f.admit:
			case <-f.stop:
				http.Error(w, "stopping", http.StatusServiceUnavailable)
				return
			case <-r.Context().Done():
				return
			}
		}
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		p := &clPeer{t: t, ws: ws, bin: ws.Subprotocol() == channel.SubprotocolBinary, in: make(chan clWire, 256)}
		f.mu.Lock()
		f.all = append(f.all, p)
		f.mu.Unlock()
		go p.read()
		f.peers <- p
	}))
	f.url = "ws" + strings.TrimPrefix(f.srv.URL, "http")
	t.Cleanup(func() {
		close(f.stop)
		f.mu.Lock()
		for _, p := range f.all {
			p.ws.Close()
		}
		f.mu.Unlock()
		f.srv.Close()
	})
	return f
}

// accept returns the next connection the fake server accepted.
func (f *clFake) accept(t *testing.T) *clPeer {
	t.Helper()
	select {
	case p := <-f.peers:
		if got := p.ws.Subprotocol(); got != f.proto {
			t.Fatalf("subprotocol %q negotiated, want %q", got, f.proto)
		}
		return p
	case <-time.After(clWait):
		t.Fatal("no connection arrived")
		return nil
	}
}

func (p *clPeer) read() {
	defer close(p.in)
	for {
		typ, data, err := p.ws.ReadMessage()
		if err != nil {
			p.closeCode = -1
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				p.closeCode = ce.Code
			}
			return
		}
		var m clWire
		switch {
		case p.bin && typ == websocket.BinaryMessage:
			m, err = clDecodeBin(data)
		case !p.bin && typ == websocket.TextMessage:
			err = json.Unmarshal(data, &m)
		default:
			err = fmt.Errorf("message of type %d on a connection speaking %q", typ, p.ws.Subprotocol())
		}
		if err != nil {
			p.t.Errorf("the client sent an invalid message %q: %v", data, err)
			return
		}
		m.raw = data
		p.in <- m
	}
}

// expect returns the next message from the client, which must be of type t.
func (p *clPeer) expect(t *testing.T, typ string) clWire {
	t.Helper()
	select {
	case m, ok := <-p.in:
		if !ok {
			t.Fatalf("connection ended while waiting for %q", typ)
		}
		if m.T != typ {
			t.Fatalf("got %+v, want a %q", m, typ)
		}
		return m
	case <-time.After(clWait):
		t.Fatalf("no %q from the client", typ)
		return clWire{}
	}
}

// send writes m in the connection's encoding.
func (p *clPeer) send(t *testing.T, m clWire) {
	t.Helper()
	if p.bin {
		p.sendRaw(t, websocket.BinaryMessage, clEncodeBin(m))
		return
	}
	data, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	p.sendRaw(t, websocket.TextMessage, data)
}

func (p *clPeer) sendRaw(t *testing.T, typ int, data []byte) {
	t.Helper()
	if err := p.ws.WriteMessage(typ, data); err != nil {
		t.Fatalf("fake server write: %v", err)
	}
}

// replyJoin answers join j with the given reply data.
func (p *clPeer) replyJoin(t *testing.T, j clWire, r channel.JoinReply) {
	t.Helper()
	data, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	p.send(t, clWire{T: "reply", Ref: j.Ref, Topic: j.Topic, Status: "ok", Data: data})
}

// closeWith sends a close frame and waits for the client's answer (or the
// end of the connection).
func (p *clPeer) closeWith(t *testing.T, code int, reason string) {
	t.Helper()
	_ = p.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(clWait))
	timeout := time.After(clWait)
	for {
		select {
		case _, ok := <-p.in:
			if !ok {
				p.ws.Close()
				return
			}
		case <-timeout:
			t.Fatal("the client did not answer the close")
		}
	}
}

// clOpts returns client options for tests: quick reconnects, no logs, the
// binary encoding if bin.
func clOpts(bin bool) *channel.ClientOptions {
	return &channel.ClientOptions{Binary: bin, DialOptions: actors.DialOptions{
		Logger:    zerolog.Nop(),
		Reconnect: &actors.ReconnectOptions{Backoff: supervisor.Backoff{Min: time.Millisecond, Max: 10 * time.Millisecond}},
	}}
}

// clLog collects a client's log lines.
type clLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *clLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, string(p))
	return len(p), nil
}

// has reports whether a line contains s.
func (l *clLog) has(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.ContainsFunc(l.lines, func(line string) bool { return strings.Contains(line, s) })
}

// clDial dials url and closes the client when the test ends.
func clDial(t *testing.T, url string, opts *channel.ClientOptions) *channel.Client {
	t.Helper()
	system := actors.NewSystem(zerolog.Nop())
	ctx, cancel := context.WithTimeout(context.Background(), clWait)
	defer cancel()
	c, err := channel.Dial(ctx, system, url, opts)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() {
		_ = c.Close()
		select {
		case <-c.Done():
		case <-time.After(clWait):
			t.Error("the client's callbacks did not end")
		}
	})
	return c
}

// clJoin joins topic from a goroutine while the fake peer answers with r.
func clJoin(t *testing.T, c *channel.Client, p *clPeer, topic string, o *channel.JoinOptions, r channel.JoinReply) (*channel.Subscription, clWire) {
	t.Helper()
	type res struct {
		s   *channel.Subscription
		r   *channel.JoinReply
		err error
	}
	done := make(chan res, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), clWait) // not the client's Timeout
		defer cancel()
		s, r, err := c.Join(ctx, topic, o)
		done <- res{s, r, err}
	}()
	j := p.expect(t, "join")
	p.replyJoin(t, j, r)
	got := clRecv(t, done)
	if got.err != nil {
		t.Fatalf("Join: %v", got.err)
	}
	if got.r.Epoch != r.Epoch || got.r.Offset != r.Offset {
		t.Fatalf("Join reply %+v, want %+v", got.r, r)
	}
	return got.s, j
}

// clPushRes is what a Push returned, passed on from its goroutine.
type clPushRes struct {
	data json.RawMessage
	bin  []byte
	err  error
}

func clPushOf(r *channel.Reply, err error) clPushRes {
	if (r == nil) == (err == nil) {
		return clPushRes{err: fmt.Errorf("Push returned %+v and %v", r, err)}
	}
	if r == nil {
		return clPushRes{err: err}
	}
	return clPushRes{data: r.Data, bin: r.Bin}
}

func clRecv[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(clWait):
		t.Fatal("nothing received in time")
		var zero T
		return zero
	}
}

func clEvents(n int) (chan channel.Event, func(channel.Event)) {
	ch := make(chan channel.Event, n)
	return ch, func(e channel.Event) { ch <- e }
}

func clExpectEvent(t *testing.T, ch <-chan channel.Event, event string, offset uint64, replayed bool) channel.Event {
	t.Helper()
	e := clRecv(t, ch)
	if e.Event != event || e.Offset != offset || e.Replayed != replayed {
		t.Fatalf("got event %+v, want %s offset %d replayed %v", e, event, offset, replayed)
	}
	return e
}

func TestClJoinHistoryAndPush(t *testing.T) { clModes(t, testClJoinHistoryAndPush) }

func testClJoinHistoryAndPush(t *testing.T, bin bool) {
	f := clNewFake(t, bin, false)
	c := clDial(t, f.url, clOpts(bin))
	p := f.accept(t)

	evs, h := clEvents(16)
	sub, j := clJoin(t, c, p, "chat:lobby", &channel.JoinOptions{Params: map[string]string{"token": "x"}, History: 2, Handler: h},
		channel.JoinReply{Epoch: "E1", Offset: 7, History: []channel.HistoryEvent{
			{Event: "msg", Data: json.RawMessage(`{"n":6}`), Offset: 6},
			{Event: "msg", Data: json.RawMessage(`{"n":7}`), Offset: 7},
		}})
	if string(j.Params) != `{"token":"x"}` || j.History != 2 || j.Recover != nil {
		t.Fatalf("join sent %+v", j)
	}
	clExpectEvent(t, evs, "msg", 6, true)
	e := clExpectEvent(t, evs, "msg", 7, true)
	if string(e.Data) != `{"n":7}` || e.Topic != "chat:lobby" {
		t.Fatalf("history event %+v", e)
	}
	p.send(t, clWire{T: "event", Topic: "chat:lobby", Event: "msg", Data: json.RawMessage(`{"n":8}`), Offset: 8})
	p.send(t, clWire{T: "event", Topic: "chat:lobby", Event: "typing"})
	clExpectEvent(t, evs, "msg", 8, false)
	clExpectEvent(t, evs, "typing", 0, false)
	if got := sub.Position(); got != (channel.Position{Epoch: "E1", Offset: 8}) {
		t.Fatalf("Position = %+v", got)
	}

	// A push with a reply.
	res := make(chan clPushRes, 1)
	go func() {
		d, err := sub.Push(context.Background(), "msg", map[string]int{"n": 9})
		res <- clPushOf(d, err)
	}()
	m := p.expect(t, "push")
	if m.Ref == 0 || m.Topic != "chat:lobby" || m.Event != "msg" || string(m.Data) != `{"n":9}` {
		t.Fatalf("push sent %+v", m)
	}
	p.send(t, clWire{T: "reply", Ref: m.Ref, Topic: m.Topic, Status: "ok", Data: json.RawMessage(`{"offset":9}`)})
	if r := clRecv(t, res); r.err != nil || string(r.data) != `{"offset":9}` {
		t.Fatalf("Push = %s, %v", r.data, r.err)
	}

	// An error reply.
	go func() {
		d, err := sub.Push(context.Background(), "msg", nil)
		res <- clPushOf(d, err)
	}()
	m = p.expect(t, "push")
	p.send(t, clWire{T: "reply", Ref: m.Ref, Status: "error", Error: &channel.Error{Code: "rate_limited", Message: "slow down", RetryAfter: 250}})
	r := clRecv(t, res)
	var ce *channel.Error
	if !errors.As(r.err, &ce) || ce.Code != channel.CodeRateLimited || ce.RetryAfter != 250 {
		t.Fatalf("Push error = %v, want rate_limited", r.err)
	}

	// No reply asked.
	if err := sub.PushNoReply(context.Background(), "seen", nil); err != nil {
		t.Fatal(err)
	}
	if m := p.expect(t, "push"); m.Ref != 0 || m.Event != "seen" {
		t.Fatalf("PushNoReply sent %+v", m)
	}

	// Ping.
	pingRes := make(chan error, 1)
	go func() {
		_, err := c.Ping(context.Background())
		pingRes <- err
	}()
	m = p.expect(t, "ping")
	p.send(t, clWire{T: "reply", Ref: m.Ref, Status: "ok"})
	if err := clRecv(t, pingRes); err != nil {
		t.Fatalf("Ping: %v", err)
	}

	// A second join of the same topic is refused locally.
	if _, _, err := c.Join(context.Background(), "chat:lobby", nil); !errors.Is(err, &channel.Error{Code: channel.CodeAlreadyJoined}) {
		t.Fatalf("second Join = %v, want already_joined", err)
	}

	// Leave.
	leaveRes := make(chan error, 1)
	go func() { leaveRes <- sub.Leave(context.Background()) }()
	m = p.expect(t, "leave")
	p.send(t, clWire{T: "reply", Ref: m.Ref, Topic: m.Topic, Status: "ok"})
	if err := clRecv(t, leaveRes); err != nil {
		t.Fatalf("Leave: %v", err)
	}
	clRecv(t, sub.Done())
	if err := sub.Err(); err != nil {
		t.Fatalf("Err after Leave = %v", err)
	}
	if _, err := sub.Push(context.Background(), "msg", nil); !errors.Is(err, channel.ErrNotJoined) {
		t.Fatalf("Push after Leave = %v, want ErrNotJoined", err)
	}
}

func TestClJoinRefused(t *testing.T) { clModes(t, testClJoinRefused) }

func testClJoinRefused(t *testing.T, bin bool) {
	f := clNewFake(t, bin, false)
	c := clDial(t, f.url, clOpts(bin))
	p := f.accept(t)
	res := make(chan error, 1)
	go func() {
		_, _, err := c.Join(context.Background(), "secret", nil)
		res <- err
	}()
	j := p.expect(t, "join")
	p.send(t, clWire{T: "reply", Ref: j.Ref, Topic: j.Topic, Status: "error", Error: &channel.Error{Code: "unauthorized", Message: "no"}})
	err := clRecv(t, res)
	var ce *channel.Error
	if !errors.As(err, &ce) || ce.Code != channel.CodeUnauthorized {
		t.Fatalf("Join = %v, want unauthorized", err)
	}
	// The topic can be joined again.
	clJoin(t, c, p, "secret", nil, channel.JoinReply{Epoch: "E"})
}

func TestClServerPush(t *testing.T) { clModes(t, testClServerPush) }

func testClServerPush(t *testing.T, bin bool) {
	f := clNewFake(t, bin, false)
	opts := clOpts(bin)
	opts.OnPush = func(p channel.Event) (any, error) {
		if p.Offset != 0 || p.Replayed || len(p.Data) > 0 && p.Bin != nil {
			t.Errorf("OnPush got %+v", p)
		}
		switch p.Event {
		case "fail":
			return nil, channel.Errorf("not_found", "no %s", p.Data)
		case "plain":
			return nil, errors.New("plain failure")
		case "echo": // a bytes payload, answered with bytes
			return append([]byte("got "), p.Bin...), nil
		case "raw":
			return json.RawMessage(`[1,2]`), nil
		case "badraw":
			return json.RawMessage(`{`), nil
		case "empty":
			return []byte{}, nil
		}
		return map[string]string{"topic": p.Topic, "event": p.Event, "got": string(p.Data)}, nil
	}
	c := clDial(t, f.url, opts)
	p := f.accept(t)
	evs, h := clEvents(4)
	clJoin(t, c, p, "a", &channel.JoinOptions{Handler: h}, channel.JoinReply{Epoch: "E"})
	clJoin(t, c, p, "b", &channel.JoinOptions{OnPush: func(channel.Event) (any, error) {
		return "topic b", nil
	}}, channel.JoinReply{Epoch: "E"})

	tests := []struct {
		name, topic, event, data string
		bin                      []byte
		status, code, reply      string
		replyBin                 []byte
	}{
		{"client handler", "a", "invite", `{"from":"bob"}`, nil, "ok", "", `{"event":"invite","got":"{\"from\":\"bob\"}","topic":"a"}`, nil},
		{"error reply", "a", "fail", `1`, nil, "error", "not_found", "", nil},
		{"plain error", "a", "plain", ``, nil, "error", "error", "", nil},
		{"topic handler", "b", "x", ``, nil, "ok", "", `"topic b"`, nil},
		{"topic not joined", "zzz", "y", ``, nil, "ok", "", `{"event":"y","got":"","topic":"zzz"}`, nil},
		{"bytes answered with bytes", "a", "echo", ``, []byte{0, 0xff, '\n'}, "ok", "", ``, []byte("got \x00\xff\n")},
		{"JSON answered with RawMessage", "a", "raw", `"x"`, nil, "ok", "", `[1,2]`, nil},
		{"invalid RawMessage", "a", "badraw", ``, nil, "error", "internal", "", nil},
	}
	if bin {
		// An empty bytes payload is one in the binary encoding (the JSON
		// encoding leaves an empty data_b64 out).
		tests = append(tests, struct {
			name, topic, event, data string
			bin                      []byte
			status, code, reply      string
			replyBin                 []byte
		}{"empty bytes", "a", "empty", ``, []byte{}, "ok", "", ``, nil}) // an empty bytes payload is none
	}
	for i, tt := range tests {
		ref := uint64(100 + i)
		p.send(t, clWire{T: "push", Ref: ref, Topic: tt.topic, Event: tt.event, Data: json.RawMessage(tt.data), Bin: tt.bin})
		r := p.expect(t, "reply")
		if r.Ref != ref || r.Status != tt.status || string(r.Data) != tt.reply || !bytes.Equal(r.Bin, tt.replyBin) || (r.Bin == nil) != (tt.replyBin == nil) {
			t.Fatalf("%s: reply %+v (data %s)", tt.name, r, r.Data)
		}
		if tt.code != "" && (r.Error == nil || r.Error.Code != tt.code) {
			t.Fatalf("%s: error %+v, want code %s", tt.name, r.Error, tt.code)
		}
	}
	// Without a ref a push goes to OnPush and nothing is answered; the
	// next reply proves no answer came before it.
	p.send(t, clWire{T: "push", Topic: "a", Event: "note"})
	p.send(t, clWire{T: "push", Ref: 7, Topic: "a", Event: "after"})
	if r := p.expect(t, "reply"); r.Ref != 7 {
		t.Fatalf("reply %+v, want ref 7", r)
	}
	select {
	case e := <-evs:
		t.Fatalf("a push reached the Handler: %+v", e)
	default:
	}
}

func TestClServerPushNoHandler(t *testing.T) { clModes(t, testClServerPushNoHandler) }

func testClServerPushNoHandler(t *testing.T, bin bool) {
	f := clNewFake(t, bin, false)
	c := clDial(t, f.url, clOpts(bin))
	p := f.accept(t)
	evs, h := clEvents(4)
	clJoin(t, c, p, "a", &channel.JoinOptions{Handler: h}, channel.JoinReply{Epoch: "E"})
	p.send(t, clWire{T: "push", Ref: 3, Topic: "a", Event: "ask"})
	if r := p.expect(t, "reply"); r.Ref != 3 || r.Status != "error" || r.Error.Code != channel.CodeNoHandler {
		t.Fatalf("reply %+v, want no_handler", r)
	}
	// A push without a ref and no OnPush is an event for the Handler.
	p.send(t, clWire{T: "push", Topic: "a", Event: "note", Data: json.RawMessage(`"hi"`)})
	if e := clExpectEvent(t, evs, "note", 0, false); string(e.Data) != `"hi"` {
		t.Fatalf("event %+v", e)
	}
}

func TestClPresence(t *testing.T) { clModes(t, testClPresence) }

func testClPresence(t *testing.T, bin bool) {
	f := clNewFake(t, bin, false)
	c := clDial(t, f.url, clOpts(bin))
	p := f.accept(t)

	type change struct {
		kind, key      string
		current, delta []string
	}
	ids := func(ms []channel.PresenceMeta) []string {
		var out []string
		for _, m := range ms {
			out = append(out, m.ID)
		}
		return out
	}
	changes := make(chan change, 32)
	syncs := make(chan []channel.PresenceKey, 8)
	o := &channel.JoinOptions{
		OnPresenceJoin: func(key string, current, joined []channel.PresenceMeta) {
			changes <- change{"join", key, ids(current), ids(joined)}
		},
		OnPresenceLeave: func(key string, current, left []channel.PresenceMeta) {
			changes <- change{"leave", key, ids(current), ids(left)}
		},
		OnPresenceSync: func(list []channel.PresenceKey) { syncs <- list },
	}
	sub, _ := clJoin(t, c, p, "room", o, channel.JoinReply{Epoch: "E"})
	meta := func(ids ...string) *channel.PresenceEntry {
		e := &channel.PresenceEntry{}
		for _, id := range ids {
			e.Metas = append(e.Metas, channel.PresenceMeta{ID: id, Meta: json.RawMessage(`{"n":"` + id + `"}`)})
		}
		return e
	}
	p.send(t, clWire{T: "presence_state", Topic: "room", State: map[string]*channel.PresenceEntry{
		"alice": meta("a1", "a2"), "bob": meta("b1"),
	}})
	want := func(kind, key string, current, delta []string) {
		t.Helper()
		got := clRecv(t, changes)
		if got.kind != kind || got.key != key || strings.Join(got.current, ",") != strings.Join(current, ",") || strings.Join(got.delta, ",") != strings.Join(delta, ",") {
			t.Fatalf("presence change %+v, want %s %s %v %v", got, kind, key, current, delta)
		}
	}
	want("join", "alice", nil, []string{"a1", "a2"})
	want("join", "bob", nil, []string{"b1"})
	list := clRecv(t, syncs)
	if len(list) != 2 || list[0].Key != "alice" || len(list[0].Metas) != 2 || list[1].Key != "bob" {
		t.Fatalf("sync %+v", list)
	}

	p.send(t, clWire{T: "presence_diff", Topic: "room",
		Joins:  map[string]*channel.PresenceEntry{"carol": meta("c1"), "alice": meta("a3")},
		Leaves: map[string]*channel.PresenceEntry{"alice": meta("a1"), "bob": meta("b1")}})
	want("join", "alice", []string{"a1", "a2"}, []string{"a3"})
	want("join", "carol", nil, []string{"c1"})
	want("leave", "alice", []string{"a2", "a3"}, []string{"a1"})
	want("leave", "bob", nil, []string{"b1"})
	clRecv(t, syncs)
	got := sub.Presence()
	if len(got) != 2 || got[0].Key != "alice" || strings.Join(ids(got[0].Metas), ",") != "a2,a3" ||
		got[1].Key != "carol" || string(got[1].Metas[0].Meta) != `{"n":"c1"}` {
		t.Fatalf("Presence() = %+v", got)
	}

	// After a reconnect the new state is told apart from the old one:
	// alice's a2 went, dave came.
	p.closeWith(t, websocket.CloseGoingAway, "")
	p2 := f.accept(t)
	p2.replyJoin(t, p2.expect(t, "join"), channel.JoinReply{Epoch: "E", Recovered: true})
	p2.send(t, clWire{T: "presence_state", Topic: "room", State: map[string]*channel.PresenceEntry{
		"alice": meta("a3"), "carol": meta("c1"), "dave": meta("d1"),
	}})
	want("join", "dave", nil, []string{"d1"})
	want("leave", "alice", []string{"a3"}, []string{"a2"})
	if l := clRecv(t, syncs); len(l) != 3 {
		t.Fatalf("sync %+v", l)
	}
}

func TestClReconnectRecovers(t *testing.T) { clModes(t, testClReconnectRecovers) }

func testClReconnectRecovers(t *testing.T, bin bool) {
	f := clNewFake(t, bin, false)
	c := clDial(t, f.url, clOpts(bin))
	p := f.accept(t)

	evs, h := clEvents(32)
	rejoins := make(chan *channel.JoinReply, 4)
	o := &channel.JoinOptions{Params: "p", History: 5, Handler: h, OnRejoin: func(r *channel.JoinReply, err error) {
		if err != nil {
			t.Errorf("rejoin failed: %v", err)
		}
		rejoins <- r
	}}
	sub, _ := clJoin(t, c, p, "t", o, channel.JoinReply{Epoch: "E1", Offset: 2})
	clJoin(t, c, p, "u", nil, channel.JoinReply{Epoch: "U1", Offset: 0})
	for off := uint64(3); off <= 4; off++ {
		p.send(t, clWire{T: "event", Topic: "t", Event: "e", Offset: off})
		clExpectEvent(t, evs, "e", off, false)
	}

	p.closeWith(t, websocket.CloseGoingAway, "restart")
	p2 := f.accept(t)
	// Rejoins come in join order, with recover at the last offset applied.
	j := p2.expect(t, "join")
	if j.Topic != "t" || j.Recover == nil || *j.Recover != (channel.Position{Epoch: "E1", Offset: 4}) || string(j.Params) != `"p"` || j.History != 5 {
		t.Fatalf("rejoin %+v (recover %+v)", j, j.Recover)
	}
	ju := p2.expect(t, "join")
	if ju.Topic != "u" || ju.Recover == nil || *ju.Recover != (channel.Position{Epoch: "U1"}) {
		t.Fatalf("rejoin %+v", ju)
	}
	// The server repeats offset 4: it is dropped.
	p2.replyJoin(t, j, channel.JoinReply{Epoch: "E1", Offset: 6, Recovered: true, History: []channel.HistoryEvent{
		{Event: "e", Offset: 4}, {Event: "e", Bin: []byte{5}, Offset: 5}, {Event: "e", Data: json.RawMessage(`6`), Offset: 6},
	}})
	p2.replyJoin(t, ju, channel.JoinReply{Epoch: "U1", Recovered: true})
	if r := clRecv(t, rejoins); !r.Recovered || r.Offset != 6 {
		t.Fatalf("OnRejoin %+v", r)
	}
	if e := clExpectEvent(t, evs, "e", 5, true); !bytes.Equal(e.Bin, []byte{5}) || e.Data != nil {
		t.Fatalf("recovered event %+v", e)
	}
	if e := clExpectEvent(t, evs, "e", 6, true); string(e.Data) != "6" || e.Bin != nil {
		t.Fatalf("recovered event %+v", e)
	}
	p2.send(t, clWire{T: "event", Topic: "t", Event: "e", Offset: 6}) // a duplicate
	p2.send(t, clWire{T: "event", Topic: "t", Event: "e", Offset: 7})
	clExpectEvent(t, evs, "e", 7, false)
	if got := sub.Position(); got != (channel.Position{Epoch: "E1", Offset: 7}) {
		t.Fatalf("Position = %+v", got)
	}

	// A reconnect to a topic whose stream started anew: not recovered,
	// the position restarts in the new epoch.
	p2.closeWith(t, websocket.CloseInternalServerErr, "")
	p3 := f.accept(t)
	j = p3.expect(t, "join")
	if *j.Recover != (channel.Position{Epoch: "E1", Offset: 7}) {
		t.Fatalf("recover %+v", j.Recover)
	}
	p3.expect(t, "join")
	p3.replyJoin(t, j, channel.JoinReply{Epoch: "E2", Offset: 1, Reason: channel.ReasonEpoch, History: []channel.HistoryEvent{{Event: "e", Offset: 1}}})
	if r := clRecv(t, rejoins); r.Recovered || r.Reason != channel.ReasonEpoch {
		t.Fatalf("OnRejoin %+v", r)
	}
	clExpectEvent(t, evs, "e", 1, true)
	p3.send(t, clWire{T: "event", Topic: "t", Event: "e", Offset: 2})
	clExpectEvent(t, evs, "e", 2, false)
	if got := sub.Position(); got != (channel.Position{Epoch: "E2", Offset: 2}) {
		t.Fatalf("Position = %+v", got)
	}
}

func TestClOfflineBuffer(t *testing.T) { clModes(t, testClOfflineBuffer) }

func testClOfflineBuffer(t *testing.T, bin bool) {
	f := clNewFake(t, bin, true)
	opts := clOpts(bin)
	opts.Buffer = 2
	f.admit <- struct{}{}
	c := clDial(t, f.url, opts)
	<-f.arrived
	p := f.accept(t)
	sub, _ := clJoin(t, c, p, "t", nil, channel.JoinReply{Epoch: "E"})

	p.closeWith(t, websocket.CloseGoingAway, "")
	clRecv(t, f.arrived) // the client is reconnecting: it has seen the close

	// Three pushes while offline, with room for two: the oldest goes.
	if err := sub.PushNoReply(context.Background(), "n1", nil); err != nil {
		t.Fatal(err)
	}
	if err := sub.PushNoReply(context.Background(), "n2", nil); err != nil {
		t.Fatal(err)
	}
	waiting := make(chan clPushRes, 1)
	go func() {
		d, err := sub.Push(context.Background(), "p3", nil)
		waiting <- clPushOf(d, err)
	}()
	// A waiting push pushed out of the buffer fails with ErrBufferFull:
	// keep pushing until p3 has been pushed out by a newer one.
	var pushedOut error
	buf := []byte{4} // reused by the application: the buffer holds copies
	for i := 0; i < 100000 && pushedOut == nil; i++ {
		if err := sub.PushNoReply(context.Background(), "n4", buf); err != nil {
			t.Fatal(err)
		}
		select {
		case r := <-waiting:
			pushedOut = r.err
			if pushedOut == nil {
				t.Fatal("p3 succeeded while offline")
			}
		default:
		}
	}
	if !errors.Is(pushedOut, channel.ErrBufferFull) {
		t.Fatalf("pushed-out push: %v, want ErrBufferFull", pushedOut)
	}
	buf[0] = 99

	f.admit <- struct{}{}
	p2 := f.accept(t)
	j := p2.expect(t, "join")
	p2.replyJoin(t, j, channel.JoinReply{Epoch: "E", Recovered: true})
	// The buffer holds the last two pushes, sent in order after the rejoin.
	for i := 0; i < 2; i++ {
		if m := p2.expect(t, "push"); m.Event != "n4" || m.Ref != 0 || !bytes.Equal(m.Bin, []byte{4}) {
			t.Fatalf("buffered push %+v, want n4", m)
		}
	}
	res := make(chan clPushRes, 1)
	go func() {
		d, err := sub.Push(context.Background(), "after", nil)
		res <- clPushOf(d, err)
	}()
	m := p2.expect(t, "push")
	if m.Event != "after" {
		t.Fatalf("push %+v, want after", m)
	}
	p2.send(t, clWire{T: "reply", Ref: m.Ref, Status: "ok", Data: json.RawMessage(`true`)})
	if r := clRecv(t, res); r.err != nil || string(r.data) != "true" {
		t.Fatalf("Push = %s, %v", r.data, r.err)
	}
}

func TestClPushAcrossDisconnect(t *testing.T) { clModes(t, testClPushAcrossDisconnect) }

func testClPushAcrossDisconnect(t *testing.T, bin bool) {
	f := clNewFake(t, bin, false)
	c := clDial(t, f.url, clOpts(bin))
	p := f.accept(t)
	sub, _ := clJoin(t, c, p, "t", nil, channel.JoinReply{Epoch: "E"})
	res := make(chan error, 1)
	go func() {
		_, err := sub.Push(context.Background(), "x", nil)
		res <- err
	}()
	p.expect(t, "push")
	p.closeWith(t, websocket.CloseGoingAway, "")
	if err := clRecv(t, res); !errors.Is(err, channel.ErrDisconnected) {
		t.Fatalf("Push = %v, want ErrDisconnected", err)
	}
	p2 := f.accept(t)
	p2.replyJoin(t, p2.expect(t, "join"), channel.JoinReply{Epoch: "E", Recovered: true})
}

func TestClPushTimeout(t *testing.T) { clModes(t, testClPushTimeout) }

func testClPushTimeout(t *testing.T, bin bool) {
	f := clNewFake(t, bin, false)
	opts := clOpts(bin)
	opts.Timeout = 50 * time.Millisecond
	c := clDial(t, f.url, opts)
	p := f.accept(t)
	sub, _ := clJoin(t, c, p, "t", nil, channel.JoinReply{Epoch: "E"})

	_, err := sub.Push(context.Background(), "x", nil) // never answered
	if !errors.Is(err, channel.ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Push = %v, want ErrTimeout", err)
	}
	late := p.expect(t, "push")

	// The caller's own deadline is used as is; cancelling is not a timeout.
	ctx, cancel := context.WithTimeout(context.Background(), clWait)
	res := make(chan error, 1)
	go func() {
		_, err := sub.Push(ctx, "y", nil)
		res <- err
	}()
	p.expect(t, "push")
	cancel()
	if err := clRecv(t, res); !errors.Is(err, context.Canceled) || errors.Is(err, channel.ErrTimeout) {
		t.Fatalf("Push = %v, want context.Canceled", err)
	}

	// A late reply is dropped; the next push works.
	p.send(t, clWire{T: "reply", Ref: late.Ref, Status: "ok"})
	ok := make(chan clPushRes, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), clWait)
		defer cancel()
		d, err := sub.Push(ctx, "z", nil)
		ok <- clPushOf(d, err)
	}()
	m := p.expect(t, "push")
	if m.Ref == late.Ref {
		t.Fatalf("ref %d reused while its reply could still come", m.Ref)
	}
	p.send(t, clWire{T: "reply", Ref: m.Ref, Status: "ok", Data: json.RawMessage(`"z"`)})
	if r := clRecv(t, ok); r.err != nil || string(r.data) != `"z"` {
		t.Fatalf("Push = %s, %v", r.data, r.err)
	}
}

func TestClNoReconnectAfter(t *testing.T) { clModes(t, testClNoReconnectAfter) }

func testClNoReconnectAfter(t *testing.T, bin bool) {
	tests := []struct {
		name string
		code int
	}{
		{"4429 rate abuse", 4429},
		{"4400 malformed", 4400},
		{"1008 disconnected", websocket.ClosePolicyViolation},
		{"1000 normal", websocket.CloseNormalClosure},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := clNewFake(t, bin, false)
			c := clDial(t, f.url, clOpts(bin))
			p := f.accept(t)
			sub, _ := clJoin(t, c, p, "t", nil, channel.JoinReply{Epoch: "E"})
			p.closeWith(t, tt.code, "bye")
			clRecv(t, c.Done())
			if got := transport.CloseStatus(c.Err()); int(got) != tt.code {
				t.Fatalf("Err = %v (code %d), want code %d", c.Err(), got, tt.code)
			}
			clRecv(t, sub.Done())
			if err := sub.Err(); transport.CloseStatus(err) != transport.StatusCode(tt.code) {
				t.Fatalf("sub.Err = %v", err)
			}
			if _, err := sub.Push(context.Background(), "x", nil); !errors.Is(err, channel.ErrClientClosed) {
				t.Fatalf("Push after the end = %v, want ErrClientClosed", err)
			}
		})
	}
}

func TestClLeftAndFailedRejoin(t *testing.T) { clModes(t, testClLeftAndFailedRejoin) }

func testClLeftAndFailedRejoin(t *testing.T, bin bool) {
	f := clNewFake(t, bin, false)
	c := clDial(t, f.url, clOpts(bin))
	p := f.accept(t)
	removed, _ := clJoin(t, c, p, "removed", nil, channel.JoinReply{Epoch: "E"})
	rejoinErr := make(chan error, 1)
	denied, _ := clJoin(t, c, p, "denied", &channel.JoinOptions{OnRejoin: func(r *channel.JoinReply, err error) {
		rejoinErr <- err
	}}, channel.JoinReply{Epoch: "E"})
	evs, h := clEvents(4)
	stopped, _ := clJoin(t, c, p, "stopped", &channel.JoinOptions{Handler: h}, channel.JoinReply{Epoch: "E", Offset: 3})

	p.send(t, clWire{T: "left", Topic: "removed", Reason: "removed"})
	clRecv(t, removed.Done())
	if err := removed.Err(); !errors.Is(err, channel.ErrRemoved) || !strings.Contains(err.Error(), "removed") {
		t.Fatalf("Err = %v, want ErrRemoved", err)
	}
	if _, err := removed.Push(context.Background(), "x", nil); !errors.Is(err, channel.ErrNotJoined) {
		t.Fatalf("Push = %v, want ErrNotJoined", err)
	}

	// A stopped topic is joined again at once, recovering.
	p.send(t, clWire{T: "left", Topic: "stopped", Reason: "stopped"})
	j := p.expect(t, "join")
	if j.Topic != "stopped" || j.Recover == nil || j.Recover.Offset != 3 {
		t.Fatalf("rejoin %+v", j)
	}
	p.replyJoin(t, j, channel.JoinReply{Epoch: "F", Offset: 1, Reason: "epoch", History: []channel.HistoryEvent{{Event: "e", Offset: 1}}})
	clExpectEvent(t, evs, "e", 1, true)

	// A refused rejoin ends the subscription.
	p.closeWith(t, websocket.CloseGoingAway, "")
	p2 := f.accept(t)
	for i := 0; i < 2; i++ {
		j := p2.expect(t, "join")
		if j.Topic == "denied" {
			p2.send(t, clWire{T: "reply", Ref: j.Ref, Status: "error", Error: &channel.Error{Code: "unauthorized"}})
		} else {
			p2.replyJoin(t, j, channel.JoinReply{Epoch: "F", Offset: 1, Recovered: true})
		}
	}
	if err := clRecv(t, rejoinErr); !errors.Is(err, &channel.Error{Code: channel.CodeUnauthorized}) {
		t.Fatalf("OnRejoin err = %v", err)
	}
	clRecv(t, denied.Done())
	if err := denied.Err(); !errors.Is(err, &channel.Error{Code: channel.CodeUnauthorized}) {
		t.Fatalf("Err = %v", err)
	}
	select {
	case <-stopped.Done():
		t.Fatal("the recovered subscription ended")
	default:
	}
}

func TestClJoinWhileOfflineAndClose(t *testing.T) { clModes(t, testClJoinWhileOfflineAndClose) }

func testClJoinWhileOfflineAndClose(t *testing.T, bin bool) {
	f := clNewFake(t, bin, true)
	f.admit <- struct{}{}
	c := clDial(t, f.url, clOpts(bin))
	<-f.arrived
	p := f.accept(t)
	p.closeWith(t, websocket.CloseGoingAway, "")
	clRecv(t, f.arrived)

	// A join made while offline is sent once connected.
	type joinRes struct {
		s   *channel.Subscription
		err error
	}
	res := make(chan joinRes, 1)
	go func() {
		s, _, err := c.Join(context.Background(), "t", nil)
		res <- joinRes{s, err}
	}()
	// A ping while offline fails at once.
	if _, err := c.Ping(context.Background()); !errors.Is(err, channel.ErrDisconnected) {
		t.Fatalf("Ping offline = %v", err)
	}
	f.admit <- struct{}{}
	p2 := f.accept(t)
	j := p2.expect(t, "join")
	if j.Recover != nil {
		t.Fatalf("a first join carries recover: %+v", j)
	}
	p2.replyJoin(t, j, channel.JoinReply{Epoch: "E"})
	r := clRecv(t, res)
	if r.err != nil {
		t.Fatal(r.err)
	}

	// Close: 1000, the subscription ends with ErrClientClosed.
	waiting := make(chan error, 1)
	go func() {
		_, err := r.s.Push(context.Background(), "x", nil)
		waiting <- err
	}()
	p2.expect(t, "push")
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := clRecv(t, waiting); !errors.Is(err, channel.ErrClientClosed) && !errors.Is(err, channel.ErrDisconnected) {
		t.Fatalf("Push during Close = %v", err)
	}
	clRecv(t, c.Done())
	if !errors.Is(c.Err(), channel.ErrClientClosed) || !errors.Is(r.s.Err(), channel.ErrClientClosed) {
		t.Fatalf("Err = %v, sub Err = %v", c.Err(), r.s.Err())
	}
	if _, _, err := c.Join(context.Background(), "u", nil); !errors.Is(err, channel.ErrClientClosed) {
		t.Fatalf("Join after Close = %v", err)
	}
	// The server saw a clean 1000.
	select {
	case _, ok := <-p2.in:
		if ok {
			t.Fatal("unexpected message")
		}
		if p2.closeCode != websocket.CloseNormalClosure {
			t.Fatalf("close code %d, want 1000", p2.closeCode)
		}
	case <-time.After(clWait):
		t.Fatal("the connection did not end")
	}
}

// TestClAgainstHub runs the client against the real server, in both
// encodings: join, push (JSON and bytes), publish, then a Shutdown and
// Reopen of the Hub, after which the client reconnects by itself and
// recovers what it missed, bytes payloads included.
func TestClAgainstHub(t *testing.T) { clModes(t, testClAgainstHub) }

func testClAgainstHub(t *testing.T, bin bool) {
	system := actors.NewSystem(zerolog.Nop())
	hub, err := channel.NewHub(system, &channel.Options{
		Logger:       zerolog.Nop(),
		Authenticate: func(*http.Request) (channel.Identity, error) { return channel.Identity{User: "u"}, nil },
		Topics: func(string) *channel.TopicOptions {
			return &channel.TopicOptions{ClientPublish: true, History: 100, Presence: true}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(hub)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), clWait)
		defer cancel()
		if err := hub.Close(ctx); err != nil {
			t.Errorf("hub Close: %v", err)
		}
		srv.Close()
	})
	ctx, cancel := context.WithTimeout(context.Background(), clWait)
	defer cancel()

	opts := clOpts(bin)
	opts.OnPush = func(p channel.Event) (any, error) {
		if p.Data != nil {
			return json.RawMessage(`{"json":true}`), nil
		}
		return append([]byte("re:"), p.Bin...), nil
	}
	logs := &clLog{}
	opts.Logger = zerolog.New(logs)
	disconnected := make(chan error, 4)
	opts.OnDisconnect = func(err error) { disconnected <- err }
	c := clDial(t, "ws"+strings.TrimPrefix(srv.URL, "http"), opts)
	t.Cleanup(func() {
		for _, bad := range []string{"does not speak the binary", "ignored", "bad message"} {
			if logs.has(bad) {
				t.Errorf("the client logged %q: %q", bad, logs.lines)
			}
		}
	})

	evs, h := clEvents(32)
	rejoins := make(chan *channel.JoinReply, 4)
	syncs := make(chan []channel.PresenceKey, 8)
	sub, jr, err := c.Join(ctx, "room:1", &channel.JoinOptions{
		Handler:        h,
		OnPresenceSync: func(l []channel.PresenceKey) { syncs <- l },
		OnRejoin: func(r *channel.JoinReply, err error) {
			if err != nil {
				t.Errorf("rejoin: %v", err)
			}
			rejoins <- r
		},
	})
	if err != nil {
		t.Fatalf("Join: %v", err)
	}
	if jr.Epoch == "" || jr.Offset != 0 {
		t.Fatalf("join reply %+v", jr)
	}
	if l := clRecv(t, syncs); len(l) != 1 || len(l[0].Metas) != 1 {
		t.Fatalf("presence %+v, want this connection", l)
	}

	reply, err := sub.Push(ctx, "msg", map[string]string{"text": "hi"})
	if err != nil {
		t.Fatalf("Push: %v", err)
	}
	if string(reply.Data) != `{"offset":1}` || reply.Bin != nil {
		t.Fatalf("Push reply %+v, want offset 1", reply)
	}
	if e := clExpectEvent(t, evs, "msg", 1, false); string(e.Data) != `{"text":"hi"}` || e.Bin != nil {
		t.Fatalf("event %+v", e)
	}
	// A bytes payload: published as bytes to every member.
	blob := []byte{0, 1, 2, 0xff, '"'}
	reply, err = sub.Push(ctx, "blob", blob)
	if err != nil || string(reply.Data) != `{"offset":2}` {
		t.Fatalf("Push bytes = %+v, %v", reply, err)
	}
	if e := clExpectEvent(t, evs, "blob", 2, false); !bytes.Equal(e.Bin, blob) || e.Data != nil {
		t.Fatalf("bytes event %+v", e)
	}
	if _, err := hub.Publish(ctx, "room:1", "note", "from the server"); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	clExpectEvent(t, evs, "note", 3, false)
	if rtt, err := c.Ping(ctx); err != nil || rtt <= 0 {
		t.Fatalf("Ping = %v, %v", rtt, err)
	}
	// The server's requests, answered by OnPush: bytes with bytes, JSON
	// with JSON.
	sessions := hub.Sessions("u")
	if len(sessions) != 1 {
		t.Fatalf("Sessions = %+v", sessions)
	}
	if r, err := hub.Request(ctx, sessions[0].ID, "room:1", "ask", []byte{1, 2}); err != nil || !bytes.Equal(r.Bin, []byte("re:\x01\x02")) || r.Data != nil {
		t.Fatalf("Request with bytes = %+v, %v", r, err)
	}
	if r, err := hub.Request(ctx, sessions[0].ID, "room:1", "ask", "json"); err != nil || string(r.Data) != `{"json":true}` || r.Bin != nil {
		t.Fatalf("Request with JSON = %+v, %v", r, err)
	}

	// The server goes away; the topic and its history stay.
	if err := hub.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := clRecv(t, disconnected); transport.CloseStatus(err) != transport.StatusGoingAway {
		t.Fatalf("disconnected with %v, want 1001", err)
	}
	if _, err := hub.Publish(ctx, "room:1", "missed", 4); err != nil {
		t.Fatalf("Publish while the client is away: %v", err)
	}
	if _, err := hub.Publish(ctx, "room:1", "missed", []byte{5}); err != nil {
		t.Fatalf("Publish bytes while the client is away: %v", err)
	}
	// A push while offline waits in the buffer.
	offline := make(chan clPushRes, 1)
	go func() {
		d, err := sub.Push(ctx, "msg", "while away")
		offline <- clPushOf(d, err)
	}()

	if err := hub.Reopen(); err != nil {
		t.Fatalf("Reopen: %v", err)
	}
	r := clRecv(t, rejoins)
	if !r.Recovered || r.Epoch != jr.Epoch || len(r.History) != 2 {
		t.Fatalf("rejoin %+v, want recovered in epoch %s with 2 events", r, jr.Epoch)
	}
	if e := clExpectEvent(t, evs, "missed", 4, true); string(e.Data) != "4" || e.Bin != nil {
		t.Fatalf("recovered event %+v", e)
	}
	if e := clExpectEvent(t, evs, "missed", 5, true); !bytes.Equal(e.Bin, []byte{5}) || e.Data != nil {
		t.Fatalf("recovered bytes event %+v", e)
	}
	res := clRecv(t, offline)
	if res.err != nil || string(res.data) != `{"offset":6}` {
		t.Fatalf("buffered Push = %s, %v", res.data, res.err)
	}
	clExpectEvent(t, evs, "msg", 6, false)
	if got := sub.Position(); got != (channel.Position{Epoch: jr.Epoch, Offset: 6}) {
		t.Fatalf("Position = %+v", got)
	}
}

// TestClCallbacksMayCallTheClient: a Handler that pushes and waits for the
// reply does not block the client, and a panicking callback is skipped.
func TestClCallbacksMayCallTheClient(t *testing.T) { clModes(t, testClCallbacksMayCallTheClient) }

func testClCallbacksMayCallTheClient(t *testing.T, bin bool) {
	f := clNewFake(t, bin, false)
	c := clDial(t, f.url, clOpts(bin))
	p := f.accept(t)
	results := make(chan clPushRes, 1)
	var sub *channel.Subscription
	subReady := make(chan struct{})
	o := &channel.JoinOptions{Handler: func(e channel.Event) {
		if e.Event == "boom" {
			panic("a bug in the handler")
		}
		<-subReady
		d, err := sub.Push(context.Background(), "ack", e.Offset)
		results <- clPushOf(d, err)
	}}
	sub, _ = clJoin(t, c, p, "t", o, channel.JoinReply{Epoch: "E"})
	close(subReady)
	p.send(t, clWire{T: "event", Topic: "t", Event: "boom", Offset: 1})
	p.send(t, clWire{T: "event", Topic: "t", Event: "e", Offset: 2})
	m := p.expect(t, "push")
	if m.Event != "ack" || string(m.Data) != "2" {
		t.Fatalf("push %+v", m)
	}
	p.send(t, clWire{T: "reply", Ref: m.Ref, Status: "ok", Data: json.RawMessage(`"thanks"`)})
	if r := clRecv(t, results); r.err != nil || string(r.data) != `"thanks"` {
		t.Fatalf("Push from the Handler = %s, %v", r.data, r.err)
	}
}

// TestClJoinCancelled: a join whose caller gave up is undone with a leave
// when its ok reply comes late, and is not sent at all if it was waiting
// for a connection.
func TestClJoinCancelled(t *testing.T) { clModes(t, testClJoinCancelled) }

func testClJoinCancelled(t *testing.T, bin bool) {
	f := clNewFake(t, bin, true)
	f.admit <- struct{}{}
	c := clDial(t, f.url, clOpts(bin))
	<-f.arrived
	p := f.accept(t)

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, _, err := c.Join(ctx, "slow", nil)
	if !errors.Is(err, channel.ErrTimeout) {
		t.Fatalf("Join = %v, want ErrTimeout", err)
	}
	j := p.expect(t, "join")
	p.replyJoin(t, j, channel.JoinReply{Epoch: "E"})
	if m := p.expect(t, "leave"); m.Topic != "slow" {
		t.Fatalf("leave %+v", m)
	}
	// The topic can be joined again.
	clJoin(t, c, p, "slow", nil, channel.JoinReply{Epoch: "E"})

	// Offline: a join that times out before the connection is back is
	// never sent; the one still wanted is.
	p.closeWith(t, websocket.CloseGoingAway, "")
	clRecv(t, f.arrived)
	ctx2, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	if _, _, err := c.Join(ctx2, "gone", nil); !errors.Is(err, channel.ErrTimeout) {
		t.Fatalf("Join offline = %v, want ErrTimeout", err)
	}
	f.admit <- struct{}{}
	p2 := f.accept(t)
	if j := p2.expect(t, "join"); j.Topic != "slow" {
		t.Fatalf("rejoin %+v, want slow only", j)
	}
	// Nothing else was sent before this ping.
	pingRes := make(chan error, 1)
	go func() {
		_, err := c.Ping(context.Background())
		pingRes <- err
	}()
	m := p2.expect(t, "ping")
	p2.send(t, clWire{T: "reply", Ref: m.Ref, Status: "ok"})
	if err := clRecv(t, pingRes); err != nil {
		t.Fatal(err)
	}
}

// TestClRefusedReconnect: a reconnect refused with a 4xx stops the client.
func TestClRefusedReconnect(t *testing.T) { clModes(t, testClRefusedReconnect) }

func testClRefusedReconnect(t *testing.T, bin bool) {
	var mu sync.Mutex
	accepted := 0
	up := websocket.Upgrader{Subprotocols: []string{clProto(bin)}}
	conns := make(chan *websocket.Conn, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		accepted++
		n := accepted
		mu.Unlock()
		if n > 1 {
			http.Error(w, "token expired", http.StatusUnauthorized)
			return
		}
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		conns <- ws
	}))
	t.Cleanup(srv.Close)
	c := clDial(t, "ws"+strings.TrimPrefix(srv.URL, "http"), clOpts(bin))
	ws := clRecv(t, conns)
	ws.Close() // dropped: the client reconnects and is refused
	clRecv(t, c.Done())
	if err := c.Err(); !errors.Is(err, channel.ErrClientClosed) {
		t.Fatalf("Err = %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if accepted != 2 {
		t.Fatalf("%d attempts, want 2 (the first and the refused one)", accepted)
	}
}

// TestClPayloads: JSON and bytes payloads in every place they go, in both
// encodings: join history, events, a push and its reply, pushes without a
// reply, and pushes from the server without a ref.
func TestClPayloads(t *testing.T) { clModes(t, testClPayloads) }

func testClPayloads(t *testing.T, bin bool) {
	f := clNewFake(t, bin, false)
	c := clDial(t, f.url, clOpts(bin))
	p := f.accept(t)
	blob := []byte{0, 0xff, '"', '\\', 0xfe} // base64 "AP8iXP4=": padded

	evs, h := clEvents(16)
	sub, _ := clJoin(t, c, p, "t", &channel.JoinOptions{History: 3, Handler: h}, channel.JoinReply{Epoch: "E", Offset: 3, History: []channel.HistoryEvent{
		{Event: "j", Data: json.RawMessage(`{"n":1}`), Offset: 1},
		{Event: "b", Bin: blob, Offset: 2},
		{Event: "none", Offset: 3},
	}})
	payload := func(e channel.Event, data string, bin []byte) {
		t.Helper()
		if string(e.Data) != data || !bytes.Equal(e.Bin, bin) || (e.Bin == nil) != (bin == nil) {
			t.Fatalf("event %+v, want data %q bin %v", e, data, bin)
		}
	}
	payload(clExpectEvent(t, evs, "j", 1, true), `{"n":1}`, nil)
	payload(clExpectEvent(t, evs, "b", 2, true), "", blob)
	payload(clExpectEvent(t, evs, "none", 3, true), "", nil)

	p.send(t, clWire{T: "event", Topic: "t", Event: "j", Data: json.RawMessage(`[true]`), Offset: 4})
	p.send(t, clWire{T: "event", Topic: "t", Event: "b", Bin: blob, Offset: 5})
	p.send(t, clWire{T: "event", Topic: "t", Event: "tick", Bin: []byte("not kept")})
	p.send(t, clWire{T: "push", Topic: "t", Event: "note", Bin: []byte{7}}) // no OnPush: an event
	payload(clExpectEvent(t, evs, "j", 4, false), `[true]`, nil)
	payload(clExpectEvent(t, evs, "b", 5, false), "", blob)
	payload(clExpectEvent(t, evs, "tick", 0, false), "", []byte("not kept"))
	payload(clExpectEvent(t, evs, "note", 0, false), "", []byte{7})

	// Push: what is sent for each kind of value, and each kind of reply.
	tests := []struct {
		name       string
		data       any
		sentData   string
		sentBin    []byte
		reply      clWire
		replyData  string
		replyBytes []byte
	}{
		{"bytes, bytes reply", blob, "", blob, clWire{Bin: []byte{1, 2}}, "", []byte{1, 2}},
		{"RawMessage, JSON reply", json.RawMessage(`{"a":[1]}`), `{"a":[1]}`, nil, clWire{Data: json.RawMessage(`"ok"`)}, `"ok"`, nil},
		{"marshalled", map[string]int{"n": 1}, `{"n":1}`, nil, clWire{}, "", nil},
		{"a string is JSON", "abc", `"abc"`, nil, clWire{Bin: blob}, "", blob},
		{"nil", nil, "", nil, clWire{}, "", nil},
		{"nil bytes", []byte(nil), "", nil, clWire{}, "", nil},
	}
	for _, tt := range tests {
		res := make(chan clPushRes, 1)
		go func() { res <- clPushOf(sub.Push(context.Background(), "e", tt.data)) }()
		m := p.expect(t, "push")
		if m.Ref == 0 || string(m.Data) != tt.sentData || !bytes.Equal(m.Bin, tt.sentBin) || (m.Bin == nil) != (tt.sentBin == nil) {
			t.Fatalf("%s: sent %+v, want data %q bin %v", tt.name, m, tt.sentData, tt.sentBin)
		}
		if !bin && tt.sentBin != nil && !bytes.Contains(m.raw, []byte(`"data_b64":"`+base64.StdEncoding.EncodeToString(tt.sentBin)+`"`)) {
			t.Fatalf("%s: sent %s, want data_b64 in standard base64", tt.name, m.raw)
		}
		rm := tt.reply
		rm.T, rm.Ref, rm.Topic, rm.Status = "reply", m.Ref, "t", "ok"
		p.send(t, rm)
		r := clRecv(t, res)
		if r.err != nil || string(r.data) != tt.replyData || !bytes.Equal(r.bin, tt.replyBytes) || (r.bin == nil) != (tt.replyBytes == nil) {
			t.Fatalf("%s: Push = %+v, want data %q bin %v", tt.name, r, tt.replyData, tt.replyBytes)
		}
	}
	if _, err := sub.Push(context.Background(), "e", json.RawMessage(`{`)); err == nil || !strings.Contains(err.Error(), "not valid JSON") {
		t.Fatalf("Push of invalid JSON = %v", err)
	}
	if err := sub.PushNoReply(context.Background(), "e", make(chan int)); err == nil {
		t.Fatal("PushNoReply of a channel succeeded")
	}
	if err := sub.PushNoReply(context.Background(), "nr", []byte{9, 9}); err != nil {
		t.Fatal(err)
	}
	if m := p.expect(t, "push"); m.Ref != 0 || m.Event != "nr" || !bytes.Equal(m.Bin, []byte{9, 9}) || m.Data != nil {
		t.Fatalf("PushNoReply sent %+v", m)
	}
}

// TestClWrongKindIgnored: a message of the other kind (text on a binary
// connection, binary on a JSON one) is logged and dropped; the connection
// goes on.
func TestClWrongKindIgnored(t *testing.T) { clModes(t, testClWrongKindIgnored) }

func testClWrongKindIgnored(t *testing.T, bin bool) {
	f := clNewFake(t, bin, false)
	opts := clOpts(bin)
	logs := &clLog{}
	opts.Logger = zerolog.New(logs)
	disconnected := make(chan error, 1)
	opts.OnDisconnect = func(err error) { disconnected <- err }
	c := clDial(t, f.url, opts)
	p := f.accept(t)
	evs, h := clEvents(4)
	clJoin(t, c, p, "t", &channel.JoinOptions{Handler: h}, channel.JoinReply{Epoch: "E"})

	wrong := clWire{T: "event", Topic: "t", Event: "wrong", Offset: 1}
	if bin {
		data, _ := json.Marshal(wrong)
		p.sendRaw(t, websocket.TextMessage, data)
	} else {
		p.sendRaw(t, websocket.BinaryMessage, clEncodeBin(wrong))
	}
	p.send(t, clWire{T: "event", Topic: "t", Event: "right", Offset: 2})
	clExpectEvent(t, evs, "right", 2, false)
	want := "binary message on a JSON connection ignored"
	if bin {
		want = "text message on a binary connection ignored"
	}
	if !logs.has(want) {
		t.Fatalf("logs %q, want %q", logs.lines, want)
	}
	// A malformed message in the right kind is dropped too.
	if bin {
		p.sendRaw(t, websocket.BinaryMessage, []byte{6, 0x80})
	} else {
		p.sendRaw(t, websocket.TextMessage, []byte(`{"t":`))
	}
	p.send(t, clWire{T: "event", Topic: "t", Event: "after", Offset: 3})
	clExpectEvent(t, evs, "after", 3, false)
	if !logs.has("bad message from the server") {
		t.Fatalf("logs %q", logs.lines)
	}
	select {
	case err := <-disconnected:
		t.Fatalf("disconnected: %v", err)
	case e := <-evs:
		t.Fatalf("unexpected event %+v", e)
	default:
	}
}

// TestClBinaryFallsBackToJSON: a server that accepts a Binary client
// without choosing a subprotocol speaks JSON (the protocol's default), and
// so does the client on that connection.
func TestClBinaryFallsBackToJSON(t *testing.T) {
	t.Parallel()
	f := clNewFakeProto(t, "", false)
	opts := clOpts(true)
	logs := &clLog{}
	opts.Logger = zerolog.New(logs)
	c := clDial(t, f.url, opts)
	p := f.accept(t)
	if got := p.ws.Subprotocol(); got != "" || p.bin {
		t.Fatalf("subprotocol %q", got)
	}
	evs, h := clEvents(4)
	sub, _ := clJoin(t, c, p, "t", &channel.JoinOptions{Handler: h}, channel.JoinReply{Epoch: "E"})
	p.send(t, clWire{T: "event", Topic: "t", Event: "b", Bin: []byte{1}, Offset: 1})
	if e := clExpectEvent(t, evs, "b", 1, false); !bytes.Equal(e.Bin, []byte{1}) {
		t.Fatalf("event %+v", e)
	}
	if err := sub.PushNoReply(context.Background(), "x", []byte{2}); err != nil {
		t.Fatal(err)
	}
	if m := p.expect(t, "push"); !bytes.Equal(m.Bin, []byte{2}) {
		t.Fatalf("push %+v", m)
	}
	if !logs.has("does not speak the binary encoding") {
		t.Fatalf("logs %q", logs.lines)
	}
}
