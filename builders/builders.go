// Package builders defines the Builder interface every language builder implements.
// A builder fills a staged folder (what lands in /opt) for one layer and one target;
// the build package owns everything around it: cache keys, filters, checks, the zip.
// Adding a language is one new folder under builders/ plus its config section.
package builders

import (
	"context"
	"io"

	"github.com/layerpack/layerpack/config"
	"github.com/layerpack/layerpack/engine"
	"github.com/layerpack/layerpack/lambda"
)

// Target is what one zip is built for.
type Target struct {
	Arch     lambda.Arch
	Runtimes []lambda.Runtime
}

// Builder fills the staged tree of a layer.
type Builder interface {
	// Name is the builder's config table ("files", "native", "python", ...).
	Name() string
	// Applies reports whether the layer uses this builder.
	Applies(l *config.Layer) bool
	// Inputs lists everything outside the config section that can change the
	// builder's output: the cache key is made of them.
	Inputs(l *config.Layer, t Target) ([]Input, error)
	// Steps describes what Build will do, for `layerpack plan`.
	Steps(l *config.Layer, t Target) []string
	// NeedsEngine reports whether Build runs steps in build containers.
	NeedsEngine(l *config.Layer, t Target) bool
	// Build fills j.Stage.
	Build(ctx context.Context, j *Job) error
}

// StepArcher is implemented by builders whose container steps may run as another
// architecture than the target's: jars, say, do not depend on the CPU that
// resolved them, so that step runs natively instead of under QEMU. plan uses it to
// describe the right endpoint.
type StepArcher interface {
	StepArch(l *config.Layer, t Target) lambda.Arch
}

// Job is one builder run for one layer and one target.
type Job struct {
	Layer  *config.Layer
	Target Target
	// Config is the whole file: builders read [images], [buildkit] and the config folder.
	Config *config.File
	// Stage is the folder the builder fills; it becomes the root of the zip (/opt).
	Stage string
	// Work is a scratch folder for this job, removed afterwards.
	Work string
	// Engine runs container steps; it connects on first use.
	Engine engine.Engine
	// Image is the build image resolved for this layer and architecture.
	Image string
	// StepArch is the architecture Image was chosen for and steps run as: the
	// target's, or this machine's for a StepArcher's native steps; empty in jobs
	// made by hand (tests), which means the target's.
	StepArch lambda.Arch
	// SourceDateEpoch is the zip timestamp, also given to container steps.
	SourceDateEpoch int64
	NoCache         bool
	Log             io.Writer
	// CacheDir is layerpack's cache folder, for builders that keep their own
	// download caches (a Maven repository, for example).
	CacheDir string
}

// Input is one thing a cache key depends on.
type Input struct {
	// Name says what it is, for `plan --json` and debugging ("file:requirements.txt").
	Name string
	// Path is a host file or folder whose content is hashed; empty for a Value.
	Path string
	// Value is hashed as is when Path is empty.
	Value string
}
