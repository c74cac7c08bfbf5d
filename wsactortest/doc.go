// Package wsactortest helps test programs built on wsactor:
//
//   - [VerifyTestMain] and [VerifyNone] check with go.uber.org/goleak that no
//     goroutine is left behind, ignoring only the ones wsactor's
//     dependencies keep on purpose ([LeakOptions]), so that your tests need
//     no list of protoactor's internal goroutine names.
//   - [Conn] is a fake connection for rooms: a probe actor's PID and a
//     recorder of frames. A room and its behaviour then run without
//     sockets, and under testing/synctest on fake time: ticks, idle
//     timeouts and budgets take no real time.
//   - [Server] serves a Handler on an in-memory network ([Net], whose
//     connections are [BufferedPipe]s that buffer like sockets) instead of a
//     loopback port. Inside a testing/synctest bubble the whole server, its
//     heartbeat, write and close timeouts and the clients run on fake time:
//     a test of a minute of heartbeats takes milliseconds, and a loaded
//     machine cannot make it flaky.
//
// A testing/synctest bubble must end with no goroutine left in it, and its
// fake clock moves only while the test's own goroutine waits. So after
// shutting the actor system's work down at the end of a bubble, sleep for
// system.Config.DeadLetterThrottleInterval, which lets a dead-letter
// throttle goroutine (see [LeakOptions]) end; the sleep takes no real time.
//
// It imports go.uber.org/goleak: import it from _test.go files only.
package wsactortest
