// Package verify checks a Lambda layer zip for the mistakes that make a layer fail at
// run time or at upload: native code for the wrong CPU or a newer glibc, missing
// shared libraries, unreadable modes, unsafe names, symlinks that leave /opt, sizes
// over Lambda's limits, and files that look like credentials. Files that look
// misplaced for a compatible runtime are warnings: Lambda accepts any path.
//
// The zip is hostile input: nothing is inflated past the declared sizes, nor at
// all when they add up past Lambda's limit or entries overlap.
//
// Zip and Reader check a whole layer; CheckELF lets builders check single files
// before anything is zipped.
package verify

import (
	"archive/zip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/layerpack/layerpack/internal/zipfile"
	"github.com/layerpack/layerpack/lambda"
	"github.com/layerpack/layerpack/secrets"
)

// Severity says whether a finding makes the layer unusable (Error) or is worth a
// look (Warning).
type Severity int

const (
	Error Severity = iota
	Warning
)

func (s Severity) String() string {
	switch s {
	case Error:
		return "error"
	case Warning:
		return "warning"
	}
	return fmt.Sprintf("Severity(%d)", int(s))
}

// MarshalText spells the severity "error" or "warning" (also in JSON).
func (s Severity) MarshalText() ([]byte, error) {
	if s != Error && s != Warning {
		return nil, fmt.Errorf("verify: unknown severity %d", int(s))
	}
	return []byte(s.String()), nil
}

// UnmarshalText accepts "error" and "warning".
func (s *Severity) UnmarshalText(b []byte) error {
	switch string(b) {
	case "error":
		*s = Error
	case "warning":
		*s = Warning
	default:
		return fmt.Errorf("verify: unknown severity %q (want error or warning)", b)
	}
	return nil
}

// Check identifiers. They are stable: scripts may match on them.
const (
	CheckLayout     = "layout"      // a file looks misplaced for a compatible runtime
	CheckSize       = "size"        // unzipped size over Lambda's limit
	CheckZipSize    = "zip-size"    // zipped size over the direct-upload limit
	CheckMode       = "mode"        // not readable by everyone
	CheckExecBit    = "exec-bit"    // bin/ or extensions/ file that is not executable
	CheckPath       = "path"        // unsafe or malformed entry name
	CheckDuplicate  = "duplicate"   // the same name twice
	CheckZip        = "zip"         // an entry that cannot be read
	CheckELFFormat  = "elf"         // a file that looks like ELF but cannot be parsed
	CheckELFMachine = "elf-machine" // native code for another CPU
	CheckELFGlibc   = "elf-glibc"   // native code that needs a newer glibc
	CheckNeeded     = "needed"      // a DT_NEEDED library nobody provides
	CheckShadowed   = "shadowed"    // a bundled library the system copy hides
	CheckJar        = "jar"         // a .jar that cannot be opened
	CheckSymlink    = "symlink"     // a link that leaves /opt, or an entry below a link
	CheckOverlap    = "overlap"     // entries sharing compressed bytes (a zip bomb)
	CheckSecret     = "secret"      // a file that looks like credentials
	CheckVCS        = "vcs"         // version-control data (.git/, .hg/, .svn/)
	CheckCase       = "case"        // names that differ only in case
)

// Finding is one problem in a layer.
type Finding struct {
	Severity Severity `json:"severity"`
	// Entry is the zip entry the finding is about: a file name, a folder with a
	// trailing slash for findings about many files, "x.jar!/inner/path" inside a jar,
	// or "" for the whole layer.
	Entry   string `json:"entry"`
	Check   string `json:"check"`
	Message string `json:"message"`
}

// String is the finding as Report.Write prints it: "error: layout: ...".
func (f Finding) String() string {
	return f.Severity.String() + ": " + f.Check + ": " + f.Message
}

// Options say what the layer is for.
type Options struct {
	// Arch is the layer's architecture; "" skips the machine check.
	Arch lambda.Arch
	// Runtimes are the compatible runtimes; none skips the layout check (except the
	// Ruby vendor/bundle trap) and the glibc check, and the needed check then
	// assumes both Amazon Linux 2 and Amazon Linux 2023.
	Runtimes []lambda.Runtime
	// ZipSize is the size of the zip file in bytes for the direct-upload check;
	// 0 skips it. Zip fills it in from the file when it is 0.
	ZipSize int64
	// AllowSecrets are doublestar patterns of entries that look like
	// credentials but belong in the layer (allow_secrets in the config); "dir/"
	// allows everything below dir.
	AllowSecrets []string
	// Seen, when set, is what the zip's writer saw of its files: matching entries
	// are checked without being inflated again (see Seen). Optional.
	Seen *Seen
	// ELFMemo, when set with Seen, answers for ELF entries whose content the
	// writer hashed, instead of reading them from the zip. Optional.
	ELFMemo ELFMemo

	zipSize int64       // the file's real size, when known, to refuse data past its end
	zipFile io.ReaderAt // the file, when known, to look for hidden entries
}

func notReadReason(overlap bool, declared int64) string {
	if overlap {
		return "entries overlap or run past the end of the file"
	}
	return fmt.Sprintf("the entries declare %d bytes in all, more than the %d bytes Lambda allows", declared, lambda.MaxUnzippedSize)
}

func (o Options) validate() error {
	if o.Arch != "" {
		if _, err := lambda.ParseArch(string(o.Arch)); err != nil {
			return fmt.Errorf("verify: %w", err)
		}
	}
	for _, rt := range o.Runtimes {
		if _, ok := lambda.LookupRuntime(rt.ID); !ok {
			return fmt.Errorf("verify: unknown runtime %q", rt.ID)
		}
	}
	if err := secrets.ValidatePatterns(o.AllowSecrets); err != nil {
		return fmt.Errorf("verify: allow_secrets: %w", err)
	}
	if o.ZipSize < 0 {
		return fmt.Errorf("verify: negative zip size %d", o.ZipSize)
	}
	return nil
}

// Report is the result of checking a layer.
type Report struct {
	// Findings are sorted by severity (errors first), entry, check and message.
	Findings     []Finding `json:"findings"`
	Entries      int       `json:"entries"`       // entries in the zip, folders included
	UnzippedSize int64     `json:"unzipped_size"` // sum of the uncompressed sizes
}

// MarshalJSON writes an empty list rather than null when there are no findings.
func (r Report) MarshalJSON() ([]byte, error) {
	type plain Report
	if r.Findings == nil {
		r.Findings = []Finding{}
	}
	return json.Marshal(plain(r))
}

// Counts returns the number of errors and warnings.
func (r Report) Counts() (errs, warnings int) {
	for _, f := range r.Findings {
		if f.Severity == Error {
			errs++
		} else {
			warnings++
		}
	}
	return errs, warnings
}

// FindingsError is the error Report.Err returns; it carries the Error findings.
type FindingsError struct {
	Findings []Finding
}

func (e *FindingsError) Error() string {
	if len(e.Findings) == 1 {
		return "the layer has 1 error: " + e.Findings[0].Check + ": " + e.Findings[0].Message
	}
	return fmt.Sprintf("the layer has %d errors; the first: %s: %s", len(e.Findings), e.Findings[0].Check, e.Findings[0].Message)
}

// Err returns a *FindingsError when any finding is an Error, and nil otherwise.
func (r Report) Err() error {
	var errs []Finding
	for _, f := range r.Findings {
		if f.Severity == Error {
			errs = append(errs, f)
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return &FindingsError{Findings: errs}
}

// Write prints the findings one a line ("error: layout: ...") and a summary line.
func (r Report) Write(w io.Writer) error {
	var b strings.Builder
	for _, f := range r.Findings {
		b.WriteString(f.String())
		b.WriteByte('\n')
	}
	errs, warnings := r.Counts()
	fmt.Fprintf(&b, "%s, %s unzipped: ", plural(r.Entries, "entry", "entries"), plural64(r.UnzippedSize, "byte", "bytes"))
	if errs+warnings == 0 {
		b.WriteString("no problems found\n")
	} else {
		fmt.Fprintf(&b, "%s, %s\n", plural(errs, "error", "errors"), plural(warnings, "warning", "warnings"))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func plural(n int, one, many string) string { return plural64(int64(n), one, many) }

func plural64(n int64, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// Zip opens the zip file at path and checks it.
func Zip(path string, opt Options) (Report, error) {
	return ZipContext(context.Background(), path, opt)
}

// ZipContext is Zip that stops with ctx's error once ctx is done.
func ZipContext(ctx context.Context, path string, opt Options) (Report, error) {
	if err := opt.validate(); err != nil {
		return Report{}, err
	}
	zf, err := zipfile.Open(path)
	if err != nil {
		return Report{}, fmt.Errorf("verify: %w", err)
	}
	defer zf.Close()
	return FileContext(ctx, zf, opt)
}

// FileContext is ZipContext on a zip file the caller opened, and may read again
// after (the pipeline describes the layer from the same reader).
func FileContext(ctx context.Context, zf *zipfile.File, opt Options) (Report, error) {
	if opt.ZipSize == 0 {
		opt.ZipSize = zf.Size
	}
	opt.zipSize, opt.zipFile = zf.Size, zf
	return ReaderContext(ctx, zf.Reader, opt)
}

// Reader checks the layer zr. Problems in the layer are findings; the error is for
// bad options and for failures of the machine itself (temporary files).
func Reader(zr *zip.Reader, opt Options) (Report, error) {
	return ReaderContext(context.Background(), zr, opt)
}

// ReaderContext is Reader that stops with ctx's error once ctx is done.
//
// Every size in the zip is taken as hostile: nothing is inflated when the declared
// sizes add up to more than Lambda's limit or when entries share compressed
// bytes (a zip bomb), and no entry is read past its declared size.
func ReaderContext(ctx context.Context, zr *zip.Reader, opt Options) (Report, error) {
	if err := opt.validate(); err != nil {
		return Report{}, err
	}
	c := &checker{opt: opt, budget: innerBudget}
	rep := Report{Entries: len(zr.File), UnzippedSize: declaredSize(zr.File)}
	c.checkEntries(zr.File)
	c.checkVCS(zr.File)
	c.checkSizes(rep.UnzippedSize)
	offsets, overlap, err := c.checkOverlaps(ctx, zr.File, opt.zipSize)
	if err != nil {
		return Report{}, fmt.Errorf("verify: %w", err)
	}
	if opt.zipFile != nil && !overlap {
		c.checkHidden(opt.zipFile, opt.zipSize, zr.File, offsets)
	}
	if !overlap {
		c.checkLinks(zr.File) // bounded: a link's text is at most 4095 bytes
	}
	if !overlap && rep.UnzippedSize <= lambda.MaxUnzippedSize {
		if err := c.readContents(ctx, zr.File); err != nil {
			return Report{}, err
		}
	} else {
		c.add(Warning, "", CheckZip, "the contents were not read (ELF, jars, secrets, checksums): %s", notReadReason(overlap, rep.UnzippedSize))
	}
	c.checkELFs(zr.File)
	c.checkLayout(zr.File)
	sortFindings(c.findings)
	rep.Findings = c.findings
	return rep, nil
}

// checker collects findings for one layer.
type checker struct {
	opt      Options
	findings []Finding
	budget   int64           // bytes left to inflate from entries inside jars
	head     []byte          // the buffer for the first bytes of each entry
	packaged map[string]bool // files a Python distribution's RECORD lists
	elfs     []elfFile       // every ELF file found, in the layer and inside jars
}

func (c *checker) add(sev Severity, entry, check, format string, args ...any) {
	c.findings = append(c.findings, Finding{Severity: sev, Entry: entry, Check: check, Message: fmt.Sprintf(format, args...)})
}

func sortFindings(fs []Finding) {
	sort.SliceStable(fs, func(i, j int) bool {
		a, b := fs[i], fs[j]
		if a.Severity != b.Severity {
			return a.Severity < b.Severity
		}
		if a.Entry != b.Entry {
			return a.Entry < b.Entry
		}
		if a.Check != b.Check {
			return a.Check < b.Check
		}
		return a.Message < b.Message
	})
}
