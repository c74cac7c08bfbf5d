package exampletest

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

// CheckLogColour fails the test unless the loggers that newLogger makes
// write plain text to a file (or a pipe), where colour codes would be
// noise, and colour to a terminal.
func CheckLogColour(t *testing.T, newLogger func(io.Writer) zerolog.Logger) {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	logger := newLogger(f)
	logger.Info().Msg("to a file")
	b, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	if s := string(b); !strings.Contains(s, "to a file") || strings.Contains(s, "\x1b[") {
		t.Errorf("log in a file: %q, want the message without escape codes", s)
	}

	term := NewTerminal(t)
	logger = newLogger(term.File)
	logger.Info().Msg("to a terminal")
	if s := term.Output(); !strings.Contains(s, "to a terminal") || !strings.Contains(s, "\x1b[") {
		t.Errorf("log on a terminal: %q, want colour", s)
	}
}
