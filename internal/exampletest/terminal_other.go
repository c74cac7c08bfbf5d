//go:build !linux

package exampletest

import (
	"os"
	"testing"
)

// Terminal is the terminal side of a pseudo-terminal; see the Linux version.
// Elsewhere NewTerminal skips the test.
type Terminal struct {
	File *os.File
}

// NewTerminal skips the test: pseudo-terminals are opened on Linux only.
func NewTerminal(t testing.TB) *Terminal {
	t.Helper()
	t.Skip("pseudo-terminals are opened on Linux only")
	return nil
}

// Output is never reached: NewTerminal skips.
func (term *Terminal) Output() string { return "" }
