package transport

import (
	"bufio"
	"bytes"
	"compress/flate"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/goleak"
)

// The idle readers' poller is one goroutine for the process, started on
// first use (poll_linux.go); everything else must be gone.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("github.com/wsactor/wsactor/transport.(*poller).run"),
		goleak.IgnoreTopFunction("github.com/wsactor/wsactor/transport.(*writerPool).next")) // idle pooled writers: writers.go
}

// testTimeout bounds every wait in these tests. It is a safety net so a broken
// build fails instead of hanging, never an assertion about speed.
const testTimeout = 10 * time.Second

// message is one data message seen by a recorder.
type message struct {
	typ  MessageType
	data []byte
}

// recorder is a Handler that records messages and the close, and optionally
// echoes every message back.
type recorder struct {
	echo       bool
	msgs       chan message
	closed     chan struct{}
	info       CloseInfo // written before closed is closed
	closeCalls atomic.Int32
	overflow   atomic.Bool
}

func newRecorder(echo bool) *recorder {
	return &recorder{echo: echo, msgs: make(chan message, 8192), closed: make(chan struct{})}
}

func (r *recorder) HandleMessage(c *Conn, typ MessageType, data []byte) {
	if r.echo {
		_ = c.Send(NewFrame(typ, data))
	}
	select {
	case r.msgs <- message{typ, data}:
	default:
		r.overflow.Store(true)
	}
}

func (r *recorder) HandleClose(_ *Conn, info CloseInfo) {
	if r.closeCalls.Add(1) == 1 {
		r.info = info
		close(r.closed)
	}
}

// next returns the next recorded message.
func (r *recorder) next(t *testing.T) message {
	t.Helper()
	select {
	case m := <-r.msgs:
		return m
	case <-time.After(testTimeout):
		t.Fatal("timed out waiting for a message")
		return message{}
	}
}

// waitClose returns the CloseInfo passed to HandleClose.
func (r *recorder) waitClose(t *testing.T) CloseInfo {
	t.Helper()
	select {
	case <-r.closed:
		if n := r.closeCalls.Load(); n != 1 {
			t.Errorf("HandleClose called %d times", n)
		}
		if r.overflow.Load() {
			t.Error("recorder dropped messages")
		}
		return r.info
	case <-time.After(testTimeout):
		t.Fatal("timed out waiting for HandleClose")
		return CloseInfo{}
	}
}

// accepted is a server-side connection with its recorder.
type accepted struct {
	c *Conn
	r *recorder
}

// server is an httptest server whose handler accepts WebSocket connections
// with opts and starts each with a recorder.
type server struct {
	*httptest.Server
	conns   chan accepted
	errs    chan error
	started atomic.Int32

	mu  sync.Mutex
	all []*Conn
}

type serverConfig struct {
	opts *AcceptOptions
	echo bool
	// onAccept runs after Accept and before Start.
	onAccept func(c *Conn)
	// onStart runs after Start.
	onStart func(c *Conn)
	// single uses the package-level Accept (a writer goroutine per run)
	// instead of one Acceptor for the server (pooled writers, as
	// actors.Handler has).
	single bool
}

func startServer(t *testing.T, cfg serverConfig) *server {
	t.Helper()
	s := &server{conns: make(chan accepted, 256), errs: make(chan error, 256)}
	accept := func(w http.ResponseWriter, r *http.Request) (*Conn, error) { return Accept(w, r, cfg.opts) }
	if a, err := NewAcceptor(cfg.opts); err == nil && !cfg.single {
		accept = a.Accept
		t.Cleanup(a.Close)
	}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := accept(w, r)
		if err != nil {
			s.errs <- err
			return
		}
		s.mu.Lock()
		s.all = append(s.all, c)
		s.mu.Unlock()
		if cfg.onAccept != nil {
			cfg.onAccept(c)
		}
		rec := newRecorder(cfg.echo)
		s.started.Add(1)
		c.Start(rec)
		if cfg.onStart != nil {
			cfg.onStart(c)
		}
		s.conns <- accepted{c, rec}
	}))
	t.Cleanup(func() {
		s.Close()
		s.mu.Lock()
		all := s.all
		s.mu.Unlock()
		for _, c := range all {
			waitDone(t, c)
		}
	})
	return s
}

func (s *server) wsURL() string { return "ws" + strings.TrimPrefix(s.URL, "http") }

func (s *server) addr() string { return strings.TrimPrefix(s.URL, "http://") }

// next returns the next accepted connection.
func (s *server) next(t *testing.T) accepted {
	t.Helper()
	select {
	case a := <-s.conns:
		return a
	case <-time.After(testTimeout):
		t.Fatal("timed out waiting for a server connection")
		return accepted{}
	}
}

// nextErr returns the next Accept error.
func (s *server) nextErr(t *testing.T) error {
	t.Helper()
	select {
	case err := <-s.errs:
		return err
	case <-time.After(testTimeout):
		t.Fatal("timed out waiting for an Accept error")
		return nil
	}
}

// waitDone waits for c to end, aborting it (and failing the test) if it does
// not end by itself.
func waitDone(t *testing.T, c *Conn) {
	t.Helper()
	select {
	case <-c.Done():
		return
	case <-time.After(testTimeout):
	}
	t.Errorf("connection %v did not end; aborting it", c.LocalAddr())
	c.Terminate(nil)
	select {
	case <-c.Done():
	case <-time.After(testTimeout):
		t.Error("connection did not end after Terminate")
	}
}

// dialOur dials s with our own Dial and starts the connection with a recorder.
func dialOur(t *testing.T, url string, opts *DialOptions) (*Conn, *recorder) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	c, resp, err := Dial(ctx, url, opts)
	if err != nil {
		t.Fatalf("Dial: %v (response %v)", err, resp)
	}
	rec := newRecorder(false)
	c.Start(rec)
	t.Cleanup(func() {
		c.Close(StatusNormalClosure, "")
		waitDone(t, c)
	})
	return c, rec
}

// dialGorilla dials url with d (nil: a default gorilla Dialer).
func dialGorilla(t *testing.T, url string, d *websocket.Dialer, h http.Header) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	if d == nil {
		d = &websocket.Dialer{}
	}
	if d.HandshakeTimeout == 0 {
		d.HandshakeTimeout = testTimeout
	}
	ws, resp, err := d.Dial(url, h)
	if err == nil {
		t.Cleanup(func() { _ = ws.Close() })
	}
	return ws, resp, err
}

func mustDialGorilla(t *testing.T, url string, d *websocket.Dialer, h http.Header) *websocket.Conn {
	t.Helper()
	ws, resp, err := dialGorilla(t, url, d, h)
	if err != nil {
		t.Fatalf("gorilla dial: %v (response %v)", err, resp)
	}
	return ws
}

// gorillaRead reads one message with a bounded deadline.
func gorillaRead(t *testing.T, ws *websocket.Conn) (int, []byte, error) {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(testTimeout))
	return ws.ReadMessage()
}

// gorillaCloseErr reads until the connection ends and returns the error, which
// is a *websocket.CloseError when a close frame arrived.
func gorillaReadUntilErr(ws *websocket.Conn) (msgs int, err error) {
	_ = ws.SetReadDeadline(time.Now().Add(testTimeout))
	for {
		if _, _, err = ws.ReadMessage(); err != nil {
			return msgs, err
		}
		msgs++
	}
}

// gorillaClose runs a client-initiated closing handshake on ws and returns the
// close frame the server answered with.
func gorillaClose(t *testing.T, ws *websocket.Conn, code int, text string) *websocket.CloseError {
	t.Helper()
	if err := ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, text), time.Now().Add(testTimeout)); err != nil {
		t.Fatalf("write close: %v", err)
	}
	_, err := gorillaReadUntilErr(ws)
	var ce *websocket.CloseError
	if !errors.As(err, &ce) {
		t.Fatalf("after close: got %v, want a close frame", err)
	}
	_ = ws.Close()
	return ce
}

// ---- raw client -------------------------------------------------------------

// rawClient speaks WebSocket by hand, so tests can send frames no library
// would and look at the exact bytes the server sends.
type rawClient struct {
	t    *testing.T
	conn net.Conn
	br   *bufio.Reader
	resp *http.Response
}

// rawDial opens a TCP connection to addr and sends an upgrade request with the
// given extra header lines (e.g. "Sec-WebSocket-Extensions: permessage-deflate").
func rawDial(t *testing.T, addr string, extra ...string) *rawClient {
	t.Helper()
	rc, err := tryRawDial(addr, extra...)
	if err != nil {
		t.Fatal(err)
	}
	rc.t = t
	if rc.resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("raw handshake: status %d", rc.resp.StatusCode)
	}
	t.Cleanup(func() { _ = rc.conn.Close() })
	return rc
}

func tryRawDial(addr string, extra ...string) (*rawClient, error) {
	conn, err := net.DialTimeout("tcp", addr, testTimeout)
	if err != nil {
		return nil, err
	}
	var req strings.Builder
	fmt.Fprintf(&req, "GET / HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n", addr)
	req.WriteString("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n")
	for _, h := range extra {
		req.WriteString(h + "\r\n")
	}
	req.WriteString("\r\n")
	_ = conn.SetDeadline(time.Now().Add(testTimeout))
	if _, err := io.WriteString(conn, req.String()); err != nil {
		conn.Close()
		return nil, err
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("raw handshake: %w", err)
	}
	_ = conn.SetDeadline(time.Time{})
	return &rawClient{conn: conn, br: br, resp: resp}, nil
}

// frameHeader builds a frame header. b0 carries FIN, RSV and opcode; a nil key
// means unmasked.
func frameHeader(b0 byte, n uint64, key []byte) []byte {
	h := []byte{b0, 0}
	switch {
	case n < 126:
		h[1] = byte(n)
	case n <= 0xffff:
		h[1] = 126
		h = binary.BigEndian.AppendUint16(h, uint16(n))
	default:
		h[1] = 127
		h = binary.BigEndian.AppendUint64(h, n)
	}
	if key != nil {
		h[1] |= 0x80
		h = append(h, key...)
	}
	return h
}

func maskedCopy(key, p []byte) []byte {
	out := make([]byte, len(p))
	for i := range p {
		out[i] = p[i] ^ key[i&3]
	}
	return out
}

func randomKey() []byte {
	var k [4]byte
	binary.LittleEndian.PutUint32(k[:], rand.Uint32()|0x01010101)
	return k[:]
}

// encodeClientFrame returns a whole masked client frame.
func encodeClientFrame(b0 byte, payload []byte) []byte {
	key := randomKey()
	return append(frameHeader(b0, uint64(len(payload)), key), maskedCopy(key, payload)...)
}

// write writes raw bytes.
func (rc *rawClient) write(b []byte) {
	rc.t.Helper()
	_ = rc.conn.SetWriteDeadline(time.Now().Add(testTimeout))
	if _, err := rc.conn.Write(b); err != nil {
		rc.t.Fatalf("raw write: %v", err)
	}
}

// writeFrame writes one masked frame.
func (rc *rawClient) writeFrame(b0 byte, payload []byte) {
	rc.t.Helper()
	rc.write(encodeClientFrame(b0, payload))
}

type wireFrame struct {
	b0      byte
	fin     bool
	rsv1    bool
	op      byte
	masked  bool
	payload []byte
}

func readWireFrame(r io.Reader) (wireFrame, error) {
	var hdr [2]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return wireFrame{}, err
	}
	f := wireFrame{b0: hdr[0], fin: hdr[0]&0x80 != 0, rsv1: hdr[0]&0x40 != 0, op: hdr[0] & 0x0f, masked: hdr[1]&0x80 != 0}
	n := uint64(hdr[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return f, err
		}
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return f, err
		}
		n = binary.BigEndian.Uint64(b[:])
	}
	if n > 64<<20 {
		return f, fmt.Errorf("frame of %d bytes", n)
	}
	var key []byte
	if f.masked {
		key = make([]byte, 4)
		if _, err := io.ReadFull(r, key); err != nil {
			return f, err
		}
	}
	f.payload = make([]byte, n)
	if _, err := io.ReadFull(r, f.payload); err != nil {
		return f, err
	}
	if f.masked {
		f.payload = maskedCopy(key, f.payload)
	}
	return f, nil
}

// readFrame reads one frame from the server.
func (rc *rawClient) readFrame() (wireFrame, error) {
	_ = rc.conn.SetReadDeadline(time.Now().Add(testTimeout))
	return readWireFrame(rc.br)
}

// readClose reads frames until a close frame and returns its code and reason.
// Data frames before it are returned too.
func (rc *rawClient) readClose() (code int, reason string, data []wireFrame) {
	rc.t.Helper()
	for {
		f, err := rc.readFrame()
		if err != nil {
			rc.t.Fatalf("raw client: reading until the close frame: %v", err)
		}
		if f.op != opClose {
			data = append(data, f)
			continue
		}
		if f.masked {
			rc.t.Error("server sent a masked frame")
		}
		if len(f.payload) < 2 {
			return int(StatusNoStatusReceived), "", data
		}
		return int(binary.BigEndian.Uint16(f.payload)), string(f.payload[2:]), data
	}
}

// finishClose answers the server's close frame with ours and waits for the
// server to end the TCP connection.
func (rc *rawClient) finishClose(code int) {
	rc.t.Helper()
	rc.writeFrame(0x80|opClose, binary.BigEndian.AppendUint16(nil, uint16(code)))
	rc.readToEOF()
}

// readToEOF discards everything until the server ends the connection.
func (rc *rawClient) readToEOF() {
	rc.t.Helper()
	_ = rc.conn.SetReadDeadline(time.Now().Add(testTimeout))
	if _, err := io.Copy(io.Discard, rc.br); err != nil {
		rc.t.Errorf("raw client: waiting for EOF: %v", err)
	}
	_ = rc.conn.Close()
}

// ---- deflate helpers --------------------------------------------------------

// deflateMessage compresses p as one no-context-takeover message (RFC 7692).
func deflateMessage(t testing.TB, p []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	fw, err := flate.NewWriter(&buf, flate.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fw.Write(p); err != nil {
		t.Fatal(err)
	}
	if err := fw.Flush(); err != nil {
		t.Fatal(err)
	}
	out := buf.Bytes()
	if !bytes.HasSuffix(out, []byte{0, 0, 0xff, 0xff}) {
		t.Fatal("flush did not end with 00 00 ff ff")
	}
	return out[:len(out)-4]
}

// inflateMessage reverses deflateMessage.
func inflateMessage(p []byte) ([]byte, error) {
	r := flate.NewReader(io.MultiReader(bytes.NewReader(p), strings.NewReader("\x00\x00\xff\xff\x01\x00\x00\xff\xff")))
	defer r.Close()
	return io.ReadAll(r)
}

// ---- recording net.Conn -----------------------------------------------------

// recConn records every byte read from and written to a net.Conn.
type recConn struct {
	net.Conn
	mu      sync.Mutex
	read    bytes.Buffer
	written bytes.Buffer
}

func (c *recConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	c.read.Write(p[:n])
	c.mu.Unlock()
	return n, err
}

func (c *recConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.mu.Lock()
	c.written.Write(p[:n])
	c.mu.Unlock()
	return n, err
}

// frames parses the frames that follow the HTTP head in b.
func framesAfterHead(t *testing.T, b []byte) []wireFrame {
	t.Helper()
	i := bytes.Index(b, []byte("\r\n\r\n"))
	if i < 0 {
		t.Fatal("no HTTP head in the recorded bytes")
	}
	r := bytes.NewReader(b[i+4:])
	var out []wireFrame
	for r.Len() > 0 {
		f, err := readWireFrame(r)
		if err != nil {
			t.Fatalf("parsing recorded frames: %v", err)
		}
		out = append(out, f)
	}
	return out
}

// pollUntil polls cond until it holds or testTimeout passes.
func pollUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// randomBytes returns n pseudo-random bytes.
func randomBytes(n int) []byte {
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		binary.LittleEndian.PutUint64(b[i:], rand.Uint64())
	}
	for i := n &^ 7; i < n; i++ {
		b[i] = byte(rand.Uint32())
	}
	return b
}
