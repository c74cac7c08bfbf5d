package guides_test

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSnippets checks that every Go snippet in the guides and in
// docs/migrating-from-ws.md is an excerpt of compiled code: its lines, in
// order, are lines of one .go file of the module (compared without
// indentation; a line "// ..." stands for elided code). A snippet that no
// longer matches the code it was taken from fails here.
func TestSnippets(t *testing.T) {
	docs, err := filepath.Glob("*.md")
	if err != nil {
		t.Fatal(err)
	}
	docs = append(docs, "../migrating-from-ws.md", "../../README.md")
	sources := goSources(t, "../..")
	for _, doc := range docs {
		for _, s := range goSnippets(t, doc) {
			if !foundIn(s.lines, sources) {
				t.Errorf("%s:%d: snippet is not in any .go file of the module:\n%s", doc, s.line, strings.Join(s.lines, "\n"))
			}
		}
	}
}

type snippet struct {
	line  int // where it starts in the doc
	lines []string
}

// goSnippets returns the ```go blocks of a Markdown file, each line trimmed,
// without blank lines and elisions.
func goSnippets(t *testing.T, path string) []snippet {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var (
		out []snippet
		cur *snippet
	)
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case cur == nil && line == "```go":
			cur = &snippet{line: n}
		case cur != nil && line == "```":
			out = append(out, *cur)
			cur = nil
		case cur != nil && line != "" && line != "// ..." && line != "...":
			cur.lines = append(cur.lines, line)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// goSources returns the trimmed lines of every .go file under root.
func goSources(t *testing.T, root string) map[string][]string {
	t.Helper()
	src := map[string][]string{}
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "node_modules" || strings.HasPrefix(d.Name(), ".")) && path != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, l := range strings.Split(string(b), "\n") {
			src[path] = append(src[path], strings.TrimSpace(l))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// foundIn reports whether lines occur, in order, in one of the files.
func foundIn(lines []string, files map[string][]string) bool {
	for _, src := range files {
		i := 0
		for _, l := range src {
			if i < len(lines) && l == lines[i] {
				i++
			}
		}
		if i == len(lines) {
			return true
		}
	}
	return false
}
