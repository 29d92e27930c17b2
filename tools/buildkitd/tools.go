//go:build tools

// The blank imports make `go mod tidy` keep every module buildkitd and
// buildctl need in go.mod and go.sum. Importing a main package is only
// legal here because the build tag keeps this file out of every build.
package tools

import (
	_ "github.com/moby/buildkit/cmd/buildctl"
	_ "github.com/moby/buildkit/cmd/buildkitd"
)
