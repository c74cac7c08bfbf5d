package transport

import (
	"bufio"
	"crypto/tls"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"weak"
)

// keptRequest is what a server connection keeps of its upgrade request for
// [Conn.Request]: the request line and headers in their HTTP/1.1 form, one
// string, plus the remote address and TLS state. Not the *http.Request: with
// its header map, URL and context it costs about five times as much, for
// every connection, for as long as it lives, and most applications look at it
// once, when the connection opens. The request is parsed again from head when
// asked for; a weak pointer hands out the same one while it is alive.
type keptRequest struct {
	head  string // "GET /uri HTTP/1.1\r\nHost: h\r\nName: value\r\n...\r\n"
	tls   *tls.ConnectionState
	rare  *rareRequest // nil for almost every connection
	built atomic.Pointer[weak.Pointer[http.Request]]
}

// rareRequest is what few connections keep of their request.
type rareRequest struct {
	// remoteAddr is the request's RemoteAddr when it is not the socket's
	// (a middleware rewrote it); empty means the socket's.
	remoteAddr string
	// whole is the request itself when head cannot represent it (a
	// header changed by a middleware into something no request could
	// carry): kept as it was, as a fallback.
	whole *http.Request
}

// keepRequest returns what a connection on socket nc keeps of r.
func keepRequest(r *http.Request, nc net.Conn) *keptRequest {
	k := &keptRequest{tls: r.TLS}
	if nc == nil || r.RemoteAddr != nc.RemoteAddr().String() {
		k.rare = &rareRequest{remoteAddr: r.RemoteAddr}
	}
	uri := r.RequestURI
	if uri == "" {
		uri = r.URL.RequestURI()
	}
	proto := r.Proto
	if proto == "" {
		proto = "HTTP/1.1"
	}
	n := len(r.Method) + len(uri) + len(proto) + len(r.Host) + 16
	for name, values := range r.Header {
		if handshakeOnly(name) {
			continue
		}
		for _, v := range values {
			n += len(name) + len(v) + 4
		}
	}
	var b strings.Builder
	b.Grow(n)
	line := func(parts ...string) bool {
		for _, p := range parts {
			if strings.ContainsAny(p, "\r\n") {
				return false
			}
			b.WriteString(p)
		}
		b.WriteString("\r\n")
		return true
	}
	ok := line(r.Method, " ", uri, " ", proto)
	if r.Host != "" {
		ok = ok && line("Host: ", r.Host)
	}
	for name, values := range r.Header {
		if handshakeOnly(name) {
			continue
		}
		for _, v := range values {
			ok = ok && line(name, ": ", v)
		}
	}
	b.WriteString("\r\n")
	if !ok {
		k.rare = &rareRequest{whole: wholeRequest(r)}
		return k
	}
	k.head = b.String()
	return k
}

// handshakeOnly reports whether header name served the upgrade and nothing
// after it (the connection does not keep it): Upgrade, Connection,
// Sec-WebSocket-Key and Sec-WebSocket-Version. A connection's subprotocol
// and extensions are kept (the offers as headers, the outcome as
// Conn.Subprotocol and Conn.Compressed).
func handshakeOnly(name string) bool {
	switch name {
	case "Upgrade", "Connection", "Sec-Websocket-Key", "Sec-Websocket-Version":
		return true
	}
	return false
}

// get returns the request of the connection on socket nc: the one handed
// out last if it is still alive, else a new one parsed from head.
func (k *keptRequest) get(nc net.Conn) *http.Request {
	if k.rare != nil && k.rare.whole != nil {
		return k.rare.whole
	}
	if w := k.built.Load(); w != nil {
		if r := w.Value(); r != nil {
			return r
		}
	}
	r, err := http.ReadRequest(bufio.NewReaderSize(strings.NewReader(k.head), len(k.head)))
	if err != nil {
		// head was written from a request the server parsed with the same
		// parser, and checked for line breaks: this does not happen. Keep
		// what the API promises anyway: a request, if a bare one.
		r = &http.Request{Method: http.MethodGet, Header: http.Header{}}
	}
	if k.rare != nil {
		r.RemoteAddr = k.rare.remoteAddr
	}
	if r.RemoteAddr == "" && nc != nil {
		r.RemoteAddr = nc.RemoteAddr().String()
	}
	r.TLS = k.tls
	r.Body = http.NoBody
	r.ContentLength = 0
	w := weak.Make(r)
	k.built.Store(&w)
	return r
}

// wholeRequest is the request without its context (done after the upgrade),
// body or the server's per-request state.
func wholeRequest(r *http.Request) *http.Request {
	return &http.Request{
		Method:     r.Method,
		URL:        r.URL,
		Proto:      r.Proto,
		ProtoMajor: r.ProtoMajor,
		ProtoMinor: r.ProtoMinor,
		Header:     r.Header,
		Host:       r.Host,
		RemoteAddr: r.RemoteAddr,
		RequestURI: r.RequestURI,
		TLS:        r.TLS,
		Body:       http.NoBody,
	}
}
