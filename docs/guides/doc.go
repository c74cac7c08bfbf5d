// Package guides holds the compiled code of the guides in this directory:
// every Go snippet in a guide is an excerpt of an Example or Test function
// in one of the _test.go files here (the guide names which), so
// `go test ./docs/...` compiles and runs them, and TestSnippets checks that
// each snippet still appears in the code.
package guides
