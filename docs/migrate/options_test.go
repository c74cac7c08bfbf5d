package migrate_test

import (
	"fmt"
	"log"
	"net/http"
	"net/url"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"

	"github.com/wsactor/wsactor/actors"
	"github.com/wsactor/wsactor/transport"
)

// ws README: "WebSocket compression". Off by default on servers, on by
// default on clients, as in ws. Only the no-context-takeover variant is
// negotiated, so one compressed frame serves every recipient of a
// broadcast.
func Example_perMessageDeflate() {
	var opts actors.HandlerOptions
	opts.Compression = transport.CompressionEnabled // ws: perMessageDeflate: {...}
	opts.CompressionThreshold = 1024                // ws: threshold (the default)
	opts.CompressionLevel = 3                       // ws: zlibDeflateOptions.level (default 1, flate.BestSpeed)
	system := actors.NewSystem(zerolog.Nop())
	h, err := actors.NewHandler(system, func() actor.Actor { return &echo{} }, &opts)
	if err != nil {
		log.Fatal(err)
	}
	url, stop := serve(h)
	defer stop()

	for _, mode := range []transport.CompressionMode{transport.CompressionDefault, transport.CompressionDisabled} {
		var dopts actors.DialOptions
		dopts.Compression = mode // CompressionDisabled is ws's perMessageDeflate: false
		ctx, cancel := dialTimeout()
		conn, _, err := actors.Dial(ctx, system, url, func() actor.Actor { return actor.ReceiveFunc(func(actor.Context) {}) }, &dopts)
		cancel()
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println("client compression negotiated:", conn.Compressed())
		conn.Close(actors.StatusNormalClosure, "")
		<-conn.Transport().Done()
	}
	// Output:
	// client compression negotiated: true
	// client compression negotiated: false
}

// ws README FAQ: "How to connect via a proxy?". No agent needed: HTTP
// proxies (CONNECT) are built in. By default the environment's HTTPS_PROXY
// (wss://), HTTP_PROXY (ws://) and NO_PROXY apply; set Proxy for an explicit
// one, or transport.NoProxy for none. (Compiled, not run: examples/client
// tests it against a local CONNECT proxy.)
func Example_proxy() {
	proxyURL, err := url.Parse("http://user:password@proxy.internal:3128")
	if err != nil {
		log.Fatal(err)
	}
	var opts actors.DialOptions
	opts.Proxy = http.ProxyURL(proxyURL)
	system := actors.NewSystem(zerolog.Nop())
	ctx, cancel := dialTimeout()
	defer cancel()
	_, _, err = actors.Dial(ctx, system, "wss://example.com/ws", func() actor.Actor { return &echo{} }, &opts)
	if err != nil {
		log.Fatal(err)
	}
}
