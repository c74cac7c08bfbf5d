package channel

import "time"

// The cluster tests see lost messages found by checks without waiting the
// production interval; every other test runs with the checks more often
// than in production, which exercises them.
func init() { linkCheckInterval = 100 * time.Millisecond }
