package transport

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gorilla/websocket"
)

// DialOptions configures a client connection. A nil *DialOptions is valid and
// means all defaults.
type DialOptions struct {
	ConnOptions

	// Header is sent with the handshake request (e.g. Authorization, Cookie).
	Header http.Header
	// Origin, if set, is sent as the Origin header.
	Origin string
	// Subprotocols are offered in order of preference.
	Subprotocols []string
	// HandshakeTimeout bounds connecting and the handshake, on top of ctx.
	// Zero means 10s.
	HandshakeTimeout time.Duration
	// TLSConfig is used for wss:// URLs.
	TLSConfig *tls.Config
	// Proxy returns the proxy for a request. Nil means the environment's
	// HTTP_PROXY/HTTPS_PROXY/NO_PROXY (http.ProxyFromEnvironment); use
	// http.ProxyURL for an explicit proxy, or [NoProxy] for none. HTTP proxies
	// are used with CONNECT.
	Proxy func(*http.Request) (*url.URL, error)
	// NetDialContext, if set, opens the TCP connection.
	NetDialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// ReadBufferSize is the read buffer size. Zero means 4 KiB.
	ReadBufferSize int
}

// NoProxy is a DialOptions.Proxy that never uses a proxy.
func NoProxy(*http.Request) (*url.URL, error) { return nil, nil }

// Dial opens a client connection to rawURL (ws:// or wss://; http:// and
// https:// are accepted as aliases). Compression is negotiated unless
// opts.Compression.Mode is CompressionDisabled. On a refused handshake the
// error wraps websocket.ErrBadHandshake and the response is returned for
// inspection.
//
// The returned Conn is not yet reading: call [Conn.Start].
func Dial(ctx context.Context, rawURL string, opts *DialOptions) (*Conn, *http.Response, error) {
	var o DialOptions
	if opts != nil {
		o = *opts
	}
	o.ConnOptions = o.ConnOptions.withDefaults()
	if o.HandshakeTimeout <= 0 {
		o.HandshakeTimeout = defaultHandshake
	}
	switch {
	case strings.HasPrefix(rawURL, "http://"):
		rawURL = "ws://" + rawURL[len("http://"):]
	case strings.HasPrefix(rawURL, "https://"):
		rawURL = "wss://" + rawURL[len("https://"):]
	}
	proxy := o.Proxy
	if proxy == nil {
		proxy = http.ProxyFromEnvironment
	}
	d := websocket.Dialer{
		NetDialContext:    o.NetDialContext,
		Proxy:             proxy,
		TLSClientConfig:   o.TLSConfig,
		HandshakeTimeout:  o.HandshakeTimeout,
		ReadBufferSize:    o.ReadBufferSize,
		WriteBufferPool:   &writePool,
		Subprotocols:      o.Subprotocols,
		EnableCompression: o.Compression.Mode != CompressionDisabled,
	}
	h := o.Header.Clone()
	if o.Origin != "" {
		if h == nil {
			h = http.Header{}
		}
		h.Set("Origin", o.Origin)
	}
	ws, resp, err := d.DialContext(ctx, rawURL, h)
	if err != nil {
		return nil, resp, fmt.Errorf("transport: dial %s: %w", rawURL, err)
	}
	// gorilla checks the accept key and the deflate parameters, but not
	// that the server chose only what was offered (RFC 6455 section 4.1).
	compress := deflateNegotiated(ws)
	if err := checkServerChoice(resp.Header, o.Subprotocols, d.EnableCompression, compress); err != nil {
		_ = ws.NetConn().Close()
		return nil, resp, fmt.Errorf("transport: dial %s: %w: %v", rawURL, websocket.ErrBadHandshake, err)
	}
	c := newConn(ws, false, compress, o.ConnOptions)
	c.response = resp
	c.clientIP = parseAddr(ws.RemoteAddr().String())
	return c, resp, nil
}

// checkServerChoice fails a handshake whose response picks a subprotocol or
// an extension the client did not offer, or whose extensions gorilla read
// differently from ParseExtensions (deflate is what gorilla enabled).
func checkServerChoice(h http.Header, subprotocols []string, offeredDeflate, deflate bool) error {
	if sp := h.Get("Sec-WebSocket-Protocol"); sp != "" && !slices.Contains(subprotocols, sp) {
		return fmt.Errorf("server chose subprotocol %q, which was not offered", sp)
	}
	pmd := false
	for _, e := range ParseExtensions(h) {
		if e.Name != "permessage-deflate" || !offeredDeflate {
			return fmt.Errorf("server answered extension %q, which was not offered", e.Name)
		}
		pmd = true
	}
	if pmd != deflate {
		return fmt.Errorf("malformed Sec-WebSocket-Extensions %q", h.Values("Sec-WebSocket-Extensions"))
	}
	return nil
}
