package transport

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// extension is one offer from a Sec-WebSocket-Extensions header: a name and
// its parameters (a parameter without a value maps to "").
type extension struct {
	Name   string
	Params map[string]string
}

// parseExtensions parses every Sec-WebSocket-Extensions header of h
// (RFC 6455 section 9.1). Malformed offers are skipped; quoted values are
// unquoted. A repeated parameter keeps its last value.
func parseExtensions(h http.Header) []extension {
	var out []extension
	for _, e := range parseExtensionList(h) {
		if e.ok {
			out = append(out, e.extension)
		}
	}
	return out
}

// parsedExtension is one element of a Sec-WebSocket-Extensions list with
// what a strict reader needs to know about it.
type parsedExtension struct {
	extension
	ok  bool // the element is well formed (tokens, or quoted tokens)
	dup bool // a parameter appears more than once
}

// parseExtensionList parses every element of every Sec-WebSocket-Extensions
// header of h, malformed ones included. Empty elements are skipped, as
// RFC 9110 section 5.6.1 asks of list recipients.
func parseExtensionList(h http.Header) []parsedExtension {
	var out []parsedExtension
	for _, line := range h.Values("Sec-WebSocket-Extensions") {
		for _, elem := range splitOutsideQuotes(line, ',') {
			if strings.TrimSpace(elem) == "" {
				continue
			}
			out = append(out, parseExtension(elem))
		}
	}
	return out
}

func parseExtension(elem string) parsedExtension {
	parts := splitOutsideQuotes(elem, ';')
	name := strings.TrimSpace(parts[0])
	e := parsedExtension{extension: extension{Name: name, Params: map[string]string{}}, ok: isToken(name)}
	for _, p := range parts[1:] {
		k, v, hasV := strings.Cut(p, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if hasV && len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
			v = v[1 : len(v)-1]
		}
		if !isToken(k) || (hasV && !isToken(v)) {
			e.ok = false
			break
		}
		if _, seen := e.Params[k]; seen {
			e.dup = true
		}
		e.Params[k] = v
	}
	return e
}

// deflateAnswer is our server's answer to a permessage-deflate offer (see
// [AcceptOptions.Compression]): no context takeover either way, so that one
// compressed frame is valid for every recipient and no connection keeps a
// compressor or a window.
const deflateAnswer = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"

// deflateOffer is our client's offer. It asks the server to compress each
// message on its own too (client_no_context_takeover is about our side:
// we compress every message on its own), but leaves the server free to
// keep its context across messages, as browsers do: the client then keeps
// the last 32 KiB of what it inflated (Conn.window) as the next message's
// dictionary. client_max_window_bits is not offered: compress/flate cannot
// compress with a window smaller than 32 KiB.
const deflateOffer = "permessage-deflate; client_no_context_takeover"

// acceptableDeflateOffer reports whether the client offered a
// permessage-deflate variant wsactor can honour: no context takeover on both
// sides (which wsactor always asks for and clients must accept) and the
// default server window. Offers are tried in the client's order of
// preference and the first acceptable one wins, as in Node's ws; an offer
// that demands a smaller server window, or repeats a parameter (RFC 7692
// section 5), is declined rather than answered with parameters we would not
// keep.
func acceptableDeflateOffer(h http.Header) bool {
	for _, e := range parseExtensionList(h) {
		if e.Name != "permessage-deflate" || !e.ok || e.dup {
			continue
		}
		ok := true
		for k, v := range e.Params {
			switch k {
			case "server_no_context_takeover", "client_no_context_takeover":
				ok = ok && v == ""
			case "client_max_window_bits":
				ok = ok && (v == "" || validWindowBits(v))
			case "server_max_window_bits":
				ok = ok && v == "15"
			default:
				ok = false
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// errMalformedExtensions is the reason a 101 whose Sec-WebSocket-Extensions
// cannot be parsed is refused.
var errMalformedExtensions = errors.New("malformed Sec-WebSocket-Extensions")

// readDeflateAnswer reads a 101 response's answer to our permessage-deflate
// offer (deflateOffer) and reports whether the server accepted it and, if
// so, whether it keeps its compression context across messages (RFC 7692
// section 7). Every answer the RFC allows is taken: with or without
// server_no_context_takeover (without it, the server's messages may refer
// to earlier ones, and takeover is true) and client_no_context_takeover
// (we compress every message on its own anyway), and server_max_window_bits
// 8 to 15 (a dictionary of 32 KiB serves any smaller window). It fails on a
// malformed extensions header, on more than one permessage-deflate,
// and on client_max_window_bits, which we did not offer, or any other
// parameter. Extensions other than permessage-deflate are left to
// checkServerChoice.
func readDeflateAnswer(h http.Header) (found, takeover bool, err error) {
	for _, e := range parseExtensionList(h) {
		if !e.ok {
			return false, false, fmt.Errorf("%w: %q", errMalformedExtensions, h.Values("Sec-WebSocket-Extensions"))
		}
		if e.Name != "permessage-deflate" {
			continue
		}
		if found {
			return false, false, errors.New("permessage-deflate answered twice")
		}
		found = true
		if e.dup {
			return false, false, errors.New("permessage-deflate answered with a repeated parameter")
		}
		_, noTakeover := e.Params["server_no_context_takeover"]
		takeover = !noTakeover
		for k, v := range e.Params {
			switch k {
			case "server_no_context_takeover", "client_no_context_takeover":
				if v != "" {
					return false, false, fmt.Errorf("permessage-deflate parameter %s=%q takes no value", k, v)
				}
			case "server_max_window_bits":
				if !validWindowBits(v) {
					return false, false, fmt.Errorf("permessage-deflate server_max_window_bits=%q is not 8 to 15", v)
				}
			case "client_max_window_bits":
				return false, false, errors.New("permessage-deflate answered with client_max_window_bits, which was not offered")
			default:
				return false, false, fmt.Errorf("permessage-deflate answered with unknown parameter %q", k)
			}
		}
	}
	return found, takeover, nil
}

// validWindowBits reports whether v is a window size RFC 7692 section
// 7.1.2 allows: 8 to 15, in decimal without leading zeros.
func validWindowBits(v string) bool {
	n, err := strconv.Atoi(v)
	return err == nil && n >= 8 && n <= 15 && strconv.Itoa(n) == v
}

func splitOutsideQuotes(s string, sep byte) []string {
	var out []string
	inQuote, start := false, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '"':
			inQuote = !inQuote
		case sep:
			if !inQuote {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	return append(out, s[start:])
}

func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`()<>@,;:\"/[]?={}`, c) >= 0 {
			return false
		}
	}
	return true
}
