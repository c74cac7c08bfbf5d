package transport

import "sync/atomic"

// Stats are a connection's counters since it opened, for metrics: each is
// kept by the goroutine that does the work (the reader, the writer, the
// sender), and read with atomic loads, so keeping them costs an uncontended
// atomic add per message read and per write system call.
type Stats struct {
	// MessagesIn and BytesIn count the data messages read and their
	// payload bytes (after inflating); WireBytesIn the same messages'
	// payload bytes as they arrived (compressed, for permessage-deflate).
	MessagesIn, BytesIn, WireBytesIn uint64
	// MessagesOut counts the data messages written; BytesOut the bytes
	// written to the socket (headers and compression included, control
	// frames too); Frames the frames written; Writes the write system calls
	// (one per batch: Frames/Writes is the batching).
	MessagesOut, BytesOut, Frames, Writes uint64
	// PayloadBytesOut counts the written data messages' payload bytes
	// before compression: against BytesOut, what deflate saved.
	PayloadBytesOut uint64
	// Refused counts sends the queue refused or evicted (ErrQueueFull), and
	// Conflated the queued keyed frames a newer one replaced. Of Refused,
	// Evicted were queued messages OverflowDropOldest dropped and
	// OverflowCloses the sends that closed the connection with 1013
	// (OverflowDisconnect); the rest OverflowDropNewest refused.
	Refused, Conflated, Evicted, OverflowCloses uint64
}

// inStats are the reader's counters and outStats the writer's and the
// senders'; Conn keeps them at its two ends (see Conn).
type inStats struct {
	msgsIn, bytesIn, wireIn atomic.Uint64
}

type outStats struct {
	msgsOut, bytesOut, frames, writes, payloadOut atomic.Uint64
	refused, conflated, evicted, overflowCloses   atomic.Uint64
}

// Stats returns the connection's counters. Safe from any goroutine.
func (c *Conn) Stats() Stats {
	in, s := &c.in, &c.out
	return Stats{
		MessagesIn:      in.msgsIn.Load(),
		BytesIn:         in.bytesIn.Load(),
		WireBytesIn:     in.wireIn.Load(),
		MessagesOut:     s.msgsOut.Load(),
		BytesOut:        s.bytesOut.Load(),
		Frames:          s.frames.Load(),
		Writes:          s.writes.Load(),
		PayloadBytesOut: s.payloadOut.Load(),
		Refused:         s.refused.Load(),
		Conflated:       s.conflated.Load(),
		Evicted:         s.evicted.Load(),
		OverflowCloses:  s.overflowCloses.Load(),
	}
}

// Add returns s plus t, counter by counter.
func (s Stats) Add(t Stats) Stats {
	return Stats{
		MessagesIn:      s.MessagesIn + t.MessagesIn,
		BytesIn:         s.BytesIn + t.BytesIn,
		WireBytesIn:     s.WireBytesIn + t.WireBytesIn,
		MessagesOut:     s.MessagesOut + t.MessagesOut,
		BytesOut:        s.BytesOut + t.BytesOut,
		Frames:          s.Frames + t.Frames,
		Writes:          s.Writes + t.Writes,
		PayloadBytesOut: s.PayloadBytesOut + t.PayloadBytesOut,
		Refused:         s.Refused + t.Refused,
		Conflated:       s.Conflated + t.Conflated,
		Evicted:         s.Evicted + t.Evicted,
		OverflowCloses:  s.OverflowCloses + t.OverflowCloses,
	}
}
