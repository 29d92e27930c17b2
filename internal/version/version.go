// Package version is layerpack's own version. It is part of every cache key, and
// release builds set it with -ldflags "-X github.com/layerpack/layerpack/internal/version.Version=v1.2.3".
package version

// Version of layerpack.
var Version = "0.1.0-dev"
