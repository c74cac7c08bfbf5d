package transport

import (
	"net/http"
	"strconv"
	"strings"
)

// Extension is one offer from a Sec-WebSocket-Extensions header: a name and
// its parameters (a parameter without a value maps to "").
type Extension struct {
	Name   string
	Params map[string]string
}

// ParseExtensions parses every Sec-WebSocket-Extensions header of h
// (RFC 6455 section 9.1). Malformed offers are skipped; quoted values are
// unquoted.
func ParseExtensions(h http.Header) []Extension {
	var out []Extension
	for _, line := range h.Values("Sec-WebSocket-Extensions") {
		for _, offer := range splitOutsideQuotes(line, ',') {
			parts := splitOutsideQuotes(offer, ';')
			name := strings.TrimSpace(parts[0])
			if !isToken(name) {
				continue
			}
			ext := Extension{Name: name, Params: map[string]string{}}
			ok := true
			for _, p := range parts[1:] {
				k, v, hasV := strings.Cut(p, "=")
				k, v = strings.TrimSpace(k), strings.TrimSpace(v)
				if hasV && len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
					v = v[1 : len(v)-1]
				}
				if !isToken(k) || (hasV && !isToken(v)) {
					ok = false
					break
				}
				ext.Params[k] = v
			}
			if ok {
				out = append(out, ext)
			}
		}
	}
	return out
}

// acceptableDeflateOffer reports whether the client offered a
// permessage-deflate variant wsactor can honour: no context takeover on both
// sides (which wsactor always asks for and clients must accept) and the
// default server window. An offer that demands a smaller server window is
// declined rather than answered with parameters we would not keep.
func acceptableDeflateOffer(h http.Header) bool {
	for _, e := range ParseExtensions(h) {
		if e.Name != "permessage-deflate" {
			continue
		}
		ok := true
		for k, v := range e.Params {
			switch k {
			case "server_no_context_takeover", "client_no_context_takeover":
				ok = ok && v == ""
			case "client_max_window_bits":
				if v != "" {
					n, err := strconv.Atoi(v)
					ok = ok && err == nil && n >= 8 && n <= 15
				}
			case "server_max_window_bits":
				ok = ok && v == "15"
			default:
				ok = false
			}
		}
		// gorilla takes the first permessage-deflate offer; only accept when
		// that first one is acceptable, so both agree.
		return ok
	}
	return false
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
