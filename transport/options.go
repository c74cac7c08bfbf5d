package transport

import (
	"compress/flate"
	"fmt"
	"os"
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

// connConfig is what a Conn keeps of its settings, the same on both sides:
// [AcceptOptions] and [DialOptions] hold them as fields of their own
// (documented on AcceptOptions), and [NewAcceptor] or [NewDialer] checks
// them and applies their defaults once.
type connConfig struct {
	ReadLimit      int64
	MessageFrames  int
	MessageTimeout time.Duration
	WriteTimeout   time.Duration
	CloseTimeout   time.Duration
	Queue          queueConfig
	Compression    compressionConfig
	OnPong         func(rtt time.Duration)
	IdleReader     time.Duration

	directOff  bool        // no direct writes (direct.go)
	writers    *writerPool // nil: a plain goroutine per writer run (writers.go)
	readBuffer int         // ReadBufferSize: the buffer a woken reader gets (idle.go)
}

// queueConfig bounds a connection's outbound queue.
type queueConfig struct {
	Messages int
	Bytes    int
	Policy   OverflowPolicy
}

// compressionConfig configures permessage-deflate.
type compressionConfig struct {
	Mode      CompressionMode
	Threshold int
	Level     int
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

// prepare checks c and applies its defaults.
func (c connConfig) prepare() (connConfig, error) {
	switch c.Queue.Policy {
	case OverflowDisconnect, OverflowDropNewest, OverflowDropOldest:
	default:
		return c, fmt.Errorf("transport: invalid Overflow %d", int(c.Queue.Policy))
	}
	switch c.Compression.Mode {
	case CompressionDefault, CompressionEnabled, CompressionDisabled:
	default:
		return c, fmt.Errorf("transport: invalid Compression %d", int(c.Compression.Mode))
	}
	switch l := c.Compression.Level; {
	case l == 0:
		c.Compression.Level = flate.BestSpeed
	case l == flate.HuffmanOnly || l >= flate.BestSpeed && l <= flate.BestCompression:
	default:
		return c, fmt.Errorf("transport: invalid CompressionLevel %d: want 1 to 9, or -2 (flate.HuffmanOnly)", l)
	}
	if c.ReadLimit == 0 {
		c.ReadLimit = defaultReadLimit
	}
	if c.MessageFrames <= 0 {
		switch {
		case c.ReadLimit < 0:
			c.MessageFrames = 1 << 20
		default:
			c.MessageFrames = int(max(c.ReadLimit/16, 64))
		}
	}
	if c.IdleReader == 0 {
		c.IdleReader = defaultIdleReader
	}
	if c.MessageTimeout <= 0 {
		c.MessageTimeout = defaultMessageTimeout
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = defaultWriteTimeout
	}
	if c.CloseTimeout <= 0 {
		c.CloseTimeout = defaultCloseTimeout
	}
	if c.Queue.Messages <= 0 {
		c.Queue.Messages = defaultQueueMsgs
	}
	if c.Queue.Bytes <= 0 {
		c.Queue.Bytes = defaultQueueBytes
	}
	if c.Compression.Threshold == 0 {
		c.Compression.Threshold = defaultCompressMin
	}
	return c, nil
}

// directWritesOffByEnv is AcceptOptions.DisableDirectWrites's default:
// WSACTOR_DIRECT_WRITES=off turns direct writes off (CI runs both paths).
var directWritesOffByEnv = os.Getenv("WSACTOR_DIRECT_WRITES") == "off"

// defaultIdleReader is IdleReader's default: 1s, or what the environment
// variable WSACTOR_IDLE_READER says (a time.Duration; "-1ns" or any
// negative turns parking off), so that a test suite runs on either reader
// path without changing its options (CI runs both).
var defaultIdleReader = func() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("WSACTOR_IDLE_READER")); err == nil && d != 0 {
		return d
	}
	return time.Second
}()
