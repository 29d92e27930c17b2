// Package builders defines the Builder interface every language builder implements.
// A builder fills a staged folder (what lands in /opt) for one layer and one target;
// the pipeline owns everything around it: cache keys, filters, checks, the zip.
// Adding a language is one new folder under builders/ plus its config section.
package builders

import (
	"context"
	"io"
	"io/fs"

	"github.com/layerpack/layerpack/cache"
	"github.com/layerpack/layerpack/config"
	"github.com/layerpack/layerpack/crosscc"
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
	// Engine says whether Build runs container steps for t, and in which images.
	Engine(l *config.Layer, t Target) EngineNeeds
	// Build fills j.Stage.
	Build(ctx context.Context, j *Job) error
}

// EngineUse says whether a builder's steps run in build containers.
type EngineUse int

const (
	// NoEngine: never. No image is chosen and no daemon is dialled.
	NoEngine EngineUse = iota
	// MaybeEngine: only for some inputs, known while building (an auto mode that
	// compiles what has no prebuilt package). The images are chosen and their
	// references keyed; their digests are not, which would dial the daemon on
	// every build, also for a layer that turns out to need none.
	MaybeEngine
	// UsesEngine: always. The digest of every image is part of the cache key.
	UsesEngine
)

func (u EngineUse) String() string {
	return [...]string{"never", "maybe", "always"}[u]
}

// EngineNeeds is a builder's answer to "does Build need containers, and which".
type EngineNeeds struct {
	Use EngineUse
	// Images are the build images the steps may run in: one per runtime and
	// architecture (a Python layer for two versions needs two; Maven runs in the
	// image of this machine's architecture, whatever the target). Empty means
	// the layer's first runtime for the target's architecture.
	Images []ImageNeed
	// Why says, for UsesEngine, what makes the steps run when the layer could
	// otherwise be built without a daemon, and how to avoid it ("bytecode is
	// compiled in the build image: compile = false builds without one"), for
	// the error when no daemon is found. Optional.
	Why string
}

// ImageNeed names a build image by what decides it.
type ImageNeed struct {
	Runtime string      // the runtime whose image it is ("python3.12")
	Arch    lambda.Arch // the architecture the steps run as
}

// Image is a build image chosen for a need (plan chooses every one, once).
type Image struct {
	ImageNeed
	Ref string // engine.ParseImage form: docker-image://..., rootfs://..., oci-layout://...
}

// Images are the build images of a job, in the order the builders asked.
type Images []Image

// For is the image chosen for runtime and arch; "" when none was.
func (is Images) For(runtime string, arch lambda.Arch) string {
	for _, im := range is {
		if im.Runtime == runtime && im.Arch == arch {
			return im.Ref
		}
	}
	return ""
}

// Job is one builder run for one layer and one target.
type Job struct {
	Layer  *config.Layer
	Target Target
	// Stage is the folder the builder fills; it becomes the root of the zip (/opt).
	Stage string
	// Overlay, when set, takes entries by reference: they join the stage in the
	// zip without being written to it (see Overlay). Optional: a builder given
	// none writes to Stage.
	Overlay *Overlay
	// Known, when set, returns the SHA-256 of a host file the cache key already
	// hashed, if it is unchanged since (nil otherwise), for Overlay entries'
	// zipper.Entry.Sum. Optional.
	Known func(path string, info fs.FileInfo) []byte
	// Walked, when set, returns a host folder's paths and their lstat data as
	// the cache key's hash walked them (root first, in filepath.WalkDir order),
	// or false: a builder copying that folder uses them instead of walking it
	// again, and copies exactly what was hashed. Optional.
	Walked func(root string) ([]Walked, bool)
	// Work is a scratch folder for this job, removed afterwards.
	Work string
	// Engine runs container steps; it connects on first use.
	Engine engine.Engine
	// Images are every build image the item's builders asked for (plan chose them).
	Images Images
	// Image is the first of Images: the build image of a builder that needs one,
	// and StepArch the architecture it runs as (the target's, or this machine's
	// for steps whose output does not depend on the CPU).
	Image    string
	StepArch lambda.Arch
	// SourceDateEpoch is the zip timestamp, also given to container steps.
	SourceDateEpoch int64
	NoCache         bool
	Log             io.Writer
	// CacheDir is layerpack's cache folder, for builders that keep their own
	// download caches (a Maven repository, for example).
	CacheDir string
	// Cross fetches the toolchain of RunCompile's fast path (nil: none).
	Cross *crosscc.Provider
}

// Walked is a path and its lstat data (Job.Walked).
type Walked = cache.Walked

// Step is a container step of this job: s with its name, the architecture and
// image it runs as, the zip's timestamp and --no-cache filled in, so every
// builder's steps get them the same way.
func (j *Job) Step(name string, arch lambda.Arch, image string, s engine.Step) *engine.Step {
	s.Name, s.Arch, s.Image = name, arch, image
	s.SourceDateEpoch, s.NoCache = j.SourceDateEpoch, j.NoCache
	return &s
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
