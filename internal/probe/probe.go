// Package probe holds counters that wsactor's packages bump and its own
// tests and benchmarks read, to prove what cannot be seen from outside
// (that a broadcast was compressed once, say). They are process-wide and
// not part of the public API: operators get counts from metrics instead.
package probe

import "sync/atomic"

// Compressions counts messages compressed with permessage-deflate.
var Compressions atomic.Int64

// ParkedReaders is the number of connections whose reader is parked in the
// idle poller now; Parks counts parks since the process started.
var ParkedReaders, Parks atomic.Int64

// DirectWrites counts frames a sender wrote itself (transport/direct.go);
// DirectPartials those of them the socket took only part of, whose rest the
// writer finished.
var DirectWrites, DirectPartials atomic.Int64
