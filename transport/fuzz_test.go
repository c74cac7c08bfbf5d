package transport

// Fuzz targets for the parsers and encoders of untrusted input that transport
// owns (gorilla/websocket parses the frames themselves). FuzzClientIP and
// FuzzParseExtensions are in clientip_test.go. Seed corpora: the f.Add calls
// below and testdata/fuzz/<FuzzName>/. .ci/run fuzzes every target for a few
// seconds; to fuzz one for longer:
//
//	go test -run '^$' -fuzz '^FuzzReadMessage$' -fuzztime 1m ./transport

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzCheckOrigin: checkOrigin never panics, only ever refuses with
// ErrOriginNotAllowed, always allows requests without an Origin (non-browser
// clients) and origins on the request's own host, and allows another origin
// only when a pattern matches its host.
func FuzzCheckOrigin(f *testing.F) {
	f.Add("", "example.com", "")
	f.Add("https://example.com", "example.com", "")
	f.Add("HTTP://Example.COM:8080", "example.com:8080", "")
	f.Add("http://evil.example", "example.com", "")
	f.Add("https://app.example.com", "example.com", "*.example.com")
	f.Add("http://trusted.test:8080", "127.0.0.1:1", "trusted.test:8080,[")
	f.Add("null", "example.com", "*")
	f.Add("http://user@evil.example@example.com", "example.com", "")
	f.Add("http://[::1]:80", "[::1]:80", "")
	f.Add("//example.com", "example.com", "\\")
	f.Add("http://exa%6dple.com", "example.com", "exa?ple.com")
	f.Fuzz(func(t *testing.T, origin, host, patterns string) {
		var ps []string
		if patterns != "" {
			ps = strings.Split(patterns, ",")
		}
		r := &http.Request{Host: host, Header: http.Header{}}
		if origin != "" {
			r.Header.Set("Origin", origin)
		}
		err := checkOrigin(r, ps)
		if err != nil && !errors.Is(err, ErrOriginNotAllowed) {
			t.Fatalf("error %v does not wrap ErrOriginNotAllowed", err)
		}
		if origin == "" {
			if err != nil {
				t.Fatalf("request without Origin refused: %v", err)
			}
			return
		}
		u, perr := url.Parse(origin)
		wellFormed := perr == nil && u.Host != ""
		sameHost := wellFormed && strings.EqualFold(u.Host, host)
		if sameHost && err != nil {
			t.Fatalf("same-host origin %q on host %q refused: %v", origin, host, err)
		}
		if wellFormed && slices.Contains(ps, "*") && err != nil {
			t.Fatalf("origin %q refused although \"*\" allows every origin: %v", origin, err)
		}
		if err == nil && !sameHost {
			if !wellFormed {
				t.Fatalf("malformed origin %q allowed", origin)
			}
			matched := false
			for _, p := range ps {
				ok, _ := path.Match(strings.ToLower(p), strings.ToLower(u.Host))
				matched = matched || ok
			}
			if !matched {
				t.Fatalf("cross origin %q on host %q allowed by no pattern of %q", origin, host, ps)
			}
		}
		// The browser's own origin for host is always allowed.
		for _, scheme := range []string{"http", "https"} {
			own := scheme + "://" + host
			if u, err := url.Parse(own); err != nil || u.Host != host || host == "" {
				continue
			}
			r.Header.Set("Origin", own)
			if err := checkOrigin(r, ps); err != nil {
				t.Fatalf("own origin %q on host %q refused: %v", own, host, err)
			}
		}
	})
}

// FuzzSelectSubprotocol: the server's choice from the client's
// Sec-WebSocket-Protocol header (as gorilla splits it) is "" or a
// subprotocol in both lists, the first the client offered that the server
// supports, and our client accepts that choice and nothing it did not offer.
func FuzzSelectSubprotocol(f *testing.F) {
	f.Add("v1, v2", "v2,v1", "v3")
	f.Add("chat", "chat", "chat")
	f.Add("x, y", "v1", "x")
	f.Add("", "v1", "v1")
	f.Add(" , ,v1", ",v1", "")
	f.Add("a,,b\nc", "b,c", "c")
	f.Add("\"v1\"", "v1,\"v1\"", "\"v1\"")
	f.Fuzz(func(t *testing.T, header, supported, other string) {
		r := &http.Request{Header: http.Header{}}
		for _, line := range strings.Split(header, "\n") {
			r.Header.Add("Sec-WebSocket-Protocol", line)
		}
		offered := requestSubprotocols(r.Header)
		sup := strings.Split(supported, ",")
		got := selectSubprotocol(offered, sup)
		if got != "" && (!slices.Contains(offered, got) || !slices.Contains(sup, got)) {
			t.Fatalf("chose %q, not in both %q and %q", got, offered, sup)
		}
		for _, o := range offered {
			if slices.Contains(sup, o) {
				if o != got {
					t.Fatalf("chose %q, but %q was offered first and is supported", got, o)
				}
				break
			}
		}
		// Our client accepts what it offered and refuses anything else.
		h := http.Header{}
		if got != "" {
			h.Set("Sec-WebSocket-Protocol", got)
		}
		if err := checkServerChoice(h, offered, false, false); err != nil {
			t.Fatalf("client refused the server's choice %q of %q: %v", got, offered, err)
		}
		h.Set("Sec-WebSocket-Protocol", other)
		if err := checkServerChoice(h, offered, false, false); (err == nil) != (other == "" || slices.Contains(offered, other)) {
			t.Fatalf("client offering %q, server choosing %q: %v", offered, other, err)
		}
	})
}

// FuzzCloseFrame: the close payload we send (closePayload, truncateUTF8 and
// the control frame around it) fits a control frame, carries a code a peer
// accepts (the one asked for when it may be sent, 1011 otherwise), and a
// reason that is a prefix of the one asked for: whole when it fits, valid
// UTF-8 when it was, and cut by less than one character.
func FuzzCloseFrame(f *testing.F) {
	f.Add(uint16(1000), "", 0)
	f.Add(uint16(1001), "going away", 3)
	f.Add(uint16(1005), "no status", 0)
	f.Add(uint16(1006), "abnormal", 1)
	f.Add(uint16(999), "too low", 2)
	f.Add(uint16(1015), "tls", 0)
	f.Add(uint16(5000), "too high", 1)
	f.Add(uint16(4999), strings.Repeat("é", 100), 123)
	f.Add(uint16(1008), strings.Repeat("x", 122)+"€", 123)
	f.Add(uint16(3000), strings.Repeat("\x80", 200), 50)
	f.Add(uint16(1011), strings.Repeat("😀", 40), 7)
	f.Fuzz(func(t *testing.T, code uint16, reason string, n int) {
		p := closePayload(StatusCode(code), reason)
		if code == uint16(StatusNoStatusReceived) {
			if p != nil {
				t.Fatalf("1005 gave payload %x, want none", p)
			}
		} else {
			if len(p) < 2 || len(p) > maxControlPayload {
				t.Fatalf("payload of %d bytes", len(p))
			}
			got := StatusCode(binary.BigEndian.Uint16(p))
			want := StatusCode(code)
			if !validSendCode(want) {
				want = StatusInternalError
			}
			if got != want || !validReceivedCode(got) {
				t.Fatalf("code %d sent as %d, want %d", code, got, want)
			}
			r := string(p[2:])
			if !strings.HasPrefix(reason, r) {
				t.Fatalf("reason %q is not a prefix of %q", r, reason)
			}
			if len(reason) <= maxControlPayload-2 && r != reason {
				t.Fatalf("reason %q cut to %q although it fits", reason, r)
			}
			if utf8.ValidString(reason) {
				if !utf8.ValidString(r) {
					t.Fatalf("valid reason %q cut to invalid %q", reason, r)
				}
				if len(reason) > maxControlPayload-2 && len(r) < maxControlPayload-2-(utf8.UTFMax-1) {
					t.Fatalf("reason cut to %d bytes, more than one character short of %d", len(r), maxControlPayload-2)
				}
			}
		}

		// The close frame on the wire is never compressed or masked by a
		// server and is at most 127 bytes.
		fr := newControlFrame(opClose, p)
		wire := fr.serverBytes(true, flate.BestSpeed)
		if !bytes.Equal(wire, append([]byte{0x80 | opClose, byte(len(p))}, p...)) {
			t.Fatalf("close frame % x for payload % x", wire, p)
		}

		// truncateUTF8 on its own (its precondition: 0 <= n < len(s)).
		if len(reason) == 0 {
			return
		}
		if n < 0 {
			n = -(n + 1)
		}
		n %= len(reason)
		s := truncateUTF8(reason, n)
		if len(s) > n || !strings.HasPrefix(reason, s) {
			t.Fatalf("truncateUTF8(%q, %d) = %q", reason, n, s)
		}
		if utf8.ValidString(reason) && (!utf8.ValidString(s) || n-len(s) >= utf8.UTFMax) {
			t.Fatalf("truncateUTF8(%q, %d) = %q: not valid, or cut by more than one character", reason, n, s)
		}
	})
}

// parsedFrame is one frame as parseFrame read it.
type parsedFrame struct {
	b0      byte
	masked  bool
	payload []byte // unmasked
}

// parseFrame is a strict parser of exactly one frame in b: it also checks that
// the length uses the shortest encoding (RFC 6455 5.2) and that nothing
// follows the frame.
func parseFrame(b []byte) (parsedFrame, error) {
	if len(b) < 2 {
		return parsedFrame{}, errors.New("short header")
	}
	f := parsedFrame{b0: b[0], masked: b[1]&0x80 != 0}
	n, rest := uint64(b[1]&0x7f), b[2:]
	switch n {
	case 126:
		if len(rest) < 2 {
			return f, errors.New("short 16-bit length")
		}
		n, rest = uint64(binary.BigEndian.Uint16(rest)), rest[2:]
		if n < 126 {
			return f, fmt.Errorf("length %d in 16 bits", n)
		}
	case 127:
		if len(rest) < 8 {
			return f, errors.New("short 64-bit length")
		}
		n, rest = binary.BigEndian.Uint64(rest), rest[8:]
		if n <= 0xffff || n>>63 != 0 {
			return f, fmt.Errorf("length %d in 64 bits", n)
		}
	}
	var key []byte
	if f.masked {
		if len(rest) < 4 {
			return f, errors.New("short mask key")
		}
		key, rest = rest[:4], rest[4:]
	}
	if uint64(len(rest)) != n {
		return f, fmt.Errorf("length %d, but %d bytes follow", n, len(rest))
	}
	f.payload = bytes.Clone(rest)
	for i := range f.payload {
		if key != nil {
			f.payload[i] ^= key[i&3]
		}
	}
	return f, nil
}

// inflateStrict inflates one permessage-deflate message: the payload with
// 00 00 ff ff appended (RFC 7692 7.2.2). flate stops at the sync marker
// without a final block, so it reads exactly want+1 bytes at most and must
// find exactly len(want).
func inflateStrict(p []byte, want int) ([]byte, error) {
	r := flate.NewReader(io.MultiReader(bytes.NewReader(p), bytes.NewReader([]byte{0, 0, 0xff, 0xff})))
	defer r.Close()
	out := make([]byte, want+1)
	n, err := io.ReadFull(r, out)
	if err != io.ErrUnexpectedEOF && err != io.EOF && !(err == nil && n == want+1) {
		return nil, err
	}
	return out[:n], nil
}

// FuzzFrameRoundTrip: every encoding of a Frame (the shared server bytes,
// plain or compressed, and the masked client bytes appended to a buffer)
// parses back, with a strict parser, to a final frame with the right opcode,
// RSV1 exactly when compressed, no other RSV bits, a mask exactly on client
// frames, and the input payload (control payloads cut to 125 bytes, never
// compressed). Encoding never changes the Frame or the buffer's prefix.
func FuzzFrameRoundTrip(f *testing.F) {
	f.Add([]byte("hello"), uint8(1), false, int8(0), []byte{})
	f.Add([]byte("hello hello hello hello"), uint8(2), true, int8(9), []byte("prefix"))
	f.Add([]byte{}, uint8(1), true, int8(1), []byte{})
	f.Add(bytes.Repeat([]byte{0}, 125), uint8(0x80), true, int8(1), []byte{})
	f.Add(bytes.Repeat([]byte{1}, 126), uint8(0x81), false, int8(-2), []byte{1})
	f.Add(bytes.Repeat([]byte("ab"), 0xffff/2+1), uint8(7), true, int8(-1), []byte{})
	f.Add(bytes.Repeat([]byte("z"), 0x10000), uint8(2), false, int8(5), []byte{0xff})
	f.Add([]byte("\xff\xfe"), uint8(0x82), true, int8(127), []byte{})
	f.Fuzz(func(t *testing.T, payload []byte, kind uint8, compress bool, level int8, prefix []byte) {
		var (
			fr      *Frame
			op      byte
			want    = payload
			control = kind >= 0x80
		)
		if control {
			op = []byte{opClose, opPing, opPong}[int(kind)%3]
			fr = newControlFrame(op, payload)
			want = payload[:min(len(payload), maxControlPayload)]
		} else {
			typ := MessageType(kind)
			fr = NewFrame(typ, payload)
			op = byte(MessageBinary)
			if typ == MessageText {
				op = byte(MessageText)
			}
			if fr.Type() != MessageType(op) {
				t.Fatalf("NewFrame(%d) has type %v", kind, fr.Type())
			}
		}
		if !bytes.Equal(fr.Payload(), want) || fr.Len() != len(want) {
			t.Fatal("Payload() differs from the input")
		}
		wantRSV1 := compress && !control && len(want) > 0

		check := func(who string, b []byte, masked bool) {
			t.Helper()
			pf, err := parseFrame(b)
			if err != nil {
				t.Fatalf("%s frame: %v", who, err)
			}
			rsv1 := pf.b0&rsv1Bit != 0
			if pf.b0&finBit == 0 || pf.b0&0x30 != 0 || pf.b0&0x0f != op || rsv1 != wantRSV1 || pf.masked != masked {
				t.Fatalf("%s frame: b0=%#x masked=%v; want FIN, opcode %d, rsv1=%v, masked=%v", who, pf.b0, pf.masked, op, wantRSV1, masked)
			}
			got := pf.payload
			if rsv1 {
				if got, err = inflateStrict(pf.payload, len(want)); err != nil {
					t.Fatalf("%s frame: inflate: %v", who, err)
				}
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("%s frame: payload of %d bytes, want %d", who, len(got), len(want))
			}
		}

		server := fr.serverBytes(compress, int(level))
		check("server", server, false)
		if again := fr.serverBytes(compress, int(level)); &again[0] != &server[0] {
			t.Fatal("serverBytes encoded the frame twice")
		}
		keep := bytes.Clone(server)
		buf := append(make([]byte, 0, len(prefix)+len(want)+maxHeaderSize), prefix...)
		client := fr.appendClient(buf, compress, int(level))
		if !bytes.Equal(client[:len(prefix)], prefix) {
			t.Fatal("appendClient changed the buffer's prefix")
		}
		check("client", client[len(prefix):], true)
		if !bytes.Equal(server, keep) || !bytes.Equal(fr.Payload(), want) {
			t.Fatal("appendClient changed the shared server bytes")
		}
	})
}

// chunkReader hands out data in chunks of the given sizes (0: a read of
// nothing), then the rest at once, then io.EOF, or err when set; the last
// chunk may come with the EOF.
type chunkReader struct {
	data    []byte
	chunks  []byte
	eofLast bool
	err     error
	read    int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		return 0, io.EOF
	}
	n := len(r.data)
	if len(r.chunks) > 0 {
		n, r.chunks = int(r.chunks[0]), r.chunks[1:]
	}
	n = min(n, len(p), len(r.data))
	copy(p, r.data[:n])
	r.data, r.read = r.data[n:], r.read+n
	if len(r.data) == 0 && r.eofLast {
		if r.err != nil {
			return n, r.err
		}
		return n, io.EOF
	}
	return n, nil
}

var errFuzzRead = errors.New("read failed")

// FuzzReadMessage: readMessage over any chunking returns ErrMessageTooBig
// exactly when the message is longer than a non-negative limit, else the
// exact bytes (or the reader's error), and never reads more than the limit
// (plus one byte, or its first 512-byte buffer) from the reader: a
// compressed message is never inflated past the limit.
func FuzzReadMessage(f *testing.F) {
	f.Add([]byte("hello"), []byte{1, 2}, int64(-1), false, false)
	f.Add([]byte("hello"), []byte{}, int64(5), true, false)
	f.Add([]byte("hello"), []byte{0, 0, 3}, int64(4), false, false)
	f.Add([]byte{}, []byte{}, int64(0), false, false)
	f.Add(bytes.Repeat([]byte{7}, 513), []byte{255, 255, 3}, int64(512), true, false)
	f.Add(bytes.Repeat([]byte{7}, 2000), []byte{}, int64(1024), false, true)
	f.Add(bytes.Repeat([]byte{7}, 2000), []byte{100}, int64(1<<40), false, false)
	// limit+1 overflowed: every message over 512 bytes was refused.
	f.Add(bytes.Repeat([]byte{7}, 1000), []byte{}, int64(math.MaxInt64), false, false)
	f.Fuzz(func(t *testing.T, data, chunks []byte, limit int64, eofLast, fail bool) {
		r := &chunkReader{data: data, chunks: chunks, eofLast: eofLast}
		if fail {
			r.err = errFuzzRead
		}
		got, err := readMessage(r, limit)
		tooBig := limit >= 0 && int64(len(data)) > limit
		switch {
		case tooBig:
			if !errors.Is(err, ErrMessageTooBig) {
				t.Fatalf("%d bytes, limit %d: got %d bytes, %v; want ErrMessageTooBig", len(data), limit, len(got), err)
			}
		case fail:
			if err != errFuzzRead {
				t.Fatalf("%d bytes, limit %d: got %v, want the reader's error", len(data), limit, err)
			}
		case err != nil || !bytes.Equal(got, data):
			t.Fatalf("%d bytes, limit %d: got %d bytes, %v", len(data), limit, len(got), err)
		}
		if limit >= 0 && limit < math.MaxInt64 && int64(r.read) > max(limit+1, 512) {
			t.Fatalf("read %d bytes from the reader with a limit of %d", r.read, limit)
		}
	})
}

// FuzzUTF8Stream: checking a text message fragment by fragment (utf8Prefix,
// as the reader does) accepts exactly what utf8.Valid accepts for the whole
// message, wherever the fragments are cut, and refuses an invalid message no
// later than the fragment that shows it.
func FuzzUTF8Stream(f *testing.F) {
	f.Add([]byte("héllo wörld €𝄞"), []byte{1, 2, 3})
	f.Add([]byte("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited"), []byte{5, 1})
	f.Add([]byte("\xf4\x90\x80\x80"), []byte{1, 1, 1})
	f.Add([]byte("\xf0\x9f\x98"), []byte{2})
	f.Add([]byte("\xed\xa0\x80"), []byte{1})
	f.Add([]byte("\xc0\xaf"), []byte{1})
	f.Fuzz(func(t *testing.T, msg, cuts []byte) {
		done, ok := 0, true
		end := 0
		for i := 0; ok && end < len(msg); i++ {
			step := len(msg) - end
			if i < len(cuts) {
				step = min(step, int(cuts[i]%8)+1)
			}
			end += step
			done, ok = utf8Prefix(msg[:end], done)
			if ok != extendable(msg[:end]) {
				t.Fatalf("%q: utf8Prefix says %v, but extendable to valid UTF-8 is %v", msg[:end], ok, !ok)
			}
		}
		whole := ok && done == len(msg)
		if whole != utf8.Valid(msg) {
			t.Fatalf("%q cut by %v: streamed %v, utf8.Valid %v", msg, cuts, whole, utf8.Valid(msg))
		}
	})
}

// extendable reports whether some bytes appended to p make it valid UTF-8.
// Only the second byte's range depends on the first, so trying the edges of
// every second-byte range, then 0x80s, is exhaustive.
func extendable(p []byte) bool {
	if utf8.Valid(p) {
		return true
	}
	for k := 1; k <= 3; k++ {
		for _, b := range []byte{0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf} {
			s := append(append([]byte(nil), p...), b, 0x80, 0x80)
			if utf8.Valid(s[:len(p)+k]) {
				return true
			}
		}
	}
	return false
}

// FuzzInflateTakeover: messages a peer compressed as one deflate stream
// (context takeover: each may refer to the ones before, up to 32 KiB back)
// inflate to exactly what was compressed when each is inflated alone with
// the window of what the earlier ones inflated to, as the client does for
// a server that keeps its context; and the window is always the last 32 KiB
// of that output.
func FuzzInflateTakeover(f *testing.F) {
	f.Add([]byte("the quick brown fox, the quick brown fox"), []byte{5, 20, 0, 7}, int8(6))
	f.Add(bytes.Repeat([]byte("abc"), 30000), []byte{200, 255, 3}, int8(9))
	f.Add([]byte{}, []byte{}, int8(1))
	f.Add(bytes.Repeat([]byte{0}, 70000), []byte{0, 0}, int8(-2))
	f.Fuzz(func(t *testing.T, data, cuts []byte, level int8) {
		lv := int(level)%11 - 2 // -2 (HuffmanOnly) to 8
		if lv == -1 || lv == 0 {
			lv = 1
		}
		var out bytes.Buffer
		fw, err := flate.NewWriter(&out, lv)
		if err != nil {
			t.Skip()
		}
		// Cut data into messages: each cut byte is a length, scaled so
		// that messages can be longer than the window.
		var msgs [][]byte
		rest := data
		for _, c := range cuts {
			n := min(len(rest), int(c)*int(c))
			msgs = append(msgs, rest[:n])
			rest = rest[n:]
		}
		msgs = append(msgs, rest)
		window := make([]byte, 0, windowSize)
		var all []byte
		for i, m := range msgs {
			out.Reset()
			_, _ = fw.Write(m)
			_ = fw.Flush()
			z := bytes.TrimSuffix(out.Bytes(), []byte{0, 0, 0xff, 0xff})
			got, err := inflate(append(bytes.Clone(z), deflateTail...), -1, window)
			if err != nil || !bytes.Equal(got, m) {
				t.Fatalf("message %d of %d (%d bytes): got %d bytes, %v", i, len(msgs), len(m), len(got), err)
			}
			window = slideWindow(window, got)
			all = append(all, m...)
			if want := all[max(0, len(all)-windowSize):]; !bytes.Equal(window, want) {
				t.Fatalf("window after message %d: %d bytes, want the last %d", i, len(window), len(want))
			}
		}
	})
}
