// Command layerpack builds AWS Lambda layers: reproducible zips, per architecture,
// with native code compiled in build containers. One file per command.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"runtime/trace"
	"syscall"

	"github.com/alecthomas/kong"
	"github.com/sirupsen/logrus"

	"github.com/layerpack/layerpack/config"
)

// Exit codes are a contract with Makefiles and CI.
const (
	exitOK     = 0
	exitFailed = 1 // a build or a check failed
	exitUsage  = 2 // bad command line or config
)

type cli struct {
	Build   buildCmd   `cmd:"" help:"Build layer zips."`
	Publish publishCmd `cmd:"" help:"Build, then publish a new Lambda layer version only where the code or metadata changed."`
	Init    initCmd    `cmd:"" help:"Write a starting layerpack.toml from what a project folder holds."`
	Image   imageCmd   `cmd:"" help:"Build layers, then make each an OCI image of /opt (for container-image functions); --push to a registry."`
	Plan    planCmd    `cmd:"" help:"Show what would be built; nothing runs."`
	Hash    hashCmd    `cmd:"" help:"Print the CodeSha256 of zips."`
	Verify  verifyCmd  `cmd:"" help:"Check zips against Lambda's rules: layout, limits, modes, ELF."`
	Diff    diffCmd    `cmd:"" help:"Explain why two zips differ, entry by entry."`
	SBOM    sbomCmd    `cmd:"" name:"sbom" help:"Print a zip's CycloneDX SBOM (the build writes one beside each zip)."`
	Version versionCmd `cmd:"" help:"Print the version."`
}

// env is what commands get from the outside world, so tests can replace it.
type env struct {
	ctx    context.Context
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
}

// usageError marks errors that exit with code 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// failed marks an error already reported in detail; only the exit code is left to set.
var errFailed = errors.New("failed")

func main() {
	// BuildKit's client libraries log through logrus; their warnings (such as
	// containerd's fsverity probe on local caches) are noise in a build log.
	logrus.SetLevel(logrus.ErrorLevel)
	stop := startProfile(os.Getenv("LAYERPACK_CPUPROFILE"))
	stopTrace := startTrace(os.Getenv("LAYERPACK_TRACE"))
	code := run(os.Args[1:], os.Stdout, os.Stderr)
	stopTrace()
	stop()
	os.Exit(code)
}

// startProfile writes a CPU profile to path (a developer's tool for the speed
// work: `go tool pprof bin/layerpack FILE`); "" does nothing.
func startProfile(path string) (stop func()) {
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "layerpack: LAYERPACK_CPUPROFILE:", err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		fmt.Fprintln(os.Stderr, "layerpack: LAYERPACK_CPUPROFILE:", err)
		f.Close()
		return func() {}
	}
	return func() { pprof.StopCPUProfile(); f.Close() }
}

// startTrace writes an execution trace to path (`go tool trace FILE`: which
// goroutine waited for which, the wall-clock view a CPU profile lacks); ""
// does nothing.
func startTrace(path string) (stop func()) {
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err == nil {
		if err = trace.Start(f); err != nil {
			f.Close()
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "layerpack: LAYERPACK_TRACE:", err)
		return func() {}
	}
	return func() { trace.Stop(); f.Close() }
}

func run(args []string, stdout, stderr io.Writer) int {
	var c cli
	exit := -1
	parser, err := kong.New(&c,
		kong.Name("layerpack"),
		kong.Description("Build reproducible AWS Lambda layers for x86_64 and arm64."),
		kong.UsageOnError(),
		kong.Writers(stdout, stderr),
		kong.Exit(func(code int) { exit = code; panic(exitPanic{}) }),
	)
	if err != nil {
		fmt.Fprintln(stderr, "layerpack:", err)
		return exitUsage
	}
	var kctx *kong.Context
	func() {
		defer func() {
			if r := recover(); r != nil {
				if _, ok := r.(exitPanic); !ok {
					panic(r)
				}
			}
		}()
		kctx, err = parser.Parse(args)
	}()
	if exit >= 0 {
		return exit // --help
	}
	if err != nil {
		fmt.Fprintf(stderr, "layerpack: %v\n", err)
		return exitUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	e := &env{ctx: ctx, stdout: stdout, stderr: stderr, getenv: os.Getenv}
	err = kctx.Run(e)
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, errFailed):
		return exitFailed
	}
	fmt.Fprintf(stderr, "layerpack: %v\n", err)
	var ue usageError
	var ce config.Errors
	if errors.As(err, &ue) || errors.As(err, &ce) {
		return exitUsage
	}
	return exitFailed
}

type exitPanic struct{}
