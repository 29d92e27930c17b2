package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/layerpack/layerpack/builders"
	"github.com/layerpack/layerpack/config"
	"github.com/layerpack/layerpack/lambda"
	"github.com/layerpack/layerpack/pipeline"
	"github.com/layerpack/layerpack/plan"
	"github.com/layerpack/layerpack/verify"
)

var durationMS = regexp.MustCompile(`"duration_ms": [0-9]+`)

// jsonnorm FILE prints a --json document with every duration_ms set to 0, the one
// value that differs between runs.
func cmdJSONNorm(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: jsonnorm FILE")
	}
	b, err := os.ReadFile(ts.MkAbs(args[0]))
	ts.Check(err)
	if !durationMS.Match(b) && len(b) > 0 && neg {
		return
	}
	fmt.Fprint(ts.Stdout(), durationMS.ReplaceAllString(string(b), `"duration_ms": 0`))
}

// The document and the summary carry each zip's warnings, duration and state.
func TestBuildRunReport(t *testing.T) {
	cfgPath := filepath.Join(t.TempDir(), "layerpack.toml")
	if err := os.WriteFile(cfgPath, []byte("[defaults]\n\n[layer.big]\ncompatible_runtimes = [\"provided.al2023\"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	layer := &config.Layer{Name: "big", CompatibleRuntimes: []string{"provided.al2023"}}
	ok := &pipeline.Result{
		Item:       plan.Item{Layer: layer, Target: builders.Target{Arch: lambda.X86_64}, File: "big-x86_64.zip"},
		CodeSha256: "abc=", Size: 60_000_000, UnzippedSize: 70_000_000, Entries: 3, Cached: true,
		Duration: 1500 * time.Millisecond,
		Warnings: []verify.Finding{{Severity: verify.Warning, Check: verify.CheckZipSize, Message: "over 50 MB zipped"}},
	}
	bad := &pipeline.Result{
		Item: plan.Item{Layer: layer, Target: builders.Target{Arch: lambda.ARM64}, File: "big-arm64.zip"},
		Err:  errors.New("layer big (arm64): boom"),
	}
	b := &buildRun{cfgPath: cfgPath, results: []*pipeline.Result{ok, bad}}
	rep := b.report(errFailed)
	if rep.OK || len(rep.Layers) != 2 || len(rep.Errors) != 1 {
		t.Fatalf("report: %+v", rep)
	}
	l := rep.Layers[0]
	if l.DurationMS != 1500 || !l.Cached || len(l.Warnings) != 1 || l.Warnings[0].Check != "zip-size" {
		t.Fatalf("layer: %+v", l)
	}
	if e := rep.Errors[0]; e.Line != 3 || e.Key != "layer.big" || e.Architecture != "arm64" || e.File != cfgPath {
		t.Fatalf("error: %+v", e)
	}
	s := summary(rep)
	for _, want := range []string{"| big | x86_64 | `abc=` | 60.0 MB | 70.0 MB | cached |", "| big | arm64 | - | - | - | **failed** |", ":3` layer big (arm64): boom"} {
		if !strings.Contains(s, want) {
			t.Errorf("summary lacks %q:\n%s", want, s)
		}
	}
}
