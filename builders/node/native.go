package node

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/layerpack/layerpack/builders"
	"github.com/layerpack/layerpack/engine"
)

// A decision says what to do with a package's install scripts.
type decision struct {
	Pkg *pkg
	// Build is true when the package needs a native build for the target.
	Build bool
	// Why explains the decision, for logs and errors.
	Why string
	// Download is true when the scripts would download a prebuilt binary
	// (prebuild-install, node-pre-gyp...), which is compiled from source instead.
	Download bool
}

var (
	// buildTools are commands whose presence in an install script means it
	// compiles (or fetches) native code.
	buildTools = regexp.MustCompile(`\b(node-gyp|node-gyp-build|node-gyp-build-optional-packages|prebuild-install|node-pre-gyp|@mapbox/node-pre-gyp|cmake-js|napi-build|neon)\b`)
	// downloaders fetch prebuilt binaries from GitHub releases or a mirror.
	downloaders = regexp.MustCompile(`\b(prebuild-install|node-pre-gyp)\b`)
	// prebuiltLoaders pick a binary from the package's own prebuilds/ folder and
	// only compile when none fits.
	prebuiltLoaders = regexp.MustCompile(`^\s*(node-gyp-build|node-gyp-build-optional-packages)\s*$`)
)

// classify decides whether a package's install scripts must run to build native
// code for target. abis are the NODE_MODULE_VERSIONs of the target runtimes.
// It returns nil for packages without install scripts.
func classify(root string, p *pkg, t platform, abis []int) *decision {
	text := p.scriptText()
	if text == "" {
		return nil
	}
	d := &decision{Pkg: p}
	install := strings.TrimSpace(p.Scripts["install"])
	switch {
	case p.Scripts["preinstall"] == "" && p.Scripts["postinstall"] == "" && prebuiltLoaders.MatchString(install):
		if f := prebuiltFor(filepath.Join(root, filepath.FromSlash(p.Path)), t, abis); f != "" {
			d.Why = "prebuilt " + f + " fits " + t.String() + "; nothing to compile"
			return d
		}
		d.Build, d.Why = true, "no prebuilt binary for "+t.String()+" in prebuilds/ ("+install+")"
	case p.implicitGyp():
		d.Build, d.Why = true, "binding.gyp (node-gyp rebuild)"
	case buildTools.MatchString(text):
		d.Build, d.Why = true, text
		if downloaders.MatchString(text) {
			d.Download = true
			d.Why += " - its prebuilt download is not reachable from build containers: compiling from source (npm_config_build_from_source=true)"
		}
	case p.HasGyp:
		d.Build, d.Why = true, "binding.gyp, built by its install script ("+text+")"
	default:
		d.Why = "install script not run, it does not build native code (" + text + ")"
	}
	return d
}

// prebuiltFor returns the first file of dir/prebuilds/<os>-<cpu>/ that
// node-gyp-build would load on target: a Node-API build, or one for the ABI of
// every target runtime, and not a musl build. "" when there is none.
func prebuiltFor(dir string, t platform, abis []int) string {
	sub := filepath.Join("prebuilds", t.OS+"-"+t.CPU)
	ents, err := os.ReadDir(filepath.Join(dir, sub))
	if err != nil {
		return ""
	}
	var names []string
	for _, e := range ents {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".node") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	for _, n := range names {
		tags := strings.Split(strings.TrimSuffix(n, ".node"), ".")
		ok := true
		abiTag := 0
		for _, tag := range tags {
			switch {
			case tag == "musl":
				ok = false
			case strings.HasPrefix(tag, "armv"):
				ok = false // 32-bit arm
			case strings.HasPrefix(tag, "abi"):
				abiTag, _ = strconv.Atoi(strings.TrimPrefix(tag, "abi"))
			}
		}
		if abiTag != 0 {
			for _, a := range abis {
				if a != abiTag {
					ok = false
				}
			}
		}
		if ok {
			return filepath.ToSlash(filepath.Join(sub, n))
		}
	}
	return ""
}

// moduleVersions maps a Node.js major to its NODE_MODULE_VERSION (process.versions.modules).
var moduleVersions = map[int]int{16: 93, 18: 108, 19: 111, 20: 115, 21: 120, 22: 127, 23: 131, 24: 137, 25: 141}

// decide classifies every package and returns the ones to build, and the rest
// that have scripts (skipped), both sorted by path.
func decide(root string, pkgs []*pkg, t platform, abis []int) (build, skipped []*decision) {
	for _, p := range pkgs {
		d := classify(root, p, t, abis)
		switch {
		case d == nil:
		case d.Build:
			build = append(build, d)
		default:
			skipped = append(skipped, d)
		}
	}
	return build, skipped
}

// buildOrder sorts the packages to build so that a package comes after the
// packages it depends on (npm's order), then by path.
func buildOrder(all []*pkg, need []*decision) []*decision {
	byPath := map[string]*pkg{}
	for _, p := range all {
		byPath[p.Path] = p
	}
	want := map[string]*decision{}
	for _, d := range need {
		want[d.Pkg.Path] = d
	}
	sorted := append([]*decision(nil), need...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Pkg.Path < sorted[j].Pkg.Path })
	done := map[string]bool{}
	visiting := map[string]bool{}
	var out []*decision
	var visit func(p *pkg)
	visit = func(p *pkg) {
		if done[p.Path] || visiting[p.Path] {
			return // cycles: npm builds those in path order too
		}
		visiting[p.Path] = true
		for _, dep := range p.Deps {
			if q := resolve(byPath, p.Path, dep); q != nil {
				visit(q)
			}
		}
		visiting[p.Path] = false
		done[p.Path] = true
		if d := want[p.Path]; d != nil {
			out = append(out, d)
		}
	}
	for _, d := range sorted {
		visit(d.Pkg)
	}
	return out
}

// shellQuote quotes s for sh.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// lifecycleScript is the shell that runs the install scripts of the packages to
// build, in order, the way npm runs them: in the package's folder, with every
// ancestor's node_modules/.bin on PATH, npm_package_* and npm_lifecycle_*
// set, and npm's implicit "node-gyp rebuild" for a binding.gyp without an
// install script. It does not start npm itself, which under QEMU costs a minute
// per call. An optional package that fails to build is left out, as npm does:
// its path is appended to $LAYERPACK_FAILED.
func lifecycleScript(work string, order []*decision, optional map[string]bool) string {
	var b strings.Builder
	b.WriteString("# generated by layerpack: native builds, in dependency order\n")
	for _, d := range order {
		p := d.Pkg
		dir := work + "/" + p.Path
		var bins []string
		for q := dir; ; {
			bins = append(bins, q+"/node_modules/.bin")
			i := strings.LastIndex(q, "/node_modules/")
			if i < 0 {
				break
			}
			q = q[:i]
		}
		fmt.Fprintf(&b, "\necho %s\n", shellQuote("layerpack: building "+p.Path+" ("+p.Name+"@"+p.Version+")"))
		b.WriteString("(\n")
		fmt.Fprintf(&b, "  cd %s\n", shellQuote(dir))
		fmt.Fprintf(&b, "  export PATH=%s:\"$LAYERPACK_GYP_BIN:$PATH\"\n", shellQuote(strings.Join(bins, ":")))
		fmt.Fprintf(&b, "  export npm_package_name=%s npm_package_version=%s npm_package_json=%s INIT_CWD=%s\n",
			shellQuote(p.Name), shellQuote(p.Version), shellQuote(dir+"/package.json"), shellQuote(work))
		for _, ev := range installScripts {
			script := p.Scripts[ev]
			if ev == "install" && p.implicitGyp() {
				script = "node-gyp rebuild"
			}
			if script == "" {
				continue
			}
			fmt.Fprintf(&b, "  export npm_lifecycle_event=%s npm_lifecycle_script=%s\n", ev, shellQuote(script))
			fmt.Fprintf(&b, "  echo %s\n", shellQuote("> "+p.Name+"@"+p.Version+" "+ev+": "+script))
			fmt.Fprintf(&b, "  sh -e -c %s\n", shellQuote(script))
		}
		if optional[p.Path] {
			fmt.Fprintf(&b, ") || { echo %s; echo %s >> \"$LAYERPACK_FAILED\"; }\n",
				shellQuote("layerpack: optional dependency "+p.Path+" failed to build; it is left out, as npm does"), shellQuote(p.Path))
		} else {
			b.WriteString(")\n")
		}
	}
	return b.String()
}

// rebuild runs the install scripts of the packages in need in the build
// container, on a copy of them and their dependencies, and lays the results
// over root.
func (b *Builder) rebuild(ctx context.Context, j *builders.Job, p *project, root string, pkgs []*pkg, need []*decision,
	ms []int, logf func(string, ...any)) ([]*pkg, error) {
	var roots []*pkg
	var paths []string
	for _, d := range need {
		roots = append(roots, d.Pkg)
		paths = append(paths, d.Pkg.Path)
	}
	sub := filepath.Join(j.Work, "native")
	for _, q := range closure(pkgs, roots) {
		if err := copyTree(filepath.Join(root, filepath.FromSlash(q.Path)), filepath.Join(sub, filepath.FromSlash(q.Path)), true, true); err != nil {
			return nil, err
		}
	}
	if err := copyBinLinks(root, sub, pkgs); err != nil {
		return nil, err
	}
	script := lifecycleScript(workDir, buildOrder(pkgs, need), p.optional())
	if err := os.WriteFile(filepath.Join(sub, buildFile), []byte(script), 0o644); err != nil {
		return nil, err
	}
	secs, env, err := b.secrets(p, j.Layer.Node.Dir, j.Work, logf)
	if err != nil {
		return nil, err
	}
	if env == nil {
		env = map[string]string{}
	}
	env["LAYERPACK_REBUILD"] = strings.Join(paths, "\n")
	dest := filepath.Join(j.Work, "native-out")
	if err := os.MkdirAll(dest, 0o755); err != nil {
		return nil, err
	}
	step := j.Step(stepName(j, "native build"), j.Target.Arch, j.Image, engine.Step{
		Script:  rebuildScript,
		Dir:     "/",
		Env:     stepEnv(env),
		Mounts:  []engine.Mount{{Source: sub, Target: treeMount}},
		Caches:  []engine.Cache{{Key: "npm", Target: npmCache}},
		Secrets: secs,
		Output:  outDir,
		Dest:    dest,
	})
	if err := j.RunCompile(ctx, j.Engine, step); err != nil {
		return nil, err
	}
	major, err := readNodeInfo(dest)
	if err != nil {
		return nil, err
	}
	failed := map[string]bool{}
	if b, err := os.ReadFile(filepath.Join(dest, "failed-optional")); err == nil {
		for _, l := range strings.Fields(string(b)) {
			failed[l] = true
		}
	}
	var built []*pkg
	for _, q := range roots {
		if failed[q.Path] {
			logf("%s: optional dependency failed to build; left out, as npm does", q.Path)
			if err := os.RemoveAll(filepath.Join(root, filepath.FromSlash(q.Path))); err != nil {
				return nil, err
			}
			continue
		}
		out := filepath.Join(dest, "tree", filepath.FromSlash(q.Path))
		if _, err := os.Stat(out); err != nil {
			return nil, fmt.Errorf("the native build step did not export %s: %w", q.Path, err)
		}
		if err := copyTree(out, filepath.Join(root, filepath.FromSlash(q.Path)), false, false); err != nil {
			return nil, err
		}
		built = append(built, q)
	}
	if err := fixBuilt(root, built, major, ms, j.Image, logf); err != nil {
		return nil, err
	}
	return built, nil
}

// copyBinLinks copies, from every node_modules/.bin of root to sub, the links
// whose targets sub holds: the commands install scripts call (node-pre-gyp,
// prebuild-install, node-gyp-build...).
func copyBinLinks(root, sub string, pkgs []*pkg) error {
	dirs := []string{"node_modules/.bin"}
	for _, p := range pkgs {
		dirs = append(dirs, p.Path+"/node_modules/.bin")
	}
	for _, d := range dirs {
		ents, err := os.ReadDir(filepath.Join(root, filepath.FromSlash(d)))
		if err != nil {
			continue
		}
		for _, e := range ents {
			if e.Type()&os.ModeSymlink == 0 {
				continue
			}
			rel := filepath.Join(filepath.FromSlash(d), e.Name())
			target, err := os.Readlink(filepath.Join(root, rel))
			if err != nil {
				return err
			}
			if filepath.IsAbs(target) {
				continue
			}
			if _, err := os.Stat(filepath.Join(sub, filepath.Dir(rel), target)); err != nil {
				continue // its package is not needed for the build
			}
			if err := os.MkdirAll(filepath.Join(sub, filepath.Dir(rel)), 0o755); err != nil {
				return err
			}
			if err := os.Symlink(target, filepath.Join(sub, rel)); err != nil {
				return err
			}
		}
	}
	return nil
}

// fixBuilt checks and fixes the addons the build image compiled: Debian's
// libnode dependency goes, V8-API addons must match the runtimes' Node.js.
func fixBuilt(root string, built []*pkg, imageMajor int, ms []int, image string, logf func(string, ...any)) error {
	changed, err := dropLibnodeTree(root, built)
	if err != nil {
		return err
	}
	for _, c := range changed {
		logf("%s: removed the DT_NEEDED libnode.so the build image's node-gyp adds (Lambda's node has no libnode; it exports those symbols itself)", c)
	}
	return checkABI(root, built, imageMajor, ms, image)
}
