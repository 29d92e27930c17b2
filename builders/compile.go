package builders

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"

	"github.com/layerpack/layerpack/crosscc"
	"github.com/layerpack/layerpack/engine"
	"github.com/layerpack/layerpack/lambda"
)

// CompileInput is the cache-key input of a builder whose steps may compile
// native code: the layer's cross_compile mode and, unless it is emulate, the
// target and the zig release and wrappers that compile for it.
func CompileInput(mode string, t Target) Input {
	v := "emulate"
	if mode != "emulate" {
		v = mode + " " + crosscc.Target(t.Arch, crosscc.Ceiling(t.Runtimes)) + " " + crosscc.Key()
	}
	return Input{Name: "cross-compile", Value: v}
}

// DescribeCompile says, for `layerpack plan`, how the compile steps of a layer
// with cross_compile = mode run for t.
func DescribeCompile(mode string, t Target) string {
	fast := crosscc.Describe(t.Arch, crosscc.Ceiling(t.Runtimes))
	switch mode {
	case "emulate":
		return "compile with the image's own compiler (cross_compile = \"emulate\"" + emulated(t.Arch) + ")"
	case "cross":
		return "compile with " + fast + " (cross_compile = \"cross\")"
	}
	return "compile with " + fast + "; if that fails, again with the image's own compiler" + emulated(t.Arch) + " (cross_compile = \"auto\")"
}

func emulated(a lambda.Arch) string {
	if a != hostArch() {
		return ", under QEMU"
	}
	return ""
}

func hostArch() lambda.Arch {
	if runtime.GOARCH == "arm64" {
		return lambda.ARM64
	}
	return lambda.X86_64
}

// RunCompile runs s, a step that may compile native code, on eng the way the
// layer's cross_compile says: with zig for the target CPU and the glibc of the
// layer's oldest runtime, or with the image's own compiler. With auto, a missing
// toolchain or a failed fast step falls back to the image's compiler, and the
// log says so; the ELF check judges the result either way.
func (j *Job) RunCompile(ctx context.Context, eng engine.Engine, s *engine.Step) error {
	mode := j.Layer.CrossCompile
	if mode == "emulate" {
		return eng.Run(ctx, s)
	}
	fast, err := j.crossStep(ctx, eng, s)
	if err != nil {
		if mode == "cross" || ctx.Err() != nil {
			return fmt.Errorf("cross_compile = %q: %w", mode, err)
		}
		j.logf("%s: no fast compile (%v); compiling with the image's own compiler%s", s.Name, err, emulated(s.Arch))
		return eng.Run(ctx, s)
	}
	err = eng.Run(ctx, fast)
	if err == nil {
		j.logf("%s: %s", s.Name, FastPathDone(s.Arch, j.Target.Runtimes))
		return nil
	}
	if mode == "cross" || ctx.Err() != nil {
		return err
	}
	j.logf("%s: the step failed with %s; building again with the image's own compiler%s (set cross_compile = \"emulate\" to skip the first try, or \"cross\" to see only its error):\n  %v",
		s.Name, crosscc.Describe(s.Arch, crosscc.Ceiling(j.Target.Runtimes)), emulated(s.Arch), err)
	if s.Dest != "" {
		if err := os.RemoveAll(s.Dest); err != nil {
			return err
		}
		if err := os.MkdirAll(s.Dest, 0o755); err != nil {
			return err
		}
	}
	return eng.Run(ctx, s)
}

// FastPathDone is the log line of a step that ran with zig as its compiler.
func FastPathDone(arch lambda.Arch, rts []lambda.Runtime) string {
	return "compilers were " + crosscc.Describe(arch, crosscc.Ceiling(rts)) + " (cross_compile)"
}

// crossStep is s with the toolchain for the daemon's CPU.
func (j *Job) crossStep(ctx context.Context, eng engine.Engine, s *engine.Step) (*engine.Step, error) {
	if j.Cross == nil {
		return nil, errors.New("no cross toolchain configured")
	}
	// zig must be of the daemon's CPU; an engine that cannot say which (a test
	// fake) gets no fast path, and no 100 MB download.
	na, ok := eng.(engine.NativeArcher)
	if !ok {
		return nil, errors.New("the engine does not say which CPU runs its containers")
	}
	host, err := na.NativeArch(ctx, s.Arch)
	if err != nil {
		return nil, err
	}
	tc, err := j.Cross.Get(ctx, host)
	if err != nil {
		return nil, err
	}
	return tc.Apply(s, s.Arch, crosscc.Ceiling(j.Target.Runtimes)), nil
}

func (j *Job) logf(format string, a ...any) {
	if j.Log != nil {
		fmt.Fprintf(j.Log, format+"\n", a...)
	}
}
