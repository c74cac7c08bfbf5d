package actors_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsactor/wsactor/actors"
	"github.com/wsactor/wsactor/transport"
)

// dialFrom opens a WebSocket to url from the loopback address local
// (127.0.0.2 and up are loopback too on Linux).
func dialFrom(url, local string, header http.Header) (*websocket.Conn, *http.Response, error) {
	d := websocket.Dialer{
		HandshakeTimeout: 10 * time.Second,
		NetDialContext:   (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}).DialContext,
	}
	return d.Dial(url, header)
}

// A flood of 10,000 upgrade attempts from one address, with a forged
// X-Forwarded-For (ignored: the peer is not a trusted proxy), is answered
// with 429 and Retry-After almost entirely, and costs well-behaved clients
// on other addresses nothing: each of them connects.
func TestUpgradeFloodFromOneIP(t *testing.T) {
	h, url, _ := testServer(t, echoProducer(nil), &actors.HandlerOptions{
		UpgradesPerIP:       actors.Rate{PerSecond: 20, Burst: 20},
		MaxConnectionsPerIP: 5,
	})
	httpURL := "http" + strings.TrimPrefix(url, "ws")

	var (
		wg                 sync.WaitGroup
		refused, upgraded  atomic.Int64
		badRetry, otherErr atomic.Int64
	)
	const attempts, workers = 10000, 16
	start := time.Now()
	var next atomic.Int64
	stop := make(chan struct{})
	var held []*websocket.Conn
	var heldMu sync.Mutex
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
				DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.1")}}).DialContext,
			}}
			defer client.CloseIdleConnections()
			for next.Add(1) <= attempts {
				select {
				case <-stop:
					return
				default:
				}
				if next.Load()%500 == 0 { // now and then a real upgrade, to fill the per-IP cap
					c, resp, err := dialFrom(url, "127.0.0.1", http.Header{"X-Forwarded-For": {"127.0.0.77"}})
					if err == nil {
						upgraded.Add(1)
						heldMu.Lock()
						held = append(held, c)
						heldMu.Unlock()
					} else if resp != nil && resp.StatusCode == http.StatusTooManyRequests {
						refused.Add(1)
					}
					continue
				}
				req, _ := http.NewRequest(http.MethodGet, httpURL, nil)
				req.Header.Set("Connection", "Upgrade")
				req.Header.Set("Upgrade", "websocket")
				req.Header.Set("Sec-WebSocket-Version", "13")
				req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
				req.Header.Set("X-Forwarded-For", "127.0.0.99") // forged: must not help
				resp, err := client.Do(req)
				if err != nil {
					otherErr.Add(1)
					continue
				}
				switch resp.StatusCode {
				case http.StatusTooManyRequests:
					refused.Add(1)
					if resp.Header.Get("Retry-After") == "" {
						badRetry.Add(1)
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				case http.StatusSwitchingProtocols:
					upgraded.Add(1)
					resp.Body.Close() // the hijacked connection goes with it
				default:
					otherErr.Add(1)
					resp.Body.Close()
				}
			}
		}()
	}

	// Meanwhile, ten clients from ten other addresses connect and echo.
	for i := range 10 {
		local := fmt.Sprintf("127.0.0.%d", i+2)
		c, resp, err := dialFrom(url, local, nil)
		if err != nil {
			status := 0
			if resp != nil {
				status = resp.StatusCode
			}
			t.Fatalf("client from %s refused during the flood: %v (status %d)", local, err, status)
		}
		_ = c.WriteMessage(websocket.TextMessage, []byte(local))
		if got := readText(t, c); got != local {
			t.Fatalf("echo %q", got)
		}
		c.Close()
	}
	wg.Wait()
	close(stop)
	heldMu.Lock()
	for _, c := range held {
		c.Close()
	}
	heldMu.Unlock()

	t.Logf("flood: %d refused with 429, %d upgraded, %d other errors", refused.Load(), upgraded.Load(), otherErr.Load())
	if badRetry.Load() > 0 {
		t.Errorf("%d refusals without Retry-After", badRetry.Load())
	}
	if refused.Load() < attempts*9/10 {
		t.Errorf("only %d of %d attempts refused", refused.Load(), attempts)
	}
	// The bucket's bound: its burst, plus what it refilled while the flood
	// lasted (+1 for the refill's rounding).
	if n, bound := upgraded.Load(), int64(20+20*time.Since(start).Seconds()+1); n > bound {
		t.Errorf("%d upgrades from the flooding address, the bucket allows %d", n, bound)
	}
	if otherErr.Load() > 0 {
		t.Errorf("%d attempts failed otherwise", otherErr.Load())
	}
	_ = h
}

// MaxConnectionsPerIP counts open connections: the third from one address is
// refused (429, Retry-After), and a slot is free again once one closes.
func TestMaxConnectionsPerIP(t *testing.T) {
	h, url, _ := testServer(t, echoProducer(nil), &actors.HandlerOptions{MaxConnectionsPerIP: 2})
	a, _, err := dialFrom(url, "127.0.0.3", nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := dialFrom(url, "127.0.0.3", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	_, resp, err := dialFrom(url, "127.0.0.3", nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("third from one address: %v %+v, want 429 with Retry-After", err, resp)
	}
	// X-Forwarded-For from a peer that is not a trusted proxy is ignored.
	_, resp, err = dialFrom(url, "127.0.0.3", http.Header{"X-Forwarded-For": {"203.0.113.9"}})
	if err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("forged X-Forwarded-For: %v %+v, want 429 (the header ignored)", err, resp)
	}
	other, _, err := dialFrom(url, "127.0.0.4", nil)
	if err != nil {
		t.Fatalf("another address refused: %v", err)
	}
	defer other.Close()
	a.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, _, err := dialFrom(url, "127.0.0.3", nil)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("slot not freed after a close: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	_ = h
}

// MaxConnectionsPerUser: after Authenticate, a user past the cap gets 429
// with Retry-After, whatever address it comes from; other users are not
// affected; a failed upgrade does not keep the slot.
func TestMaxConnectionsPerUser(t *testing.T) {
	_, url, _ := testServer(t, echoProducer(nil), &actors.HandlerOptions{
		AcceptOptions: transport.AcceptOptions{Authenticate: func(r *http.Request) (any, error) {
			if u := r.URL.Query().Get("user"); u != "" {
				return u, nil
			}
			return nil, errors.New("no user")
		}},
		MaxConnectionsPerUser: 2,
		UserOf:                func(p any) string { s, _ := p.(string); return s },
	})
	var conns []*websocket.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range 2 {
		c, _, err := dialFrom(url+"?user=alice", fmt.Sprintf("127.0.0.%d", 5+i), nil)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	_, resp, err := dialFrom(url+"?user=alice", "127.0.0.9", nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("alice's third: %v %+v, want 429 with Retry-After", err, resp)
	}
	c, _, err := dialFrom(url+"?user=bob", "127.0.0.9", nil)
	if err != nil {
		t.Fatalf("bob refused: %v", err)
	}
	conns = append(conns, c)
	// A refused origin after Authenticate? Origin is checked first; an
	// unauthenticated request takes no slot either.
	if _, resp, _ := dialFrom(url, "127.0.0.9", nil); resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("no user: %+v, want 401", resp)
	}
	conns[0].Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, _, err := dialFrom(url+"?user=alice", "127.0.0.9", nil)
		if err == nil {
			conns = append(conns, c)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("alice's slot not freed after a close: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Behind a trusted proxy the forwarded address is the client: two clients
// behind one proxy have a limit each.
func TestMaxConnectionsPerIPBehindTrustedProxy(t *testing.T) {
	_, url, _ := testServer(t, echoProducer(nil), &actors.HandlerOptions{
		AcceptOptions:       transport.AcceptOptions{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}},
		MaxConnectionsPerIP: 1,
	})
	from := func(client string) (*websocket.Conn, *http.Response, error) {
		return dialFrom(url, "127.0.0.1", http.Header{"X-Forwarded-For": {client}})
	}
	a, _, err := from("198.51.100.1")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, _, err := from("198.51.100.2")
	if err != nil {
		t.Fatalf("a second client behind the proxy refused: %v", err)
	}
	defer b.Close()
	if _, resp, err := from("198.51.100.1"); err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("the first client's second connection: %v %+v, want 429", err, resp)
	}
}
