package transport

import (
	"compress/flate"
	"time"
)

// OverflowPolicy says what a full outbound queue does with one more data
// message. Control frames (close, ping, pong) are never dropped.
type OverflowPolicy int

const (
	// OverflowDisconnect closes the connection with StatusTryAgainLater and
	// the reason "send queue full". It is the default: a client that cannot
	// keep up is told to reconnect instead of silently missing messages.
	OverflowDisconnect OverflowPolicy = iota
	// OverflowDropNewest refuses the new message with ErrQueueFull.
	OverflowDropNewest
	// OverflowDropOldest evicts the oldest queued messages (reporting
	// ErrQueueFull for each) until the new one fits.
	OverflowDropOldest
)

func (p OverflowPolicy) String() string {
	switch p {
	case OverflowDisconnect:
		return "disconnect"
	case OverflowDropNewest:
		return "drop-newest"
	case OverflowDropOldest:
		return "drop-oldest"
	}
	return "invalid"
}

// QueueOptions bounds a connection's outbound queue. The zero value is valid.
type QueueOptions struct {
	// Messages is the most data messages queued for writing.
	// Zero means 1024.
	Messages int
	// Bytes is the most payload bytes queued for writing (a single message
	// larger than Bytes is still accepted into an empty queue).
	// Zero means 4 MiB.
	Bytes int
	// Policy is applied when a message does not fit. The zero value is
	// OverflowDisconnect.
	Policy OverflowPolicy
}

// CompressionMode selects permessage-deflate (RFC 7692) negotiation.
type CompressionMode int

const (
	// CompressionDefault is off for servers and on for clients, as in Node's ws.
	CompressionDefault CompressionMode = iota
	// CompressionEnabled negotiates permessage-deflate when the peer offers or
	// accepts it.
	CompressionEnabled
	// CompressionDisabled never negotiates it.
	CompressionDisabled
)

// Compression configures permessage-deflate. The zero value is valid.
//
// Only the "no context takeover" variant is negotiated: every message is
// compressed on its own, which costs some ratio but makes one compressed frame
// valid for every recipient of a broadcast and keeps no compressor (about
// 1 MB each) per connection.
type Compression struct {
	Mode CompressionMode
	// Threshold is the smallest payload, in bytes, that is compressed; smaller
	// messages go out uncompressed. Zero means 1024 (as ws); a negative value
	// compresses every non-empty message.
	Threshold int
	// Level is the compress/flate level, 1 (flate.BestSpeed) to 9
	// (flate.BestCompression), or -2 (flate.HuffmanOnly). Zero means
	// flate.BestSpeed.
	Level int
}

// ConnOptions are the per-connection settings shared by [AcceptOptions] and
// [DialOptions]. The zero value is valid.
type ConnOptions struct {
	// ReadLimit is the largest message accepted from the peer, in bytes,
	// after decompression. A larger message closes the connection with
	// StatusMessageTooBig. Zero means 1 MiB; a negative value means no limit.
	ReadLimit int64
	// MessageFrames is the most frames one message may take to arrive,
	// counting the control frames the peer sends while it is under way; a
	// message with more closes the connection with StatusMessageTooBig
	// (ErrTooManyFrames). It bounds the work of assembling one message from
	// tiny or empty fragments, which ReadLimit alone does not. Zero means
	// ReadLimit/16 (65,536 for the default 1 MiB), at least 64, or 1<<20
	// when there is no read limit.
	MessageFrames int
	// MessageTimeout is how long one message may take from its first frame
	// to its last; a slower one closes the connection with
	// StatusPolicyViolation (ErrMessageTimeout). It is checked whenever
	// bytes arrive, so a peer that starts a message and then trickles
	// fragments, pings or payload bytes cannot hold the connection open;
	// a peer that goes silent instead is the heartbeat's to end. Zero
	// means 60s.
	MessageTimeout time.Duration
	// WriteTimeout bounds each write to the socket; a write that takes longer
	// closes the connection. Zero means 10s.
	WriteTimeout time.Duration
	// CloseTimeout is how long to wait for the peer's close frame after
	// sending ours (and for the TCP connection to end after the closing
	// handshake). Zero means 5s.
	CloseTimeout time.Duration
	// Queue bounds the outbound queue.
	Queue QueueOptions
	// Compression configures permessage-deflate.
	Compression Compression
}

const (
	defaultReadLimit    = 1 << 20
	defaultWriteTimeout = 10 * time.Second
	defaultCloseTimeout = 5 * time.Second
	defaultQueueMsgs    = 1024
	defaultQueueBytes   = 4 << 20
	defaultHandshake    = 10 * time.Second

	defaultMessageTimeout = 60 * time.Second
	// defaultReadBuffer is the read buffer of a connection built without one.
	defaultReadBuffer = 1024
)

func (o ConnOptions) withDefaults() ConnOptions {
	if o.ReadLimit == 0 {
		o.ReadLimit = defaultReadLimit
	}
	if o.MessageFrames <= 0 {
		switch {
		case o.ReadLimit < 0:
			o.MessageFrames = 1 << 20
		default:
			o.MessageFrames = int(max(o.ReadLimit/16, 64))
		}
	}
	if o.MessageTimeout <= 0 {
		o.MessageTimeout = defaultMessageTimeout
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = defaultWriteTimeout
	}
	if o.CloseTimeout <= 0 {
		o.CloseTimeout = defaultCloseTimeout
	}
	if o.Queue.Messages <= 0 {
		o.Queue.Messages = defaultQueueMsgs
	}
	if o.Queue.Bytes <= 0 {
		o.Queue.Bytes = defaultQueueBytes
	}
	if o.Compression.Threshold == 0 {
		o.Compression.Threshold = defaultCompressMin
	}
	if o.Compression.Level == 0 || o.Compression.Level < flate.HuffmanOnly || o.Compression.Level > flate.BestCompression {
		o.Compression.Level = flate.BestSpeed
	}
	return o
}
