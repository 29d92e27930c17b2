package python

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// Requirements is a parsed requirements file with its -r includes followed. pip reads
// the file itself on the host; the builder parses it to know the top-level names
// (roots for exclude_packages), whether hashes are in use (--require-hashes), what is
// pinned, which files the cache key depends on, and to write a self-contained copy
// for build containers.
type Requirements struct {
	Reqs []Line
	// Options are option lines in file order, already split ("--index-url", "URL").
	Options [][]string
	// Constraints are the requirement lines of -c files.
	Constraints []Line
	// Files are every file read (the top one first), for the cache key.
	Files []string
	// FindLinks are --find-links values found in the files, local ones made absolute.
	FindLinks []string
}

// Line is one requirement line.
type Line struct {
	File   string
	Num    int
	Text   string       // the requirement without its options, ${VAR} expanded
	Req    *Requirement // nil for a bare URL or path
	Hashes []string     // "sha256:..."
	// Options are other per-requirement options (--config-settings...), kept as written.
	Options []string
	// Local is the absolute path of a local package (a folder with pyproject.toml
	// or setup.py, or an sdist or wheel file), resolved against the folder of the
	// file that names it: pip would resolve it against its working folder, a
	// scratch folder. LocalExtras is its "[extra,...]" suffix, as written.
	Local       string
	LocalExtras string
	// Editable is a "-e PATH" line: installed as a regular package (a layer
	// cannot point at a host folder), with a warning.
	Editable bool
}

// Locals are the requirement lines that name local packages, in file order.
func (r *Requirements) Locals() []Line {
	var out []Line
	for _, l := range r.Reqs {
		if l.Local != "" {
			out = append(out, l)
		}
	}
	return out
}

// HasHashes reports whether any requirement carries --hash: pip then requires hashes
// for every package, and the builder passes --require-hashes.
func (r *Requirements) HasHashes() bool {
	for _, l := range r.Reqs {
		if len(l.Hashes) > 0 {
			return true
		}
	}
	for _, o := range r.Options {
		if o[0] == "--require-hashes" {
			return true
		}
	}
	return false
}

// Pinned is the set of normalised names pinned to one version (name==X) by a
// requirement or a constraint, or given as a URL.
func (r *Requirements) Pinned() map[string]bool {
	out := map[string]bool{}
	for _, ls := range [][]Line{r.Reqs, r.Constraints} {
		for _, l := range ls {
			if l.Req != nil && (l.Req.Pin() != "" || l.Req.URL != "") {
				out[l.Req.Key()] = true
			}
		}
	}
	return out
}

// Unpinned lists the top-level requirements that are not pinned, in file order.
func (r *Requirements) Unpinned() []string {
	pinned := r.Pinned()
	var out []string
	for _, l := range r.Reqs {
		if l.Req != nil && !pinned[l.Req.Key()] {
			out = append(out, l.Req.Name)
		}
	}
	return out
}

// HashesFor returns the allowed hashes of a name, from every line naming it.
func (r *Requirements) HashesFor(name string) []string {
	var out []string
	for _, l := range r.Reqs {
		if l.Req != nil && l.Req.Key() == Normalize(name) {
			out = append(out, l.Hashes...)
		}
	}
	return out
}

// Roots are the normalised names of the top-level requirements that apply to env.
func (r *Requirements) Roots(env Env) map[string][]string {
	out := map[string][]string{}
	for _, l := range r.Reqs {
		if l.Req == nil || !l.Req.Marker.Eval(env, "") {
			continue
		}
		out[l.Req.Key()] = append(out[l.Req.Key()], l.Req.Extras...)
	}
	return out
}

// optionArgs is how many values each requirements-file option takes.
var optionArgs = map[string]int{
	"-r": 1, "--requirement": 1, "-c": 1, "--constraint": 1,
	"-i": 1, "--index-url": 1, "--extra-index-url": 1, "-f": 1, "--find-links": 1,
	"--trusted-host": 1, "--only-binary": 1, "--no-binary": 1, "--use-feature": 1,
	"--no-index": 0, "--pre": 0, "--prefer-binary": 0, "--require-hashes": 0,
	"-e": 1, "--editable": 1,
}

var envRef = regexp.MustCompile(`\$\{([A-Z0-9_]+)\}`)

// expandEnv expands ${VAR} the way pip does in requirements files (upper-case names
// only; unknown variables are left as written).
func expandEnv(s string, getenv func(string) string) string {
	return envRef.ReplaceAllStringFunc(s, func(m string) string {
		if v := getenv(m[2 : len(m)-1]); v != "" {
			return v
		}
		return m
	})
}

// ParseRequirements reads a requirements file and the files it includes.
func ParseRequirements(path string, getenv func(string) string) (*Requirements, error) {
	r := &Requirements{}
	if err := r.read(path, false, getenv, map[string]bool{}); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *Requirements) read(path string, constraint bool, getenv func(string) string, seen map[string]bool) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	if seen[abs] {
		return nil
	}
	seen[abs] = true
	b, err := os.ReadFile(abs)
	if err != nil {
		return err
	}
	r.Files = append(r.Files, abs)
	dir := filepath.Dir(abs)
	for _, ll := range logicalLines(string(b)) {
		where := fmt.Sprintf("%s:%d", filepath.Base(abs), ll.num)
		fields := strings.Fields(expandEnv(ll.text, getenv))
		if len(fields) == 0 {
			continue
		}
		if strings.HasPrefix(fields[0], "-") {
			opt, val, hasVal := strings.Cut(fields[0], "=")
			if len(opt) > 2 && !strings.HasPrefix(opt, "--") && !hasVal {
				// "-rfile" / "-ihttps://..."
				opt, val, hasVal = opt[:2], opt[2:], true
			}
			n, ok := optionArgs[opt]
			if !ok {
				return fmt.Errorf("%s: option %s is not supported in requirements files here", where, opt)
			}
			args := []string{opt}
			if n == 1 {
				switch {
				case hasVal:
					args = append(args, val)
				case len(fields) > 1:
					args = append(args, fields[1])
				default:
					return fmt.Errorf("%s: %s needs a value", where, opt)
				}
			}
			switch opt {
			case "-r", "--requirement", "-c", "--constraint":
				p := args[1]
				if !filepath.IsAbs(p) {
					p = filepath.Join(dir, p)
				}
				if err := r.read(p, constraint || opt == "-c" || opt == "--constraint", getenv, seen); err != nil {
					return fmt.Errorf("%s: %w", where, err)
				}
			case "-e", "--editable":
				rest := fields[1:]
				if !hasVal {
					rest = fields[2:]
				}
				line, err := parseReqLine(append([]string{args[1]}, rest...), abs, ll.num)
				if err == nil && line.Local == "" {
					err = fmt.Errorf("only a local folder can be editable here (-e %s): use a version or a URL", args[1])
				}
				if err != nil {
					return fmt.Errorf("%s: %w", where, err)
				}
				if constraint {
					return fmt.Errorf("%s: -e in a constraints file", where)
				}
				line.Editable = true
				r.Reqs = append(r.Reqs, line)
			case "-f", "--find-links":
				v := args[1]
				if !strings.Contains(v, "://") && !filepath.IsAbs(v) {
					v = filepath.Join(dir, v)
				}
				r.FindLinks = append(r.FindLinks, v)
				args[1] = v
				r.Options = append(r.Options, args)
			default:
				if opt == "-i" {
					args[0] = "--index-url"
				}
				r.Options = append(r.Options, args)
			}
			continue
		}
		line, err := parseReqLine(fields, abs, ll.num)
		if err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		if constraint {
			r.Constraints = append(r.Constraints, line)
		} else {
			r.Reqs = append(r.Reqs, line)
		}
	}
	return nil
}

// parseReqLine splits a requirement from its options (--hash=...).
func parseReqLine(fields []string, file string, num int) (Line, error) {
	l := Line{File: file, Num: num}
	var req []string
	for i := 0; i < len(fields); i++ {
		f := fields[i]
		if !strings.HasPrefix(f, "--") {
			req = append(req, f)
			continue
		}
		opt, val, hasVal := strings.Cut(f, "=")
		if !hasVal && i+1 < len(fields) {
			i++
			val = fields[i]
		}
		if opt == "--hash" {
			if !strings.Contains(val, ":") {
				return l, fmt.Errorf("bad --hash %q (want ALGO:HEX)", val)
			}
			l.Hashes = append(l.Hashes, val)
			continue
		}
		l.Options = append(l.Options, opt+"="+val)
	}
	l.Text = strings.Join(req, " ")
	if l.Text == "" {
		return l, fmt.Errorf("a line with options but no requirement")
	}
	// A bare URL or path has no name until pip reads it.
	if strings.Contains(req[0], "://") {
		return l, nil
	}
	if looksLikePath(req[0]) {
		return l, l.resolveLocal(req[0], filepath.Dir(file))
	}
	r, err := ParseRequirement(l.Text)
	if err != nil {
		return l, err
	}
	l.Req = r
	return l, nil
}

// archiveExts are the file names pip installs as an sdist or a wheel.
var archiveExts = []string{".whl", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".tar", ".zip"}

// looksLikePath is pip's test for a requirement that is a path: it has a slash
// or starts with a dot, or it names an archive.
func looksLikePath(s string) bool {
	if strings.Contains(s, "/") || strings.HasPrefix(s, ".") {
		return true
	}
	return archiveExt(s) != ""
}

func archiveExt(s string) string {
	for _, e := range archiveExts {
		if strings.HasSuffix(s, e) {
			return e
		}
	}
	return ""
}

// resolveLocal resolves a path requirement against dir and checks that it is a
// package folder or an archive.
func (l *Line) resolveLocal(p, dir string) error {
	p = strings.TrimPrefix(p, "file:")
	if i := strings.LastIndex(p, "["); i > 0 && strings.HasSuffix(p, "]") {
		p, l.LocalExtras = p[:i], p[i:]
	}
	if !filepath.IsAbs(p) {
		p = filepath.Join(dir, p)
	}
	st, err := os.Stat(p)
	if err != nil {
		return fmt.Errorf("local package %s: %w (a path is relative to the requirements file that names it)", l.Text, err)
	}
	if st.IsDir() {
		if !exists(filepath.Join(p, "pyproject.toml")) && !exists(filepath.Join(p, "setup.py")) {
			return fmt.Errorf("local package %s: %s has neither pyproject.toml nor setup.py", l.Text, p)
		}
	} else if archiveExt(p) == "" {
		return fmt.Errorf("local package %s: %s is neither a package folder nor an sdist or wheel file", l.Text, p)
	}
	l.Local = filepath.Clean(p)
	return nil
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

type logicalLine struct {
	num  int
	text string
}

// logicalLines joins backslash continuations and drops comments, as pip does.
func logicalLines(s string) []logicalLine {
	var out []logicalLine
	var cur strings.Builder
	start := 0
	for i, raw := range strings.Split(s, "\n") {
		raw = strings.TrimRight(raw, "\r")
		if cur.Len() == 0 {
			start = i + 1
		}
		if strings.HasSuffix(raw, `\`) {
			cur.WriteString(strings.TrimSuffix(raw, `\`))
			cur.WriteString(" ")
			continue
		}
		cur.WriteString(raw)
		text := cur.String()
		cur.Reset()
		if j := commentStart(text); j >= 0 {
			text = text[:j]
		}
		if strings.TrimSpace(text) != "" {
			out = append(out, logicalLine{num: start, text: text})
		}
	}
	if cur.Len() > 0 {
		out = append(out, logicalLine{num: start, text: cur.String()})
	}
	return out
}

// commentStart finds a "#" at the start of the line or after whitespace.
func commentStart(s string) int {
	for i := 0; i < len(s); i++ {
		if s[i] == '#' && (i == 0 || s[i-1] == ' ' || s[i-1] == '\t') {
			return i
		}
	}
	return -1
}

// Write writes a self-contained requirements file (includes inlined; constraints in
// a second file when any) for a build container. Index options (--index-url,
// --extra-index-url, --no-index, --trusted-host, --find-links) are left out: the
// builder merges them into its index settings, given to the container as
// arguments, mounts and secrets.
func (r *Requirements) Write(reqPath, consPath string) (bool, error) {
	return r.WriteWith(reqPath, consPath, nil)
}

// WriteWith is Write with each local package's line replaced by local(line)
// (nil: the line as written).
func (r *Requirements) WriteWith(reqPath, consPath string, local func(Line) string) (bool, error) {
	var b strings.Builder
	for _, o := range r.Options {
		switch o[0] {
		case "--index-url", "--extra-index-url", "--no-index", "--trusted-host", "-f", "--find-links":
			continue
		}
		b.WriteString(strings.Join(o, " ") + "\n")
	}
	writeLines := func(b *strings.Builder, ls []Line) {
		for _, l := range ls {
			if l.Local != "" && local != nil {
				b.WriteString(local(l) + "\n")
				continue
			}
			b.WriteString(l.Text)
			for _, o := range l.Options {
				b.WriteString(" " + o)
			}
			for _, h := range l.Hashes {
				b.WriteString(" --hash=" + h)
			}
			b.WriteString("\n")
		}
	}
	writeLines(&b, r.Reqs)
	hasCons := len(r.Constraints) > 0
	if hasCons {
		fmt.Fprintf(&b, "-c %s\n", filepath.Base(consPath))
		var c strings.Builder
		writeLines(&c, r.Constraints)
		if err := os.WriteFile(consPath, []byte(c.String()), 0o644); err != nil {
			return false, err
		}
	}
	return hasCons, os.WriteFile(reqPath, []byte(b.String()), 0o644)
}
