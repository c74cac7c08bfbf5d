// Package interop holds wsactor's interoperability tests against real peers
// that wsactor did not write: Node's ws library (as a client of wsactor's
// server and as a server for wsactor's clients) and headless Chromium's
// WebSocket (through Playwright). The peers' scripts live in interop/node,
// installed with `npm ci --prefix interop/node`; docs/interop.md lists what is
// covered.
//
// The package has no exported API; everything is in its tests.
package interop
