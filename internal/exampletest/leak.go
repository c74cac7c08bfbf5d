package exampletest

import (
	"testing"

	"github.com/wsactor/wsactor/wsactortest"
)

// VerifyNoLeaks is a TestMain body: it runs the package's tests and then
// fails (and exits) if any goroutine is left, as goleak.VerifyTestMain does.
//
// The only goroutine it ignores is protoactor's dead-letter throttle, which
// outlives a test by up to a second and then ends by itself (see
// wsactortest.LeakOptions). Keep the list
// this narrow: a leaked wsactor goroutine (a connection's read or write loop,
// a heartbeat) means a missing Shutdown, and must fail.
func VerifyNoLeaks(m *testing.M) {
	wsactortest.VerifyTestMain(m)
}
