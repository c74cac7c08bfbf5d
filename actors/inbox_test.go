package actors_test

import (
	"bufio"
	"bytes"
	"compress/flate"
	"crypto/rand"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/wsactor/wsactor/actors"
	"github.com/wsactor/wsactor/transport"
)

// rawClient opens a WebSocket to url by hand (optionally offering
// permessage-deflate) and returns the socket; frames are then written raw.
func rawClient(t *testing.T, url string, deflate bool) net.Conn {
	t.Helper()
	addr := strings.TrimPrefix(url, "ws://")
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	req := "GET / HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
	if deflate {
		req += "Sec-WebSocket-Extensions: permessage-deflate; client_no_context_takeover\r\n"
	}
	_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(nc, req+"\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: %s", resp.Status)
	}
	if ext := resp.Header.Get("Sec-WebSocket-Extensions"); deflate != strings.Contains(ext, "permessage-deflate") {
		t.Fatalf("handshake: extensions %q, deflate offered %v", ext, deflate)
	}
	_ = nc.SetDeadline(time.Time{})
	return nc
}

// clientFrameHeader is the header of a final binary client frame of n bytes,
// masked with the all-zero key (so the payload goes out as is).
func clientFrameHeader(n int, compressed bool) []byte {
	b0 := byte(0x82)
	if compressed {
		b0 |= 0x40 // RSV1: permessage-deflate
	}
	h := []byte{b0, 0}
	switch {
	case n < 126:
		h[1] = byte(n)
	case n <= 0xffff:
		h[1] = 126
		h = binary.BigEndian.AppendUint16(h, uint16(n))
	default:
		h[1] = 127
		h = binary.BigEndian.AppendUint64(h, uint64(n))
	}
	h[1] |= 0x80
	return append(h, 0, 0, 0, 0)
}

// deflateMessage compresses p as one permessage-deflate message (RFC 7692
// 7.2.1: a sync flush with its final 00 00 ff ff removed).
func deflateMessage(t *testing.T, p []byte, level int) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := flate.NewWriter(&buf, level)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(p); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{0, 0, 0xff, 0xff})
}

// TestInboxBytesBoundsHeap: peers flood connections whose handler is stuck
// with 1 MiB messages (one byte under ReadLimit, so that four of them fill
// the default 4 MiB budget exactly): plain, compressed to about 1 KiB each
// (zeros), or incompressible (random bytes in stored deflate blocks). While
// the handlers are blocked and every reader waits for inbox room, the heap
// has grown by less than the documented bound per connection
// (max(InboxBytes, ReadLimit+1) + ReadLimit+1) plus a fixed slack; InboxLimit
// alone (8 messages here) would let each hold 9 MiB. Once the handlers
// resume, every message arrives whole and in order.
func TestInboxBytesBoundsHeap(t *testing.T) {
	for _, tt := range []struct {
		name            string
		deflate, random bool
	}{{"plain", false, false}, {"deflate", true, false}, {"deflate incompressible", true, true}} {
		t.Run(tt.name, func(t *testing.T) { testInboxBytesBoundsHeap(t, tt.deflate, tt.random) })
	}
}

func testInboxBytesBoundsHeap(t *testing.T, deflate, random bool) {
	const (
		conns      = 4
		msgs       = 12
		readLimit  = 1 << 20 // the default ReadLimit
		size       = readLimit - 1
		inboxBytes = 4 << 20 // the default InboxBytes
		slack      = 2 << 20 // in all: Message structs, mailboxes, an inflater
		perConn    = max(inboxBytes, readLimit+1) + readLimit + 1
	)
	type result struct {
		conn string
		seq  uint64
		ok   bool
	}
	opened := make(chan string, conns)
	results := make(chan result, conns*msgs)
	release := make(chan struct{})
	var releaseOnce sync.Once
	defer releaseOnce.Do(func() { close(release) })
	payload := make([]byte, size) // after an 8-byte sequence number
	if random {
		_, _ = rand.Read(payload)
	}
	opts := &actors.HandlerOptions{InboxLimit: 8, DisableReaderTurns: true} // InboxBytes: the default; read ahead
	if deflate {
		opts.Compression = transport.CompressionEnabled // servers default to off
	}
	_, url, _ := testServer(t, func() actor.Actor {
		return actor.ReceiveFunc(func(ctx actor.Context) {
			switch m := ctx.Message().(type) {
			case *actors.Opened:
				opened <- ctx.Self().Id
			case *actors.Message:
				<-release
				ok := len(m.Data) == size && bytes.Equal(m.Data[8:], payload[8:])
				results <- result{ctx.Self().Id, binary.BigEndian.Uint64(m.Data), ok}
			}
		})
	}, opts)

	waiting := make(chan string, 1024)
	defer actors.SetInboxWaitHook(func(c *actors.Conn, _, _ int) {
		select {
		case waiting <- c.ID():
		default:
		}
	})()

	// The frames: the shared payload after an 8-byte sequence number.
	var compressed [][]byte
	if deflate {
		msg := bytes.Clone(payload)
		level := flate.BestCompression
		if random {
			level = flate.NoCompression
		}
		for i := range msgs {
			binary.BigEndian.PutUint64(msg, uint64(i))
			c := deflateMessage(t, msg, level)
			compressed = append(compressed, append(clientFrameHeader(len(c), true), c...))
		}
		t.Logf("compressed frame: %d bytes for %d inflated", len(compressed[0]), size)
	}
	plainHeader := clientFrameHeader(size, false)

	clients := make([]net.Conn, conns)
	for i := range clients {
		clients[i] = rawClient(t, url, deflate)
		select {
		case <-opened:
		case <-time.After(5 * time.Second):
			t.Fatal("connection not opened")
		}
	}
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)

	writeErr := make(chan error, conns)
	for _, nc := range clients {
		go func() {
			for i := range msgs {
				var err error
				if deflate {
					_, err = nc.Write(compressed[i])
				} else {
					var seq [8]byte
					binary.BigEndian.PutUint64(seq[:], uint64(i))
					bufs := net.Buffers{plainHeader, seq[:], payload[8:]}
					_, err = bufs.WriteTo(nc)
				}
				if err != nil {
					writeErr <- err
					return
				}
			}
			writeErr <- nil
		}()
	}

	// Every reader waits for room: nothing more is read until a release.
	blocked := map[string]bool{}
	timeout := time.After(30 * time.Second)
	for len(blocked) < conns {
		select {
		case id := <-waiting:
			blocked[id] = true
		case <-timeout:
			t.Fatalf("only %d of %d readers waited for inbox room", len(blocked), conns)
		}
	}
	runtime.GC()
	var during runtime.MemStats
	runtime.ReadMemStats(&during)
	growth := int64(during.HeapInuse) - int64(before.HeapInuse)
	bound := int64(conns*perConn + slack)
	t.Logf("heap in use grew %.1f MiB with %d connections flooded (bound %.1f MiB)", float64(growth)/(1<<20), conns, float64(bound)/(1<<20))
	if growth > bound {
		t.Fatalf("heap grew %d bytes while flooded, bound %d", growth, bound)
	}

	releaseOnce.Do(func() { close(release) })
	next := map[string]uint64{}
	for range conns * msgs {
		select {
		case r := <-results:
			if !r.ok || r.seq != next[r.conn] {
				t.Fatalf("conn %s: message %d (intact %v), want %d", r.conn, r.seq, r.ok, next[r.conn])
			}
			next[r.conn]++
		case <-time.After(10 * time.Second):
			t.Fatalf("messages missing after release: got %v", next)
		}
	}
	for range conns {
		if err := <-writeErr; err != nil {
			t.Fatalf("client write: %v", err)
		}
	}
}
