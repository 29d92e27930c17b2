package python

import (
	"bufio"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// Index is where packages come from: the effective pip index settings, merged from
// the host's pip configuration (pip.conf files, PIP_* variables), the requirements
// file's options and the layer's [python] table, in that order of precedence.
type Index struct {
	URL       string   // --index-url; "" means pip's default (PyPI)
	Extra     []string // --extra-index-url
	FindLinks []string // absolute local folders or URLs
	NoIndex   bool
	Trusted   []string // --trusted-host
}

// Args are pip command-line options for the index settings.
func (ix Index) Args() []string {
	var a []string
	if ix.NoIndex {
		a = append(a, "--no-index")
	}
	if ix.URL != "" {
		a = append(a, "--index-url", ix.URL)
	}
	for _, u := range ix.Extra {
		a = append(a, "--extra-index-url", u)
	}
	for _, f := range ix.FindLinks {
		a = append(a, "--find-links", f)
	}
	for _, h := range ix.Trusted {
		a = append(a, "--trusted-host", h)
	}
	return a
}

// Secrets lists the credentials that appear in the settings (user info of URLs), so
// output can be masked.
func (ix Index) Secrets() []string {
	var s []string
	for _, u := range append(append([]string{ix.URL}, ix.Extra...), ix.FindLinks...) {
		s = append(s, urlSecrets(u)...)
	}
	return s
}

// urlSecrets returns the user info of a URL ("user:pass", "pass", "token") when it
// has any.
func urlSecrets(raw string) []string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return nil
	}
	out := []string{u.User.String()}
	if p, ok := u.User.Password(); ok && p != "" {
		out = append(out, p, url.QueryEscape(p))
	} else if n := u.User.Username(); n != "" {
		out = append(out, n)
	}
	return out
}

// hostPipConfig is what the host's pip would read besides its command line.
type hostPipConfig struct {
	Files []string // pip.conf files that exist, in pip's order
	Env   map[string]string
	Index Index
}

// readHostPipConfig reads the pip configuration files and PIP_* variables the host's
// pip uses (pip's own order: global, user, site, then PIP_CONFIG_FILE, then the
// environment), for the cache key and for build containers.
func readHostPipConfig(getenv func(string) string, environ []string) hostPipConfig {
	var c hostPipConfig
	c.Env = map[string]string{}
	var files []string
	cfgFile := getenv("PIP_CONFIG_FILE")
	if cfgFile != os.DevNull {
		xdgDirs := getenv("XDG_CONFIG_DIRS")
		if xdgDirs == "" {
			xdgDirs = "/etc/xdg"
		}
		for _, d := range filepath.SplitList(xdgDirs) {
			files = append(files, filepath.Join(d, "pip", "pip.conf"))
		}
		files = append(files, "/etc/pip.conf")
		if home := getenv("HOME"); home != "" {
			files = append(files, filepath.Join(home, ".pip", "pip.conf"))
			xdg := getenv("XDG_CONFIG_HOME")
			if xdg == "" {
				xdg = filepath.Join(home, ".config")
			}
			files = append(files, filepath.Join(xdg, "pip", "pip.conf"))
		}
		if venv := getenv("VIRTUAL_ENV"); venv != "" {
			files = append(files, filepath.Join(venv, "pip.conf"))
		}
		if cfgFile != "" {
			files = append(files, cfgFile)
		}
	}
	for _, f := range files {
		sections, err := readINI(f)
		if err != nil {
			continue
		}
		c.Files = append(c.Files, f)
		for _, sec := range []string{"global", "install"} {
			for k, v := range sections[sec] {
				c.apply(k, v, filepath.Dir(f))
			}
		}
	}
	for _, kv := range environ {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "PIP_") {
			if v := getenv(k); v != "" {
				c.Env[k] = v
			}
		}
	}
	for _, k := range []string{"PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS", "PIP_NO_INDEX", "PIP_TRUSTED_HOST"} {
		if v := getenv(k); v != "" {
			c.Env[k] = v
			c.apply(strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(k, "PIP_"), "_", "-")), v, "")
		}
	}
	return c
}

func (c *hostPipConfig) apply(key, val, dir string) {
	vals := strings.Fields(val)
	switch key {
	case "index-url", "i":
		if len(vals) > 0 {
			c.Index.URL = vals[0]
		}
	case "extra-index-url":
		c.Index.Extra = vals
	case "find-links", "f":
		c.Index.FindLinks = nil
		for _, v := range vals {
			if !strings.Contains(v, "://") && !filepath.IsAbs(v) && dir != "" {
				v = filepath.Join(dir, v)
			}
			c.Index.FindLinks = append(c.Index.FindLinks, v)
		}
	case "trusted-host":
		c.Index.Trusted = vals
	case "no-index":
		c.Index.NoIndex = isTrue(val)
	}
}

func isTrue(s string) bool {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "1", "yes", "true", "on":
		return true
	}
	return false
}

// readINI reads the key/values of an INI file, with continuation lines appended
// (pip's extra-index-url lists are written that way).
func readINI(path string) (map[string]map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]map[string]string{}
	sec, key := "", ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		t := strings.TrimSpace(line)
		if t == "" || t[0] == '#' || t[0] == ';' {
			continue
		}
		if t[0] == '[' && strings.HasSuffix(t, "]") {
			sec, key = strings.TrimSpace(t[1:len(t)-1]), ""
			if out[sec] == nil {
				out[sec] = map[string]string{}
			}
			continue
		}
		if (line[0] == ' ' || line[0] == '\t') && key != "" && sec != "" {
			out[sec][key] += " " + t
			continue
		}
		k, v, ok := strings.Cut(t, "=")
		if !ok {
			k, v, ok = strings.Cut(t, ":")
		}
		if !ok || sec == "" {
			continue
		}
		key = strings.TrimSpace(k)
		out[sec][key] = strings.TrimSpace(v)
	}
	return out, sc.Err()
}
