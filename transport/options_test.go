package transport

import (
	"bytes"
	"compress/flate"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/wsactor/wsactor/internal/probe"
)

// Options are checked once, when the Acceptor or Dialer is built: a value no
// connection could use is an error there, not a silent default.
func TestOptionsRejectInvalidValues(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		accept *AcceptOptions
		dial   *DialOptions
		want   string
	}{
		{"compression level", &AcceptOptions{CompressionLevel: 12}, &DialOptions{CompressionLevel: 12}, "CompressionLevel 12"},
		{"no compression level", &AcceptOptions{CompressionLevel: flate.DefaultCompression}, &DialOptions{CompressionLevel: flate.DefaultCompression}, "CompressionLevel -1"},
		{"compression mode", &AcceptOptions{Compression: 7}, &DialOptions{Compression: 7}, "Compression 7"},
		{"overflow", &AcceptOptions{Overflow: 9}, &DialOptions{Overflow: 9}, "Overflow 9"},
		{"origin pattern", &AcceptOptions{OriginPatterns: []string{"[example.com"}}, nil, "origin pattern"},
		{"subprotocol", nil, &DialOptions{Subprotocols: []string{"a b"}}, "not an HTTP token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if tt.accept != nil {
				if _, err := NewAcceptor(tt.accept); err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Errorf("NewAcceptor: %v, want an error with %q", err, tt.want)
				}
			}
			if tt.dial != nil {
				if _, err := NewDialer(tt.dial); err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Errorf("NewDialer: %v, want an error with %q", err, tt.want)
				}
				if _, _, err := Dial(t.Context(), "ws://127.0.0.1:1/", tt.dial); err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Errorf("Dial: %v, want an error with %q", err, tt.want)
				}
			}
		})
	}
}

// Accept with options NewAcceptor refuses answers 500 and upgrades nothing.
func TestAcceptInvalidOptionsAnswers500(t *testing.T) {
	t.Parallel()
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	w := httptest.NewRecorder()
	if _, err := Accept(w, r, &AcceptOptions{CompressionLevel: 42}); err == nil {
		t.Fatal("Accept: nil error")
	}
	if w.Code != http.StatusInternalServerError {
		t.Errorf("status %d, want 500", w.Code)
	}
}

// The defaults are applied once, into the Acceptor and Dialer, and the
// caller's options are copied: changing them afterwards changes nothing.
func TestOptionsDefaultsAppliedOnce(t *testing.T) {
	t.Parallel()
	opts := &AcceptOptions{ReadLimit: 4096, Subprotocols: []string{"v1"}}
	a, err := NewAcceptor(opts)
	if err != nil {
		t.Fatal(err)
	}
	opts.ReadLimit, opts.Subprotocols[0] = 1, "changed"
	want := connConfig{
		ReadLimit: 4096, MessageFrames: 256, MessageTimeout: defaultMessageTimeout,
		WriteTimeout: defaultWriteTimeout, CloseTimeout: defaultCloseTimeout,
		Queue:       queueConfig{Messages: defaultQueueMsgs, Bytes: defaultQueueBytes},
		Compression: compressionConfig{Threshold: defaultCompressMin, Level: flate.BestSpeed},
		IdleReader:  defaultIdleReader,
		directOff:   directWritesOffByEnv,
	}
	if a.conn.writers == nil {
		t.Error("an Acceptor without a writer pool")
	}
	got := a.conn
	if got.readBuffer != defaultServerReadBuffer {
		t.Errorf("read buffer %d for woken readers, want %d", got.readBuffer, defaultServerReadBuffer)
	}
	got.writers, got.readBuffer = nil, 0
	if !reflect.DeepEqual(got, want) { // OnPong nil in both
		t.Errorf("acceptor conn settings %+v, want %+v", a.conn, want)
	}
	if a.o.HandshakeTimeout != defaultHandshake || a.o.ReadBufferSize != defaultServerReadBuffer || a.o.Subprotocols[0] != "v1" {
		t.Errorf("acceptor options %+v", a.o)
	}
	d, err := NewDialer(&DialOptions{CompressionLevel: flate.HuffmanOnly, Compression: CompressionDisabled})
	if err != nil {
		t.Fatal(err)
	}
	if d.conn.Compression.Level != flate.HuffmanOnly || d.conn.Compression.Mode != CompressionDisabled || d.o.ReadBufferSize != defaultClientReadBuffer {
		t.Errorf("dialer %+v %+v", d.conn, d.o)
	}
}

// A Frame written by connections with different compression levels carries
// each level's own encoding, compressed once per level, however many
// writers ask at once (it used to keep the first writer's level for all).
func TestFrameDeflatesOncePerLevel(t *testing.T) {
	payload := bytes.Repeat([]byte("wsactor compresses a broadcast once per level; "), 200)
	f := NewFrame(MessageText, payload)
	before := probe.Compressions.Load()
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			level := flate.BestSpeed
			if i%2 == 1 {
				level = flate.BestCompression
			}
			f.serverBytes(true, level)
		})
	}
	wg.Wait()
	if n := probe.Compressions.Load() - before; n != 2 {
		t.Fatalf("%d compressions for two levels, want 2", n)
	}
	for _, level := range []int{flate.BestSpeed, flate.BestCompression, flate.HuffmanOnly} {
		b, h := f.deflatedBytes(level)
		if got, want := b[h:], deflate(level, payload); !bytes.Equal(got, want) {
			t.Errorf("level %d: the frame's compressed payload is not that level's", level)
		}
		if b[0]&rsv1Bit == 0 {
			t.Errorf("level %d: RSV1 not set", level)
		}
		got, err := inflateMessage(b[h:])
		if err != nil || !bytes.Equal(got, payload) {
			t.Errorf("level %d: inflates to %d bytes (%v), want the payload", level, len(got), err)
		}
	}
}
