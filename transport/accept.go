package transport

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"path"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// AcceptOptions configures the server side of the handshake. A nil
// *AcceptOptions is valid and means all defaults.
type AcceptOptions struct {
	ConnOptions

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
	// answers 403.
	OriginPatterns []string

	// Subprotocols lists the subprotocols the server speaks. The first one the
	// client offers (in the client's order) that is in this list is chosen.
	// With none in common, the upgrade proceeds without a subprotocol, as
	// RFC 6455 allows; check [Conn.Subprotocol] to refuse such clients.
	Subprotocols []string

	// HandshakeTimeout bounds writing the 101 response. Zero means 10s.
	HandshakeTimeout time.Duration

	// ReadBufferSize is the size of the per-connection read buffer.
	// Zero means 1 KiB. The HTTP server's 4 KiB buffer is not kept: every
	// connection holds its read buffer for its whole life, and an idle one
	// needs little (this saves about 3.8 KB of RSS per idle connection; see
	// docs/performance.md). A larger buffer takes bursts of small inbound
	// messages with fewer read calls.
	ReadBufferSize int

	// TrustedProxies lists the networks whose X-Forwarded-For is believed
	// (see [ClientIP]). Empty means the header is ignored.
	TrustedProxies []netip.Prefix
}

// defaultServerReadBuffer is AcceptOptions.ReadBufferSize's default.
const defaultServerReadBuffer = 1024

// writePool is shared by every connection: gorilla takes a buffer from it
// only for its own rare control writes, so idle connections hold none.
var writePool sync.Pool

// Accept validates the upgrade request (method and headers, origin,
// authentication), upgrades the connection and returns it. On failure it has
// already written the HTTP error response; the returned error says why.
//
// The returned Conn is not yet reading: call [Conn.Start].
func Accept(w http.ResponseWriter, r *http.Request, opts *AcceptOptions) (*Conn, error) {
	var o AcceptOptions
	if opts != nil {
		o = *opts
	}
	o.ConnOptions = o.ConnOptions.withDefaults()
	if o.HandshakeTimeout <= 0 {
		o.HandshakeTimeout = defaultHandshake
	}
	if o.ReadBufferSize <= 0 {
		o.ReadBufferSize = defaultServerReadBuffer
	}
	if !websocket.IsWebSocketUpgrade(r) {
		w.Header().Set("Upgrade", "websocket")
		http.Error(w, "Upgrade Required: this is a WebSocket endpoint", http.StatusUpgradeRequired)
		return nil, ErrNotWebSocket
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
			return nil, fmt.Errorf("transport: authenticate: %w", err)
		}
		principal = p
	}

	up := websocket.Upgrader{
		HandshakeTimeout: o.HandshakeTimeout,
		ReadBufferSize:   o.ReadBufferSize,
		WriteBufferPool:  &writePool,
		CheckOrigin:      func(*http.Request) bool { return true }, // checked above
		Error: func(w http.ResponseWriter, _ *http.Request, status int, reason error) {
			http.Error(w, reason.Error(), status)
		},
	}
	if sp := selectSubprotocol(websocket.Subprotocols(r), o.Subprotocols); sp != "" {
		up.Subprotocols = []string{sp}
	}
	switch o.Compression.Mode {
	case CompressionEnabled:
		up.EnableCompression = acceptableDeflateOffer(r.Header)
	}
	ws, err := up.Upgrade(w, r, nil)
	if err != nil {
		return nil, fmt.Errorf("transport: upgrade: %w", err)
	}
	c := newConn(ws, true, up.EnableCompression && deflateNegotiated(ws), o.ConnOptions)
	c.request = r
	c.principal = principal
	c.clientIP = ClientIP(r, o.TrustedProxies)
	return c, nil
}

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

// deflateNegotiated reads whether gorilla enabled permessage-deflate on ws.
// gorilla v1.5.3 does not export it; its unexported compression-writer field is
// set exactly when the 101 response carried the extension. TestDeflateNegotiated
// pins this against the wire.
func deflateNegotiated(ws *websocket.Conn) bool {
	f := reflect.ValueOf(ws).Elem().FieldByName("newCompressionWriter")
	return f.IsValid() && !f.IsNil()
}
