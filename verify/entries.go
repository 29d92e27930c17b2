package verify

import (
	"archive/zip"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/layerpack/layerpack/lambda"
)

// checkEntries runs the checks that need only the central directory: names,
// duplicates, modes and execute bits.
func (c *checker) checkEntries(files []*zip.File) {
	count := make(map[string]int, len(files))
	for _, f := range files {
		count[f.Name]++
	}
	reported := make(map[string]bool)
	folded := make(map[string]string, len(files))
	for _, f := range files {
		name := f.Name
		low := strings.ToLower(name)
		if other, ok := folded[low]; ok && other != name && !reported["\x00"+low] {
			reported["\x00"+low] = true
			c.add(Warning, name, CheckCase, "%q and %q differ only in case: Lambda (Linux) keeps both, but unzip on macOS or Windows keeps one of them", other, name)
		} else if !ok {
			folded[low] = name
		}
		if n := count[name]; n > 1 && !reported[name] {
			reported[name] = true
			c.add(Error, name, CheckDuplicate, "%q appears %d times in the zip; unzip keeps only one of them", name, n)
		}
		if !utf8.ValidString(name) {
			c.add(Warning, name, CheckPath, "%q is not valid UTF-8: Lambda (Linux) extracts it as bytes, but other unzip tools and runtimes may read it as another name", name)
		}
		for _, msg := range pathProblems(name) {
			c.add(Error, name, CheckPath, "%s", msg)
		}
		c.checkMode(name, f.Mode())
	}
}

// pathProblems lists what is wrong with a zip entry name, if anything.
func pathProblems(name string) []string {
	if name == "" {
		return []string{"an entry has an empty name"}
	}
	var probs []string
	if strings.HasPrefix(name, "/") {
		probs = append(probs, quote(name)+" is an absolute path; names must be relative to /opt, like "+quote(strings.TrimLeft(name, "/")))
	}
	if strings.IndexByte(name, 0) >= 0 {
		probs = append(probs, quote(name)+" contains a NUL byte, which ends the name on Linux")
	}
	if strings.Contains(name, `\`) {
		probs = append(probs, quote(name)+` contains a backslash; folders are separated by "/", like `+quote(strings.ReplaceAll(name, `\`, "/")))
	}
	// The components, without a leading and a trailing slash; no slice of them:
	// this runs for every entry.
	var dotdot, dot, empty bool
	long := 0 // the length of the first component over maxComponent
	rest := strings.TrimPrefix(strings.TrimSuffix(name, "/"), "/")
	for more := true; more; {
		var p string
		p, rest, more = strings.Cut(rest, "/")
		switch p {
		case "..":
			dotdot = true
		case ".":
			dot = true
		case "":
			empty = true
		}
		if len(p) > maxComponent && long == 0 {
			long = len(p)
		}
	}
	if dotdot {
		probs = append(probs, quote(name)+` has a ".." component, which points outside the layer`)
	}
	if long > 0 {
		probs = append(probs, fmt.Sprintf("%s has a component of %d bytes; Linux allows %d (NAME_MAX), so it cannot be extracted", quote(abbrev(name)), long, maxComponent))
	}
	if n := len(optPrefix) + len(name); n > maxPath {
		probs = append(probs, fmt.Sprintf("%s is %d bytes long under /opt; Linux allows %d (PATH_MAX), so it cannot be opened", quote(abbrev(name)), n, maxPath))
	}

	if dot {
		probs = append(probs, quote(name)+` has a "." component; write it as `+quote(cleanName(name)))
	}
	if empty {
		probs = append(probs, quote(name)+" has an empty component (\"//\"); write it as "+quote(cleanName(name)))
	}
	return probs
}

const (
	maxComponent = 255  // NAME_MAX
	maxPath      = 4095 // PATH_MAX less the NUL
	optPrefix    = "/opt/"
)

// abbrev shortens a long name for a message.
func abbrev(name string) string {
	if len(name) <= 80 {
		return name
	}
	return name[:40] + "..." + name[len(name)-20:]
}

// cleanName removes "." and empty components, keeping a folder's trailing slash.
func cleanName(name string) string {
	var keep []string
	for _, p := range strings.Split(name, "/") {
		if p != "" && p != "." {
			keep = append(keep, p)
		}
	}
	out := strings.Join(keep, "/")
	if strings.HasSuffix(name, "/") && out != "" {
		out += "/"
	}
	return out
}

// checkMode checks that everyone can read files and enter folders (Lambda runs the
// function as a user that owns nothing in /opt), and that programs on PATH and
// extensions can be executed by everyone.
func (c *checker) checkMode(name string, mode fs.FileMode) {
	perm := mode.Perm()
	switch {
	case mode.IsDir():
		if perm&0o005 != 0o005 {
			c.add(Error, name, CheckMode, "%q has mode %04o; folders must be readable and searchable by everyone (%04o)", name, perm, perm|0o555)
		}
	case mode.IsRegular():
		if perm&0o004 == 0 {
			want := perm | 0o444
			if perm&0o111 != 0 {
				want |= 0o111
			}
			c.add(Error, name, CheckMode, "%q has mode %04o; files must be readable by everyone (%04o)", name, perm, want)
		}
		if perm&0o001 == 0 {
			switch path.Dir(name) {
			case "bin":
				c.add(Error, name, CheckExecBit, "%q has mode %04o; programs in bin/ (on PATH) must be executable by everyone (%04o)", name, perm, perm|0o555)
			case "extensions":
				c.add(Error, name, CheckExecBit, "%q has mode %04o; Lambda starts every file in extensions/ as an extension, so it must be executable by everyone (%04o)", name, perm, perm|0o555)
			}
		}
	case mode&fs.ModeSymlink != 0:
		// The link's own mode does not matter; its target is checked on its own.
	default:
		c.add(Error, name, CheckMode, "%q is a %s; a layer can hold only files, folders and symbolic links", name, fileType(mode))
	}
}

func fileType(mode fs.FileMode) string {
	switch {
	case mode&fs.ModeNamedPipe != 0:
		return "named pipe"
	case mode&fs.ModeSocket != 0:
		return "socket"
	case mode&fs.ModeCharDevice != 0:
		return "character device"
	case mode&fs.ModeDevice != 0:
		return "device"
	}
	return "special file (" + mode.String() + ")"
}

// checkSizes compares the layer with Lambda's limits.
func (c *checker) checkSizes(unzipped int64) {
	if unzipped > lambda.MaxUnzippedSize {
		c.add(Error, "", CheckSize, "the layer unzips to %d bytes, more than the %d bytes Lambda allows for a function and all its layers together",
			unzipped, lambda.MaxUnzippedSize)
	}
	if c.opt.ZipSize > lambda.MaxDirectUpload {
		c.add(Warning, "", CheckZipSize, "the zip is %d bytes, more than the %d bytes of a direct upload; it has to be uploaded to S3 and published from there",
			c.opt.ZipSize, lambda.MaxDirectUpload)
	}
}

// quote quotes an entry name the way messages show it.
func quote(s string) string { return strconv.Quote(s) }
