package transport

import (
	"net/http"
	"net/netip"
	"strings"
	"testing"
)

func prefixes(t testing.TB, s ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range s {
		out = append(out, netip.MustParsePrefix(p))
	}
	return out
}

func TestClientIP(t *testing.T) {
	t.Parallel()
	proxies := prefixes(t, "10.0.0.0/8", "fd00::/8")
	for _, tc := range []struct {
		name    string
		remote  string
		xff     []string
		trusted []netip.Prefix
		want    string
	}{
		{"no proxies configured", "203.0.113.7:5555", nil, nil, "203.0.113.7"},
		{"header ignored without trusted proxies", "203.0.113.7:5555", []string{"1.2.3.4"}, nil, "203.0.113.7"},
		{"spoofed header from an untrusted peer", "203.0.113.7:5555", []string{"1.2.3.4"}, proxies, "203.0.113.7"},
		{"trusted proxy, one hop", "10.0.0.1:443", []string{"1.2.3.4"}, proxies, "1.2.3.4"},
		{"trusted proxy, no header", "10.0.0.1:443", nil, proxies, "10.0.0.1"},
		{"trusted proxy, empty header", "10.0.0.1:443", []string{""}, proxies, "10.0.0.1"},
		{"several proxies", "10.0.0.1:443", []string{"1.2.3.4, 10.0.0.3, 10.0.0.2"}, proxies, "1.2.3.4"},
		{"client-supplied prefix is not believed", "10.0.0.1:443", []string{"6.6.6.6, 1.2.3.4, 10.0.0.2"}, proxies, "1.2.3.4"},
		{"several header lines", "10.0.0.1:443", []string{"6.6.6.6", "1.2.3.4", "10.0.0.2"}, proxies, "1.2.3.4"},
		{"only proxies", "10.0.0.1:443", []string{"10.0.0.9, 10.0.0.2"}, proxies, "10.0.0.9"},
		{"malformed entry stops the walk", "10.0.0.1:443", []string{"1.2.3.4, garbage, 10.0.0.2"}, proxies, "10.0.0.2"},
		{"malformed last entry", "10.0.0.1:443", []string{"1.2.3.4, not-an-ip"}, proxies, "10.0.0.1"},
		{"entry with a port", "10.0.0.1:443", []string{"1.2.3.4:8080"}, proxies, "1.2.3.4"},
		{"IPv6 entry", "10.0.0.1:443", []string{"2001:db8::1"}, proxies, "2001:db8::1"},
		{"bracketed IPv6 entry", "10.0.0.1:443", []string{"[2001:db8::1]"}, proxies, "2001:db8::1"},
		{"bracketed IPv6 entry with port", "10.0.0.1:443", []string{"[2001:db8::1]:80"}, proxies, "2001:db8::1"},
		{"IPv6 proxy", "[fd00::1]:443", []string{"1.2.3.4"}, proxies, "1.2.3.4"},
		{"IPv4-mapped peer is unmapped", "[::ffff:10.0.0.1]:443", []string{"1.2.3.4"}, proxies, "1.2.3.4"},
		{"IPv4-mapped entry is unmapped", "10.0.0.1:443", []string{"::ffff:1.2.3.4"}, proxies, "1.2.3.4"},
		{"untrusted IPv6 peer", "[2001:db8::2]:443", []string{"1.2.3.4"}, proxies, "2001:db8::2"},
		{"whitespace", "10.0.0.1:443", []string{"  1.2.3.4 ,10.0.0.2  "}, proxies, "1.2.3.4"},
		{"unparsable remote address", "pipe", []string{"1.2.3.4"}, proxies, "invalid IP"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &http.Request{RemoteAddr: tc.remote, Header: http.Header{}}
			for _, v := range tc.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := ClientIP(r, tc.trusted).String(); got != tc.want {
				t.Errorf("ClientIP = %s, want %s", got, tc.want)
			}
		})
	}
}

// TestConnClientIP checks that Accept and Dial fill in ClientIP.
func TestConnClientIP(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverConfig{opts: &AcceptOptions{TrustedProxies: prefixes(t, "127.0.0.0/8")}})
	c, _ := dialOur(t, s.wsURL(), &DialOptions{Header: http.Header{"X-Forwarded-For": {"198.51.100.9"}}})
	srv := s.next(t)
	if got := srv.c.ClientIP().String(); got != "198.51.100.9" {
		t.Errorf("server ClientIP = %s, want the forwarded 198.51.100.9", got)
	}
	if got := c.ClientIP().String(); got != "127.0.0.1" {
		t.Errorf("client ClientIP = %s, want the server's 127.0.0.1", got)
	}

	plain := startServer(t, serverConfig{})
	dialOur(t, plain.wsURL(), &DialOptions{Header: http.Header{"X-Forwarded-For": {"198.51.100.9"}}})
	if got := plain.next(t).c.ClientIP().String(); got != "127.0.0.1" {
		t.Errorf("ClientIP without trusted proxies = %s, want 127.0.0.1", got)
	}
}

func FuzzClientIP(f *testing.F) {
	f.Add("10.0.0.1:443", "1.2.3.4, 10.0.0.2", "10.0.0.0/8")
	f.Add("203.0.113.7:5555", "1.2.3.4", "10.0.0.0/8")
	f.Add("[fd00::1]:443", "[2001:db8::1]:80, fd00::2", "fd00::/8,10.0.0.0/8")
	f.Add("[::ffff:10.0.0.1]:1", "::ffff:1.2.3.4", "10.0.0.0/8")
	f.Add("10.0.0.1:1", "garbage,,, ,[", "0.0.0.0/0")
	f.Add("", "", "")
	f.Add("[", "]", "::/0")
	f.Add("fe80::1%eth0", "fe80::2%25lo", "fe80::/10")
	f.Fuzz(func(t *testing.T, remote, xff, trusted string) {
		var ps []netip.Prefix
		for _, s := range strings.Split(trusted, ",") {
			if p, err := netip.ParsePrefix(strings.TrimSpace(s)); err == nil {
				ps = append(ps, p)
			}
		}
		r := &http.Request{RemoteAddr: remote, Header: http.Header{}}
		for _, line := range strings.Split(xff, "\n") {
			r.Header.Add("X-Forwarded-For", line)
		}
		got := ClientIP(r, ps)
		peer := parseAddr(remote)
		if got.Is4In6() {
			t.Errorf("ClientIP returned a 4-in-6 address %s", got)
		}
		if !peer.IsValid() || !inPrefixes(peer, ps) {
			if got != peer {
				t.Errorf("untrusted peer %s: ClientIP = %s, want the peer", peer, got)
			}
			return
		}
		if !got.IsValid() {
			t.Fatalf("trusted peer %s: invalid result", peer)
		}
		if got == peer {
			return
		}
		// Otherwise the result is one of the forwarded addresses.
		for _, line := range r.Header.Values("X-Forwarded-For") {
			for _, hop := range strings.Split(line, ",") {
				if parseAddr(strings.TrimSpace(hop)) == got {
					return
				}
			}
		}
		t.Errorf("ClientIP = %s is neither the peer nor a forwarded address (%q)", got, xff)
	})
}

func FuzzParseExtensions(f *testing.F) {
	f.Add("permessage-deflate")
	f.Add("permessage-deflate; client_max_window_bits; server_no_context_takeover")
	f.Add(`permessage-deflate; server_max_window_bits="10", x-webkit-deflate-frame`)
	f.Add(`foo; a="b,c"; d, bar`)
	f.Add(`"; ,;=,"=`)
	f.Add(";;,,")
	f.Add("a=b=c; d=\"\"")
	f.Add("permessage-deflate\npermessage-deflate; server_max_window_bits=15")
	f.Fuzz(func(t *testing.T, s string) {
		h := http.Header{}
		for _, line := range strings.Split(s, "\n") {
			h.Add("Sec-WebSocket-Extensions", line)
		}
		for _, e := range parseExtensions(h) {
			if !isToken(e.Name) {
				t.Errorf("extension name %q is not a token", e.Name)
			}
			if e.Params == nil {
				t.Error("nil Params")
			}
			for k, v := range e.Params {
				if !isToken(k) {
					t.Errorf("parameter name %q is not a token", k)
				}
				if v != "" && !isToken(v) {
					t.Errorf("parameter value %q is not a token", v)
				}
			}
		}
		ok := acceptableDeflateOffer(h)
		if ok {
			found := false
			for _, e := range parseExtensions(h) {
				found = found || e.Name == "permessage-deflate"
			}
			if !found {
				t.Error("acceptableDeflateOffer without a permessage-deflate offer")
			}
		}
	})
}

func TestParseExtensions(t *testing.T) {
	t.Parallel()
	h := http.Header{}
	h.Add("Sec-WebSocket-Extensions", `permessage-deflate; client_max_window_bits; server_max_window_bits="10", bad name, x-foo; a=1`)
	h.Add("Sec-WebSocket-Extensions", "second")
	got := parseExtensions(h)
	if len(got) != 3 {
		t.Fatalf("got %d extensions: %+v", len(got), got)
	}
	if got[0].Name != "permessage-deflate" || got[0].Params["server_max_window_bits"] != "10" {
		t.Errorf("first = %+v", got[0])
	}
	if v, ok := got[0].Params["client_max_window_bits"]; !ok || v != "" {
		t.Errorf("valueless parameter = %q, %v", v, ok)
	}
	if got[1].Name != "x-foo" || got[1].Params["a"] != "1" || got[2].Name != "second" {
		t.Errorf("rest = %+v", got[1:])
	}
}
