package transport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/wsactor/wsactor/internal/probe"
)

const deflateOfferHeader = "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover"

func hasDeflate(h http.Header) bool {
	for _, e := range parseExtensions(h) {
		if e.Name == "permessage-deflate" {
			return true
		}
	}
	return false
}

func TestCompressionNegotiation(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		server, client CompressionMode
		want           bool
	}{
		{CompressionDefault, CompressionDefault, false}, // servers default to off
		{CompressionDefault, CompressionEnabled, false},
		{CompressionEnabled, CompressionDefault, true}, // clients default to on
		{CompressionEnabled, CompressionEnabled, true},
		{CompressionEnabled, CompressionDisabled, false},
		{CompressionDisabled, CompressionEnabled, false},
	} {
		t.Run(fmt.Sprintf("server=%d,client=%d", tc.server, tc.client), func(t *testing.T) {
			t.Parallel()
			s := startServer(t, serverConfig{echo: true, opts: &AcceptOptions{Compression: tc.server}})
			c, rec := dialOur(t, s.wsURL(), &DialOptions{Compression: tc.client})
			srv := s.next(t)
			if c.Compressed() != tc.want || srv.c.Compressed() != tc.want {
				t.Errorf("Compressed(): client %v, server %v; want %v", c.Compressed(), srv.c.Compressed(), tc.want)
			}
			if got := hasDeflate(c.Response().Header); got != tc.want {
				t.Errorf("101 response has permessage-deflate = %v, want %v", got, tc.want)
			}
			if got := hasDeflate(srv.c.Request().Header); got != (tc.client != CompressionDisabled) {
				t.Errorf("client offered permessage-deflate = %v", got)
			}
			big := bytes.Repeat([]byte("compress me "), 1000)
			if err := c.Send(NewFrame(MessageText, big)); err != nil {
				t.Fatal(err)
			}
			if m := rec.next(t); !bytes.Equal(m.data, big) {
				t.Error("echo differs")
			}
		})
	}

	// A gorilla client offering deflate to a default server gets no extension.
	s := startServer(t, serverConfig{})
	ws, resp, err := dialGorilla(t, s.wsURL(), &websocket.Dialer{EnableCompression: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if hasDeflate(resp.Header) || s.next(t).c.Compressed() {
		t.Error("a default server negotiated permessage-deflate")
	}
	ws.Close()
}

// TestCompressionThresholdOnTheWire reads the server's frames byte by byte:
// messages under the threshold go out plain, larger ones with RSV1 set.
func TestCompressionThresholdOnTheWire(t *testing.T) {
	t.Parallel()
	small := bytes.Repeat([]byte("a"), 99)
	large := bytes.Repeat([]byte("abcdefgh"), 500)
	s := startServer(t, serverConfig{
		opts: &AcceptOptions{Compression: CompressionEnabled, CompressionThreshold: 100},
		onStart: func(c *Conn) {
			_ = c.Send(NewFrame(MessageText, small))
			_ = c.Send(NewFrame(MessageText, large))
			_ = c.Send(NewFrame(MessageBinary, small[:1]))
		},
	})
	rc := rawDial(t, s.addr(), deflateOfferHeader)
	if !hasDeflate(rc.resp.Header) {
		t.Fatal("deflate not negotiated")
	}
	srv := s.next(t)

	f1, err := rc.readFrame()
	if err != nil {
		t.Fatal(err)
	}
	if f1.rsv1 || f1.op != byte(MessageText) || !bytes.Equal(f1.payload, small) {
		t.Errorf("small message: rsv1=%v op=%d len=%d; want plain text of %d bytes", f1.rsv1, f1.op, len(f1.payload), len(small))
	}
	f2, err := rc.readFrame()
	if err != nil {
		t.Fatal(err)
	}
	if !f2.rsv1 || !f2.fin || f2.masked || len(f2.payload) >= len(large) {
		t.Errorf("large message: rsv1=%v fin=%v masked=%v len=%d; want a compressed frame", f2.rsv1, f2.fin, f2.masked, len(f2.payload))
	}
	if got, err := inflateMessage(f2.payload); err != nil || !bytes.Equal(got, large) {
		t.Errorf("large message does not inflate to the original: %v", err)
	}
	if f3, err := rc.readFrame(); err != nil || f3.rsv1 || !bytes.Equal(f3.payload, small[:1]) {
		t.Errorf("tiny message: %+v, %v", f3, err)
	}

	// Client to server: a compressed frame and a plain one both arrive intact.
	rc.writeFrame(0x80|rsv1Bit|byte(MessageText), deflateMessage(t, large))
	rc.writeFrame(0x80|byte(MessageText), small)
	// A compressed message split over two frames (RSV1 only on the first).
	z := deflateMessage(t, large)
	rc.writeFrame(rsv1Bit|byte(MessageBinary), z[:len(z)/2])
	rc.writeFrame(0x80|opContinuation, z[len(z)/2:])
	for i, want := range [][]byte{large, small, large} {
		if m := srv.r.next(t); !bytes.Equal(m.data, want) {
			t.Errorf("message %d from the client: got %d bytes, want %d", i, len(m.data), len(want))
		}
	}
	srv.c.Close(StatusNormalClosure, "")
	if code, _, _ := rc.readClose(); code != 1000 {
		t.Errorf("close code %d", code)
	}
	rc.finishClose(1000)
	srv.r.waitClose(t)
}

// TestCompressionOurClientOnTheWire records both directions of one of our
// client connections and checks RSV1 against the threshold each way.
func TestCompressionOurClientOnTheWire(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverConfig{echo: true, opts: &AcceptOptions{Compression: CompressionEnabled, CompressionThreshold: 100}})
	var (
		mu  sync.Mutex
		rec *recConn
	)
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		var d net.Dialer
		nc, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		mu.Lock()
		defer mu.Unlock()
		rec = &recConn{Conn: nc}
		return rec, nil
	}
	c, crec := dialOur(t, s.wsURL(), &DialOptions{NetDialContext: dial, CompressionThreshold: 100})
	srv := s.next(t)
	if !c.Compressed() {
		t.Fatal("deflate not negotiated")
	}
	small := bytes.Repeat([]byte("s"), 99)
	large := []byte(strings.Repeat("the quick brown fox ", 250))
	random := randomBytes(20000) // incompressible, but still sent compressed
	msgs := [][]byte{small, large, random}
	for _, m := range msgs {
		if err := c.Send(NewFrame(MessageBinary, m)); err != nil {
			t.Fatal(err)
		}
	}
	for i, want := range msgs {
		if m := srv.r.next(t); !bytes.Equal(m.data, want) {
			t.Errorf("server got message %d wrong", i)
		}
		if m := crec.next(t); !bytes.Equal(m.data, want) {
			t.Errorf("client got echo %d wrong", i)
		}
	}
	c.Close(StatusNormalClosure, "")
	crec.waitClose(t)
	srv.r.waitClose(t)

	mu.Lock()
	defer mu.Unlock()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	check := func(dir string, frames []wireFrame, masked bool) {
		var data []wireFrame
		for _, f := range frames {
			if f.masked != masked {
				t.Errorf("%s: frame masked=%v", dir, f.masked)
			}
			if f.op == byte(MessageBinary) {
				data = append(data, f)
			}
		}
		if len(data) != len(msgs) {
			t.Fatalf("%s: %d data frames, want %d", dir, len(data), len(msgs))
		}
		for i, f := range data {
			wantRSV1 := len(msgs[i]) >= 100
			if f.rsv1 != wantRSV1 {
				t.Errorf("%s: message %d (%d bytes) rsv1=%v, want %v", dir, i, len(msgs[i]), f.rsv1, wantRSV1)
			}
			got := f.payload
			if f.rsv1 {
				var err error
				if got, err = inflateMessage(f.payload); err != nil {
					t.Fatalf("%s: message %d: %v", dir, i, err)
				}
			}
			if !bytes.Equal(got, msgs[i]) {
				t.Errorf("%s: message %d differs on the wire", dir, i)
			}
		}
		if len(data) >= 2 && len(data[1].payload) >= len(large) {
			t.Errorf("%s: compressible message was not made smaller", dir)
		}
	}
	check("client to server", framesAfterHead(t, rec.written.Bytes()), true)
	check("server to client", framesAfterHead(t, rec.read.Bytes()), false)
}

// TestCompressionGorilla round-trips compressed messages with gorilla, which
// compresses every message it sends.
func TestCompressionGorilla(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverConfig{echo: true, opts: &AcceptOptions{Compression: CompressionEnabled, CompressionThreshold: -1}})
	ws := mustDialGorilla(t, s.wsURL(), &websocket.Dialer{EnableCompression: true}, nil)
	srv := s.next(t)
	if !srv.c.Compressed() {
		t.Fatal("deflate not negotiated")
	}
	for i, m := range echoCases() {
		if err := ws.WriteMessage(int(m.typ), m.data); err != nil {
			t.Fatal(err)
		}
		typ, got, err := gorillaRead(t, ws)
		if err != nil || typ != int(m.typ) || !bytes.Equal(got, m.data) {
			t.Fatalf("case %d: got type %d, %d bytes, %v", i, typ, len(got), err)
		}
	}
	gorillaClose(t, ws, websocket.CloseNormalClosure, "")
	srv.r.waitClose(t)
}

// TestDeflateNegotiated: which permessage-deflate offers our server accepts,
// and that Compressed() is exactly what the 101 on the wire said. The
// answer is always deflateAnswer, whatever parameters were offered.
func TestDeflateNegotiated(t *testing.T) {
	t.Parallel()
	enabled := startServer(t, serverConfig{opts: &AcceptOptions{Compression: CompressionEnabled}})
	def := startServer(t, serverConfig{})
	for _, tc := range []struct {
		s     *server
		offer string
		want  bool
	}{
		{enabled, "", false},
		{enabled, "permessage-deflate", true},
		{enabled, "permessage-deflate; client_max_window_bits", true},
		{enabled, "permessage-deflate; client_max_window_bits=10", true},
		{enabled, "permessage-deflate; client_max_window_bits=\"10\"", true},
		{enabled, "permessage-deflate; server_no_context_takeover; client_no_context_takeover", true},
		{enabled, "permessage-deflate; server_max_window_bits=15", true},
		{enabled, "permessage-deflate; server_max_window_bits=10", false},
		// Offers are tried in order; the first acceptable one wins (as ws).
		{enabled, "permessage-deflate; server_max_window_bits=10, permessage-deflate", true},
		{enabled, "permessage-deflate; unknown", false},
		{enabled, "permessage-deflate; client_max_window_bits=16", false},
		{enabled, "permessage-deflate; client_max_window_bits=08", false},
		// RFC 7692 section 5: an offer that repeats a parameter is declined.
		{enabled, "permessage-deflate; client_no_context_takeover; client_no_context_takeover", false},
		{enabled, "x-webkit-deflate-frame", false},
		{enabled, "foo, permessage-deflate", true},
		{def, "permessage-deflate", false},
	} {
		var extra []string
		if tc.offer != "" {
			extra = append(extra, "Sec-WebSocket-Extensions: "+tc.offer)
		}
		rc := rawDial(t, tc.s.addr(), extra...)
		srv := tc.s.next(t)
		onWire := rc.resp.Header.Values("Sec-WebSocket-Extensions")
		if got := len(onWire) > 0; got != tc.want {
			t.Errorf("offer %q: response extensions %q, want deflate %v", tc.offer, onWire, tc.want)
		}
		if len(onWire) > 0 && (len(onWire) != 1 || onWire[0] != deflateAnswer) {
			t.Errorf("offer %q: response extensions %q, want %q", tc.offer, onWire, deflateAnswer)
		}
		if srv.c.Compressed() != (len(onWire) > 0) {
			t.Errorf("offer %q: Compressed() = %v, but the 101 said %q", tc.offer, srv.c.Compressed(), onWire)
		}
		rc.conn.Close()
		srv.r.waitClose(t)
	}
}

// TestBroadcastCompressesOnce sends one Frame to many compressing connections.
// Not parallel: Compressions is a process-wide counter.
func TestBroadcastCompressesOnce(t *testing.T) {
	const nDeflate, nPlain = 20, 10
	s := startServer(t, serverConfig{opts: &AcceptOptions{Compression: CompressionEnabled}})
	var clients []*websocket.Conn
	var conns []accepted
	for i := 0; i < nDeflate+nPlain; i++ {
		deflate := i%3 != 2 // interleave the plain ones
		clients = append(clients, mustDialGorilla(t, s.wsURL(), &websocket.Dialer{EnableCompression: deflate}, nil))
		a := s.next(t)
		if a.c.Compressed() != deflate {
			t.Fatalf("connection %d: Compressed() = %v, want %v", i, a.c.Compressed(), deflate)
		}
		conns = append(conns, a)
	}

	payload := []byte(strings.Repeat("broadcast payload ", 500))
	check := func(what string, only bool) {
		t.Helper()
		for i, ws := range clients {
			if only && !conns[i].c.Compressed() {
				continue
			}
			typ, got, err := gorillaRead(t, ws)
			if err != nil || typ != websocket.BinaryMessage || !bytes.Equal(got, payload) {
				t.Fatalf("%s: client %d: type %d, %d bytes, %v", what, i, typ, len(got), err)
			}
		}
	}

	// One frame to the 20 compressing connections: one compression.
	f := NewFrame(MessageBinary, payload)
	before := probe.Compressions.Load()
	for _, a := range conns {
		if a.c.Compressed() {
			if err := a.c.Send(f); err != nil {
				t.Fatal(err)
			}
		}
	}
	check("deflate only", true)
	if d := probe.Compressions.Load() - before; d != 1 {
		t.Errorf("%d compressions for one frame sent to %d connections, want 1", d, nDeflate)
	}

	// Deflate and plain receivers mixed: everyone gets the payload, and the
	// frame is still compressed once.
	for round := 0; round < 3; round++ {
		f := NewFrame(MessageBinary, payload)
		before := probe.Compressions.Load()
		for _, a := range conns {
			if err := a.c.Send(f); err != nil {
				t.Fatal(err)
			}
		}
		check(fmt.Sprint("mixed round ", round), false)
		if d := probe.Compressions.Load() - before; d != 1 {
			t.Errorf("mixed round %d: %d compressions, want 1", round, d)
		}
	}

	for _, a := range conns {
		a.c.Close(StatusGoingAway, "")
	}
	for _, ws := range clients {
		gorillaReadUntilErr(ws)
		ws.Close()
	}
	for _, a := range conns {
		if info := a.r.waitClose(t); info.Code != StatusGoingAway || info.Err != nil {
			t.Errorf("HandleClose = %+v", info)
		}
	}
}

// TestDecompressionBomb sends 10 MB of zeros compressed into a few KB against
// a 64 KB read limit. Not parallel: it measures allocation.
func TestDecompressionBomb(t *testing.T) {
	s := startServer(t, serverConfig{opts: &AcceptOptions{
		ReadLimit:   64 << 10,
		Compression: CompressionEnabled,
	}})
	zeros := make([]byte, 10<<20)
	bomb := deflateMessage(t, zeros)
	zeros = nil
	if len(bomb) > 64<<10 {
		t.Fatalf("bomb is %d bytes; it should be far below the limit", len(bomb))
	}
	frame := encodeClientFrame(0x80|rsv1Bit|byte(MessageBinary), bomb)

	rc := rawDial(t, s.addr(), deflateOfferHeader)
	srv := s.next(t)
	if !srv.c.Compressed() {
		t.Fatal("deflate not negotiated")
	}
	runtime.GC()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	rc.write(frame)
	code, _, data := rc.readClose()
	runtime.ReadMemStats(&m1)
	if code != int(StatusMessageTooBig) || len(data) != 0 {
		t.Fatalf("got close %d after %d data frames, want 1009", code, len(data))
	}
	rc.finishClose(code)
	info := srv.r.waitClose(t)
	if info.Code != StatusMessageTooBig || !errors.Is(info.Err, ErrMessageTooBig) {
		t.Errorf("HandleClose = %+v, want 1009 with ErrMessageTooBig", info)
	}
	t.Logf("allocated %d KB while refusing the bomb", (m1.TotalAlloc-m0.TotalAlloc)>>10)
	if d := m1.TotalAlloc - m0.TotalAlloc; d > 4<<20 {
		t.Errorf("the server allocated %d bytes for a message refused at 64 KB", d)
	}
	if len(srv.r.msgs) != 0 {
		t.Error("the bomb was delivered")
	}
}
