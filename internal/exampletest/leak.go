package exampletest

import (
	"testing"

	"go.uber.org/goleak"
)

// deadLetterThrottle is the goroutine protoactor's dead-letter throttle keeps
// for its interval (1s) after a dead letter is logged; it ends by itself.
const deadLetterThrottle = "github.com/asynkron/protoactor-go/actor.NewDeadLetter.NewThrottle.func4.1"

// VerifyNoLeaks is a TestMain body: it runs the package's tests and then
// fails (and exits) if any goroutine is left, as goleak.VerifyTestMain does.
//
// The only goroutine it ignores is protoactor's dead-letter throttle, which
// outlives a test by up to a second and then ends by itself. Keep the list
// this narrow: a leaked wsactor goroutine (a connection's read or write loop,
// a heartbeat) means a missing Shutdown, and must fail.
func VerifyNoLeaks(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction(deadLetterThrottle))
}
