package transport

import (
	"bufio"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"runtime"
	"strings"
	"testing"
)

// TestKeptRequestRoundTrip: what Conn.Request gives back equals the upgrade
// request in everything the API promises, for a request a browser might
// send (repeated headers, cookies, a query with escapes, an IPv6 host).
func TestKeptRequestRoundTrip(t *testing.T) {
	t.Parallel()
	raw := "GET /chat/r%C3%B6om?room=a%20b&x=1&x=2 HTTP/1.1\r\n" +
		"Host: [::1]:8080\r\n" +
		"Upgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" +
		"Sec-WebSocket-Protocol: a, b\r\nSec-WebSocket-Protocol: c\r\n" +
		"Cookie: session=abc; theme=dark\r\n" +
		"X-Empty: \r\n" +
		"User-Agent: Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0\r\n\r\n"
	r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
	if err != nil {
		t.Fatal(err)
	}
	r.RemoteAddr = "192.0.2.7:51000"
	k := keepRequest(r, nil)
	if k.rare != nil && k.rare.whole != nil {
		t.Fatal("an ordinary request fell back to keeping the whole")
	}
	got := k.get(nil)
	if got.Method != r.Method || got.URL.String() != r.URL.String() || got.Host != r.Host ||
		got.RequestURI != r.RequestURI || got.Proto != r.Proto || got.RemoteAddr != r.RemoteAddr || got.TLS != nil {
		t.Errorf("got %s %s %s host %q uri %q from %q; want %s %s %s host %q uri %q from %q",
			got.Method, got.URL, got.Proto, got.Host, got.RequestURI, got.RemoteAddr,
			r.Method, r.URL, r.Proto, r.Host, r.RequestURI, r.RemoteAddr)
	}
	want := r.Header.Clone()
	for _, h := range []string{"Upgrade", "Connection", "Sec-WebSocket-Key", "Sec-WebSocket-Version"} {
		want.Del(h) // the handshake's own: not kept
	}
	if !reflect.DeepEqual(got.Header, want) {
		t.Errorf("header\n got %v\nwant %v", got.Header, want)
	}
	if got.Header.Get("Sec-WebSocket-Protocol") == "" {
		t.Error("the subprotocol offer was not kept")
	}
	if q := got.URL.Query(); q.Get("room") != "a b" || len(q["x"]) != 2 {
		t.Errorf("query %v", q)
	}
	if c, err := got.Cookie("theme"); err != nil || c.Value != "dark" {
		t.Errorf("cookie theme = %v, %v", c, err)
	}
	if got.Body != http.NoBody || got.Context().Done() != nil {
		t.Error("the kept request has a body or a cancellable context")
	}
	// While the caller holds it, the same request is handed out.
	if again := k.get(nil); again != got {
		t.Error("a second call built a new request while the first was alive")
	}
	runtime.KeepAlive(got)
	// The kept form is a fraction of the parsed request.
	if len(k.head) > len(raw)+16 {
		t.Errorf("head is %d bytes for a %d-byte request", len(k.head), len(raw))
	}
}

// TestKeptRequestFallback: a request whose header a middleware changed into
// something no request line could carry is kept whole, not lost or mangled.
func TestKeptRequestFallback(t *testing.T) {
	t.Parallel()
	r := httptest.NewRequest("GET", "http://example.com/ws?a=1", nil)
	r.Header.Set("X-Bad", "one\r\nX-Injected: two")
	k := keepRequest(r, nil)
	if k.rare == nil || k.rare.whole == nil {
		t.Fatal("a header with a line break was written into head")
	}
	got := k.get(nil)
	if got.Header.Get("X-Bad") != "one\r\nX-Injected: two" || got.Header.Get("X-Injected") != "" || got.URL.Query().Get("a") != "1" {
		t.Errorf("fallback request %v %v", got.URL, got.Header)
	}
	// A request made in a test (no RequestURI, no Proto) is kept too.
	r2, _ := http.NewRequest("GET", "http://example.com/p?q=1", nil)
	if got := keepRequest(r2, nil).get(nil); got.URL.RequestURI() != "/p?q=1" || got.Host != "example.com" {
		t.Errorf("client-made request kept as %v host %q", got.URL, got.Host)
	}
}

// TestKeptRequestRemoteAddr: the request's RemoteAddr is the socket's unless
// a middleware rewrote it (a real-IP middleware), and then it is kept.
func TestKeptRequestRemoteAddr(t *testing.T) {
	t.Parallel()
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	r := httptest.NewRequest("GET", "http://example.com/ws", nil)
	r.RemoteAddr = a.RemoteAddr().String()
	k := keepRequest(r, a)
	if k.rare != nil {
		t.Errorf("kept %q although it is the socket's", k.rare.remoteAddr)
	}
	if got := k.get(a).RemoteAddr; got != a.RemoteAddr().String() {
		t.Errorf("RemoteAddr = %q, want the socket's %q", got, a.RemoteAddr())
	}
	r.RemoteAddr = "203.0.113.9:4000"
	if got := keepRequest(r, a).get(a).RemoteAddr; got != "203.0.113.9:4000" {
		t.Errorf("rewritten RemoteAddr came back as %q", got)
	}
}
