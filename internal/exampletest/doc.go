// Package exampletest is test plumbing shared by the tests of examples/ and
// docs/: a goleak TestMain, a goroutine-safe output buffer, starting an
// example's run function as main does, loopback HTTP helpers, and headless
// Chromium through interop/node's playwright-core.
//
// It is not API: nothing outside this module can import it, and within the
// module only _test.go files may (it imports testing and goleak, which have
// no place in a binary). TestImportedOnlyByTests checks that. Each example
// stays readable on its own: its main.go and the checks of its tests do not
// depend on this package, only the scaffolding around them does.
package exampletest
