package transport

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"path"
	"slices"
	"strings"
	"time"
)

// AcceptOptions configures the server side of the handshake and the
// connections it opens. A nil *AcceptOptions is valid and means all
// defaults. Every field is set directly: AcceptOptions{ReadLimit: 64 << 10}.
//
// The connection fields (ReadLimit to CompressionLevel) mean the same in
// [DialOptions], and in the actors package's HandlerOptions and DialOptions,
// which embed these two types.
type AcceptOptions struct {
	// Authenticate runs before the upgrade with the request and returns the
	// principal the connection acts for (see [Conn.Principal]). An error
	// refuses the upgrade: 401 Unauthorized, or the status of an *HTTPError.
	// Nil accepts everyone.
	Authenticate func(r *http.Request) (principal any, err error)

	// OriginPatterns lists the hosts, besides the request's own host, that
	// browsers may connect from. Patterns use path.Match syntax against the
	// Origin's host (with port, if any), e.g. "example.com" or "*.example.com";
	// "*" allows every origin. Empty means same host only. Requests without an
	// Origin header (non-browser clients) are always allowed. A refused origin
	// answers 403. A malformed pattern is an error of [NewAcceptor].
	OriginPatterns []string

	// Subprotocols lists the subprotocols the server speaks. The first one the
	// client offers (in the client's order, from every
	// Sec-WebSocket-Protocol header) that is in this list is chosen.
	// With none in common, the upgrade proceeds without a subprotocol, as
	// RFC 6455 allows; check [Conn.Subprotocol] to refuse such clients.
	Subprotocols []string

	// HandshakeTimeout bounds writing the 101 response. Zero means 10s.
	// Reading the request happens before Accept is called, so the
	// http.Server bounds it with its ReadHeaderTimeout, which [NewServer]
	// sets to the same 10s.
	HandshakeTimeout time.Duration

	// ReadBufferSize is the size of the per-connection read buffer.
	// Zero means 1 KiB. The HTTP server's 4 KiB buffer is not kept: every
	// connection holds its read buffer for its whole life, and an idle one
	// needs little (this saves about 3.8 KB of RSS per idle connection; see
	// docs/performance.md). A larger buffer takes bursts of small inbound
	// messages with fewer read calls. The one exception is a client that
	// sent frames right behind its request, before the 101: the server's
	// buffer holds them, so the connection keeps reading through it.
	ReadBufferSize int

	// TrustedProxies lists the networks whose X-Forwarded-For is believed
	// (see [ClientIP]). Empty means the header is ignored.
	TrustedProxies []netip.Prefix

	// ReadLimit is the largest message accepted from the peer, in bytes,
	// after decompression. A larger message closes the connection with
	// StatusMessageTooBig. Zero means 1 MiB; a negative value means no limit.
	ReadLimit int64

	// MessageFrames is the most frames one message may take to arrive,
	// counting the control frames the peer sends while it is under way; a
	// message with more closes the connection with StatusMessageTooBig
	// (ErrTooManyFrames). It bounds the work of assembling one message from
	// tiny or empty fragments, which ReadLimit alone does not. Zero means
	// ReadLimit/16 (65,536 for the default 1 MiB), at least 64, or 1<<20
	// when there is no read limit.
	MessageFrames int

	// MessageTimeout is how long one message may take from its first frame
	// to its last; a slower one closes the connection with
	// StatusPolicyViolation (ErrMessageTimeout). It is checked whenever
	// bytes arrive, so a peer that starts a message and then trickles
	// fragments, pings or payload bytes cannot hold the connection open;
	// a peer that goes silent instead is the heartbeat's to end. Zero
	// means 60s.
	MessageTimeout time.Duration

	// WriteTimeout bounds each write to the socket; a write that takes longer
	// closes the connection. Zero means 10s.
	WriteTimeout time.Duration

	// CloseTimeout is how long to wait for the peer's close frame after
	// sending ours (and for the TCP connection to end after the closing
	// handshake). Zero means 5s.
	CloseTimeout time.Duration

	// QueueMessages is the most data messages queued for writing. Zero
	// means 1024.
	QueueMessages int

	// QueueBytes is the most payload bytes queued for writing (a single
	// message larger than QueueBytes is still accepted into an empty queue).
	// Zero means 4 MiB.
	QueueBytes int

	// Overflow is what a full outbound queue does with one more data
	// message. The zero value is OverflowDisconnect.
	Overflow OverflowPolicy

	// Compression selects permessage-deflate negotiation. The zero value,
	// CompressionDefault, is off for servers and on for clients.
	//
	// Only the "no context takeover" variant is negotiated: every message is
	// compressed on its own, which costs some ratio but makes one compressed
	// frame valid for every recipient of a broadcast and keeps no
	// compressor (about 1 MB each) per connection.
	Compression CompressionMode

	// CompressionThreshold is the smallest payload, in bytes, that is
	// compressed; smaller messages go out uncompressed. Zero means 1024 (as
	// ws); a negative value compresses every non-empty message.
	CompressionThreshold int

	// CompressionLevel is the compress/flate level, 1 (flate.BestSpeed) to 9
	// (flate.BestCompression), or -2 (flate.HuffmanOnly); another value is
	// an error of [NewAcceptor] or [NewDialer]. Zero means flate.BestSpeed.
	// A [Frame] keeps its compressed bytes per level, so a broadcast to
	// connections of one level is compressed once, and each connection
	// writes the level it was given.
	CompressionLevel int

	// OnPong, if set, is called by the connection's reader with the
	// round-trip time of each pong that answers a ping of ours (Conn.Ping,
	// or a heartbeat's), as Conn.RTT then reports it. It runs on the reader
	// goroutine: keep it short (actors.Handler records it in its RTT
	// histogram this way).
	OnPong func(rtt time.Duration)

	// IdleReader is how long the connection's reader waits for the peer's
	// next message before it parks (between IdleReader/2 and IdleReader
	// after the last message: a busy reader renews its deadline only when
	// half of it is left): its goroutine ends and its read buffer
	// is let go, and the socket waits in a poller shared by the
	// process (epoll) until bytes arrive, when a new reader starts. An idle
	// connection then holds no goroutine and no buffer (docs/performance.md
	// has the memory per connection). Only plain sockets on Linux park; TLS
	// and in-memory connections, and other systems, keep their reader. Zero
	// means 1s; a negative value never parks.
	IdleReader time.Duration

	// DisableDirectWrites makes every send go through the connection's
	// writer goroutine. By default (Linux, plain sockets) a Send without a
	// callback that finds nothing queued and nothing being written writes its
	// frame itself, with one non-blocking system call, and hands only what
	// the socket did not take to the writer; the sender still never waits.
	// The environment variable WSACTOR_DIRECT_WRITES=off sets this default,
	// so that a test suite can run on either path.
	DisableDirectWrites bool
}

// conn returns the connection fields of o.
func (o *AcceptOptions) conn() connConfig {
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
		directOff:      o.DisableDirectWrites || directWritesOffByEnv,
	}
}

// Acceptor upgrades requests with one [AcceptOptions], checked and with its
// defaults applied once, by [NewAcceptor]. It is safe for concurrent use;
// keep one per endpoint rather than calling [Accept] per request.
type Acceptor struct {
	o    AcceptOptions // defaults applied
	conn connConfig
}

// NewAcceptor checks opts and applies its defaults. It returns an error for
// a value no upgrade could use: an invalid Overflow, Compression or
// CompressionLevel, or a malformed OriginPatterns entry. opts is copied;
// changing it afterwards does not change the Acceptor.
func NewAcceptor(opts *AcceptOptions) (*Acceptor, error) {
	var o AcceptOptions
	if opts != nil {
		o = *opts
	}
	conn, err := o.conn().prepare()
	if err != nil {
		return nil, err
	}
	for _, p := range o.OriginPatterns {
		if _, err := path.Match(p, ""); err != nil {
			return nil, fmt.Errorf("transport: origin pattern %q: %w", p, err)
		}
	}
	o.OriginPatterns = slices.Clone(o.OriginPatterns)
	o.Subprotocols = slices.Clone(o.Subprotocols)
	o.TrustedProxies = slices.Clone(o.TrustedProxies)
	if o.HandshakeTimeout <= 0 {
		o.HandshakeTimeout = defaultHandshake
	}
	if o.ReadBufferSize <= 0 {
		o.ReadBufferSize = defaultServerReadBuffer
	}
	conn.readBuffer = o.ReadBufferSize
	conn.writers = newWriterPool()
	return &Acceptor{o: o, conn: conn}, nil
}

// defaultServerReadBuffer is AcceptOptions.ReadBufferSize's default.
const defaultServerReadBuffer = 1024

// Accept validates the upgrade request (see below), takes over the
// connection and answers 101 Switching Protocols. On failure it has already
// answered with an HTTP error (unless the connection could not be taken
// over); the returned error says why:
//
//   - not an upgrade request (no "Connection: upgrade" and
//     "Upgrade: websocket"): 426 with Upgrade: websocket, [ErrNotWebSocket];
//   - an upgrade request that breaks RFC 6455: a 4xx, [ErrBadHandshake]. A
//     method other than GET gets 405; HTTP/1.0, a malformed
//     Sec-WebSocket-Key or a body get 400; a missing Sec-WebSocket-Version
//     gets 400 and one other than 13 gets 426, both with
//     Sec-WebSocket-Version: 13 (RFC 6455 section 4.4);
//   - a refused Origin: 403, [ErrOriginNotAllowed];
//   - refused by Authenticate: 401 or the [HTTPError]'s status, wrapping the
//     hook's error.
//
// The ResponseWriter must support hijacking (see
// [http.ResponseController.Hijack]), as HTTP/1.x servers' do. Bytes the
// client sent after its request (frames it did not wait to send) are kept
// for the connection to read, as Node's ws keeps them.
//
// The returned Conn is not yet reading: call [Conn.Start].
//
// Accept checks opts and applies its defaults on every call; an invalid opts
// (see [NewAcceptor]) answers 500 and returns the error. A server that
// upgrades many requests with the same options builds one [Acceptor] instead.
func Accept(w http.ResponseWriter, r *http.Request, opts *AcceptOptions) (*Conn, error) {
	a, err := NewAcceptor(opts)
	if err != nil {
		http.Error(w, "Internal Server Error", http.StatusInternalServerError)
		return nil, err
	}
	a.conn.writers = nil // one connection: no pool to share (writers.go)
	return a.Accept(w, r)
}

// Close lets the Acceptor's idle writer goroutines go (its connections'
// writers run on a pool of long-lived goroutines, which exit after 10s
// without work anyway). Connections it accepted keep working; so does
// Accept. actors.Handler calls it at Shutdown.
func (a *Acceptor) Close() { a.conn.writers.stop() }

// Accept upgrades r as the package's [Accept] does, with a's options.
func (a *Acceptor) Accept(w http.ResponseWriter, r *http.Request) (*Conn, error) {
	o := &a.o
	key, rf := checkUpgradeRequest(r)
	if rf != nil {
		rf.write(w)
		return nil, &statusError{status: rf.status, err: rf.err}
	}
	if err := checkOrigin(r, o.OriginPatterns); err != nil {
		http.Error(w, "Forbidden: origin not allowed", http.StatusForbidden)
		return nil, err
	}
	var principal any
	if o.Authenticate != nil {
		p, err := o.Authenticate(r)
		if err != nil {
			status := http.StatusUnauthorized
			var he *HTTPError
			if errors.As(err, &he) {
				// A status that is not an error or redirect (e.g. a zero
				// HTTPError) would make http.Error panic or answer 200.
				if he.Status >= 300 && he.Status <= 599 {
					status = he.Status
				}
				for k, vs := range he.Header {
					for _, v := range vs {
						w.Header().Add(k, v)
					}
				}
			}
			http.Error(w, http.StatusText(status), status)
			return nil, &authError{status: status, err: err}
		}
		principal = p
	}
	subprotocol := selectSubprotocol(requestSubprotocols(r.Header), o.Subprotocols)
	compress := o.Compression == CompressionEnabled && acceptableDeflateOffer(r.Header)

	nc, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		http.Error(w, "Internal Server Error: the connection cannot be taken over", http.StatusInternalServerError)
		return nil, fmt.Errorf("transport: hijack: %w", err)
	}
	// The HTTP server's reader may already hold the client's first frames;
	// keep it then. Otherwise the connection reads through a buffer of our
	// own size, made when it first reads (the server's 4 KiB one is dropped
	// with the rest of its connection).
	br := brw.Reader
	if br.Buffered() == 0 {
		br = nil
	}
	if err := nc.SetWriteDeadline(time.Now().Add(o.HandshakeTimeout)); err != nil {
		nc.Close()
		return nil, fmt.Errorf("transport: writing the 101 response: %w", err)
	}
	if _, err := nc.Write(appendServerHandshake(nil, key, subprotocol, compress)); err != nil {
		nc.Close()
		return nil, fmt.Errorf("transport: writing the 101 response: %w", err)
	}
	if err := nc.SetWriteDeadline(time.Time{}); err != nil {
		nc.Close()
		return nil, fmt.Errorf("transport: writing the 101 response: %w", err)
	}
	c := newConn(nc, br, true, subprotocol, compress, &a.conn)
	c.request = keepRequest(r, nc)
	c.principal = principal
	c.clientIP = ClientIP(r, o.TrustedProxies)
	return c, nil
}

// authError is Accept's error for a request that Authenticate refused. It
// wraps the hook's error, and says "transport:" once even when that error is
// an *HTTPError, whose own message starts with it.
type authError struct {
	status int // the status answered
	err    error
}

func (e *authError) Error() string {
	cause := e.err
	if he, ok := e.err.(*HTTPError); ok {
		cause = he.Err
	}
	if cause == nil {
		return fmt.Sprintf("transport: authenticate: refused with %d", e.status)
	}
	return fmt.Sprintf("transport: authenticate: refused with %d: %v", e.status, cause)
}

func (e *authError) Unwrap() error { return e.err }

// StatusCode is the HTTP status the refusal was answered with.
func (e *authError) StatusCode() int { return e.status }

// statusError is Accept's error for a request refused before the upgrade
// with status: it wraps ErrNotWebSocket or ErrBadHandshake, and says the
// status (for metrics) through StatusCode.
type statusError struct {
	status int
	err    error
}

func (e *statusError) Error() string   { return e.err.Error() }
func (e *statusError) Unwrap() error   { return e.err }
func (e *statusError) StatusCode() int { return e.status }

// ErrNotWebSocket is returned by Accept for a request that is not a WebSocket
// upgrade; it has been answered with 426 Upgrade Required.
var ErrNotWebSocket = errors.New("transport: not a WebSocket upgrade request")

// ErrOriginNotAllowed is returned by Accept for a cross-origin request that no
// origin pattern allows; it has been answered with 403.
var ErrOriginNotAllowed = errors.New("transport: origin not allowed")

func checkOrigin(r *http.Request, patterns []string) error {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return nil
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%w: malformed origin %q", ErrOriginNotAllowed, origin)
	}
	if strings.EqualFold(u.Host, r.Host) {
		return nil
	}
	host := strings.ToLower(u.Host)
	for _, p := range patterns {
		if ok, _ := path.Match(strings.ToLower(p), host); ok {
			return nil
		}
	}
	return fmt.Errorf("%w: %q on host %q", ErrOriginNotAllowed, origin, r.Host)
}

// selectSubprotocol returns the first client-offered subprotocol the server
// supports.
func selectSubprotocol(offered, supported []string) string {
	for _, o := range offered {
		for _, s := range supported {
			if o == s {
				return o
			}
		}
	}
	return ""
}
