package transport

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"time"

	"golang.org/x/net/proxy"
)

// DialOptions configures a client connection. A nil *DialOptions is valid and
// means all defaults. Every field is set directly: DialOptions{ReadLimit:
// 64 << 10}.
type DialOptions struct {
	// Header is sent with the handshake request (e.g. Authorization, Cookie).
	// A Host entry replaces the URL's host in the Host header. The fields
	// the handshake sets itself are ignored here: Upgrade, Connection and
	// Sec-WebSocket-Key, -Version, -Extensions and -Protocol (use
	// Subprotocols and Compression).
	Header http.Header
	// Origin, if set, is sent as the Origin header.
	Origin string
	// Subprotocols are offered in order of preference; each must be an HTTP
	// token (RFC 6455 section 4.1). A server that picks one not offered
	// fails the handshake.
	Subprotocols []string
	// HandshakeTimeout bounds the whole handshake, on top of ctx:
	// connecting, the proxy's CONNECT, TLS, writing the request and reading
	// the response. Zero means 10s.
	HandshakeTimeout time.Duration
	// TLSConfig is used for wss:// URLs; nil means a zero tls.Config. An
	// empty ServerName is taken from the URL's host.
	TLSConfig *tls.Config
	// Proxy returns the proxy for a request (whose URL has the http or https
	// scheme for ws:// or wss://). Nil means the environment's
	// HTTP_PROXY/HTTPS_PROXY/NO_PROXY (http.ProxyFromEnvironment); use
	// http.ProxyURL for an explicit proxy, or [NoProxy] for none. An
	// http:// proxy tunnels the connection with CONNECT, with Basic credentials from the proxy URL's user info
	// (http://user:password@proxy:3128); socks5:// and socks5h:// proxies
	// with SOCKS5, and a username and password from the URL's user info
	// (the name is resolved by the proxy either way). Any other proxy
	// scheme (https://) fails the dial.
	Proxy func(*http.Request) (*url.URL, error)
	// NetDialContext, if set, opens the TCP connection (to the proxy, if
	// there is one).
	NetDialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// ReadBufferSize is the read buffer size. Zero means 4 KiB.
	ReadBufferSize int

	// The connection's settings, as in [AcceptOptions] (where each is
	// documented); only Compression's zero value differs: it offers
	// permessage-deflate, which CompressionDisabled turns off.
	ReadLimit            int64
	MessageFrames        int
	MessageTimeout       time.Duration
	WriteTimeout         time.Duration
	CloseTimeout         time.Duration
	QueueMessages        int
	QueueBytes           int
	Overflow             OverflowPolicy
	Compression          CompressionMode
	CompressionThreshold int
	CompressionLevel     int
	OnPong               func(rtt time.Duration)
	IdleReader           time.Duration
}

// conn returns the connection fields of o.
func (o *DialOptions) conn() connConfig {
	return connConfig{
		ReadLimit:      o.ReadLimit,
		MessageFrames:  o.MessageFrames,
		MessageTimeout: o.MessageTimeout,
		WriteTimeout:   o.WriteTimeout,
		CloseTimeout:   o.CloseTimeout,
		Queue:          queueConfig{Messages: o.QueueMessages, Bytes: o.QueueBytes, Policy: o.Overflow},
		Compression:    compressionConfig{Mode: o.Compression, Threshold: o.CompressionThreshold, Level: o.CompressionLevel},
		OnPong:         o.OnPong,
		IdleReader:     o.IdleReader,
	}
}

// Dialer opens client connections with one [DialOptions], checked and with
// its defaults applied once, by [NewDialer]. It is safe for concurrent use;
// a client that dials again (to reconnect) keeps one.
type Dialer struct {
	o    DialOptions // defaults applied
	conn connConfig
}

// NewDialer checks opts and applies its defaults. It returns an error for a
// value no dial could use: an invalid Overflow, Compression or
// CompressionLevel, or a subprotocol that is not an HTTP token. opts is
// copied; changing it afterwards does not change the Dialer.
func NewDialer(opts *DialOptions) (*Dialer, error) {
	var o DialOptions
	if opts != nil {
		o = *opts
	}
	conn, err := o.conn().prepare()
	if err != nil {
		return nil, err
	}
	for _, sp := range o.Subprotocols {
		if !isToken(sp) {
			return nil, fmt.Errorf("transport: dial: subprotocol %q is not an HTTP token", sp)
		}
	}
	o.Subprotocols = slices.Clone(o.Subprotocols)
	o.Header = o.Header.Clone()
	if o.HandshakeTimeout <= 0 {
		o.HandshakeTimeout = defaultHandshake
	}
	if o.ReadBufferSize <= 0 {
		o.ReadBufferSize = defaultClientReadBuffer
	}
	conn.readBuffer = o.ReadBufferSize
	conn.writers = newWriterPool()
	return &Dialer{o: o, conn: conn}, nil
}

// defaultClientReadBuffer is DialOptions.ReadBufferSize's default.
const defaultClientReadBuffer = 4096

// maxRefusalBody is how much of a refused handshake's body Dial keeps.
const maxRefusalBody = 1024

// NoProxy is a DialOptions.Proxy that never uses a proxy.
func NoProxy(*http.Request) (*url.URL, error) { return nil, nil }

// Dial opens a client connection to rawURL (ws:// or wss://; http:// and
// https:// are accepted as aliases). Compression is offered unless
// opts.Compression is CompressionDisabled; [Conn.Compressed] says
// whether the server accepted it. ctx and opts.HandshakeTimeout bound the
// whole handshake; ctx does not bound the connection after Dial returns.
//
// On a refused handshake (any status but 101, or a 101 that breaks RFC 6455
// or RFC 7692) the error wraps [ErrBadHandshake] and the response is returned
// for inspection, with up to 1 KiB of its body readable. Bytes the server
// sent right behind its 101 are kept for the connection to read.
//
// The returned Conn is not yet reading: call [Conn.Start].
//
// Dial checks opts and applies its defaults on every call (an invalid opts
// is an error, see [NewDialer]); a client that dials repeatedly with the
// same options builds one [Dialer] instead.
func Dial(ctx context.Context, rawURL string, opts *DialOptions) (*Conn, *http.Response, error) {
	d, err := NewDialer(opts)
	if err != nil {
		return nil, nil, err
	}
	d.conn.writers = nil // one connection: no pool to share (writers.go)
	return d.Dial(ctx, rawURL)
}

// Close lets the Dialer's idle writer goroutines go, as [Acceptor.Close]
// does. Connections it made keep working; so does Dial.
func (d *Dialer) Close() { d.conn.writers.stop() }

// Dial connects to rawURL as the package's [Dial] does, with d's options.
func (d *Dialer) Dial(ctx context.Context, rawURL string) (*Conn, *http.Response, error) {
	o := &d.o
	u, err := parseDialURL(rawURL)
	if err != nil {
		return nil, nil, fmt.Errorf("transport: dial: %w", err)
	}
	where := u.String()
	ctx, cancel := context.WithTimeoutCause(ctx, o.HandshakeTimeout,
		fmt.Errorf("handshake timeout (%v): %w", o.HandshakeTimeout, context.DeadlineExceeded))
	defer cancel()

	offerDeflate := o.Compression != CompressionDisabled
	key := newHandshakeKey()
	req := handshakeRequest(u, key, o, offerDeflate)
	chooseProxy := o.Proxy
	if chooseProxy == nil {
		chooseProxy = http.ProxyFromEnvironment
	}
	proxyURL, err := chooseProxy(req)
	if err != nil {
		return nil, nil, fmt.Errorf("transport: dial %s: choosing a proxy: %w", where, err)
	}
	addr := hostPort(u)
	dialAddr := addr
	netDial := o.NetDialContext
	if netDial == nil {
		netDial = (&net.Dialer{}).DialContext
	}
	if proxyURL != nil {
		switch proxyURL.Scheme {
		case "http":
			dialAddr = hostPort(proxyURL)
		case "socks5", "socks5h":
			// The SOCKS5 handshake (RFC 1928, with RFC 1929 credentials
			// from the URL) is golang.org/x/net/proxy's; what comes out
			// is a tunnel to addr, used as a direct connection.
			pd, err := proxy.FromURL(proxyURL, ctxDialer(netDial))
			if err != nil {
				return nil, nil, fmt.Errorf("transport: dial %s: proxy %s: %w", where, proxyURL.Redacted(), err)
			}
			netDial = pd.(proxy.ContextDialer).DialContext
			proxyURL = nil
		default:
			return nil, nil, fmt.Errorf("transport: dial %s: proxy %s: scheme %q is not supported, only http://, socks5:// and socks5h:// proxies are",
				where, proxyURL.Redacted(), proxyURL.Scheme)
		}
	}
	raw, err := netDial(ctx, "tcp", dialAddr)
	if err != nil {
		return nil, nil, fmt.Errorf("transport: dial %s: %w", where, ctxCause(ctx, err))
	}
	// ctx bounds every read and write of the handshake through the socket's
	// deadline.
	stop := context.AfterFunc(ctx, func() { _ = raw.SetDeadline(time.Unix(1, 0)) })
	nc, br, resp, err := openHandshake(ctx, raw, req, proxyURL, addr, o)
	if !stop() && err == nil {
		err = context.Cause(ctx) // ended as the handshake did; the deadline may be set
	}
	if err == nil {
		err = raw.SetDeadline(time.Time{})
	}
	if err != nil {
		raw.Close()
		return nil, resp, fmt.Errorf("transport: dial %s: %w", where, ctxCause(ctx, err))
	}
	subprotocol, compress, takeover, err := checkHandshakeResponse(resp, key, o.Subprotocols, offerDeflate)
	if err != nil {
		raw.Close()
		return nil, resp, fmt.Errorf("%w from %s: %w", ErrBadHandshake, where, err)
	}
	c := newConn(nc, br, false, subprotocol, compress, &d.conn)
	if takeover {
		c.client.window = make([]byte, 0, windowSize)
	}
	c.client.response = resp
	c.clientIP = parseAddr(nc.RemoteAddr().String())
	return c, resp, nil
}

// ctxDialer adapts a DialContext function to golang.org/x/net/proxy's
// Dialer and ContextDialer, so a SOCKS5 proxy is reached through
// DialOptions.NetDialContext under the handshake's ctx.
type ctxDialer func(ctx context.Context, network, addr string) (net.Conn, error)

func (d ctxDialer) Dial(network, addr string) (net.Conn, error) {
	return d(context.Background(), network, addr)
}

func (d ctxDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	return d(ctx, network, addr)
}

// ctxCause returns why ctx ended, if it did, or else err: a handshake cut
// short by ctx fails with an I/O error that says less.
func ctxCause(ctx context.Context, err error) error {
	if cause := context.Cause(ctx); cause != nil {
		return cause
	}
	return err
}

// hostPort returns u's host and port, the port defaulting to the scheme's.
func hostPort(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "wss" || u.Scheme == "https" {
			port = "443"
		}
	}
	return net.JoinHostPort(u.Hostname(), port)
}

// openHandshake runs the client's side of the handshake on raw, which is
// connected to the proxy (if proxyURL is not nil) or to the server at addr:
// the proxy's CONNECT, TLS for an https request, the request, and the
// response's head. It returns the connection to use (raw, or TLS over it),
// the reader that holds whatever followed the response's head, and the
// response; for a status other than 101, up to maxRefusalBody bytes of the
// body have been read and stay readable from resp.Body.
func openHandshake(ctx context.Context, raw net.Conn, req *http.Request, proxyURL *url.URL, addr string, o *DialOptions) (net.Conn, *bufio.Reader, *http.Response, error) {
	if proxyURL != nil {
		if err := proxyConnect(raw, proxyURL, addr); err != nil {
			return nil, nil, nil, err
		}
	}
	nc := raw
	if req.URL.Scheme == "https" {
		cfg := &tls.Config{}
		if o.TLSConfig != nil {
			cfg = o.TLSConfig.Clone()
		}
		if cfg.ServerName == "" {
			cfg.ServerName = req.URL.Hostname()
		}
		tc := tls.Client(raw, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			return nil, nil, nil, fmt.Errorf("TLS handshake: %w", err)
		}
		if p := tc.ConnectionState().NegotiatedProtocol; p != "" && p != "http/1.1" {
			return nil, nil, nil, fmt.Errorf("TLS negotiated protocol %q, not http/1.1", p)
		}
		nc = tc
	}
	if err := req.Write(nc); err != nil {
		return nil, nil, nil, fmt.Errorf("writing the handshake request: %w", err)
	}
	br := bufio.NewReaderSize(nc, o.ReadBufferSize)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("reading the handshake response: %w", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, maxRefusalBody))
		resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(body))
	}
	return nc, br, resp, nil
}

// proxyConnect asks the HTTP proxy at the other end of nc for a tunnel to
// addr, with Basic credentials from proxyURL's user info.
func proxyConnect(nc net.Conn, proxyURL *url.URL, addr string) error {
	req := &http.Request{
		Method: http.MethodConnect,
		URL:    &url.URL{Opaque: addr},
		Host:   addr,
		Header: http.Header{},
	}
	if u := proxyURL.User; u != nil {
		password, _ := u.Password()
		req.Header.Set("Proxy-Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(u.Username()+":"+password)))
	}
	where := proxyURL.Redacted()
	if err := req.Write(nc); err != nil {
		return fmt.Errorf("proxy %s: writing CONNECT: %w", where, err)
	}
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		return fmt.Errorf("proxy %s: reading the CONNECT response: %w", where, err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("proxy %s refused CONNECT to %s: %s", where, addr, resp.Status)
	}
	// The server speaks only after our request, so nothing may follow the
	// proxy's answer yet; bytes that did would be lost with br.
	if n := br.Buffered(); n > 0 {
		return fmt.Errorf("proxy %s sent %d bytes after its CONNECT response", where, n)
	}
	return nil
}
