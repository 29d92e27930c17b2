// Package tools pins the BuildKit daemon and client that scripts/testenv.sh
// builds (buildkitd and buildctl, at the version in go.mod) for layerpack's
// real-BuildKit tests.
//
// It is a module of its own so that the daemon's large dependency tree never
// enters the main module's go.sum, and so that `go test ./...` at the
// repository root does not descend into it. This file has no build tag so
// that `go vet ./...` here finds a package; tools.go holds the imports.
package tools
