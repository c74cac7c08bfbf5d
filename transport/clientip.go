package transport

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// ClientIP returns the address of the client behind r. It is the socket's
// remote address unless that address is in trusted: then X-Forwarded-For is
// walked from the right, skipping trusted proxies, and the first address that
// is not trusted is the client. X-Forwarded-For from an untrusted peer is
// never believed, since any client can send it. A malformed entry stops the
// walk at the last address known to be good.
func ClientIP(r *http.Request, trusted []netip.Prefix) netip.Addr {
	peer := parseAddr(r.RemoteAddr)
	if !peer.IsValid() || !inPrefixes(peer, trusted) {
		return peer
	}
	return forwardedFor(peer, r.Header.Values("X-Forwarded-For"), trusted)
}

// forwardedFor walks the X-Forwarded-For values right to left from the
// trusted peer.
func forwardedFor(peer netip.Addr, values []string, trusted []netip.Prefix) netip.Addr {
	var hops []string
	for _, v := range values {
		hops = append(hops, strings.Split(v, ",")...)
	}
	client := peer
	for i := len(hops) - 1; i >= 0; i-- {
		a := parseAddr(strings.TrimSpace(hops[i]))
		if !a.IsValid() {
			return client
		}
		client = a
		if !inPrefixes(a, trusted) {
			return a
		}
	}
	return client
}

func parseAddr(s string) netip.Addr {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap()
	}
	if host, _, err := net.SplitHostPort(s); err == nil {
		s = host
	}
	s = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}

func inPrefixes(a netip.Addr, ps []netip.Prefix) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
