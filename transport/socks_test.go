package transport

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"testing"
)

// socksProxy is a minimal SOCKS5 server (RFC 1928, username/password of RFC
// 1929 when user is set) for one test: it records what each client asked for
// and tunnels to it.
type socksProxy struct {
	ln         net.Listener
	user, pass string
	asked      chan string // "user:pass@host:port" per CONNECT
}

func startSocksProxy(t *testing.T, user, pass string) *socksProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &socksProxy{ln: ln, user: user, pass: pass, asked: make(chan string, 8)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.serve(c)
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return p
}

func (p *socksProxy) serve(c net.Conn) {
	defer c.Close()
	var b [2]byte
	if _, err := io.ReadFull(c, b[:]); err != nil || b[0] != 5 {
		return
	}
	methods := make([]byte, b[1])
	if _, err := io.ReadFull(c, methods); err != nil {
		return
	}
	cred := ""
	if p.user == "" {
		_, _ = c.Write([]byte{5, 0})
	} else {
		_, _ = c.Write([]byte{5, 2})
		var v [2]byte
		if _, err := io.ReadFull(c, v[:]); err != nil {
			return
		}
		u := make([]byte, v[1])
		io.ReadFull(c, u)
		var pl [1]byte
		io.ReadFull(c, pl[:])
		pw := make([]byte, pl[0])
		io.ReadFull(c, pw)
		if string(u) != p.user || string(pw) != p.pass {
			_, _ = c.Write([]byte{1, 1})
			return
		}
		_, _ = c.Write([]byte{1, 0})
		cred = string(u) + ":" + string(pw) + "@"
	}
	var req [4]byte
	if _, err := io.ReadFull(c, req[:]); err != nil || req[1] != 1 {
		return
	}
	var host string
	switch req[3] {
	case 1:
		var a [4]byte
		io.ReadFull(c, a[:])
		host = net.IP(a[:]).String()
	case 3:
		var l [1]byte
		io.ReadFull(c, l[:])
		h := make([]byte, l[0])
		io.ReadFull(c, h)
		host = string(h)
	default:
		return
	}
	var pb [2]byte
	io.ReadFull(c, pb[:])
	target := net.JoinHostPort(host, strconv.Itoa(int(binary.BigEndian.Uint16(pb[:]))))
	p.asked <- cred + target
	up, err := net.Dial("tcp", target)
	if err != nil {
		_, _ = c.Write([]byte{5, 5, 0, 1, 0, 0, 0, 0, 0, 0})
		return
	}
	defer up.Close()
	_, _ = c.Write([]byte{5, 0, 0, 1, 0, 0, 0, 0, 0, 0})
	go func() { _, _ = io.Copy(up, c); up.Close() }()
	_, _ = io.Copy(c, up)
}

// TestDialThroughSOCKS5: socks5:// and socks5h:// proxies (with and without
// credentials from the URL) tunnel the handshake and the messages; a wrong
// password fails the dial.
func TestDialThroughSOCKS5(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverConfig{echo: true})
	for _, tc := range []struct {
		name, scheme, user, pass string
		wrongPass                bool
	}{
		{"socks5", "socks5", "", "", false},
		{"socks5h with credentials", "socks5h", "alice", "s3cret", false},
		{"wrong password", "socks5", "alice", "s3cret", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := startSocksProxy(t, tc.user, tc.pass)
			pu := &url.URL{Scheme: tc.scheme, Host: p.ln.Addr().String()}
			if tc.user != "" {
				pass := tc.pass
				if tc.wrongPass {
					pass = "nope"
				}
				pu.User = url.UserPassword(tc.user, pass)
			}
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			c, _, err := Dial(ctx, s.wsURL(), &DialOptions{Proxy: http.ProxyURL(pu)})
			if tc.wrongPass {
				if err == nil {
					c.Terminate(nil)
					t.Fatal("dial through the proxy with a wrong password succeeded")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			rec := newRecorder(false)
			c.Start(rec)
			if err := c.Send(NewFrame(MessageText, []byte("through socks"))); err != nil {
				t.Fatal(err)
			}
			if m := rec.next(t); string(m.data) != "through socks" {
				t.Fatalf("echo %q", m.data)
			}
			want := s.addr()
			if tc.user != "" {
				want = tc.user + ":" + tc.pass + "@" + want
			}
			if got := <-p.asked; got != want {
				t.Errorf("proxy was asked for %q, want %q", got, want)
			}
			s.next(t)
			c.Close(StatusNormalClosure, "")
			waitDone(t, c)
		})
	}
}
