// Package assets serves files embedded in wsactor's packages (the browser
// client, the status page): each with its content type, an ETag from a
// hash of its bytes (so it changes with the package's version) and
// Cache-Control: no-cache, so a browser keeps it and revalidates it cheaply
// (304) rather than running a stale copy.
package assets

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"time"
)

// Set is a set of files by name, read once.
type Set map[string]file

type file struct {
	body        []byte
	contentType string
	etag        string
}

// Load reads the files named in types (name to content type) from dir in
// fsys. A missing file panics: the files are embedded, so it is a build
// mistake.
func Load(fsys fs.FS, dir string, types map[string]string) Set {
	s := make(Set, len(types))
	for name, ctype := range types {
		body, err := fs.ReadFile(fsys, path.Join(dir, name))
		if err != nil {
			panic("assets: embedded file missing: " + err.Error())
		}
		sum := sha256.Sum256(body)
		s[name] = file{body: body, contentType: ctype, etag: `"` + hex.EncodeToString(sum[:12]) + `"`}
	}
	return s
}

// Has reports whether the set has a file name.
func (s Set) Has(name string) bool {
	_, ok := s[name]
	return ok
}

// Serve writes file name (which must be in the set) for r: If-None-Match,
// HEAD and ranges answered by http.ServeContent.
func (s Set) Serve(w http.ResponseWriter, r *http.Request, name string) {
	f := s[name]
	h := w.Header()
	h.Set("Content-Type", f.contentType)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", f.etag)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(f.body))
}
