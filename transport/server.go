package transport

import (
	"net/http"
	"time"
)

// The limits NewServer sets. They are documented on [NewServer]; the returned
// *http.Server holds them in ordinary fields, which the caller may change.
const (
	serverReadHeaderTimeout = defaultHandshake // the handshake timeout bounds reading the request too
	serverReadTimeout       = 30 * time.Second
	serverIdleTimeout       = 60 * time.Second
	serverMaxHeaderBytes    = 64 << 10
)

// NewServer returns an *http.Server that serves h on addr with the timeouts
// and limits a server on the open Internet needs. It only builds the server:
// start it with ListenAndServe, ListenAndServeTLS or Serve, and stop it with
// Shutdown after the WebSocket handlers' own Shutdown, since
// http.Server.Shutdown does not wait for hijacked connections. Use it instead
// of http.ListenAndServe or http.Serve, whose servers have no timeouts: a
// client that sends its request one byte at a time holds a connection, a
// goroutine and its buffers for as long as it likes, and some thousands of
// such clients exhaust the process's file descriptors.
//
// The server has these settings; change the fields before serving to choose
// others:
//
//   - ReadHeaderTimeout 10s, the default [AcceptOptions.HandshakeTimeout]:
//     the request line and headers, which are all an upgrade request has,
//     must arrive within it. With HandshakeTimeout, which bounds writing the
//     101 response, it bounds the opening handshake (apart from the time
//     your Authenticate takes). A client too slow is disconnected (net/http
//     answers 400 first when it can).
//   - ReadTimeout 30s: the whole request, body included, must arrive within
//     it. Without it a client could send complete headers, then a body one
//     byte at a time, to any path (net/http reads up to 256 KiB of a body
//     the handler left unread), and hold the connection. net/http lifts this
//     deadline once the body is read, so it does not cut long responses; a
//     handler that takes slow uploads extends it with
//     http.ResponseController.SetReadDeadline.
//   - IdleTimeout 60s: a keep-alive connection is closed after this long
//     between requests.
//   - MaxHeaderBytes 64 KiB, instead of net/http's 1 MiB: larger request
//     headers are answered with 431.
//   - WriteTimeout stays zero: it would cut long responses (downloads,
//     server-sent events) that the same server may serve.
//
// None of these limits applies to a WebSocket connection once it is
// upgraded: net/http clears the connection's read and write deadlines when
// the handler hijacks it (in [Accept]), so a WebSocket lives past
// ReadHeaderTimeout, ReadTimeout and WriteTimeout, whatever their values.
// From then on the connection's own limits apply: those of [AcceptOptions]
// (ReadLimit, WriteTimeout, CloseTimeout and the rest) and the heartbeat
// that the actors package runs.
//
// The result is an ordinary *http.Server: set TLSConfig, ErrorLog,
// BaseContext and the rest on it as usual. If you build your own instead,
// copy these four fields.
func NewServer(addr string, h http.Handler) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: serverReadHeaderTimeout,
		ReadTimeout:       serverReadTimeout,
		IdleTimeout:       serverIdleTimeout,
		MaxHeaderBytes:    serverMaxHeaderBytes,
	}
}
