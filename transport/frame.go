package transport

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"math/rand/v2"
	"sync"
	"sync/atomic"

	"github.com/wsactor/wsactor/internal/probe"
)

// MessageType is the type of a data message.
type MessageType int

// Data message types (the RFC 6455 opcodes).
const (
	MessageText   MessageType = 1
	MessageBinary MessageType = 2
)

func (t MessageType) String() string {
	switch t {
	case MessageText:
		return "text"
	case MessageBinary:
		return "binary"
	}
	return "invalid"
}

// Opcodes used on the wire.
const (
	opContinuation = 0x0
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xa

	finBit  = 0x80
	rsv1Bit = 0x40
	maskBit = 0x80

	maxHeaderSize      = 14 // 2 + 8 length + 4 mask key
	maxControlPayload  = 125
	defaultCompressMin = 1024
)

// Frame is a message encoded for the wire once and written to any number of
// connections: the equivalent of gorilla's PreparedMessage, with its bytes
// available to the batching writer.
//
// The server encodings (plain, and permessage-deflate when a recipient
// negotiated it and the message is over that recipient's threshold) are each
// computed at most once, on first use, and then shared; the compressed one
// once per compression level its recipients use (CompressionLevel), so each
// connection writes its own level and a broadcast to connections of one level
// is compressed once. Because wsactor only negotiates deflate without context
// takeover, the compressed bytes are valid for every recipient. A Frame is
// immutable and safe for concurrent use.
type Frame struct {
	typ    MessageType
	op     byte
	plain  []byte // server encoding: header + payload
	hdrLen int    // length of plain's header; plain[hdrLen:] is the payload

	key string // conflation key; "" means none

	// deflated lists the compressed encodings made so far, one per
	// compression level asked for (almost always one); deflateMu serializes
	// making them, so each level is compressed once.
	deflated  atomic.Pointer[deflatedFrame]
	deflateMu sync.Mutex

	// sends counts the connections this frame was queued or written to, up
	// to 2: only a frame's first send may be written directly (direct.go),
	// so a broadcast's sender writes at most one socket itself and leaves
	// the rest to the connections' writers, which batch.
	sends atomic.Uint32
}

// MarkShared marks f as a broadcast, sent to many connections: no sender
// writes it to a socket itself (see [AcceptOptions.DisableDirectWrites]);
// each connection's writer does, batched with what else it has. A room's
// broadcast marks its frame; a frame sent in a loop of your own gets at most
// one direct write anyway (its first send). It returns f.
func (f *Frame) MarkShared() *Frame {
	f.sends.Store(2)
	return f
}

// firstSend reports whether this is the first time f is sent.
func (f *Frame) firstSend() bool {
	if f.sends.Load() != 0 {
		return false
	}
	return f.sends.CompareAndSwap(0, 1)
}

// deflatedFrame is a Frame's server encoding with RSV1 set, compressed at
// one level.
type deflatedFrame struct {
	level  int
	bytes  []byte // nil if not worth it
	hdrLen int
	next   *deflatedFrame
}

// NewKeyedFrame returns a data Frame with a conflation key. While a keyed
// frame waits in a connection's outbound queue, sending another frame with
// the same key replaces it in place (its send report, if any, gets
// ErrConflated): a slow client gets the latest state rather than a backlog.
// Use it for game state, cursors, and other "latest value wins" streams.
func NewKeyedFrame(typ MessageType, p []byte, key string) *Frame {
	f := NewFrame(typ, p)
	f.key = key
	return f
}

// Key returns the frame's conflation key ("" for none).
func (f *Frame) Key() string { return f.key }

// NewFrame returns a data Frame for p. p is copied, so the caller may reuse it.
func NewFrame(typ MessageType, p []byte) *Frame {
	op := byte(typ)
	if typ != MessageText && typ != MessageBinary {
		op = byte(MessageBinary)
		typ = MessageBinary
	}
	return newFrame(typ, op, p)
}

func newControlFrame(op byte, p []byte) *Frame {
	if len(p) > maxControlPayload {
		p = p[:maxControlPayload]
	}
	return newFrame(0, op, p)
}

func newFrame(typ MessageType, op byte, p []byte) *Frame {
	buf := make([]byte, 0, len(p)+10)
	buf = appendHeader(buf, op, false, len(p))
	f := &Frame{typ: typ, op: op, hdrLen: len(buf)}
	f.plain = append(buf, p...)
	return f
}

// Type returns the message type (zero for control frames).
func (f *Frame) Type() MessageType { return f.typ }

// Payload returns the frame's uncompressed payload. It must not be modified.
func (f *Frame) Payload() []byte { return f.plain[f.hdrLen:] }

// Len returns the payload length in bytes.
func (f *Frame) Len() int { return len(f.plain) - f.hdrLen }

func (f *Frame) isControl() bool { return f.op >= opClose }

// serverBytes returns the encoding a server writes to a peer; compress
// selects the permessage-deflate variant (nil result means "use plain").
func (f *Frame) serverBytes(compress bool, level int) []byte {
	if compress && !f.isControl() {
		if d, _ := f.deflatedBytes(level); d != nil {
			return d
		}
	}
	return f.plain
}

// deflatedBytes returns the server encoding compressed at level and its
// header length, computing it on the first use of that level.
func (f *Frame) deflatedBytes(level int) ([]byte, int) {
	if d := f.deflatedAt(level); d != nil {
		return d.bytes, d.hdrLen
	}
	f.deflateMu.Lock()
	defer f.deflateMu.Unlock()
	if d := f.deflatedAt(level); d != nil {
		return d.bytes, d.hdrLen
	}
	d := &deflatedFrame{level: level, next: f.deflated.Load()}
	if payload := deflate(level, f.Payload()); payload != nil {
		buf := make([]byte, 0, len(payload)+10)
		buf = appendHeader(buf, f.op, true, len(payload))
		d.hdrLen = len(buf)
		d.bytes = append(buf, payload...)
	}
	f.deflated.Store(d)
	return d.bytes, d.hdrLen
}

// deflatedAt returns the encoding compressed at level, or nil if none has
// been made yet.
func (f *Frame) deflatedAt(level int) *deflatedFrame {
	for d := f.deflated.Load(); d != nil; d = d.next {
		if d.level == level {
			return d
		}
	}
	return nil
}

// appendClient appends the masked client encoding of f to dst.
func (f *Frame) appendClient(dst []byte, compress bool, level int) []byte {
	payload, rsv := f.Payload(), false
	if compress && !f.isControl() {
		if d, h := f.deflatedBytes(level); d != nil {
			payload, rsv = d[h:], true
		}
	}
	hdrStart := len(dst)
	dst = appendHeader(dst, f.op, rsv, len(payload))
	dst[hdrStart+1] |= maskBit
	var key [4]byte
	binary.LittleEndian.PutUint32(key[:], rand.Uint32())
	dst = append(dst, key[:]...)
	start := len(dst)
	dst = append(dst, payload...)
	maskBytes(key, dst[start:])
	return dst
}

func appendHeader(dst []byte, op byte, rsv1 bool, n int) []byte {
	b0 := finBit | op
	if rsv1 {
		b0 |= rsv1Bit
	}
	switch {
	case n < 126:
		return append(dst, b0, byte(n))
	case n <= 0xffff:
		return append(dst, b0, 126, byte(n>>8), byte(n))
	}
	dst = append(dst, b0, 127)
	return binary.BigEndian.AppendUint64(dst, uint64(n))
}

// maskBytes XORs b with the repeating 4-byte key, eight bytes at a time.
func maskBytes(key [4]byte, b []byte) {
	k32 := binary.LittleEndian.Uint32(key[:])
	k64 := uint64(k32) | uint64(k32)<<32
	i := 0
	for ; i+8 <= len(b); i += 8 {
		v := binary.LittleEndian.Uint64(b[i:])
		binary.LittleEndian.PutUint64(b[i:], v^k64)
	}
	for ; i < len(b); i++ {
		b[i] ^= key[i&3]
	}
}

// flateWriters pools compressors per level (index level-flate.HuffmanOnly).
// A flate.Writer is over 1 MB (measured with Go 1.26 at level 1), so they are
// never kept per connection.
var flateWriters [flate.BestCompression - flate.HuffmanOnly + 1]sync.Pool

// deflate compresses p as one permessage-deflate message without context
// takeover (RFC 7692 section 7.2.1): a sync flush with its trailing
// 0x00 0x00 0xff 0xff removed. It returns nil if p is empty.
func deflate(level int, p []byte) []byte {
	if len(p) == 0 {
		return nil
	}
	if level < flate.HuffmanOnly || level > flate.BestCompression || level == flate.NoCompression {
		level = flate.BestSpeed
	}
	probe.Compressions.Add(1) // tests prove compress-once with it
	var buf bytes.Buffer
	buf.Grow(len(p)/2 + 64)
	pool := &flateWriters[level-flate.HuffmanOnly]
	fw, _ := pool.Get().(*flate.Writer)
	if fw == nil {
		fw, _ = flate.NewWriter(&buf, level)
	} else {
		fw.Reset(&buf)
	}
	_, _ = fw.Write(p) // writes to a bytes.Buffer cannot fail
	_ = fw.Flush()
	pool.Put(fw)
	out := buf.Bytes()
	if len(out) < 4 {
		return nil
	}
	return out[:len(out)-4]
}
