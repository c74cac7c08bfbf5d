package transport

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

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
			if aerr := s.nextErr(t); !strings.Contains(aerr.Error(), "authenticate") {
				t.Errorf("Accept error %v does not mention authentication", aerr)
			} else if tc.auth != "Bearer bad-status" && !errors.Is(aerr, errNope) {
				t.Errorf("Accept error %v does not wrap the hook's error", aerr)
			}
		})
	}
	if n := s.started.Load(); n != 0 {
		t.Fatalf("%d refused connections were started", n)
	}

	// Our own Dial reports the refusal the same way.
	_, resp, err := Dial(context.Background(), s.wsURL(), &DialOptions{Header: http.Header{"Authorization": {"Bearer banned"}}})
	if !errors.Is(err, websocket.ErrBadHandshake) || resp == nil || resp.StatusCode != http.StatusForbidden {
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
	if err := c.WriteMessage(MessageText, []byte("hi")); err != nil {
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
