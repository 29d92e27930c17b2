package verify

import (
	"archive/zip"
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"github.com/layerpack/layerpack/elfinfo"
	"github.com/layerpack/layerpack/internal/ctxio"
	"github.com/layerpack/layerpack/lambda"
	"github.com/layerpack/layerpack/secrets"
)

const (
	// memLimit is the largest entry read into memory; larger ones go to a
	// temporary file.
	memLimit = 4 << 20
	// maxJarDepth is how deep jars inside jars are opened (a Spring Boot jar in
	// java/lib/ holds its dependencies as jars).
	maxJarDepth = 2
)

// elfFile is an ELF file found in the layer or inside one of its jars.
type elfFile struct {
	name string // the finding's Entry: "lib/x.so" or "java/lib/a.jar!/linux-x86_64/x.so"
	jar  string // the layer's jar that holds it, "" for a file of the layer itself
	info *elfinfo.Info
}

// readContents reads every regular file once: ELF files are inspected, jars are
// searched for native libraries, and everything else is read to the end so that a
// corrupt entry (bad checksum, truncated data) is reported.
func (c *checker) readContents(ctx context.Context, files []*zip.File) error {
	c.readRecords(files)
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("verify: %w", err)
		}
		if !f.Mode().IsRegular() || c.seenEntry(f) || c.seenELF(f) {
			continue
		}
		if err := c.readEntry(ctx, f); err != nil {
			return err
		}
	}
	return nil
}

func (c *checker) readEntry(ctx context.Context, f *zip.File) error {
	zrc, err := f.Open()
	if err != nil {
		c.add(Error, f.Name, CheckZip, "%q cannot be read: %v", f.Name, err)
		return nil
	}
	defer zrc.Close()
	// archive/zip stops at the declared size (an error past it); ctxio.Reader
	// stops on Ctrl-C.
	rc := ctxio.Reader(ctx, zrc)
	// The first 64 KiB serve the secret check, the ELF check and the jar check.
	if c.head == nil {
		c.head = make([]byte, secrets.HeadLimit)
	}
	n, err := io.ReadFull(rc, c.head)
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		err = nil
	}
	head := c.head[:n]
	if err != nil {
		c.add(Error, f.Name, CheckZip, "%q cannot be read: %v", f.Name, err)
		return nil
	}
	c.checkSecret(f.Name, head)
	r := io.MultiReader(bytes.NewReader(head), rc)
	switch {
	case elfinfo.IsELF(head):
		sp, err := spool(r, f.UncompressedSize64)
		if err != nil {
			return c.readFailure(f.Name, Error, CheckZip, err)
		}
		defer sp.Close()
		if info := c.inspect(f.Name, "", sp); info != nil {
			c.rememberELF(f, info)
		}
	case isJar(f.Name) && bytes.HasPrefix(head, []byte("PK")):
		sp, err := spool(r, f.UncompressedSize64)
		if err != nil {
			return c.readFailure(f.Name, Error, CheckZip, err)
		}
		defer sp.Close()
		return c.scanJar(f.Name, f.Name, sp, 1)
	default:
		if _, err := io.Copy(io.Discard, rc); err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("verify: %w", ctx.Err())
			}
			c.add(Error, f.Name, CheckZip, "%q cannot be read: %v", f.Name, err)
		}
	}
	return nil
}

// readFailure turns an error of spool into a finding when the entry could not be
// read, and returns it when the machine failed (temporary file).
func (c *checker) readFailure(name string, sev Severity, check string, err error) error {
	var re *readError
	if errors.As(err, &re) {
		c.add(sev, name, check, "%q cannot be read: %v", name, re.err)
		return nil
	}
	return fmt.Errorf("verify: reading %s: %w", name, err)
}

func (c *checker) inspect(name, jar string, r io.ReaderAt) *elfinfo.Info {
	info, err := elfinfo.Inspect(r)
	if err != nil {
		c.add(Warning, name, CheckELFFormat, "%q starts like an ELF file but cannot be parsed: %v", name, err)
		return nil
	}
	c.elfs = append(c.elfs, elfFile{name: name, jar: jar, info: info})
	return info
}

// scanJar looks for native libraries inside the jar held in r. prefix names the jar
// in findings; top is the layer entry of the outermost jar.
func (c *checker) scanJar(prefix, top string, r *spooled, depth int) error {
	zr, err := zip.NewReader(r, r.size)
	if err != nil {
		c.add(Warning, prefix, CheckJar, "%q is not a readable jar: %v", prefix, err)
		return nil
	}
	for _, f := range zr.File {
		if strings.HasSuffix(f.Name, "/") {
			continue
		}
		name := prefix + "!/" + f.Name
		lib := isSharedLibName(path.Base(f.Name))
		nested := isJar(f.Name) && depth < maxJarDepth
		if !lib && !nested {
			continue
		}
		if err := c.scanJarEntry(name, top, f, lib, depth); err != nil {
			return err
		}
	}
	return nil
}

func (c *checker) scanJarEntry(name, top string, f *zip.File, lib bool, depth int) error {
	rc, err := f.Open()
	if err != nil {
		c.add(Warning, name, CheckJar, "%q cannot be read: %v", name, err)
		return nil
	}
	defer rc.Close()
	head, err := readHead(rc)
	if err != nil {
		c.add(Warning, name, CheckJar, "%q cannot be read: %v", name, err)
		return nil
	}
	if lib && !elfinfo.IsELF(head) || !lib && !bytes.HasPrefix(head, []byte("PK")) {
		return nil // a macOS or Windows library, or not a jar after all
	}
	if err := c.takeBudget(f.UncompressedSize64); err != nil {
		c.add(Warning, name, CheckJar, "%q was not inspected: %v", name, err)
		return nil
	}
	sp, err := spool(io.MultiReader(bytes.NewReader(head), rc), f.UncompressedSize64)
	if err != nil {
		return c.readFailure(name, Warning, CheckJar, err)
	}
	defer sp.Close()
	if lib {
		c.inspect(name, top, sp)
		return nil
	}
	return c.scanJar(name, top, sp, depth+1)
}

func isJar(name string) bool { return strings.HasSuffix(strings.ToLower(name), ".jar") }

// isSharedLibName matches libfoo.so and libfoo.so.1.2.
func isSharedLibName(base string) bool {
	return strings.HasSuffix(base, ".so") || strings.Contains(base, ".so.")
}

// readHead reads up to the first 4 bytes of r.
func readHead(r io.Reader) ([]byte, error) {
	head := make([]byte, 4)
	n, err := io.ReadFull(r, head)
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		err = nil
	}
	return head[:n], err
}

// readError marks an error that came from the entry being read, not from the
// temporary file.
type readError struct{ err error }

func (e *readError) Error() string { return e.err.Error() }

type tagReader struct{ r io.Reader }

func (t tagReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if err != nil && err != io.EOF {
		err = &readError{err}
	}
	return n, err
}

// spooled is an entry's content made random-access.
type spooled struct {
	io.ReaderAt
	size int64
	file *os.File
}

func (s *spooled) Close() error {
	if s.file == nil {
		return nil
	}
	err := s.file.Close()
	if rerr := os.Remove(s.file.Name()); err == nil {
		err = rerr
	}
	return err
}

// spool reads r, whose zip header declares size bytes (archive/zip refuses to
// return more), into memory or, above memLimit, into a temporary file.
func spool(r io.Reader, size uint64) (*spooled, error) {
	r = tagReader{r}
	if size <= memLimit {
		b, err := io.ReadAll(r)
		if err != nil {
			return nil, err
		}
		return &spooled{ReaderAt: bytes.NewReader(b), size: int64(len(b))}, nil
	}
	f, err := os.CreateTemp("", "layerpack-verify-*")
	if err != nil {
		return nil, err
	}
	sp := &spooled{ReaderAt: f, file: f}
	n, err := io.Copy(f, r)
	if err != nil {
		sp.Close()
		return nil, err
	}
	sp.size = n
	return sp, nil
}

// machines maps a Lambda architecture to its ELF machine.
var machines = map[lambda.Arch]elf.Machine{
	lambda.X86_64: elf.EM_X86_64,
	lambda.ARM64:  elf.EM_AARCH64,
}
