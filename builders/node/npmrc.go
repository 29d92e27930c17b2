package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/layerpack/layerpack/internal/redact"
)

// npmConfig is the npm configuration a build step gets, as one userconfig file
// given as a secret: the host user's config ($npm_config_userconfig, else
// ~/.npmrc), the project's .npmrc and the host's npm_config_* registry
// variables, merged in npm's order of precedence (environment over project over
// user). npm in the container then reads registries, scoped registries and
// per-registry credentials the way npm on the host does. Settings that name
// host paths, or that only make sense on the host, are left out.
//
// ${NAME} references stay as written: npm expands them in the step, from the
// variables given as secret environment values.
type npmConfig struct {
	Entries []npmEntry   // what the step gets, in order
	Dropped []npmDropped // what it does not get, and why
	Sources []string     // what was read, as shown to the user (~/.npmrc, app/.npmrc, environment)
	Refs    []string     // ${NAME} variables the entries use, sorted
}

// npmEntry is one setting.
type npmEntry struct {
	Key   string // as npm reads it ("registry", "@corp:registry", "//host/:_authToken", "key[]")
	Value string // as npm reads it (unquoted, comments removed)
	Line  string // the line written into the step's file
	From  string // where it comes from, as shown
	// Project is true for the project's .npmrc, which is a cache input as a
	// file; the others enter the cache key masked (keyText).
	Project bool
}

// npmDropped is a setting left out of build steps.
type npmDropped struct {
	Key, From, Why string
}

// sectionMark starts the key of a setting inside an ini [section].
const sectionMark = "\x00section "

// Sources of settings, as shown in plan output and logs.
const npmEnvSource = "npm_config_* (environment)"

// hostPathKeys are npm settings whose values are host paths or host programs: in
// a build container they would name nothing, or the wrong thing.
var hostPathKeys = map[string]string{
	"cafile":           "a host file; the step trusts the host CA bundle the engine mounts (trust_host_ca)",
	"cache":            "a host path; the step has its own npm cache",
	"prefix":           "a host path",
	"globalconfig":     "a host path",
	"userconfig":       "a host path",
	"globalignorefile": "a host path",
	"init-module":      "a host path",
	"tmp":              "a host path",
	"logs-dir":         "a host path",
	"nodedir":          "a host path; the step finds the image's Node.js headers",
	"devdir":           "a host path",
	"node-gyp":         "a host program",
	"python":           "a host program",
	"git":              "a host program",
	"shell":            "a host program",
	"script-shell":     "a host program",
	"editor":           "a host program",
	"viewer":           "a host program",
	"browser":          "a host program",
	"certfile":         "a host file (client certificates are not given to build steps)",
	"keyfile":          "a host file (client certificates are not given to build steps)",
}

// userOnlyKeys are settings of the user's own config that are host
// preferences, not part of how the project builds.
var userOnlyKeys = map[string]string{
	"ignore-scripts": "a host preference: the build container runs install scripts (set it in the project's .npmrc to change that)",
}

// credentialKeys are settings whose values are secrets (alone, or after the
// "//host/path/:" of a per-registry setting).
var credentialKeys = map[string]bool{
	"_auth": true, "_authtoken": true, "_password": true, "password": true,
	"username": true, "key": true, "token": true, "otp": true,
}

// userNpmrc is the user config file npm on the host reads: $npm_config_userconfig
// (any case, as npm reads it), else ~/.npmrc. "" when there is no home.
func userNpmrc(getenv func(string) string, environ []string) string {
	p := ""
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		if strings.EqualFold(k, "npm_config_userconfig") && v != "" && (p == "" || k == "npm_config_userconfig") {
			p = v
		}
	}
	home := getenv("HOME")
	switch {
	case p == "" && home == "":
		return ""
	case p == "":
		return filepath.Join(home, ".npmrc")
	case p == "~" || strings.HasPrefix(p, "~/"):
		if home == "" {
			return ""
		}
		p = filepath.Join(home, p[1:])
	}
	if abs, err := filepath.Abs(p); err == nil {
		p = abs
	}
	return p
}

// loadNpmConfig reads and merges the configuration a build step of project p
// (shown as shown) gets. It returns nil when there is none.
func loadNpmConfig(p *project, shown string, getenv func(string) string, environ []string) (*npmConfig, error) {
	c := &npmConfig{}
	var layers [][]npmEntry
	if f := userNpmrc(getenv, environ); f != "" && f != filepath.Join(p.Dir, ".npmrc") {
		b, err := os.ReadFile(f)
		switch {
		case errors.Is(err, os.ErrNotExist):
		case err != nil:
			return nil, fmt.Errorf("npm user config %s: %w", f, err)
		default:
			from := f
			if home := getenv("HOME"); home != "" {
				if rel, err := filepath.Rel(home, f); err == nil && !strings.HasPrefix(rel, "..") {
					from = "~/" + filepath.ToSlash(rel)
				}
			}
			c.Sources = append(c.Sources, from)
			layers = append(layers, c.keep(parseNpmrc(string(b), from), true))
		}
	}
	if p.Npmrc {
		from := path.Join(shown, ".npmrc")
		b, err := os.ReadFile(filepath.Join(p.Dir, ".npmrc"))
		if err != nil {
			return nil, err
		}
		c.Sources = append(c.Sources, from)
		entries := parseNpmrc(string(b), from)
		for i := range entries {
			entries[i].Project = true
		}
		layers = append(layers, c.keep(entries, false))
	}
	if env := npmEnvSettings(environ); len(env) > 0 {
		c.Sources = append(c.Sources, npmEnvSource)
		layers = append(layers, c.keep(env, false))
	}
	if len(c.Sources) == 0 {
		return nil, nil
	}
	c.Entries = mergeNpm(layers)
	var lines strings.Builder
	for _, e := range c.Entries {
		lines.WriteString(e.Line + "\n")
	}
	c.Refs = npmrcEnvRefs(lines.String())
	return c, nil
}

// keep drops the entries build steps must not get, recording why.
func (c *npmConfig) keep(entries []npmEntry, user bool) []npmEntry {
	var out []npmEntry
	for _, e := range entries {
		if why := dropReason(e.Key, user); why != "" {
			c.Dropped = append(c.Dropped, npmDropped{Key: e.Key, From: e.From, Why: why})
			continue
		}
		out = append(out, e)
	}
	return out
}

// dropReason says why a setting is left out of build steps, "" to keep it.
func dropReason(key string, user bool) string {
	if strings.HasPrefix(key, sectionMark) {
		return "inside an ini [section], which npm does not read as settings"
	}
	k := strings.ToLower(key)
	if strings.HasPrefix(k, "//") {
		if sub := nerfSub(k); sub == "certfile" || sub == "keyfile" || sub == "cafile" {
			return hostPathKeys[sub]
		}
		return ""
	}
	if why := hostPathKeys[k]; why != "" {
		return why
	}
	if user {
		return userOnlyKeys[k]
	}
	return ""
}

// nerfSub is the setting of a per-registry key ("//host/path/:_authToken" ->
// "_authtoken"), lower case.
func nerfSub(k string) string {
	i := strings.LastIndex(k, ":")
	if i < 0 {
		return ""
	}
	return strings.ToLower(k[i+1:])
}

// isCredential reports whether a key's value is a secret.
func isCredential(key string) bool {
	k := strings.ToLower(key)
	if strings.HasPrefix(k, "//") {
		return credentialKeys[nerfSub(k)]
	}
	return credentialKeys[k]
}

// mergeNpm merges layers of increasing precedence: a key set in a later layer
// replaces every entry of that key before it (all of a key[] list at once).
func mergeNpm(layers [][]npmEntry) []npmEntry {
	var out []npmEntry
	for _, l := range layers {
		set := map[string]bool{}
		for _, e := range l {
			set[e.Key] = true
		}
		kept := out[:0:0]
		for _, e := range out {
			if !set[e.Key] {
				kept = append(kept, e)
			}
		}
		out = append(kept, l...)
	}
	return out
}

// parseNpmrc reads an .npmrc as npm's ini parser does: "key = value" lines,
// whole-line comments (; or #), quoted or escaped values, key[] lists. Keys
// inside [sections] are returned with a marker so that they are dropped.
func parseNpmrc(text, from string) []npmEntry {
	var out []npmEntry
	section := ""
	for _, line := range strings.Split(text, "\n") {
		t := strings.TrimSpace(strings.TrimSuffix(line, "\r"))
		if t == "" || t[0] == ';' || t[0] == '#' {
			continue
		}
		if t[0] == '[' && strings.HasSuffix(t, "]") && !strings.Contains(t[1:len(t)-1], "]") {
			section = t[1 : len(t)-1]
			continue
		}
		rawKey, rawVal, hasVal := strings.Cut(t, "=")
		key := iniValue(rawKey)
		if key == "" {
			continue
		}
		val := "true"
		if hasVal {
			val = iniValue(rawVal)
		}
		if section != "" {
			key = sectionMark + section + " " + key
		}
		out = append(out, npmEntry{Key: key, Value: val, Line: t, From: from})
	}
	return out
}

// iniValue is a key or value as npm's ini parser reads it: quotes removed, or
// an unescaped ; or # ending it.
func iniValue(s string) string {
	s = strings.TrimSpace(s)
	if len(s) >= 2 && (s[0] == '"' && s[len(s)-1] == '"' || s[0] == '\'' && s[len(s)-1] == '\'') {
		if s[0] == '\'' {
			s = s[1 : len(s)-1]
		}
		var v string
		if json.Unmarshal([]byte(s), &v) == nil {
			return v
		}
		return s
	}
	var b strings.Builder
	esc := false
	for _, r := range s {
		switch {
		case esc:
			if !strings.ContainsRune(`\;#`, r) {
				b.WriteRune('\\')
			}
			b.WriteRune(r)
			esc = false
		case r == ';' || r == '#':
			return strings.TrimSpace(b.String())
		case r == '\\':
			esc = true
		default:
			b.WriteRune(r)
		}
	}
	if esc {
		b.WriteRune('\\')
	}
	return strings.TrimSpace(b.String())
}

// npmEnvSettings are the registry settings among the host's npm_config_*
// variables (npm reads them in any case; "_" becomes "-" except in per-registry
// keys): registry, @scope:registry and //host/:... credentials. Other
// npm_config_* variables (npm sets several for scripts it runs) stay on the host.
func npmEnvSettings(environ []string) []npmEntry {
	const prefix = "npm_config_"
	seen := map[string]int{}
	var out []npmEntry
	for _, kv := range environ {
		name, val, _ := strings.Cut(kv, "=")
		if len(name) <= len(prefix) || !strings.EqualFold(name[:len(prefix)], prefix) || val == "" {
			continue
		}
		key := name[len(prefix):]
		if !strings.HasPrefix(key, "//") {
			key = strings.ToLower(key[:1] + strings.ReplaceAll(key[1:], "_", "-"))
		}
		if key != "registry" && !(strings.HasPrefix(key, "@") && strings.HasSuffix(key, ":registry")) && !strings.HasPrefix(key, "//") {
			continue
		}
		if strings.ContainsAny(key, "=;#[]\"'\n") || strings.ContainsAny(val, "\n") {
			continue // cannot be written as an ini line; npm would not read it the same
		}
		e := npmEntry{Key: key, Value: val, Line: key + "=" + iniQuote(val), From: npmEnvSource + " " + name}
		if i, ok := seen[key]; ok {
			out[i] = e
			continue
		}
		seen[key] = len(out)
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// iniQuote writes a value so that npm's ini parser reads it back unchanged.
func iniQuote(v string) string {
	if !strings.ContainsAny(v, `;#\"'`) && strings.TrimSpace(v) == v {
		return v
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// file is the userconfig the step reads. It holds credentials: it is written
// only into the job's work folder (0600) and given as a secret.
func (c *npmConfig) file() []byte {
	var b strings.Builder
	b.WriteString("# npm configuration for one layerpack build step, from " + strings.Join(c.Sources, ", ") + "\n")
	for _, e := range c.Entries {
		b.WriteString(e.Line + "\n")
	}
	return []byte(b.String())
}

// masked is a setting with its secret part hidden, for plan output and the
// cache key: credentials as ***, user info of URLs as ***@.
func (e npmEntry) masked() string {
	if isCredential(e.Key) {
		return e.Key + "=***"
	}
	switch strings.ToLower(strings.TrimSuffix(e.Key, "[]")) {
	case "ca", "cert":
		return e.Key + "=(PEM)"
	}
	return e.Key + "=" + redact.URLs(e.Value)
}

// describe lists the settings (masked) and the left-out keys, for plan.
func (c *npmConfig) describe() []string {
	var kept []string
	for _, e := range c.Entries {
		kept = append(kept, e.masked())
	}
	s := []string{fmt.Sprintf("npm config for build steps (one secret userconfig file) from %s: %s",
		strings.Join(c.Sources, ", "), orNone(strings.Join(kept, ", ")))}
	if len(c.Dropped) > 0 {
		var d []string
		for _, x := range c.Dropped {
			d = append(d, fmt.Sprintf("%s (%s: %s)", strings.TrimPrefix(x.Key, sectionMark), x.From, x.Why))
		}
		s = append(s, "npm config left out of build steps: "+strings.Join(d, "; "))
	}
	return s
}

// keyText is what of the host-side settings enters the cache key: the user's and
// the environment's settings, masked (the project's .npmrc is a file input).
func (c *npmConfig) keyText() string {
	var b strings.Builder
	for _, e := range c.Entries {
		if e.Project {
			continue
		}
		b.WriteString(e.masked() + "\n")
	}
	return b.String()
}

func orNone(s string) string {
	if s == "" {
		return "(nothing)"
	}
	return s
}
