package transport

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

var errNope = errors.New("nope")

func TestAuthenticate(t *testing.T) {
	t.Parallel()
	opts := &AcceptOptions{Authenticate: func(r *http.Request) (any, error) {
		switch r.Header.Get("Authorization") {
		case "Bearer alice":
			return "alice", nil
		case "Bearer banned":
			return nil, &HTTPError{Status: http.StatusForbidden, Header: map[string][]string{"X-Reason": {"banned"}}, Err: errNope}
		case "Bearer bad-status":
			return nil, &HTTPError{}
		}
		return nil, errNope
	}}
	s := startServer(t, serverConfig{opts: opts, echo: true})

	for _, tc := range []struct {
		name   string
		auth   string
		status int
		header string
	}{
		{"no credentials", "", http.StatusUnauthorized, ""},
		{"wrong credentials", "Bearer mallory", http.StatusUnauthorized, ""},
		{"HTTPError chooses the status", "Bearer banned", http.StatusForbidden, "banned"},
		{"HTTPError without a status", "Bearer bad-status", http.StatusUnauthorized, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			if tc.auth != "" {
				h.Set("Authorization", tc.auth)
			}
			ws, resp, err := dialGorilla(t, s.wsURL(), nil, h)
			if err == nil {
				ws.Close()
				t.Fatal("handshake succeeded")
			}
			if !errors.Is(err, websocket.ErrBadHandshake) || resp == nil {
				t.Fatalf("dial error %v, response %v; want a refused handshake", err, resp)
			}
			if resp.StatusCode != tc.status {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if got := resp.Header.Get("X-Reason"); got != tc.header {
				t.Errorf("X-Reason %q, want %q", got, tc.header)
			}
			aerr := s.nextErr(t)
			if !strings.Contains(aerr.Error(), "authenticate") {
				t.Errorf("Accept error %v does not mention authentication", aerr)
			} else if tc.auth != "Bearer bad-status" && !errors.Is(aerr, errNope) {
				t.Errorf("Accept error %v does not wrap the hook's error", aerr)
			}
			// Issue 11: an *HTTPError's own "transport:" is not repeated.
			if n := strings.Count(aerr.Error(), "transport:"); n != 1 {
				t.Errorf("Accept error %q has %d \"transport:\" prefixes, want 1", aerr, n)
			}
			var he *HTTPError
			if tc.status == http.StatusForbidden && !errors.As(aerr, &he) {
				t.Errorf("Accept error %v does not wrap the *HTTPError", aerr)
			}
			t.Logf("Accept: %v", aerr)
		})
	}
	if n := s.started.Load(); n != 0 {
		t.Fatalf("%d refused connections were started", n)
	}

	// Our own Dial reports the refusal the same way.
	_, resp, err := Dial(context.Background(), s.wsURL(), &DialOptions{Header: http.Header{"Authorization": {"Bearer banned"}}})
	if !errors.Is(err, ErrBadHandshake) || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("Dial = %v, %v; want ErrBadHandshake with a 403", err, resp)
	}
	s.nextErr(t)

	// Accepted: the principal is visible on the connection.
	c, rec := dialOur(t, s.wsURL(), &DialOptions{Header: http.Header{"Authorization": {"Bearer alice"}}})
	srv := s.next(t)
	if p := srv.c.Principal(); p != "alice" {
		t.Errorf("Principal() = %v, want alice", p)
	}
	if c.Principal() != nil {
		t.Errorf("client Principal() = %v, want nil", c.Principal())
	}
	if srv.c.Request() == nil || srv.c.Request().Header.Get("Authorization") != "Bearer alice" {
		t.Error("Request() does not carry the upgrade request")
	}
	// What is kept of the request: enough to read it, nothing of the
	// server's per-request state.
	if r := srv.c.Request(); r.Method != http.MethodGet || r.URL == nil || r.Host == "" || r.RemoteAddr == "" ||
		r.Context().Done() != nil || r.Body != http.NoBody {
		t.Errorf("kept request %+v", r)
	}
	if err := c.Send(NewFrame(MessageText, []byte("hi"))); err != nil {
		t.Fatal(err)
	}
	rec.next(t)
	if n := s.started.Load(); n != 1 {
		t.Fatalf("%d connections started, want 1", n)
	}
}

func TestOrigin(t *testing.T) {
	t.Parallel()
	def := startServer(t, serverConfig{})
	allowed := startServer(t, serverConfig{opts: &AcceptOptions{OriginPatterns: []string{"*.example.com", "trusted.test:8080"}}})
	star := startServer(t, serverConfig{opts: &AcceptOptions{OriginPatterns: []string{"*"}}})

	for _, tc := range []struct {
		name   string
		s      *server
		origin string
		ok     bool
	}{
		{"no origin", def, "", true},
		{"same host", def, "http://" + def.addr(), true},
		{"same host, other scheme and case", def, "HTTPS://" + strings.ToUpper(def.addr()), true},
		{"cross origin refused by default", def, "http://evil.example", false},
		{"same hostname, other port", def, "http://127.0.0.1:1", false},
		{"malformed", def, "null", false},
		{"pattern allows subdomain", allowed, "https://app.example.com", true},
		{"pattern with port", allowed, "http://trusted.test:8080", true},
		{"pattern does not allow the bare domain", allowed, "https://example.com", false},
		{"pattern needs the port", allowed, "http://trusted.test", false},
		{"pattern refuses others", allowed, "https://example.org", false},
		{"star allows all", star, "https://anything.example", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			if tc.origin != "" {
				h.Set("Origin", tc.origin)
			}
			ws, resp, err := dialGorilla(t, tc.s.wsURL(), nil, h)
			if tc.ok {
				if err != nil {
					t.Fatalf("refused: %v (%v)", err, resp)
				}
				ws.Close()
				tc.s.next(t)
				return
			}
			if err == nil {
				ws.Close()
				t.Fatal("cross-origin handshake succeeded")
			}
			if resp == nil || resp.StatusCode != http.StatusForbidden {
				t.Fatalf("got %v, %v; want 403", err, resp)
			}
			if aerr := tc.s.nextErr(t); !errors.Is(aerr, ErrOriginNotAllowed) {
				t.Errorf("Accept error %v, want ErrOriginNotAllowed", aerr)
			}
		})
	}

	// DialOptions.Origin sends the header.
	if _, resp, err := Dial(context.Background(), def.wsURL(), &DialOptions{Origin: "http://evil.example"}); err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("Dial with a foreign Origin = %v, %v; want 403", err, resp)
	}
	def.nextErr(t)
}

func TestSubprotocols(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverConfig{opts: &AcceptOptions{Subprotocols: []string{"v2", "v1"}}})
	for _, tc := range []struct {
		offer []string
		want  string
	}{
		{[]string{"v1", "v2"}, "v1"}, // the client's preference wins
		{[]string{"v2", "v1"}, "v2"},
		{[]string{"x", "v2"}, "v2"},
		{[]string{"x", "y"}, ""},
		{nil, ""},
	} {
		// gorilla as the client.
		ws := mustDialGorilla(t, s.wsURL(), &websocket.Dialer{Subprotocols: tc.offer}, nil)
		srv := s.next(t)
		if ws.Subprotocol() != tc.want || srv.c.Subprotocol() != tc.want {
			t.Errorf("offer %q: client %q, server %q; want %q", tc.offer, ws.Subprotocol(), srv.c.Subprotocol(), tc.want)
		}
		ws.Close()
		srv.r.waitClose(t)

		// Our Dial as the client.
		c, _ := dialOur(t, s.wsURL(), &DialOptions{Subprotocols: tc.offer})
		srv = s.next(t)
		if c.Subprotocol() != tc.want || srv.c.Subprotocol() != tc.want {
			t.Errorf("Dial offer %q: client %q, server %q; want %q", tc.offer, c.Subprotocol(), srv.c.Subprotocol(), tc.want)
		}
		c.Close(StatusNormalClosure, "")
		srv.r.waitClose(t)
	}
}

func TestNotWebSocket(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverConfig{})
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Get(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUpgradeRequired || resp.Header.Get("Upgrade") != "websocket" {
		t.Errorf("plain GET: %d, Upgrade %q; want 426 with Upgrade: websocket", resp.StatusCode, resp.Header.Get("Upgrade"))
	}
	if err := s.nextErr(t); !errors.Is(err, ErrNotWebSocket) {
		t.Errorf("Accept error %v, want ErrNotWebSocket", err)
	}
}

// rawRequest sends head (an HTTP request head, "\r\n" line ends) to addr and
// returns the response.
func rawRequest(t *testing.T, addr, head string) *http.Response {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(testTimeout))
	if _, err := io.WriteString(conn, head); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading the response: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp
}

// TestUpgradeRequestRefused: Accept answers an upgrade request that breaks
// RFC 6455 section 4.2.1 with a 4xx, and starts no connection. A missing or
// unsupported version is answered with Sec-WebSocket-Version: 13 (section
// 4.4), which gorilla's Upgrader left out when given an Error function.
func TestUpgradeRequestRefused(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverConfig{})
	const key = "dGhlIHNhbXBsZSBub25jZQ=="
	head := func(requestLine string, drop string, extra ...string) string {
		var b strings.Builder
		b.WriteString(requestLine + "\r\nHost: " + s.addr() + "\r\n")
		for _, h := range []string{"Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Key: " + key, "Sec-WebSocket-Version: 13"} {
			if drop == "" || !strings.HasPrefix(h, drop+":") {
				b.WriteString(h + "\r\n")
			}
		}
		for _, h := range extra {
			b.WriteString(h + "\r\n")
		}
		return b.String() + "\r\n"
	}
	get := "GET / HTTP/1.1"
	for _, tc := range []struct {
		name    string
		head    string
		status  int
		header  [2]string // a header the response must carry
		wantErr error
	}{
		{"wrong version", head(get, "Sec-WebSocket-Version", "Sec-WebSocket-Version: 8"), http.StatusUpgradeRequired, [2]string{"Sec-WebSocket-Version", "13"}, ErrBadHandshake},
		{"two versions", head(get, "", "Sec-WebSocket-Version: 8"), http.StatusUpgradeRequired, [2]string{"Sec-WebSocket-Version", "13"}, ErrBadHandshake},
		{"missing version", head(get, "Sec-WebSocket-Version"), http.StatusBadRequest, [2]string{"Sec-WebSocket-Version", "13"}, ErrBadHandshake},
		{"HTTP/1.0", head("GET / HTTP/1.0", ""), http.StatusBadRequest, [2]string{}, ErrBadHandshake},
		{"POST", head("POST / HTTP/1.1", "", "Content-Length: 0"), http.StatusMethodNotAllowed, [2]string{"Allow", "GET"}, ErrBadHandshake},
		{"missing key", head(get, "Sec-WebSocket-Key"), http.StatusBadRequest, [2]string{}, ErrBadHandshake},
		{"key not base64", head(get, "Sec-WebSocket-Key", "Sec-WebSocket-Key: not base64 at all!!!!!!"), http.StatusBadRequest, [2]string{}, ErrBadHandshake},
		{"key of 15 bytes", head(get, "Sec-WebSocket-Key", "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAA"), http.StatusBadRequest, [2]string{}, ErrBadHandshake},
		{"key of 17 bytes", head(get, "Sec-WebSocket-Key", "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAAA="), http.StatusBadRequest, [2]string{}, ErrBadHandshake},
		{"two keys", head(get, "", "Sec-WebSocket-Key: "+key), http.StatusBadRequest, [2]string{}, ErrBadHandshake},
		{"a body", head(get, "", "Content-Length: 2"), http.StatusBadRequest, [2]string{}, ErrBadHandshake},
		{"no Upgrade", head(get, "Upgrade"), http.StatusUpgradeRequired, [2]string{"Upgrade", "websocket"}, ErrNotWebSocket},
		{"no Connection: upgrade", head(get, "Connection", "Connection: keep-alive"), http.StatusUpgradeRequired, [2]string{"Upgrade", "websocket"}, ErrNotWebSocket},
	} {
		t.Run(tc.name, func(t *testing.T) {
			head := tc.head
			if strings.Contains(head, "Content-Length: 2") {
				head += "{}"
			}
			resp := rawRequest(t, s.addr(), head)
			if resp.StatusCode != tc.status {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if k := tc.header[0]; k != "" && resp.Header.Get(k) != tc.header[1] {
				t.Errorf("%s: %q, want %q", k, resp.Header.Get(k), tc.header[1])
			}
			if resp.Header.Get("Sec-WebSocket-Accept") != "" {
				t.Error("a refusal carries Sec-WebSocket-Accept")
			}
			err := s.nextErr(t)
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("Accept error %v, want %v", err, tc.wantErr)
			}
			if n := strings.Count(err.Error(), "transport:"); n != 1 {
				t.Errorf("Accept error %q has %d \"transport:\" prefixes, want 1", err, n)
			}
			body, _ := io.ReadAll(resp.Body)
			t.Logf("%d %s; Accept: %v", resp.StatusCode, bytes.TrimSpace(body), err)
		})
	}
	if n := s.started.Load(); n != 0 {
		t.Fatalf("%d refused connections were started", n)
	}
}

// TestAcceptAnswers101: the 101 carries the accept key of RFC 6455 section
// 4.2.2 (the example key of section 1.3), the header names in any case and
// list form are understood, and the subprotocol offered across two header
// lines is chosen.
func TestAcceptAnswers101(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverConfig{opts: &AcceptOptions{Subprotocols: []string{"v2"}}})
	resp := rawRequest(t, s.addr(), "GET /chat HTTP/1.1\r\nHost: "+s.addr()+"\r\nupgrade: WebSocket\r\nconnection: keep-alive, Upgrade\r\n"+
		"sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n"+
		"Sec-WebSocket-Protocol: v1\r\nSec-WebSocket-Protocol: x, v2\r\n\r\n")
	srv := s.next(t)
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d", resp.StatusCode)
	}
	for k, want := range map[string]string{
		"Upgrade":                  "websocket",
		"Connection":               "Upgrade",
		"Sec-WebSocket-Accept":     "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
		"Sec-WebSocket-Protocol":   "v2",
		"Sec-WebSocket-Extensions": "",
	} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	if srv.c.Subprotocol() != "v2" || srv.c.Compressed() {
		t.Errorf("Subprotocol() = %q, Compressed() = %v", srv.c.Subprotocol(), srv.c.Compressed())
	}
	srv.c.Terminate(nil)
	srv.r.waitClose(t)
}

// TestPipelinedFirstFrame: a client that sends its first frames in the same
// TCP write as the upgrade request, without waiting for the 101, loses
// nothing: the server's HTTP reader already holds them, and the connection
// reads through it (Node's ws does the same). The second frame is cut in
// two, so the connection must also go on reading from the socket.
func TestPipelinedFirstFrame(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverConfig{echo: true})
	conn, err := net.DialTimeout("tcp", s.addr(), testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(testTimeout))
	req := fmt.Sprintf("GET / HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", s.addr())
	first := encodeClientFrame(0x80|byte(MessageText), []byte("sent with the request"))
	second := encodeClientFrame(0x80|byte(MessageBinary), bytes.Repeat([]byte{7}, 300))
	cut := len(second) / 2
	if _, err := conn.Write(append(append([]byte(req), first...), second[:cut]...)); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("response %v, %v", resp, err)
	}
	srv := s.next(t)
	if m := srv.r.next(t); m.typ != MessageText || string(m.data) != "sent with the request" {
		t.Fatalf("first message %v %q", m.typ, m.data)
	}
	if _, err := conn.Write(second[cut:]); err != nil {
		t.Fatal(err)
	}
	if m := srv.r.next(t); m.typ != MessageBinary || !bytes.Equal(m.data, bytes.Repeat([]byte{7}, 300)) {
		t.Fatalf("second message %v, %d bytes", m.typ, len(m.data))
	}
	for _, want := range []string{"sent with the request", strings.Repeat("\x07", 300)} {
		f, err := readWireFrame(br)
		if err != nil || string(f.payload) != want {
			t.Fatalf("echo: %v, %d bytes", err, len(f.payload))
		}
	}
	if _, err := conn.Write(encodeClientFrame(0x80|opClose, closePayloadOf(1000, ""))); err != nil {
		t.Fatal(err)
	}
	if info := srv.r.waitClose(t); info.Code != StatusNormalClosure || !info.ByPeer {
		t.Errorf("HandleClose = %+v", info)
	}
}

// TestAcceptCannotHijack: a ResponseWriter that cannot be hijacked gets a
// 500, and Accept says why.
func TestAcceptCannotHijack(t *testing.T) {
	t.Parallel()
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("Upgrade", "websocket")
	r.Header.Set("Connection", "Upgrade")
	r.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	r.Header.Set("Sec-WebSocket-Version", "13")
	w := httptest.NewRecorder()
	c, err := Accept(w, r, nil)
	if c != nil || !errors.Is(err, http.ErrNotSupported) {
		t.Fatalf("Accept = %v, %v; want http.ErrNotSupported", c, err)
	}
	if w.Code != http.StatusInternalServerError {
		t.Errorf("status %d, want 500", w.Code)
	}
	if n := strings.Count(err.Error(), "transport:"); n != 1 {
		t.Errorf("error %q has %d \"transport:\" prefixes, want 1", err, n)
	}
}
