package node

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
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
