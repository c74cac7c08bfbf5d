// Package migrate holds the compiled Go side of docs/migrating-from-ws.md:
// each example of the Node ws README as an Example function, run by
// `go test ./docs/...` (those with an Output comment) or compiled only.
package migrate
