package channel

import (
	"embed"
	"net/http"
	"strings"

	"github.com/wsactor/wsactor/internal/assets"
)

//go:embed client/wsactor-channel.js client/wsactor-channel.d.ts
var clientFiles embed.FS

// clientAssets are the files ClientHandler serves.
var clientAssets = assets.Load(clientFiles, "client", map[string]string{
	"wsactor-channel.js":   "text/javascript; charset=utf-8",
	"wsactor-channel.d.ts": "application/typescript; charset=utf-8",
})

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
		name := strings.TrimPrefix(r.URL.Path, "/")
		if !clientAssets.Has(name) {
			http.NotFound(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
			return
		}
		clientAssets.Serve(w, r, name)
	})
}
