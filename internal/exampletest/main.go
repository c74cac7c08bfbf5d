package exampletest

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// mainEnv marks a child process started by RunMain: the test binary runs the
// example's main instead of its tests.
const mainEnv = "WSACTOR_EXAMPLETEST_MAIN"

// Main is an example's TestMain body: RunAsMain, then VerifyNoLeaks.
func Main(m *testing.M, main func()) {
	RunAsMain(main)
	VerifyNoLeaks(m)
}

// RunAsMain makes the test binary the example's program in a child process
// started by RunMain: there it calls main, which parses the arguments the
// child was started with, and exits 0 when main returns (main exits by
// itself otherwise, e.g. through log.Fatal). Anywhere else it returns at
// once. Call it first in TestMain.
func RunAsMain(main func()) {
	if os.Getenv(mainEnv) == "1" {
		main()
		os.Exit(0)
	}
}

// RunMain runs the example's main, as a user runs the program, in a child
// process of the test binary (whose TestMain must call Main or RunAsMain), with args as
// its arguments, no stdin, and pipes (not terminals) for stdout and stderr.
// It returns what the program printed and its exit code. The child is
// killed after a minute.
func RunMain(t testing.TB, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, args...)
	// Under -race the child would sleep a second at exit (the race
	// detector's atexit_sleep_ms), for nothing: it has no goroutine left to
	// report on.
	gorace := strings.TrimSpace(os.Getenv("GORACE") + " atexit_sleep_ms=0")
	cmd.Env = append(os.Environ(), mainEnv+"=1", "GORACE="+gorace)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit) && exit.Exited():
		code = exit.ExitCode()
	default:
		t.Fatalf("run %s %q: %v\nstdout:\n%s\nstderr:\n%s", exe, args, err, out.String(), errOut.String())
	}
	return out.String(), errOut.String(), code
}

// CheckHelp runs the example's program with -h and with --help, as
// RunMain does, and fails the test unless each run exits 0 having printed
// only its usage: "Usage of name:" and every flag in flags on stderr,
// nothing on stdout, and no log line (such as log.Fatal's "flag: help
// requested").
func CheckHelp(t *testing.T, name string, flags ...string) {
	t.Helper()
	for _, arg := range []string{"-h", "--help"} {
		stdout, stderr, code := RunMain(t, arg)
		if code != 0 || stdout != "" || !strings.HasPrefix(stderr, "Usage of "+name+":\n") || strings.Contains(stderr, "help requested") {
			t.Errorf("%s %s: exit %d, stdout %q, stderr:\n%s\nwant exit 0 and only the usage on stderr", name, arg, code, stdout, stderr)
			continue
		}
		for _, f := range flags {
			if !strings.Contains(stderr, "  -"+f) {
				t.Errorf("%s %s: the usage lacks -%s:\n%s", name, arg, f, stderr)
			}
		}
	}
}
