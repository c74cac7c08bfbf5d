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
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// echoCases are the messages every echo test sends, in order.
func echoCases() []message {
	bigText := strings.Repeat("héllo wörld, ☃ ", 300<<10/18)
	return []message{
		{MessageText, []byte("hello")},
		{MessageBinary, []byte{0, 1, 2, 0xff}},
		{MessageText, []byte("")},
		{MessageBinary, []byte{}},
		{MessageText, []byte(strings.Repeat("x", 125))},
		{MessageText, []byte(strings.Repeat("y", 126))},
		{MessageBinary, randomBytes(0xffff)},
		{MessageBinary, randomBytes(0x10000)},
		{MessageBinary, randomBytes(300 << 10)},
		{MessageText, []byte(bigText)},
	}
}

func TestEchoGorillaClient(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverConfig{echo: true})
	ws := mustDialGorilla(t, s.wsURL(), nil, nil)
	srv := s.next(t)

	for i, m := range echoCases() {
		if err := ws.WriteMessage(int(m.typ), m.data); err != nil {
			t.Fatalf("case %d: write: %v", i, err)
		}
		typ, got, err := gorillaRead(t, ws)
		if err != nil {
			t.Fatalf("case %d: read: %v", i, err)
		}
		if typ != int(m.typ) || !bytes.Equal(got, m.data) {
			t.Fatalf("case %d: echo mismatch: type %d len %d, want type %d len %d", i, typ, len(got), m.typ, len(m.data))
		}
	}

	// Many small messages, written back to back, come back in order.
	const n = 1000
	done := make(chan error, 1)
	go func() {
		for i := 0; i < n; i++ {
			if err := ws.WriteMessage(websocket.TextMessage, []byte(fmt.Sprintf("msg-%d", i))); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for i := 0; i < n; i++ {
		_, got, err := gorillaRead(t, ws)
		if err != nil {
			t.Fatalf("small message %d: %v", i, err)
		}
		if want := fmt.Sprintf("msg-%d", i); string(got) != want {
			t.Fatalf("small message %d: got %q, want %q", i, got, want)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	ce := gorillaClose(t, ws, websocket.CloseNormalClosure, "done")
	if ce.Code != websocket.CloseNormalClosure {
		t.Errorf("client saw close %d, want the echoed 1000", ce.Code)
	}
	info := srv.r.waitClose(t)
	if info.Code != StatusNormalClosure || info.Reason != "done" || !info.ByPeer || info.Err != nil {
		t.Errorf("server HandleClose = %+v, want 1000 \"done\" by peer, no error", info)
	}
	// The server's recorder saw every message too.
	if got := len(srv.r.msgs); got != len(echoCases())+n {
		t.Errorf("server handled %d messages, want %d", got, len(echoCases())+n)
	}
}

func TestEchoOurClient(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverConfig{echo: true})
	c, rec := dialOur(t, s.wsURL(), nil)
	srv := s.next(t)

	for i, m := range echoCases() {
		if err := c.Send(NewFrame(m.typ, m.data)); err != nil {
			t.Fatalf("case %d: send: %v", i, err)
		}
		got := rec.next(t)
		if got.typ != m.typ || !bytes.Equal(got.data, m.data) {
			t.Fatalf("case %d: echo mismatch: type %v len %d, want type %v len %d", i, got.typ, len(got.data), m.typ, len(m.data))
		}
	}

	const n = 1000
	for i := 0; i < n; i++ {
		if err := c.Send(NewFrame(MessageBinary, []byte(fmt.Sprintf("msg-%d", i)))); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	for i := 0; i < n; i++ {
		got := rec.next(t)
		if want := fmt.Sprintf("msg-%d", i); string(got.data) != want || got.typ != MessageBinary {
			t.Fatalf("small message %d: got %v %q, want %q", i, got.typ, got.data, want)
		}
	}

	c.Close(StatusNormalClosure, "client done")
	cinfo := rec.waitClose(t)
	if cinfo.Code != StatusNormalClosure || cinfo.ByPeer || cinfo.Err != nil {
		t.Errorf("client HandleClose = %+v, want 1000, not by peer, no error", cinfo)
	}
	sinfo := srv.r.waitClose(t)
	if sinfo.Code != StatusNormalClosure || sinfo.Reason != "client done" || !sinfo.ByPeer || sinfo.Err != nil {
		t.Errorf("server HandleClose = %+v, want 1000 \"client done\" by peer, no error", sinfo)
	}
	if err := c.Send(NewFrame(MessageText, []byte("late"))); !errors.Is(err, ErrClosed) {
		t.Errorf("Send after close = %v, want ErrClosed", err)
	}
}

// TestDialHTTPScheme checks that http:// URLs are accepted as ws://.
func TestDialHTTPScheme(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverConfig{echo: true})
	c, rec := dialOur(t, s.URL, nil)
	s.next(t)
	if err := c.Send(NewFrame(MessageText, []byte("hi"))); err != nil {
		t.Fatal(err)
	}
	if m := rec.next(t); string(m.data) != "hi" {
		t.Fatalf("got %q", m.data)
	}
	if c.Response() == nil || c.Response().StatusCode != http.StatusSwitchingProtocols {
		t.Errorf("Response() = %v, want the 101", c.Response())
	}
	if c.Request() != nil {
		t.Error("client Conn has a Request")
	}
}

func TestNetConnCopy(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverConfig{echo: true})
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	c, _, err := Dial(ctx, s.wsURL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	nc := NetConn(c, MessageBinary)
	srv := s.next(t)

	src := randomBytes(1 << 20)
	copied := make(chan error, 1)
	go func() {
		// Hide bytes.Reader's WriteTo so io.Copy writes 32 KB chunks.
		_, err := io.Copy(nc, struct{ io.Reader }{bytes.NewReader(src)})
		copied <- err
	}()
	got := make([]byte, len(src))
	_ = nc.SetReadDeadline(time.Now().Add(testTimeout))
	if _, err := io.ReadFull(nc, got); err != nil {
		t.Fatalf("ReadFull: %v", err)
	}
	if err := <-copied; err != nil {
		t.Fatalf("io.Copy: %v", err)
	}
	if !bytes.Equal(got, src) {
		t.Fatal("stream content differs")
	}
	if n := len(srv.r.msgs); n < 2 {
		t.Errorf("server saw %d messages; io.Copy should have written several", n)
	}

	if err := nc.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.Done():
	default:
		t.Fatal("NetConn.Close returned before the connection ended")
	}
	if n, err := nc.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Errorf("Read after a normal close = %d, %v; want 0, io.EOF", n, err)
	}
	if _, err := nc.Write([]byte("x")); !errors.Is(err, ErrClosed) {
		t.Errorf("Write after close = %v, want ErrClosed", err)
	}
	if info := srv.r.waitClose(t); info.Code != StatusNormalClosure || !info.ByPeer {
		t.Errorf("server HandleClose = %+v", info)
	}
}

func TestNetConnServerClose(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		code    StatusCode
		wantErr error
	}{
		{StatusNormalClosure, nil},
		{StatusGoingAway, nil},
		{4001, CloseError{Code: 4001, Reason: "custom"}},
	} {
		t.Run(tc.code.String(), func(t *testing.T) {
			t.Parallel()
			s := startServer(t, serverConfig{onStart: func(c *Conn) {
				_ = c.Send(NewFrame(MessageText, []byte("hello, ")))
				_ = c.Send(NewFrame(MessageText, []byte("world")))
				c.Close(tc.code, "custom")
			}})
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			c, _, err := Dial(ctx, s.wsURL(), nil)
			if err != nil {
				t.Fatal(err)
			}
			nc := NetConn(c, MessageText)
			defer nc.Close()
			_ = nc.SetReadDeadline(time.Now().Add(testTimeout))
			got, err := io.ReadAll(nc)
			if string(got) != "hello, world" {
				t.Errorf("read %q", got)
			}
			if tc.wantErr == nil && err != nil {
				t.Errorf("ReadAll error = %v, want nil (io.EOF)", err)
			}
			if tc.wantErr != nil && err != tc.wantErr {
				t.Errorf("ReadAll error = %#v, want %#v", err, tc.wantErr)
			}
			s.next(t).r.waitClose(t)
		})
	}
}

func TestNetConnReadDeadline(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	c, _, err := Dial(ctx, s.wsURL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	nc := NetConn(c, MessageBinary)
	defer nc.Close()
	srv := s.next(t)
	_ = nc.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	if _, err := nc.Read(make([]byte, 8)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read past the deadline = %v, want a deadline error", err)
	}
	// Clearing the deadline makes Read wait for data again.
	_ = nc.SetReadDeadline(time.Time{})
	_ = srv.c.Send(NewFrame(MessageBinary, []byte("later")))
	buf := make([]byte, 8)
	n, err := nc.Read(buf)
	if err != nil || string(buf[:n]) != "later" {
		t.Fatalf("Read = %q, %v", buf[:n], err)
	}
}

// TestDialThroughProxy dials through a minimal HTTP CONNECT proxy.
func TestDialThroughProxy(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverConfig{echo: true})

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		connects atomic.Int32
		targetMu sync.Mutex
		target   string
		wg       sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer conn.Close()
				_ = conn.SetDeadline(time.Now().Add(testTimeout))
				br := bufio.NewReader(conn)
				req, err := http.ReadRequest(br)
				if err != nil {
					return
				}
				if req.Method != http.MethodConnect {
					_, _ = io.WriteString(conn, "HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
					return
				}
				connects.Add(1)
				targetMu.Lock()
				target = req.Host
				targetMu.Unlock()
				up, err := net.DialTimeout("tcp", req.Host, testTimeout)
				if err != nil {
					_, _ = io.WriteString(conn, "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
					return
				}
				defer up.Close()
				_ = up.SetDeadline(time.Now().Add(testTimeout))
				if _, err := io.WriteString(conn, "HTTP/1.1 200 Connection Established\r\n\r\n"); err != nil {
					return
				}
				var pipes sync.WaitGroup
				pipes.Add(1)
				go func() {
					defer pipes.Done()
					_, _ = io.Copy(up, br)
					_ = up.(*net.TCPConn).CloseWrite()
				}()
				_, _ = io.Copy(conn, up)
				_ = conn.(*net.TCPConn).CloseWrite()
				pipes.Wait()
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})

	proxyURL := &url.URL{Scheme: "http", Host: ln.Addr().String()}
	c, rec := dialOur(t, s.wsURL(), &DialOptions{Proxy: http.ProxyURL(proxyURL)})
	srv := s.next(t)
	if err := c.Send(NewFrame(MessageText, []byte("via proxy"))); err != nil {
		t.Fatal(err)
	}
	if m := rec.next(t); string(m.data) != "via proxy" {
		t.Fatalf("echo = %q", m.data)
	}
	if n := connects.Load(); n != 1 {
		t.Errorf("proxy saw %d CONNECTs, want 1", n)
	}
	targetMu.Lock()
	if target != s.addr() {
		t.Errorf("proxy CONNECT target %q, want %q", target, s.addr())
	}
	targetMu.Unlock()
	// The connection arrived from the proxy, not directly.
	if a := c.RemoteAddr().String(); a != ln.Addr().String() {
		t.Errorf("client socket connected to %s, want the proxy %s", a, ln.Addr())
	}

	c.Close(StatusNormalClosure, "")
	if info := rec.waitClose(t); info.Code != StatusNormalClosure || info.Err != nil {
		t.Errorf("client HandleClose = %+v", info)
	}
	if info := srv.r.waitClose(t); info.Code != StatusNormalClosure || !info.ByPeer || info.Err != nil {
		t.Errorf("server HandleClose = %+v", info)
	}
}
