package transport

// Our client's handshake (Dial) against hand-written servers and proxies on
// loopback: what it sends, which answers it accepts, what it keeps of a
// refusal, and what bounds it.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// shotPeer is the server end of the one connection a shotServer takes.
type shotPeer struct {
	conn net.Conn
	br   *bufio.Reader // reads what the client sent after its request
	req  *http.Request
}

// shotServer listens on loopback for one connection, reads the upgrade
// request, and answers with respond(req), in one TCP write; a nil respond
// answers nothing. The peer is delivered once the request has been read.
func shotServer(t *testing.T, respond func(req *http.Request) []byte) (addr string, peer <-chan shotPeer) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan shotPeer, 1)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conn net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(ch)
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		mu.Lock()
		conn = nc
		mu.Unlock()
		_ = nc.SetDeadline(time.Now().Add(testTimeout))
		br := bufio.NewReader(nc)
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		if respond != nil {
			if _, err := nc.Write(respond(req)); err != nil {
				return
			}
		}
		ch <- shotPeer{conn: nc, br: br, req: req}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		if conn != nil {
			conn.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String(), ch
}

// answer101 is a correct 101 for req with extra header lines.
func answer101(req *http.Request, extra ...string) []byte {
	var b strings.Builder
	b.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n")
	b.WriteString("Sec-WebSocket-Accept: " + acceptKey(req.Header.Get("Sec-WebSocket-Key")) + "\r\n")
	for _, h := range extra {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("\r\n")
	return []byte(b.String())
}

func waitPeer(t *testing.T, ch <-chan shotPeer) shotPeer {
	t.Helper()
	select {
	case p, ok := <-ch:
		if !ok {
			t.Fatal("shot server: no request")
		}
		return p
	case <-time.After(testTimeout):
		t.Fatal("shot server: no connection")
		return shotPeer{}
	}
}

// dialShot dials addr with our client, which must succeed, and starts it.
func dialShot(t *testing.T, addr string, opts *DialOptions) (*Conn, *recorder) {
	t.Helper()
	var o DialOptions
	if opts != nil {
		o = *opts
	}
	o.Proxy = NoProxy
	return dialOur(t, "ws://"+addr+"/", &o)
}

// readClientFrame reads one frame our client wrote, which must be masked,
// and unmasks it.
func readClientFrame(t *testing.T, p shotPeer) wireFrame {
	t.Helper()
	_ = p.conn.SetReadDeadline(time.Now().Add(testTimeout))
	f, err := readWireFrame(p.br)
	if err != nil {
		t.Fatalf("reading the client's frame: %v", err)
	}
	if !f.masked {
		t.Errorf("client frame (opcode %d) not masked", f.op)
	}
	return f
}

// closeShot runs the server's side of a closing handshake with code 1000.
func closeShot(t *testing.T, p shotPeer, rec *recorder) {
	t.Helper()
	_ = p.conn.SetWriteDeadline(time.Now().Add(testTimeout))
	if _, err := p.conn.Write(serverFrame(0x80|opClose, closePayloadOf(1000, "bye"))); err != nil {
		t.Fatal(err)
	}
	if f := readClientFrame(t, p); f.op != opClose {
		t.Fatalf("client answered opcode %d, want a close frame", f.op)
	}
	p.conn.Close() // the server ends TCP first (RFC 6455 7.1.1)
	if info := rec.waitClose(t); info.Code != StatusNormalClosure || !info.ByPeer {
		t.Errorf("HandleClose = %+v", info)
	}
}

// TestDialFramesWith101: frames the server writes in the same TCP write as
// its 101 are read by the connection, not lost with the handshake's reader.
func TestDialFramesWith101(t *testing.T) {
	t.Parallel()
	forEachDeflate(t, func(t *testing.T, deflate bool) {
		msg := bytes.Repeat([]byte("right behind the 101 "), 100)
		addr, peers := shotServer(t, func(req *http.Request) []byte {
			var extra []string
			if deflate {
				extra = append(extra, "Sec-WebSocket-Extensions: "+deflateAnswer)
			}
			b := answer101(req, extra...)
			b = append(b, bytes.Join(dataFrames(t, deflate, MessageText, msg), nil)...)
			return append(b, serverFrame(0x80|opPing, []byte("ping with the 101"))...)
		})
		c, rec := dialShot(t, addr, nil)
		if c.Compressed() != deflate {
			t.Fatalf("Compressed() = %v", c.Compressed())
		}
		p := waitPeer(t, peers)
		if m := rec.next(t); m.typ != MessageText || !bytes.Equal(m.data, msg) {
			t.Fatalf("got %v, %d bytes", m.typ, len(m.data))
		}
		if f := readClientFrame(t, p); f.op != opPong || string(f.payload) != "ping with the 101" {
			t.Fatalf("client sent opcode %d %q, want the pong", f.op, f.payload)
		}
		closeShot(t, p, rec)
	})
}

// TestDialDeflateWithoutClientNoContext: RFC 7692 7.1.1.2 lets a server
// leave client_no_context_takeover out of its answer even though we offered
// it. The client accepts (gorilla refused, failing 108 Autobahn client
// cases), and still compresses each message on its own: the test inflates
// every message with a fresh inflater, and a repeated message would refer
// back into the previous one if the client kept its context.
func TestDialDeflateWithoutClientNoContext(t *testing.T) {
	t.Parallel()
	addr, peers := shotServer(t, func(req *http.Request) []byte {
		return answer101(req, "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover")
	})
	c, rec := dialShot(t, addr, nil)
	if !c.Compressed() {
		t.Fatal("Compressed() = false")
	}
	p := waitPeer(t, peers)
	in := bytes.Repeat([]byte("from the server "), 200)
	_ = p.conn.SetWriteDeadline(time.Now().Add(testTimeout))
	if _, err := p.conn.Write(bytes.Join(dataFrames(t, true, MessageText, in[:1000], in[1000:]), nil)); err != nil {
		t.Fatal(err)
	}
	if m := rec.next(t); !bytes.Equal(m.data, in) {
		t.Fatalf("got %d bytes", len(m.data))
	}
	out := bytes.Repeat([]byte("from the client "), 200)
	for i := 0; i < 2; i++ {
		if err := c.Send(NewFrame(MessageText, out)); err != nil {
			t.Fatal(err)
		}
		f := readClientFrame(t, p)
		if !f.rsv1 || f.op != byte(MessageText) {
			t.Fatalf("message %d: opcode %d, RSV1 %v; want compressed text", i, f.op, f.rsv1)
		}
		got, err := inflateMessage(f.payload)
		if err != nil || !bytes.Equal(got, out) {
			t.Fatalf("message %d: inflated on its own: %d bytes, %v", i, len(got), err)
		}
	}
	closeShot(t, p, rec)
}

// TestDialRefused: an answer other than a good 101 fails Dial with
// ErrBadHandshake and returns the response, with up to 1 KiB of its body.
func TestDialRefused(t *testing.T) {
	t.Parallel()
	long := bytes.Repeat([]byte("0123456789abcdef"), 128) // 2 KiB
	for _, tc := range []struct {
		name   string
		answer func(req *http.Request) []byte
		status int
		body   []byte
	}{
		{"403 with a long body", func(*http.Request) []byte {
			return append([]byte(fmt.Sprintf("HTTP/1.1 403 Forbidden\r\nX-Reason: banned\r\nContent-Length: %d\r\n\r\n", len(long))), long...)
		}, http.StatusForbidden, long[:1024]},
		{"200 with a short body", func(*http.Request) []byte {
			return []byte("HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nnot here")
		}, http.StatusOK, []byte("not here")},
		{"101 without Upgrade", func(req *http.Request) []byte {
			return bytes.Replace(answer101(req), []byte("Upgrade: websocket\r\n"), nil, 1)
		}, http.StatusSwitchingProtocols, nil},
		{"101 upgrading to another protocol", func(req *http.Request) []byte {
			return bytes.Replace(answer101(req), []byte("Upgrade: websocket"), []byte("Upgrade: h2c"), 1)
		}, http.StatusSwitchingProtocols, nil},
		{"101 without Connection: upgrade", func(req *http.Request) []byte {
			return bytes.Replace(answer101(req), []byte("Connection: Upgrade"), []byte("Connection: keep-alive"), 1)
		}, http.StatusSwitchingProtocols, nil},
		{"101 without Sec-WebSocket-Accept", func(req *http.Request) []byte {
			return []byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		}, http.StatusSwitchingProtocols, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			addr, peers := shotServer(t, tc.answer)
			c, resp, err := Dial(context.Background(), "ws://"+addr+"/", &DialOptions{Proxy: NoProxy})
			if err == nil {
				c.Start(newRecorder(false))
				c.Terminate(nil)
				waitDone(t, c)
				t.Fatal("Dial succeeded")
			}
			waitPeer(t, peers)
			if !errors.Is(err, ErrBadHandshake) {
				t.Errorf("error %v does not wrap ErrBadHandshake", err)
			}
			if n := strings.Count(err.Error(), "transport:"); n != 1 {
				t.Errorf("error %q has %d \"transport:\" prefixes, want 1", err, n)
			}
			if resp == nil {
				t.Fatal("no response")
			}
			if resp.StatusCode != tc.status {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.status)
			}
			body, rerr := io.ReadAll(resp.Body)
			if rerr != nil || !bytes.Equal(body, tc.body) {
				t.Errorf("body %q (%v), want %q", body, rerr, tc.body)
			}
			if tc.status == http.StatusForbidden && resp.Header.Get("X-Reason") != "banned" {
				t.Errorf("X-Reason %q", resp.Header.Get("X-Reason"))
			}
			t.Logf("Dial: %v", err)
		})
	}
}

// TestDialBounded: HandshakeTimeout and ctx both bound the handshake; a
// server that reads the request and never answers does not hold Dial.
func TestDialBounded(t *testing.T) {
	t.Parallel()
	t.Run("HandshakeTimeout", func(t *testing.T) {
		t.Parallel()
		addr, peers := shotServer(t, nil)
		_, resp, err := Dial(context.Background(), "ws://"+addr+"/", &DialOptions{Proxy: NoProxy, HandshakeTimeout: 50 * time.Millisecond})
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "handshake timeout") || resp != nil {
			t.Fatalf("Dial = %v, %v; want a handshake timeout", resp, err)
		}
		waitPeer(t, peers)
	})
	t.Run("ctx canceled", func(t *testing.T) {
		t.Parallel()
		addr, peers := shotServer(t, nil)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := make(chan error, 1)
		go func() {
			_, _, err := Dial(ctx, "ws://"+addr+"/", &DialOptions{Proxy: NoProxy, HandshakeTimeout: time.Hour})
			done <- err
		}()
		waitPeer(t, peers) // the request was sent and read; Dial waits for the answer
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("Dial error %v, want context.Canceled", err)
			}
		case <-time.After(testTimeout):
			t.Fatal("Dial did not return after ctx was canceled")
		}
	})
}

// TestDialRequest: the handshake request our client sends (RFC 6455 4.1).
func TestDialRequest(t *testing.T) {
	t.Parallel()
	var keys []string
	for i := 0; i < 2; i++ {
		addr, peers := shotServer(t, func(req *http.Request) []byte { return answer101(req) })
		c, _ := dialOur(t, "http://"+addr+"/chat?room=1", &DialOptions{
			Proxy:        NoProxy,
			Origin:       "https://app.example",
			Subprotocols: []string{"v1", "v2"},
			Header: http.Header{
				"X-Custom":               {"yes"},
				"Origin":                 {"ignored, Origin wins"},
				"Host":                   {"virtual.example"},
				"sec-websocket-key":      {"dGhlIHNhbXBsZSBub25jZQ=="},
				"Upgrade":                {"something-else"},
				"Sec-WebSocket-Protocol": {"not-offered"},
			},
		})
		req := waitPeer(t, peers).req
		if req.Method != http.MethodGet || req.ProtoMajor != 1 || req.ProtoMinor != 1 || req.RequestURI != "/chat?room=1" {
			t.Errorf("request line %s %s %s", req.Method, req.RequestURI, req.Proto)
		}
		for k, want := range map[string]string{
			"Upgrade":                  "websocket",
			"Connection":               "Upgrade",
			"Sec-WebSocket-Version":    "13",
			"Sec-WebSocket-Protocol":   "v1, v2",
			"Sec-WebSocket-Extensions": deflateOffer,
			"Origin":                   "https://app.example",
			"X-Custom":                 "yes",
		} {
			if got := req.Header.Values(k); len(got) != 1 || got[0] != want {
				t.Errorf("%s: %q, want %q", k, got, want)
			}
		}
		if req.Host != "virtual.example" {
			t.Errorf("Host %q, want the Header's", req.Host)
		}
		key := req.Header.Values("Sec-WebSocket-Key")
		if b, err := base64.StdEncoding.DecodeString(strings.Join(key, "")); len(key) != 1 || err != nil || len(b) != 16 {
			t.Errorf("Sec-WebSocket-Key %q is not base64 of 16 bytes", key)
		}
		keys = append(keys, strings.Join(key, ""))
		if c.Subprotocol() != "" || c.Compressed() {
			t.Errorf("Subprotocol() = %q, Compressed() = %v for a 101 that chose neither", c.Subprotocol(), c.Compressed())
		}
		c.Terminate(nil)
	}
	if keys[0] == keys[1] || keys[0] == "dGhlIHNhbXBsZSBub25jZQ==" {
		t.Errorf("keys %q: want a fresh random key per handshake", keys)
	}
}

// TestDialURL: URLs (and subprotocols) Dial refuses before connecting.
func TestDialURL(t *testing.T) {
	t.Parallel()
	var dials atomic.Int32
	opts := &DialOptions{Proxy: NoProxy, NetDialContext: func(context.Context, string, string) (net.Conn, error) {
		dials.Add(1)
		return nil, errors.New("no network in this test")
	}}
	for _, u := range []string{
		"ftp://127.0.0.1/",
		"127.0.0.1:80",
		"ws:///no-host",
		"ws://user:secret@127.0.0.1/",
		"ws://127.0.0.1/#fragment",
		"ws://127.0.0.1/#",
		"ws://[::1/",
	} {
		_, resp, err := Dial(context.Background(), u, opts)
		if err == nil || resp != nil || errors.Is(err, ErrBadHandshake) {
			t.Errorf("Dial(%q) = %v, %v; want a URL error", u, resp, err)
			continue
		}
		if n := strings.Count(err.Error(), "transport:"); n != 1 || strings.Contains(err.Error(), "secret") {
			t.Errorf("Dial(%q): error %q", u, err)
		}
		t.Logf("Dial(%q): %v", u, err)
	}
	for _, sp := range []string{"", "a b", "a,b", "v1\r\nX-Injected: 1"} {
		o := *opts
		o.Subprotocols = []string{"ok", sp}
		if _, _, err := Dial(context.Background(), "ws://127.0.0.1/", &o); err == nil || !strings.Contains(err.Error(), "not an HTTP token") {
			t.Errorf("subprotocol %q: %v", sp, err)
		}
	}
	if n := dials.Load(); n != 0 {
		t.Errorf("%d connections attempted", n)
	}
}

// authProxy is an HTTP proxy that only does CONNECT, after checking
// Proxy-Authorization against want (if not empty).
type authProxy struct {
	want     string
	mu       sync.Mutex
	seen     []string // Proxy-Authorization of every CONNECT
	wg       sync.WaitGroup
	listener net.Listener
}

func startAuthProxy(t *testing.T, want string) *authProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &authProxy{want: want, listener: ln}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				p.serve(conn)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		p.wg.Wait()
	})
	return p
}

func (p *authProxy) serve(conn net.Conn) {
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(testTimeout))
	br := bufio.NewReader(conn)
	req, err := http.ReadRequest(br)
	if err != nil || req.Method != http.MethodConnect {
		return
	}
	auth := req.Header.Get("Proxy-Authorization")
	p.mu.Lock()
	p.seen = append(p.seen, auth)
	p.mu.Unlock()
	if p.want != "" && auth != p.want {
		_, _ = io.WriteString(conn, "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic\r\nContent-Length: 0\r\n\r\n")
		return
	}
	up, err := net.DialTimeout("tcp", req.Host, testTimeout)
	if err != nil {
		_, _ = io.WriteString(conn, "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
		return
	}
	defer up.Close()
	if _, err := io.WriteString(conn, "HTTP/1.1 200 Connection Established\r\n\r\n"); err != nil {
		return
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = io.Copy(up, br)
		_ = up.(*net.TCPConn).CloseWrite()
	}()
	_, _ = io.Copy(conn, up)
	_ = conn.(*net.TCPConn).CloseWrite()
	<-done
}

// TestDialProxyAuth: Basic credentials from the proxy URL's user info go in
// Proxy-Authorization; a proxy's refusal is reported as such (it is not the
// server's handshake); proxies other than http:// are refused up front.
func TestDialProxyAuth(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverConfig{echo: true})
	want := "Basic " + base64.StdEncoding.EncodeToString([]byte("alice:pass word"))
	p := startAuthProxy(t, want)

	withCreds := &url.URL{Scheme: "http", User: url.UserPassword("alice", "pass word"), Host: p.listener.Addr().String()}
	c, rec := dialOur(t, s.wsURL(), &DialOptions{Proxy: http.ProxyURL(withCreds)})
	srv := s.next(t)
	if err := c.Send(NewFrame(MessageText, []byte("through an authenticating proxy"))); err != nil {
		t.Fatal(err)
	}
	if m := rec.next(t); string(m.data) != "through an authenticating proxy" {
		t.Fatalf("echo %q", m.data)
	}
	c.Close(StatusNormalClosure, "")
	rec.waitClose(t)
	srv.r.waitClose(t)

	noCreds := &url.URL{Scheme: "http", Host: p.listener.Addr().String()}
	_, resp, err := Dial(context.Background(), s.wsURL(), &DialOptions{Proxy: http.ProxyURL(noCreds)})
	if err == nil || resp != nil || errors.Is(err, ErrBadHandshake) || !strings.Contains(err.Error(), "407") {
		t.Errorf("Dial without credentials = %v, %v; want the proxy's 407", resp, err)
	}
	t.Logf("without credentials: %v", err)
	p.mu.Lock()
	if len(p.seen) != 2 || p.seen[0] != want || p.seen[1] != "" {
		t.Errorf("proxy saw Proxy-Authorization %q", p.seen)
	}
	p.mu.Unlock()

	var dials atomic.Int32
	for _, scheme := range []string{"https", "socks4"} {
		_, _, err := Dial(context.Background(), s.wsURL(), &DialOptions{
			Proxy: http.ProxyURL(&url.URL{Scheme: scheme, User: url.UserPassword("u", "secret"), Host: "127.0.0.1:1080"}),
			NetDialContext: func(context.Context, string, string) (net.Conn, error) {
				dials.Add(1)
				return nil, errors.New("must not dial")
			},
		})
		if err == nil || !strings.Contains(err.Error(), "is not supported") || strings.Contains(err.Error(), "secret") {
			t.Errorf("%s proxy: %v", scheme, err)
		}
	}
	if n := dials.Load(); n != 0 {
		t.Errorf("%d dials through an unsupported proxy", n)
	}
}

// TestDialTLS: wss:// (and https://) with TLSConfig; ServerName comes from
// the URL's host, here a name that NetDialContext sends to loopback.
func TestDialTLS(t *testing.T) {
	t.Parallel()
	conns := make(chan *Conn, 4)
	var mu sync.Mutex
	var all []*Conn
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := Accept(w, r, nil)
		if err != nil {
			return
		}
		mu.Lock()
		all = append(all, c)
		mu.Unlock()
		c.Start(newRecorder(true))
		conns <- c
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused certificate below
	srv.StartTLS()
	t.Cleanup(func() {
		srv.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range all {
			waitDone(t, c)
		}
	})
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	toLoopback := func(ctx context.Context, network, addr string) (net.Conn, error) {
		if addr != "example.com:"+port {
			return nil, fmt.Errorf("dialed %s", addr)
		}
		var d net.Dialer
		return d.DialContext(ctx, network, srv.Listener.Addr().String())
	}
	opts := &DialOptions{Proxy: NoProxy, TLSConfig: &tls.Config{RootCAs: roots}, NetDialContext: toLoopback}
	for _, scheme := range []string{"wss", "https"} {
		c, rec := dialOur(t, scheme+"://example.com:"+port+"/", opts)
		var sc *Conn
		select {
		case sc = <-conns:
		case <-time.After(testTimeout):
			t.Fatal("no server connection")
		}
		if got := sc.Request().Host; got != "example.com:"+port {
			t.Errorf("server saw Host %q", got)
		}
		if err := c.Send(NewFrame(MessageText, []byte("over TLS"))); err != nil {
			t.Fatal(err)
		}
		if m := rec.next(t); string(m.data) != "over TLS" {
			t.Fatalf("echo %q", m.data)
		}
		c.Close(StatusNormalClosure, "")
		rec.waitClose(t)
		waitDone(t, sc)
	}
	if opts.TLSConfig.ServerName != "" {
		t.Error("Dial changed the caller's TLSConfig")
	}

	// Without the test CA the certificate is refused: a TLS error, not a
	// refused handshake.
	_, resp, err := Dial(context.Background(), "wss://example.com:"+port+"/", &DialOptions{Proxy: NoProxy, NetDialContext: toLoopback})
	var verr *tls.CertificateVerificationError
	if !errors.As(err, &verr) || errors.Is(err, ErrBadHandshake) || resp != nil {
		t.Errorf("Dial with unknown roots = %v, %v; want a certificate error", resp, err)
	}
}
