// Package engine runs build steps inside build containers. The Engine interface is all
// that builders see; BuildKit details stay in this package (buildkit.go), and a fake
// (fake.go) lets unit tests of builders run without a daemon.
package engine

import (
	"context"

	"github.com/layerpack/layerpack/lambda"
)

// Engine runs steps in build containers for a target architecture.
type Engine interface {
	// Run runs one step and exports the step's Output folder into Dest on the host.
	Run(ctx context.Context, s *Step) error
	// ImageDigest identifies the exact image a reference resolves to for arch, so a
	// changed image changes the cache key of every layer built with it.
	ImageDigest(ctx context.Context, image string, arch lambda.Arch) (string, error)
	// Describe says, for `layerpack plan`, where steps for arch run
	// (endpoint, native or emulated).
	Describe(arch lambda.Arch) string
	Close() error
}

// Step is one script run in a build container.
type Step struct {
	Name   string      // shown in progress output and in plan
	Arch   lambda.Arch // platform the container runs as (QEMU when foreign)
	Image  string      // docker-image://REF, REF, oci-layout://DIR[:TAG] or rootfs://DIR (absolute DIR)
	Script string      // run with `sh -e -c`
	Dir    string      // working directory in the container
	Env    map[string]string
	// Mounts are host folders mounted read-only.
	Mounts []Mount
	// Caches are persistent cache mounts (package caches), kept per architecture
	// between builds. The key names the cache; Target is the container path.
	Caches []Cache
	// Secrets are files mounted at Target only for this step: never in a layer,
	// a cache key, an exported file or a log line.
	Secrets []Secret
	// Output is the container folder whose content is exported into Dest.
	Output string
	Dest   string
	// SourceDateEpoch is set as SOURCE_DATE_EPOCH in the step's environment.
	SourceDateEpoch int64
	// NoCache forces the step to run even when BuildKit has a cached result.
	NoCache bool
}

// Mount is a read-only host folder (or file) in the container.
type Mount struct {
	Source string // absolute host path
	Target string // container path
}

// Cache is a persistent cache mount.
type Cache struct {
	Key    string // e.g. "pip"; the engine adds the architecture
	Target string
	// Locked gives the cache to one step at a time, for tools that cannot share
	// their cache between concurrent runs (dnf and yum take a lock file and fail
	// instead of waiting). Otherwise it is shared: pip, npm, gem and bundler
	// caches are safe to use at once.
	Locked bool
}

// Secret is a host file given to a step as a secret mount.
type Secret struct {
	ID     string
	Source string // host file
	Target string // container path
	Env    string // optional: also expose the content as this environment variable
}

// NativeArcher is an Engine that can say which CPU runs the containers of arch:
// a program of that CPU runs in them without emulation.
type NativeArcher interface {
	NativeArch(ctx context.Context, arch lambda.Arch) (lambda.Arch, error)
}
