package python

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// This file holds the small part of PEP 508 and PEP 440 the builder needs: parsing a
// requirement ("name[extra]>=1; marker"), evaluating environment markers for the
// target Lambda runtime (not for the host, which is what pip would do), and
// comparing versions inside markers.

// Requirement is one parsed PEP 508 requirement.
type Requirement struct {
	Name      string   // as written
	Extras    []string // normalised
	Specifier string   // ">=1.0,<2", "" when none
	URL       string   // after "@", "" when none
	Marker    *Marker  // nil when none
}

// Key is the normalised project name (PEP 503): "Foo_Bar" -> "foo-bar".
func (r *Requirement) Key() string { return Normalize(r.Name) }

var nameSep = regexp.MustCompile(`[-_.]+`)

// Normalize is a project name in PEP 503 normal form.
func Normalize(name string) string {
	return strings.ToLower(nameSep.ReplaceAllString(name, "-"))
}

var reqName = regexp.MustCompile(`^\s*([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*`)

// ParseRequirement parses a PEP 508 requirement string.
func ParseRequirement(s string) (*Requirement, error) {
	m := reqName.FindStringSubmatch(s)
	if m == nil {
		return nil, fmt.Errorf("%q is not a requirement (want name[extras] specifier ; marker)", s)
	}
	r := &Requirement{Name: m[1]}
	rest := s[len(m[0]):]
	if strings.HasPrefix(rest, "[") {
		end := strings.Index(rest, "]")
		if end < 0 {
			return nil, fmt.Errorf("%q: unclosed [ in extras", s)
		}
		for _, e := range strings.Split(rest[1:end], ",") {
			if e = strings.TrimSpace(e); e != "" {
				r.Extras = append(r.Extras, Normalize(e))
			}
		}
		rest = strings.TrimSpace(rest[end+1:])
	}
	var marker string
	if strings.HasPrefix(rest, "@") {
		// A URL ends at whitespace; a marker may follow after " ;".
		u := strings.TrimSpace(rest[1:])
		if i := strings.Index(u, " ;"); i >= 0 {
			u, marker = u[:i], u[i+2:]
		} else if i := strings.IndexAny(u, " \t"); i >= 0 {
			tail := strings.TrimSpace(u[i:])
			if !strings.HasPrefix(tail, ";") {
				return nil, fmt.Errorf("%q: unexpected text after the URL", s)
			}
			u, marker = u[:i], tail[1:]
		}
		r.URL = u
	} else {
		spec := rest
		if i := strings.Index(rest, ";"); i >= 0 {
			spec, marker = rest[:i], rest[i+1:]
		}
		spec = strings.TrimSpace(spec)
		if strings.HasPrefix(spec, "(") && strings.HasSuffix(spec, ")") {
			spec = strings.TrimSpace(spec[1 : len(spec)-1])
		}
		if spec != "" && !strings.ContainsAny(spec[:1], "<>=!~") {
			return nil, fmt.Errorf("%q: %q is not a version specifier", s, spec)
		}
		r.Specifier = strings.Join(strings.Fields(spec), "")
	}
	if strings.TrimSpace(marker) != "" {
		mk, err := ParseMarker(marker)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", s, err)
		}
		r.Marker = mk
	}
	return r, nil
}

// Pin returns the exact version when the specifier is one "==X" without a wildcard
// (or "===X"), and "" otherwise.
func (r *Requirement) Pin() string {
	if strings.Contains(r.Specifier, ",") {
		return ""
	}
	switch {
	case strings.HasPrefix(r.Specifier, "==="):
		return r.Specifier[3:]
	case strings.HasPrefix(r.Specifier, "==") && !strings.HasSuffix(r.Specifier, "*"):
		return r.Specifier[2:]
	}
	return ""
}

// Env is a marker environment (PEP 508 variable -> value).
type Env map[string]string

// TargetEnv is the marker environment of a Lambda Python runtime: Linux, CPython,
// the given version and CPU. The patch level is unknown (Lambda updates it); ".0"
// is assumed, so markers on python_full_version compare against X.Y.0.
func TargetEnv(pyVersion, gnuArch string) Env {
	return Env{
		"os_name":                        "posix",
		"sys_platform":                   "linux",
		"platform_system":                "Linux",
		"platform_machine":               gnuArch,
		"platform_python_implementation": "CPython",
		"implementation_name":            "cpython",
		"python_version":                 pyVersion,
		"python_full_version":            pyVersion + ".0",
		"implementation_version":         pyVersion + ".0",
		"platform_release":               "",
		"platform_version":               "",
	}
}

// Marker is a parsed environment marker expression.
type Marker struct {
	src  string
	root markerNode
}

func (m *Marker) String() string {
	if m == nil {
		return ""
	}
	return m.src
}

// Eval evaluates the marker; extra is the extra being resolved ("" for none).
func (m *Marker) Eval(env Env, extra string) bool {
	if m == nil {
		return true
	}
	return m.root.eval(env, Normalize(extra))
}

// UsesExtra reports whether the marker mentions the "extra" variable.
func (m *Marker) UsesExtra() bool { return m != nil && strings.Contains(m.src, "extra") }

type markerNode interface {
	eval(env Env, extra string) bool
}

type andNode struct{ l, r markerNode }
type orNode struct{ l, r markerNode }
type cmpNode struct {
	lhs, op, rhs string
	lVar, rVar   bool
}

func (n andNode) eval(e Env, x string) bool { return n.l.eval(e, x) && n.r.eval(e, x) }
func (n orNode) eval(e Env, x string) bool  { return n.l.eval(e, x) || n.r.eval(e, x) }

var versionVars = map[string]bool{"python_version": true, "python_full_version": true, "implementation_version": true}

func (n cmpNode) eval(e Env, extra string) bool {
	value := func(s string, isVar bool) string {
		if !isVar {
			return s
		}
		if s == "extra" {
			return extra
		}
		return e[s]
	}
	l, r := value(n.lhs, n.lVar), value(n.rhs, n.rVar)
	if (n.lVar && n.lhs == "extra") || (n.rVar && n.rhs == "extra") {
		l, r = Normalize(l), Normalize(r)
		if n.op == "==" || n.op == "===" {
			return l == r
		}
		if n.op == "!=" {
			return l != r
		}
	}
	switch n.op {
	case "in":
		return strings.Contains(r, l)
	case "not in":
		return !strings.Contains(r, l)
	}
	isVersion := (n.lVar && versionVars[n.lhs]) || (n.rVar && versionVars[n.rhs])
	if isVersion {
		if lv, err := ParseVersion(l); err == nil {
			if n.op == "==" && strings.HasSuffix(r, ".*") {
				return versionPrefix(lv, r[:len(r)-2])
			}
			if n.op == "!=" && strings.HasSuffix(r, ".*") {
				return !versionPrefix(lv, r[:len(r)-2])
			}
			if rv, err := ParseVersion(r); err == nil {
				c := lv.Compare(rv)
				switch n.op {
				case "<":
					return c < 0
				case "<=":
					return c <= 0
				case ">":
					return c > 0
				case ">=":
					return c >= 0
				case "==":
					return c == 0
				case "!=":
					return c != 0
				case "~=":
					return c >= 0 && compatiblePrefix(lv, rv)
				}
			}
		}
	}
	switch n.op {
	case "==", "===":
		return l == r
	case "!=":
		return l != r
	case "<":
		return l < r
	case "<=":
		return l <= r
	case ">":
		return l > r
	case ">=":
		return l >= r
	}
	return false
}

func versionPrefix(v Version, prefix string) bool {
	p, err := ParseVersion(prefix)
	if err != nil {
		return false
	}
	for i, n := range p.Release {
		if i >= len(v.Release) {
			if n != 0 {
				return false
			}
			continue
		}
		if v.Release[i] != n {
			return false
		}
	}
	return true
}

// compatiblePrefix: ~=2.2.1 means >=2.2.1 and ==2.2.*.
func compatiblePrefix(v, base Version) bool {
	n := len(base.Release) - 1
	if n < 1 {
		n = 1
	}
	for i := 0; i < n; i++ {
		a := 0
		if i < len(v.Release) {
			a = v.Release[i]
		}
		if a != base.Release[i] {
			return false
		}
	}
	return true
}

var markerVars = map[string]bool{
	"os_name": true, "sys_platform": true, "platform_machine": true, "platform_python_implementation": true,
	"platform_release": true, "platform_system": true, "platform_version": true, "python_version": true,
	"python_full_version": true, "implementation_name": true, "implementation_version": true, "extra": true,
	// Old spellings pip still accepts.
	"os.name": true, "sys.platform": true, "platform.version": true, "platform.machine": true,
	"platform.python_implementation": true, "python_implementation": true,
}

var oldVarNames = map[string]string{
	"os.name": "os_name", "sys.platform": "sys_platform", "platform.version": "platform_version",
	"platform.machine": "platform_machine", "platform.python_implementation": "platform_python_implementation",
	"python_implementation": "platform_python_implementation",
}

// ParseMarker parses an environment marker expression.
func ParseMarker(s string) (*Marker, error) {
	toks, err := tokenizeMarker(s)
	if err != nil {
		return nil, err
	}
	p := &markerParser{toks: toks}
	n, err := p.or()
	if err != nil {
		return nil, fmt.Errorf("marker %q: %w", strings.TrimSpace(s), err)
	}
	if p.i != len(p.toks) {
		return nil, fmt.Errorf("marker %q: unexpected %q", strings.TrimSpace(s), p.toks[p.i].s)
	}
	return &Marker{src: strings.TrimSpace(s), root: n}, nil
}

type markerTok struct {
	kind byte // 's' string, 'v' variable, 'o' operator, '(' ')' 'a' and 'r' or
	s    string
}

func tokenizeMarker(s string) ([]markerTok, error) {
	var toks []markerTok
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			i++
		case c == '(' || c == ')':
			toks = append(toks, markerTok{kind: c, s: string(c)})
			i++
		case c == '"' || c == '\'':
			end := strings.IndexByte(s[i+1:], c)
			if end < 0 {
				return nil, fmt.Errorf("marker %q: unclosed string", s)
			}
			toks = append(toks, markerTok{kind: 's', s: s[i+1 : i+1+end]})
			i += end + 2
		case strings.ContainsRune("<>=!~", rune(c)):
			j := i
			for j < len(s) && strings.ContainsRune("<>=!~", rune(s[j])) {
				j++
			}
			op := s[i:j]
			switch op {
			case "<", "<=", ">", ">=", "==", "!=", "~=", "===":
			default:
				return nil, fmt.Errorf("marker %q: bad operator %q", s, op)
			}
			toks = append(toks, markerTok{kind: 'o', s: op})
			i = j
		default:
			j := i
			for j < len(s) && (isAlnum(s[j]) || s[j] == '_' || s[j] == '.') {
				j++
			}
			if j == i {
				return nil, fmt.Errorf("marker %q: unexpected %q", s, string(c))
			}
			w := s[i:j]
			i = j
			switch {
			case w == "and":
				toks = append(toks, markerTok{kind: 'a', s: w})
			case w == "or":
				toks = append(toks, markerTok{kind: 'r', s: w})
			case w == "in":
				toks = append(toks, markerTok{kind: 'o', s: "in"})
			case w == "not":
				rest := strings.TrimLeft(s[i:], " \t")
				if !strings.HasPrefix(rest, "in") {
					return nil, fmt.Errorf("marker %q: \"not\" without \"in\"", s)
				}
				i = len(s) - len(rest) + 2
				toks = append(toks, markerTok{kind: 'o', s: "not in"})
			case markerVars[w]:
				if n, ok := oldVarNames[w]; ok {
					w = n
				}
				toks = append(toks, markerTok{kind: 'v', s: w})
			default:
				return nil, fmt.Errorf("marker %q: unknown variable %q", s, w)
			}
		}
	}
	return toks, nil
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

type markerParser struct {
	toks []markerTok
	i    int
}

func (p *markerParser) peek() byte {
	if p.i < len(p.toks) {
		return p.toks[p.i].kind
	}
	return 0
}

func (p *markerParser) or() (markerNode, error) {
	l, err := p.and()
	if err != nil {
		return nil, err
	}
	for p.peek() == 'r' {
		p.i++
		r, err := p.and()
		if err != nil {
			return nil, err
		}
		l = orNode{l, r}
	}
	return l, nil
}

func (p *markerParser) and() (markerNode, error) {
	l, err := p.atom()
	if err != nil {
		return nil, err
	}
	for p.peek() == 'a' {
		p.i++
		r, err := p.atom()
		if err != nil {
			return nil, err
		}
		l = andNode{l, r}
	}
	return l, nil
}

func (p *markerParser) atom() (markerNode, error) {
	if p.peek() == '(' {
		p.i++
		n, err := p.or()
		if err != nil {
			return nil, err
		}
		if p.peek() != ')' {
			return nil, fmt.Errorf("missing )")
		}
		p.i++
		return n, nil
	}
	if p.i+3 > len(p.toks) {
		return nil, fmt.Errorf("incomplete comparison")
	}
	a, op, b := p.toks[p.i], p.toks[p.i+1], p.toks[p.i+2]
	if op.kind != 'o' || (a.kind != 's' && a.kind != 'v') || (b.kind != 's' && b.kind != 'v') {
		return nil, fmt.Errorf("expected a comparison near %q", a.s)
	}
	p.i += 3
	return cmpNode{lhs: a.s, op: op.s, rhs: b.s, lVar: a.kind == 'v', rVar: b.kind == 'v'}, nil
}

// Version is a PEP 440 version, enough to order versions in markers.
type Version struct {
	Epoch   int
	Release []int
	Pre     [2]int // kind (0 a, 1 b, 2 rc) and number
	HasPre  bool
	Post    int // -1 when absent
	Dev     int // -1 when absent
}

var versionRe = regexp.MustCompile(`^v?(?:(\d+)!)?(\d+(?:\.\d+)*)(?:[-_.]?(a|alpha|b|beta|c|rc|pre|preview)[-_.]?(\d*))?(?:(?:-(\d+))|(?:[-_.]?(post|rev|r)[-_.]?(\d*)))?(?:[-_.]?(dev)[-_.]?(\d*))?(?:\+[a-z0-9]+(?:[-_.][a-z0-9]+)*)?$`)

// ParseVersion parses a PEP 440 version (local labels are accepted and ignored).
func ParseVersion(s string) (Version, error) {
	m := versionRe.FindStringSubmatch(strings.ToLower(strings.TrimSpace(s)))
	if m == nil {
		return Version{}, fmt.Errorf("%q is not a PEP 440 version", s)
	}
	atoi := func(x string) int { n, _ := strconv.Atoi(x); return n }
	v := Version{Post: -1, Dev: -1}
	if m[1] != "" {
		v.Epoch = atoi(m[1])
	}
	for _, p := range strings.Split(m[2], ".") {
		v.Release = append(v.Release, atoi(p))
	}
	if m[3] != "" {
		v.HasPre = true
		switch m[3] {
		case "a", "alpha":
			v.Pre[0] = 0
		case "b", "beta":
			v.Pre[0] = 1
		default:
			v.Pre[0] = 2
		}
		v.Pre[1] = atoi(m[4])
	}
	switch {
	case m[5] != "":
		v.Post = atoi(m[5])
	case m[6] != "":
		v.Post = atoi(m[7])
	}
	if m[8] != "" {
		v.Dev = atoi(m[9])
	}
	return v, nil
}

// Compare orders two versions: -1, 0 or 1.
func (v Version) Compare(w Version) int {
	if c := cmpInt(v.Epoch, w.Epoch); c != 0 {
		return c
	}
	n := max(len(v.Release), len(w.Release))
	for i := 0; i < n; i++ {
		a, b := 0, 0
		if i < len(v.Release) {
			a = v.Release[i]
		}
		if i < len(w.Release) {
			b = w.Release[i]
		}
		if c := cmpInt(a, b); c != 0 {
			return c
		}
	}
	// Pre-releases sort before the release; a dev release of the release itself
	// sorts before its pre-releases.
	if c := cmpInt(v.preKey(), w.preKey()); c != 0 {
		return c
	}
	if v.HasPre && w.HasPre {
		if c := cmpInt(v.Pre[1], w.Pre[1]); c != 0 {
			return c
		}
	}
	if c := cmpInt(v.Post, w.Post); c != 0 {
		return c
	}
	vd, wd := v.Dev, w.Dev
	if vd < 0 {
		vd = 1 << 30
	}
	if wd < 0 {
		wd = 1 << 30
	}
	return cmpInt(vd, wd)
}

func (v Version) preKey() int {
	switch {
	case v.HasPre:
		return v.Pre[0]
	case v.Dev >= 0 && v.Post < 0:
		return -1 // 1.0.dev0 < 1.0a1
	}
	return 3
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
