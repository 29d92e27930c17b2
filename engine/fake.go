package engine

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/layerpack/layerpack/internal/fsutil"
	"github.com/layerpack/layerpack/lambda"
)

// Fake is an Engine for unit tests of builders. It records every step. With Exec
// it runs the script on the host with `sh -e -c` in a temporary folder, after
// rewriting the step's container paths to host ones (see Run); otherwise it calls
// Hook, if set, and does nothing else.
type Fake struct {
	// Exec runs scripts on the host.
	Exec bool
	// Hook, when Exec is false, is called for every step; its error is Run's.
	// It can write files into s.Dest to play the step's output.
	Hook func(ctx context.Context, s *Step) error
	// Digests answers ImageDigest by image reference; missing images get a digest
	// derived from the reference and architecture.
	Digests map[string]string
	// Stdout receives the scripts' output when Exec is set (nil: discarded; the
	// last lines are in the error of a failing step either way).
	Stdout io.Writer

	mu       sync.Mutex
	steps    []Step
	closed   bool
	cacheDir string
}

var _ Engine = (*Fake)(nil)

// Steps returns copies of the steps run so far, in order.
func (f *Fake) Steps() []Step {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.steps)
}

// Closed reports whether Close was called.
func (f *Fake) Closed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.closed
}

// Run records the step, then runs it (Exec) or calls Hook.
//
// With Exec, the script runs in a temporary folder with the host environment plus
// Step.Env and SOURCE_DATE_EPOCH. Container paths in the script, in Env values and
// in Dir are rewritten to host paths, longest first: Output to a temporary folder
// (copied into Dest afterwards), each Mount's Target to its Source, each Secret's
// Target to its Source (and its Env gets the file's content), each Cache's Target
// to a folder kept for the Fake's life. A Dir that maps to nothing becomes the
// temporary folder.
func (f *Fake) Run(ctx context.Context, s *Step) error {
	cp := *s
	cp.Env = maps.Clone(s.Env)
	cp.Mounts = slices.Clone(s.Mounts)
	cp.Caches = slices.Clone(s.Caches)
	cp.Secrets = slices.Clone(s.Secrets)
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return errors.New("fake engine is closed")
	}
	f.steps = append(f.steps, cp)
	f.mu.Unlock()
	if !f.Exec {
		if f.Hook != nil {
			return f.Hook(ctx, s)
		}
		return nil
	}
	return f.exec(ctx, s)
}

func (f *Fake) exec(ctx context.Context, s *Step) error {
	if err := checkStep(s); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "layerpack-fake-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	work := filepath.Join(tmp, "work")
	out := filepath.Join(tmp, "out")
	for _, d := range []string{work, out} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	pairs := map[string]string{s.Output: out}
	for _, m := range s.Mounts {
		pairs[m.Target] = m.Source
	}
	env := append(os.Environ(), "HOME="+work)
	for _, sec := range s.Secrets {
		if sec.Target != "" {
			pairs[sec.Target] = sec.Source
		}
		if sec.Env != "" {
			dt, err := os.ReadFile(sec.Source)
			if err != nil {
				return fmt.Errorf("step %q: secret %q: %w", s.Name, sec.ID, err)
			}
			env = append(env, sec.Env+"="+string(dt))
		}
	}
	for _, c := range s.Caches {
		dir, err := f.cache(CacheID(c.Key, s.Arch))
		if err != nil {
			return err
		}
		pairs[c.Target] = dir
	}
	rewrite := replacer(pairs)
	dir := work
	if s.Dir != "" {
		if d := rewrite.Replace(s.Dir); d != s.Dir {
			dir = d
		}
	}
	for _, k := range slices.Sorted(maps.Keys(s.Env)) {
		env = append(env, k+"="+rewrite.Replace(s.Env[k]))
	}
	if s.SourceDateEpoch > 0 {
		env = append(env, "SOURCE_DATE_EPOCH="+strconv.FormatInt(s.SourceDateEpoch, 10))
	}
	cmd := exec.CommandContext(ctx, "sh", "-e", "-c", rewrite.Replace(s.Script))
	cmd.Dir = dir
	cmd.Env = env
	var buf bytes.Buffer
	w := io.Writer(&buf)
	if f.Stdout != nil {
		w = io.MultiWriter(&buf, f.Stdout)
	}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		code := -1
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		}
		lines := strings.Split(strings.TrimRight(buf.String(), "\n"), "\n")
		if len(lines) > tailLines {
			lines = lines[len(lines)-tailLines:]
		}
		if len(lines) == 1 && lines[0] == "" {
			lines = nil
		}
		return &StepError{Step: s.Name, Arch: s.Arch, ExitCode: code, Lines: lines, Err: err}
	}
	if err := copyTree(out, s.Dest); err != nil {
		return fmt.Errorf("step %q: export: %w", s.Name, err)
	}
	return nil
}

func (f *Fake) cache(id string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cacheDir == "" {
		d, err := os.MkdirTemp("", "layerpack-fake-cache-")
		if err != nil {
			return "", err
		}
		f.cacheDir = d
	}
	dir := filepath.Join(f.cacheDir, id)
	return dir, os.MkdirAll(dir, 0o755)
}

// replacer rewrites container paths to host paths, longest container path first.
func replacer(pairs map[string]string) *strings.Replacer {
	keys := make([]string, 0, len(pairs))
	for k := range pairs {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if len(keys[i]) != len(keys[j]) {
			return len(keys[i]) > len(keys[j])
		}
		return keys[i] < keys[j]
	})
	var args []string
	for _, k := range keys {
		args = append(args, k, pairs[k])
	}
	return strings.NewReplacer(args...)
}

// ImageDigest answers from Digests, else with a digest of the reference and arch.
func (f *Fake) ImageDigest(_ context.Context, image string, arch lambda.Arch) (string, error) {
	if d, ok := f.Digests[image]; ok {
		return d, nil
	}
	sum := sha256.Sum256([]byte(image + "\x00" + string(arch)))
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

// Describe says the steps run in the fake.
func (f *Fake) Describe(arch lambda.Arch) string {
	if f.Exec {
		return "fake engine, scripts on the host (" + arch.Platform() + ")"
	}
	return "fake engine (" + arch.Platform() + ")"
}

// Close marks the fake closed and removes its cache folders.
func (f *Fake) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	if f.cacheDir != "" {
		err := os.RemoveAll(f.cacheDir)
		f.cacheDir = ""
		return err
	}
	return nil
}

// copyTree copies the content of src into dst (created if missing), keeping
// modes and symbolic links.
func copyTree(src, dst string) error {
	return fsutil.CopyTree(src, dst, fsutil.TreeOptions{DirModes: true, Strict: true})
}
