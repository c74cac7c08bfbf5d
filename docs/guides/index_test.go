package guides_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestDocsIndex checks docs/README.md, the index: every page in docs/ and
// every guide is linked from an item of its list, and the list is one
// block (no page's entry is left outside it, after the closing text).
func TestDocsIndex(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	first, last := -1, -1
	for i, l := range lines {
		if strings.HasPrefix(strings.TrimLeft(l, " "), "- ") {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	if first < 0 {
		t.Fatal("docs/README.md has no list")
	}
	for i := first; i <= last; i++ {
		l := lines[i]
		// Inside the list: items, and their continuation lines (indented).
		if l == "" || !(strings.HasPrefix(strings.TrimLeft(l, " "), "- ") || strings.HasPrefix(l, "  ")) {
			t.Errorf("docs/README.md:%d: %q breaks the list: an entry sits outside it", i+1, l)
		}
	}
	list := strings.Join(lines[first:last+1], "\n")
	pages, err := filepath.Glob("../*.md")
	if err != nil {
		t.Fatal(err)
	}
	guides, err := filepath.Glob("*.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range guides {
		pages = append(pages, "guides/"+g)
	}
	for _, p := range pages {
		rel := strings.TrimPrefix(p, "../")
		if rel == "README.md" {
			continue
		}
		if !regexp.MustCompile(`\]\(` + regexp.QuoteMeta(rel) + `\)`).MatchString(list) {
			t.Errorf("docs/README.md's list does not link %s", rel)
		}
	}
}
