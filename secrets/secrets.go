// Package secrets recognises files that should not be in a layer: version-control
// data and files that look like credentials. Layers are often shared with other
// accounts, or with everyone, and a zipped .env or private key is published with
// them.
//
// It looks at a file's name and at most its first HeadLimit bytes, so callers can
// check every file of a tree cheaply. The rules, and why:
//
//   - VCS data (IsVCS): any path element ".git", ".hg" or ".svn". Builds leave it
//     out; history and config (remote URLs with tokens) are not layer content.
//   - Private keys, by content: a PEM "-----BEGIN ... PRIVATE KEY-----" header
//     (RSA, EC, DSA, OPENSSH, ENCRYPTED, PGP ... PRIVATE KEY BLOCK) or a PuTTY
//     "PuTTY-User-Key-File-" header, whatever the name (id_rsa, *.pem, *.key). A
//     .pem or .key with only a certificate or public key is fine.
//   - Dotenv files: ".env" and ".env.NAME", except the templates that are committed
//     on purpose: ".env.example", ".env.sample", ".env.template", ".env.dist".
//     ".envrc" (direnv) is not a dotenv file and is not matched.
//   - Package manager credentials, when they hold one: ".npmrc" with _authToken,
//     _auth or _password; ".yarnrc.yml" with npmAuthToken or npmAuthIdent; a
//     value that is only an environment reference ("${NPM_TOKEN}") is not a
//     credential. ".pypirc" and ".netrc" with a password; ".docker/config.json"
//     with an "auth" or "identitytoken"; ".git-credentials" with a user:secret URL.
//   - ".aws/credentials", always.
//
// Files inside installed packages (node_modules/, site-packages/, dist-packages/,
// Ruby's gems/) are not checked: they come from public registries, and test keys
// in them (ssh2's fixtures, for one) are not anybody's secret. Python packages
// installed straight into python/ (pip --target) are recognised by the RECORD of
// their .dist-info folder (ParseRecord): tornado's test.key is not a secret either.
package secrets

import (
	"bytes"
	"fmt"
	"io"
	"path"
	"regexp"
	"strings"

	"github.com/bmatcuk/doublestar/v4"
)

// HeadLimit is how many bytes of a file Check reads.
const HeadLimit = 64 << 10

// Finding is a file that looks like a credential.
type Finding struct {
	Name string
	// Reason says what it looks like: "a PEM private key (RSA PRIVATE KEY)".
	Reason string
}

// IsVCS reports whether the slash path name is, or is inside, version-control
// data: an element ".git", ".hg" or ".svn" (a folder, or the file .git of a
// submodule or worktree).
func IsVCS(name string) bool {
	for elem := range strings.SplitSeq(strings.TrimSuffix(name, "/"), "/") {
		switch elem {
		case ".git", ".hg", ".svn":
			return true
		}
	}
	return false
}

// VCSRoot returns the VCS folder that name is in, with a trailing slash
// ("a/.git/"), or "" when IsVCS is false.
func VCSRoot(name string) string {
	parts := strings.Split(strings.TrimSuffix(name, "/"), "/")
	for i, p := range parts {
		switch p {
		case ".git", ".hg", ".svn":
			return strings.Join(parts[:i+1], "/") + "/"
		}
	}
	return ""
}

// InPackage reports whether name is inside an installed package tree, which is
// not checked (see the package doc).
func InPackage(name string) bool {
	for elem := range strings.SplitSeq(path.Dir(name), "/") {
		switch elem {
		case "node_modules", "site-packages", "dist-packages":
			return true
		}
	}
	// ruby/gems/3.3.0/gems/NAME-VERSION/... (the regexp only where it can match:
	// this runs for every file of a layer, several times)
	return strings.Contains(name, "ruby/gems/") && gemsRe.MatchString(name)
}

var gemsRe = regexp.MustCompile(`(^|/)ruby/gems/[^/]+/(gems|bundler/gems)/`)

// Check reads at most HeadLimit bytes of r, the content of the file name (a slash
// path inside the layer), and returns a finding when it looks like credentials.
// The error is r's.
func Check(name string, r io.Reader) (*Finding, error) {
	if InPackage(name) || IsVCS(name) {
		return nil, nil
	}
	head, err := io.ReadAll(io.LimitReader(r, HeadLimit))
	if err != nil {
		return nil, err
	}
	if reason := match(name, head); reason != "" {
		return &Finding{Name: name, Reason: reason}, nil
	}
	return nil, nil
}

var (
	pemKeyRe = regexp.MustCompile(`-----BEGIN ((?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?)-----`)
	npmrcRe  = regexp.MustCompile(`(?m)^\s*(?:\S*:)?(_authToken|_auth|_password)\s*=\s*(.*)$`)
	yarnRe   = regexp.MustCompile(`(?m)^\s*(npmAuthToken|npmAuthIdent)\s*:\s*(.*)$`)
	passRe   = regexp.MustCompile(`(?m)^\s*password\s*[:=]\s*(\S.*)$`)
	netrcRe  = regexp.MustCompile(`(?:^|\s)password\s+\S`)
	dockerRe = regexp.MustCompile(`"(auth|identitytoken)"\s*:\s*"[^"]+"`)
	gitCred  = regexp.MustCompile(`(?m)^[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@`)
	envRefRe = regexp.MustCompile(`^["']?\$\{?[A-Za-z_][A-Za-z0-9_]*\}?["']?$`)
)

// dotenvTemplates are the .env.NAME files committed on purpose, without values.
var dotenvTemplates = map[string]bool{"example": true, "sample": true, "template": true, "dist": true}

func match(name string, head []byte) string {
	if m := pemKeyRe.FindSubmatch(head); m != nil {
		return fmt.Sprintf("a PEM private key (%s)", m[1])
	}
	if bytes.HasPrefix(head, []byte("PuTTY-User-Key-File-")) {
		return "a PuTTY private key"
	}
	base := path.Base(name)
	switch {
	case base == ".env":
		return "a dotenv file of environment variables"
	case strings.HasPrefix(base, ".env."):
		if !dotenvTemplates[strings.ToLower(strings.TrimPrefix(base, ".env."))] {
			return "a dotenv file of environment variables"
		}
	case base == ".npmrc":
		if key := valued(npmrcRe, head); key != "" {
			return "an npm config with " + key
		}
	case base == ".yarnrc.yml":
		if key := valued(yarnRe, head); key != "" {
			return "a Yarn config with " + key
		}
	case base == ".pypirc":
		if passRe.Match(head) {
			return "a PyPI config with a password"
		}
	case base == ".netrc" || base == "_netrc":
		if netrcRe.Match(head) {
			return "a netrc with a password"
		}
	case base == ".git-credentials":
		if gitCred.Match(head) {
			return "stored Git credentials"
		}
	case base == "credentials" && path.Base(path.Dir(name)) == ".aws":
		return "AWS credentials"
	case base == "config.json" && path.Base(path.Dir(name)) == ".docker":
		if m := dockerRe.FindSubmatch(head); m != nil {
			return "a Docker config with an " + string(m[1])
		}
	}
	return ""
}

// valued returns the first key re matches whose value is not empty and not just
// an environment reference like ${NPM_TOKEN}.
func valued(re *regexp.Regexp, head []byte) string {
	for _, m := range re.FindAllSubmatch(head, -1) {
		v := strings.TrimSpace(string(m[2]))
		if v != "" && v != `""` && v != "''" && !envRefRe.MatchString(v) {
			return string(m[1])
		}
	}
	return ""
}

// IsRecord reports whether name is the RECORD file of an installed Python
// distribution ("python/six-1.16.0.dist-info/RECORD").
func IsRecord(name string) bool {
	return path.Base(name) == "RECORD" && strings.HasSuffix(path.Dir(name), ".dist-info")
}

// MaxRecord bounds how much of a RECORD file ParseRecord reads.
const MaxRecord = 4 << 20

// ParseRecord reads the RECORD file at name (CSV lines "path,hash,size", paths
// relative to the folder holding the .dist-info) and returns the layer paths it
// lists that stay inside that folder.
func ParseRecord(name string, r io.Reader) ([]string, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxRecord))
	if err != nil {
		return nil, err
	}
	base := path.Dir(path.Dir(name))
	var out []string
	for line := range strings.SplitSeq(string(b), "\n") {
		p := strings.TrimSpace(line)
		if strings.HasPrefix(p, `"`) {
			// A quoted path (it holds a comma): up to the closing quote.
			if end := strings.Index(p[1:], `"`); end >= 0 {
				p = p[1 : 1+end]
			}
		} else if i := strings.IndexByte(p, ','); i >= 0 {
			p = p[:i]
		}
		if p == "" || path.IsAbs(p) {
			continue
		}
		full := path.Join(base, p)
		if base != "." && !strings.HasPrefix(full, base+"/") {
			continue
		}
		if base == "." && (full == ".." || strings.HasPrefix(full, "../")) {
			continue
		}
		out = append(out, full)
	}
	return out, nil
}

// Allowed reports whether name matches one of the doublestar patterns (as
// allow_secrets lists them). A pattern that names a folder ("certs/") allows
// everything below it.
func Allowed(name string, patterns []string) bool {
	for _, p := range patterns {
		if strings.HasSuffix(p, "/") {
			p += "**"
		}
		if ok, _ := doublestar.Match(p, name); ok {
			return true
		}
	}
	return false
}

// ValidatePatterns returns an error naming the first malformed pattern.
func ValidatePatterns(patterns []string) error {
	for _, p := range patterns {
		if !doublestar.ValidatePattern(p) {
			return fmt.Errorf("%q is not a valid pattern", p)
		}
	}
	return nil
}
