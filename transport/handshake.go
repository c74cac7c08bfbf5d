package transport

// The opening handshake (RFC 6455 section 4), both sides. Accept checks the
// upgrade request with checkUpgradeRequest and writes the 101 built by
// appendServerHandshake on the hijacked socket; Dial writes the request built
// by handshakeRequest and checks the answer with checkHandshakeResponse.
// Everything here works on HTTP values and bytes, without sockets.

import (
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// ErrBadHandshake is wrapped by the error [Dial] returns when the server
// refused the upgrade (any status but 101; the response is returned too,
// with up to 1 KiB of its body readable) or answered with a 101 that breaks
// RFC 6455 or RFC 7692: a wrong Sec-WebSocket-Accept, a subprotocol or
// extension the client did not offer, or permessage-deflate parameters it
// cannot honour.
//
// [Accept] wraps it too, for a request that asks for a WebSocket upgrade
// but breaks RFC 6455 (wrong method, HTTP/1.0, a missing or unsupported
// Sec-WebSocket-Version, a malformed Sec-WebSocket-Key, a body); Accept has
// answered it with a 4xx. A request that does not ask for an upgrade at all
// gets [ErrNotWebSocket] instead.
var ErrBadHandshake = errors.New("transport: bad handshake")

// websocketGUID is the constant RFC 6455 section 1.3 appends to the key.
const websocketGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// computeAcceptKey returns the Sec-WebSocket-Accept value for key (RFC 6455
// section 4.2.2).
func computeAcceptKey(key string) string {
	h := sha1.New()
	h.Write([]byte(key))
	h.Write([]byte(websocketGUID))
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

// newHandshakeKey returns a fresh Sec-WebSocket-Key: 16 random bytes in
// base64 (RFC 6455 section 4.1).
func newHandshakeKey() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return base64.StdEncoding.EncodeToString(b[:])
}

// validHandshakeKey reports whether key is base64 of 16 bytes.
func validHandshakeKey(key string) bool {
	if len(key) != 24 {
		return false
	}
	b, err := base64.StdEncoding.Strict().DecodeString(key)
	return err == nil && len(b) == 16
}

// headerTokens returns the comma-separated elements of every name header of
// h, trimmed, without empty ones.
func headerTokens(h http.Header, name string) []string {
	var out []string
	for _, line := range h.Values(name) {
		for _, t := range strings.Split(line, ",") {
			if t = strings.Trim(t, " \t"); t != "" {
				out = append(out, t)
			}
		}
	}
	return out
}

// headerHasToken reports whether a name header of h lists token, compared
// case-insensitively.
func headerHasToken(h http.Header, name, token string) bool {
	return slices.ContainsFunc(headerTokens(h, name), func(t string) bool { return strings.EqualFold(t, token) })
}

// requestSubprotocols returns the subprotocols a client offered, in its
// order of preference.
func requestSubprotocols(h http.Header) []string {
	return headerTokens(h, "Sec-WebSocket-Protocol")
}

// refusal is why an upgrade request is refused, and the answer it gets.
type refusal struct {
	status int
	header http.Header // added to the error response
	text   string      // the response body, after the status text
	err    error       // wraps ErrNotWebSocket or ErrBadHandshake
}

// write answers the request with the refusal: its status, its headers and a
// one-line text body.
func (rf *refusal) write(w http.ResponseWriter) {
	for k, vs := range rf.header {
		w.Header()[k] = vs
	}
	http.Error(w, http.StatusText(rf.status)+": "+rf.text, rf.status)
}

func badHandshake(status int, header http.Header, format string, args ...any) *refusal {
	text := fmt.Sprintf(format, args...)
	return &refusal{status: status, header: header, text: text, err: fmt.Errorf("%w: %s", ErrBadHandshake, text)}
}

// checkUpgradeRequest checks that r is a WebSocket opening handshake
// (RFC 6455 section 4.2.1) and returns its Sec-WebSocket-Key, or the refusal
// to answer it with:
//
//   - no "Connection: upgrade" or no "Upgrade: websocket": 426 with
//     Upgrade: websocket, ErrNotWebSocket;
//   - not GET: 405 with Allow: GET;
//   - older than HTTP/1.1: 400;
//   - no Sec-WebSocket-Version: 400, and one other than 13: 426, both with
//     Sec-WebSocket-Version: 13 (RFC 6455 section 4.4);
//   - a Sec-WebSocket-Key that is not base64 of 16 bytes, or more than one:
//     400;
//   - a body (the bytes after the request are WebSocket frames): 400.
//
// Every refusal but the first wraps ErrBadHandshake.
func checkUpgradeRequest(r *http.Request) (key string, rf *refusal) {
	if !headerHasToken(r.Header, "Connection", "upgrade") || !headerHasToken(r.Header, "Upgrade", "websocket") {
		return "", &refusal{
			status: http.StatusUpgradeRequired,
			header: http.Header{"Upgrade": {"websocket"}},
			text:   "this is a WebSocket endpoint",
			err:    ErrNotWebSocket,
		}
	}
	if r.Method != http.MethodGet {
		return "", badHandshake(http.StatusMethodNotAllowed, http.Header{"Allow": {http.MethodGet}},
			"method %s, want GET", r.Method)
	}
	if !r.ProtoAtLeast(1, 1) {
		return "", badHandshake(http.StatusBadRequest, nil,
			"%s request; a WebSocket upgrade needs HTTP/1.1 or later", r.Proto)
	}
	switch vs := r.Header.Values("Sec-WebSocket-Version"); {
	case len(vs) == 0:
		return "", badHandshake(http.StatusBadRequest, http.Header{"Sec-WebSocket-Version": {"13"}},
			"no Sec-WebSocket-Version; this server speaks 13")
	case len(vs) != 1 || strings.Trim(vs[0], " \t") != "13":
		return "", badHandshake(http.StatusUpgradeRequired, http.Header{"Sec-WebSocket-Version": {"13"}, "Upgrade": {"websocket"}},
			"Sec-WebSocket-Version %.64q; this server speaks 13", strings.Join(vs, ", "))
	}
	switch keys := r.Header.Values("Sec-WebSocket-Key"); {
	case len(keys) == 0:
		return "", badHandshake(http.StatusBadRequest, nil, "no Sec-WebSocket-Key")
	case len(keys) != 1 || !validHandshakeKey(keys[0]):
		return "", badHandshake(http.StatusBadRequest, nil,
			"Sec-WebSocket-Key %.64q is not base64 of 16 bytes", strings.Join(keys, ", "))
	default:
		key = keys[0]
	}
	if r.ContentLength != 0 || len(r.TransferEncoding) > 0 {
		return "", badHandshake(http.StatusBadRequest, nil, "the upgrade request has a body")
	}
	return key, nil
}

// appendServerHandshake appends the 101 response that accepts key, choosing
// subprotocol (if not "") and, if compress, permessage-deflate.
func appendServerHandshake(b []byte, key, subprotocol string, compress bool) []byte {
	b = append(b, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "...)
	b = append(b, computeAcceptKey(key)...)
	if subprotocol != "" {
		b = append(b, "\r\nSec-WebSocket-Protocol: "...)
		b = append(b, subprotocol...)
	}
	if compress {
		b = append(b, "\r\nSec-WebSocket-Extensions: "+deflateAnswer...)
	}
	return append(b, "\r\n\r\n"...)
}

// handshakeHeaders are the request headers the handshake sets itself; the
// same names in DialOptions.Header are dropped.
var handshakeHeaders = []string{
	"Upgrade", "Connection", "Sec-Websocket-Key", "Sec-Websocket-Version",
	"Sec-Websocket-Extensions", "Sec-Websocket-Protocol",
}

// parseDialURL parses a Dial URL: ws:// or wss://, with http:// and https://
// as aliases. It has a host, and no user info or fragment (RFC 6455
// section 3).
func parseDialURL(rawURL string) (*url.URL, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	switch strings.ToLower(u.Scheme) {
	case "ws", "http":
		u.Scheme = "ws"
	case "wss", "https":
		u.Scheme = "wss"
	default:
		return nil, fmt.Errorf("scheme %q is not ws, wss, http or https", u.Scheme)
	}
	switch {
	case u.Host == "":
		return nil, errors.New("no host")
	case u.User != nil:
		return nil, errors.New("user info in a WebSocket URL is not sent; set an Authorization header instead")
	case u.Fragment != "" || strings.HasSuffix(rawURL, "#"):
		return nil, errors.New("a WebSocket URL has no fragment")
	}
	return u, nil
}

// handshakeRequest builds the opening handshake for u (a ws or wss URL, as
// returned by parseDialURL). Its URL has the http or https scheme, the form
// a DialOptions.Proxy function expects.
func handshakeRequest(u *url.URL, key string, o *DialOptions, offerDeflate bool) *http.Request {
	hu := *u
	hu.Scheme = "http"
	if u.Scheme == "wss" {
		hu.Scheme = "https"
	}
	h := make(http.Header, len(o.Header)+6)
	host := u.Host
	for k, vs := range o.Header {
		ck := http.CanonicalHeaderKey(k)
		switch {
		case ck == "Host":
			if len(vs) > 0 && vs[0] != "" {
				host = vs[0]
			}
		case slices.Contains(handshakeHeaders, ck):
		default:
			h[ck] = append(h[ck], vs...)
		}
	}
	// Non-canonical keys, so the request spells them as RFC 6455 does.
	h["Upgrade"] = []string{"websocket"}
	h["Connection"] = []string{"Upgrade"}
	h["Sec-WebSocket-Key"] = []string{key}
	h["Sec-WebSocket-Version"] = []string{"13"}
	if len(o.Subprotocols) > 0 {
		h["Sec-WebSocket-Protocol"] = []string{strings.Join(o.Subprotocols, ", ")}
	}
	if offerDeflate {
		h["Sec-WebSocket-Extensions"] = []string{deflateOffer}
	}
	if o.Origin != "" {
		h["Origin"] = []string{o.Origin}
	}
	return &http.Request{
		Method:     http.MethodGet,
		URL:        &hu,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     h,
		Host:       host,
	}
}

// checkHandshakeResponse checks a 101 response against the request that
// asked for it with key, offering subprotocols and (if offeredDeflate)
// deflateOffer (RFC 6455 section 4.1, RFC 7692 section 5). It returns
// the chosen subprotocol, whether permessage-deflate is on and whether the
// server keeps its compression context across messages; its error says
// what is wrong, without ErrBadHandshake (Dial adds it).
func checkHandshakeResponse(resp *http.Response, key string, subprotocols []string, offeredDeflate bool) (subprotocol string, compress, takeover bool, err error) {
	h := resp.Header
	switch {
	case resp.StatusCode != http.StatusSwitchingProtocols:
		return "", false, false, fmt.Errorf("status %s", resp.Status)
	case !headerHasToken(h, "Upgrade", "websocket"):
		return "", false, false, fmt.Errorf("101 with Upgrade %q, want websocket", h.Values("Upgrade"))
	case !headerHasToken(h, "Connection", "upgrade"):
		return "", false, false, fmt.Errorf("101 with Connection %q, want upgrade", h.Values("Connection"))
	}
	if got := h.Values("Sec-WebSocket-Accept"); len(got) != 1 || got[0] != computeAcceptKey(key) {
		return "", false, false, fmt.Errorf("101 with Sec-WebSocket-Accept %q, want %q", got, computeAcceptKey(key))
	}
	compress, takeover, err = readDeflateAnswer(h)
	if err != nil {
		return "", false, false, err
	}
	if err := checkServerChoice(h, subprotocols, offeredDeflate, compress); err != nil {
		return "", false, false, err
	}
	return h.Get("Sec-WebSocket-Protocol"), compress, takeover, nil
}

// checkServerChoice fails a 101 that picks what the client did not offer
// (RFC 6455 section 4.1): a subprotocol not in subprotocols (or more than
// one), an extension other than permessage-deflate, or permessage-deflate
// when offeredDeflate is false. deflate is what readDeflateAnswer read from the
// same header; a header it did not read as permessage-deflate, but that
// names it, is refused as malformed.
func checkServerChoice(h http.Header, subprotocols []string, offeredDeflate, deflate bool) error {
	if sps := h.Values("Sec-WebSocket-Protocol"); len(sps) > 1 {
		return fmt.Errorf("server chose %d subprotocols %q", len(sps), sps)
	}
	if sp := h.Get("Sec-WebSocket-Protocol"); sp != "" && !slices.Contains(subprotocols, sp) {
		return fmt.Errorf("server chose subprotocol %q, which was not offered", sp)
	}
	pmd := false
	for _, e := range parseExtensions(h) {
		if e.Name != "permessage-deflate" || !offeredDeflate {
			return fmt.Errorf("server answered extension %q, which was not offered", e.Name)
		}
		pmd = true
	}
	if pmd != deflate {
		return fmt.Errorf("%w: %q", errMalformedExtensions, h.Values("Sec-WebSocket-Extensions"))
	}
	return nil
}
