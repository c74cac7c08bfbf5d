package exampletest

import (
	"context"
	"errors"
	"fmt"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

func TestMain(m *testing.M) { VerifyNoLeaks(m) }

func TestBufferWait(t *testing.T) {
	var b Buffer
	go func() {
		for i := range 3 {
			fmt.Fprintf(&b, "line %d\n", i)
		}
	}()
	if m := b.Wait(t, regexp.MustCompile(`line (2)\n`)); m[1] != "2" {
		t.Fatalf("submatches %q", m)
	}
	if got := b.String(); got != "line 0\nline 1\nline 2\n" {
		t.Fatalf("String() = %q", got)
	}
}

func TestStartStop(t *testing.T) {
	want := errors.New("stopped")
	r := Start(t, func(ctx context.Context) error {
		<-ctx.Done()
		return want
	})
	select {
	case <-r.Done():
		t.Fatal("run returned before Stop")
	default:
	}
	if err := r.Stop(); err != want {
		t.Fatalf("Stop() = %v, want %v", err, want)
	}
	if err := r.Stop(); err != want {
		t.Fatalf("second Stop() = %v, want %v", err, want)
	}
	if err := r.Err(); err != want {
		t.Fatalf("Err() = %v, want %v", err, want)
	}
}

func TestStartRunReturnsByItself(t *testing.T) {
	r := Start(t, func(context.Context) error { return errors.New("no port") })
	<-r.Done()
	if err := r.Err(); err == nil || err.Error() != "no port" {
		t.Fatalf("Err() = %v", err)
	}
}

func TestLogWriterMatchesOnce(t *testing.T) {
	w := NewLogWriter(t, regexp.MustCompile(`on (http://\S+)`))
	fmt.Fprintln(w, "starting")
	fmt.Fprintln(w, "chat on http://127.0.0.1:1")
	fmt.Fprintln(w, "chat on http://127.0.0.1:2")
	if m := <-w.Match(); m[1] != "http://127.0.0.1:1" {
		t.Fatalf("match %q", m)
	}
	select {
	case m := <-w.Match():
		t.Fatalf("second match %q", m)
	default:
	}
}

// TestImportedOnlyByTests: this package imports testing and goleak, so no
// non-test file of the module may import it.
func TestImportedOnlyByTests(t *testing.T) {
	const self = "github.com/wsactor/wsactor/internal/exampletest"
	root := moduleRoot(t)
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != root && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == "testdata" || name == "node_modules" || name == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		f, err := parser.ParseFile(fset, path, src, parser.ImportsOnly)
		if err != nil {
			return nil // not Go that builds; the compiler says so elsewhere
		}
		for _, imp := range f.Imports {
			if p, _ := strconv.Unquote(imp.Path.Value); p == self {
				rel, _ := filepath.Rel(root, path)
				t.Errorf("%s imports %s, which is for _test.go files only", rel, self)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestTerminal(t *testing.T) {
	term := NewTerminal(t)
	fmt.Fprintln(term.File, "hello")
	if got := term.Output(); !strings.Contains(got, "hello") {
		t.Fatalf("the terminal shows %q", got)
	}
}
