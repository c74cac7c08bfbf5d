package channel

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"

	"github.com/wsactor/wsactor/actors"
)

// bclient is a raw client of either encoding, for the server's tests.
type bclient struct {
	t      *testing.T
	c      *websocket.Conn
	binary bool
}

func binHub(t *testing.T, opts *Options) (*Hub, string) {
	t.Helper()
	system := actors.NewSystem(zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel))
	opts.Logger = zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.DebugLevel)
	h, err := NewHub(system, opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = h.Close(ctx)
		srv.Close()
	})
	return h, "ws" + strings.TrimPrefix(srv.URL, "http")
}

func dialEnc(t *testing.T, url string, binary bool) *bclient {
	t.Helper()
	proto := Subprotocol
	if binary {
		proto = SubprotocolBinary
	}
	c, resp, err := (&websocket.Dialer{Subprotocols: []string{proto}}).Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Header.Get("Sec-WebSocket-Protocol") != proto {
		t.Fatalf("negotiated %q, want %q", resp.Header.Get("Sec-WebSocket-Protocol"), proto)
	}
	t.Cleanup(func() { c.Close() })
	return &bclient{t: t, c: c, binary: binary}
}

func (c *bclient) send(m *wireMsg) {
	c.t.Helper()
	var err error
	if c.binary {
		err = c.c.WriteMessage(websocket.BinaryMessage, encodeBin(m))
	} else {
		err = c.c.WriteMessage(websocket.TextMessage, encode(m))
	}
	if err != nil {
		c.t.Fatal(err)
	}
}

func (c *bclient) read() wireMsg {
	c.t.Helper()
	_ = c.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	typ, p, err := c.c.ReadMessage()
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	if (typ == websocket.BinaryMessage) != c.binary {
		c.t.Fatalf("message type %d on a binary=%v connection", typ, c.binary)
	}
	var m wireMsg
	if c.binary {
		m, err = decodeBin(p)
	} else {
		m, err = decode(p)
	}
	if err != nil {
		c.t.Fatalf("server sent % x: %v", p, err)
	}
	return m
}

func (c *bclient) expect(typ string) wireMsg {
	c.t.Helper()
	m := c.read()
	if m.T != typ {
		c.t.Fatalf("got %+v, want %s", m, typ)
	}
	return m
}

func (c *bclient) join(ref uint64, topic string, history int) JoinReply {
	c.t.Helper()
	c.send(&wireMsg{T: typeJoin, Ref: ref, Topic: topic, History: history})
	m := c.expect(typeReply)
	if m.Status != "ok" || m.Ref != ref {
		c.t.Fatalf("join reply %+v", m)
	}
	var r JoinReply
	if err := json.Unmarshal(m.Data, &r); err != nil {
		c.t.Fatalf("join reply data %s: %v", m.Data, err)
	}
	return r
}

// Clients of both encodings share a topic: a bytes payload reaches a JSON
// client as data_b64 and a binary one as raw bytes; a JSON payload reaches
// a binary client flagged JSON; history keeps both kinds; replies and
// presence work in both.
func TestBinaryAndJSONClientsShareATopic(t *testing.T) {
	h, url := binHub(t, &Options{Topics: func(string) *TopicOptions {
		return &TopicOptions{ClientPublish: true, Presence: true}
	}})
	snap := []byte{0, 1, 2, 0xff, '"'}
	if _, err := h.Publish(context.Background(), "game:1", "snap", snap); err != nil {
		t.Fatal(err)
	}
	b, j := dialEnc(t, url, true), dialEnc(t, url, false)
	rb := b.join(1, "game:1", 10)
	if len(rb.History) != 1 || string(rb.History[0].Bin) != string(snap) || rb.History[0].Data != nil {
		t.Fatalf("binary client's history %+v", rb.History)
	}
	b.expect(typePresenceState)
	rj := j.join(1, "game:1", 10)
	if len(rj.History) != 1 || string(rj.History[0].Bin) != string(snap) {
		t.Fatalf("JSON client's history %+v", rj.History)
	}
	j.expect(typePresenceState)
	if d := b.expect(typePresenceDiff); len(d.Joins) != 1 {
		t.Fatalf("diff %+v", d)
	}

	b.send(&wireMsg{T: typePush, Ref: 2, Topic: "game:1", Event: "input", Bin: []byte{7, 7}})
	// The pusher gets the event and its reply, from two actors: any order.
	var ev, reply wireMsg
	for range 2 {
		switch m := b.read(); m.T {
		case typeEvent:
			ev = m
		case typeReply:
			reply = m
		}
	}
	if reply.Ref != 2 || string(reply.Data) != `{"offset":2}` {
		t.Fatalf("reply %+v", reply)
	}
	for _, m := range []wireMsg{ev, j.expect(typeEvent)} {
		if m.T != typeEvent || m.Offset != 2 || string(m.Bin) != "\x07\x07" || m.Data != nil {
			t.Fatalf("got %+v, want the bytes event", m)
		}
	}
	// The JSON client saw data_b64 on the wire.
	j.send(&wireMsg{T: typePush, Ref: 2, Topic: "game:1", Event: "chat", Data: json.RawMessage(`{"text":"hi"}`)})
	if m := b.expect(typeEvent); string(m.Data) != `{"text":"hi"}` || m.Bin != nil || m.Offset != 3 {
		t.Fatalf("binary client got %+v", m)
	}
	_, raw, err := func() (int, []byte, error) {
		_ = j.c.SetReadDeadline(time.Now().Add(10 * time.Second))
		for {
			typ, p, err := j.c.ReadMessage()
			if err != nil || strings.Contains(string(p), `"event"`) {
				return typ, p, err
			}
		}
	}()
	if err != nil || !strings.Contains(string(raw), `"data":{"text":"hi"}`) {
		t.Fatalf("JSON client: %s %v", raw, err)
	}
	want := base64.StdEncoding.EncodeToString([]byte{7, 7})
	if !strings.Contains(string(encode(&wireMsg{T: typeEvent, Topic: "t", Event: "e", Bin: []byte{7, 7}})), `"data_b64":"`+want+`"`) {
		t.Fatal("encode does not write data_b64")
	}
}

// A text message on a binary connection is a protocol violation (1003), as
// a binary one on a JSON connection is.
func TestBinaryConnectionRefusesText(t *testing.T) {
	_, url := binHub(t, &Options{})
	b := dialEnc(t, url, true)
	_ = b.c.WriteMessage(websocket.TextMessage, []byte(`{"t":"ping","ref":1}`))
	_ = b.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, _, err := b.c.ReadMessage()
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			if ce.Code != 1003 {
				t.Fatalf("close %d, want 1003", ce.Code)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// Hub.Request over binary: a bytes payload both ways.
func TestBinaryRequest(t *testing.T) {
	h, url := binHub(t, &Options{})
	b := dialEnc(t, url, true)
	b.send(&wireMsg{T: typePing, Ref: 1})
	b.expect(typeReply)
	var id string
	for deadline := time.Now().Add(10 * time.Second); id == "" && time.Now().Before(deadline); {
		h.mu.Lock()
		for sid := range h.sessions {
			id = sid
		}
		h.mu.Unlock()
	}
	got := make(chan *Reply, 1)
	go func() {
		r, err := h.Request(context.Background(), id, "user:x", "sign", []byte{1, 2})
		if err != nil {
			t.Error(err)
		}
		got <- r
	}()
	m := b.expect(typePush)
	if string(m.Bin) != "\x01\x02" || m.Ref == 0 {
		t.Fatalf("push %+v", m)
	}
	b.send(&wireMsg{T: typeReply, Ref: m.Ref, Status: "ok", Bin: []byte{9}})
	if r := <-got; r == nil || string(r.Bin) != "\x09" {
		t.Fatalf("reply %+v", r)
	}
}
