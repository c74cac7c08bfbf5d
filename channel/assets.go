package channel

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"net/http"
	"strings"
	"time"
)

//go:embed client/wsactor-channel.js client/wsactor-channel.d.ts
var clientFiles embed.FS

// clientAsset is one file ClientHandler serves.
type clientAsset struct {
	body        []byte
	contentType string
	etag        string
}

// clientAssets are the files of ClientHandler by name, read once.
var clientAssets = func() map[string]clientAsset {
	files := map[string]string{
		"wsactor-channel.js":   "text/javascript; charset=utf-8",
		"wsactor-channel.d.ts": "application/typescript; charset=utf-8",
	}
	out := make(map[string]clientAsset, len(files))
	for name, ctype := range files {
		body, err := clientFiles.ReadFile("client/" + name)
		if err != nil {
			panic("channel: embedded client file missing: " + err.Error())
		}
		sum := sha256.Sum256(body)
		out[name] = clientAsset{body: body, contentType: ctype, etag: `"` + hex.EncodeToString(sum[:12]) + `"`}
	}
	return out
}()

// ClientHandler serves the browser client of the channels protocol: the ES
// module wsactor-channel.js and its TypeScript declarations
// wsactor-channel.d.ts, both embedded in the package (their source is in
// channel/client). Any other path is 404, and any method but GET and HEAD
// is 405.
//
// It serves the files at the root of its path space, so mount it under a
// prefix with http.StripPrefix:
//
//	mux.Handle("/wsactor/", http.StripPrefix("/wsactor/", channel.ClientHandler()))
//
// and in the page:
//
//	import {Socket, Presence} from '/wsactor/wsactor-channel.js';
//
// Responses carry an ETag (a hash of the file, so it changes with the
// package's version) and Cache-Control: no-cache, so a browser keeps the
// file and revalidates it cheaply (304) rather than running a stale client.
func ClientHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, ok := clientAssets[strings.TrimPrefix(r.URL.Path, "/")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		h.Set("Content-Type", a.contentType)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Cache-Control", "no-cache")
		h.Set("ETag", a.etag)
		// ServeContent answers If-None-Match, HEAD and ranges.
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
	})
}
