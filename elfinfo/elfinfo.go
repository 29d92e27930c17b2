// Package elfinfo reads what an ELF file needs from the system that loads it: its
// machine, the shared libraries it names (DT_NEEDED), where it looks for them
// (DT_RUNPATH / DT_RPATH) and the newest glibc symbol version it requires.
//
// It only reads headers and dynamic tables; it never runs the file.
package elfinfo

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/layerpack/layerpack/lambda"
)

// Version names what Inspect finds in given bytes: bump it when a change here
// changes an Info for the same file, so memos of older results are not used.
const Version = "elfinfo/1"

// Info is what Inspect learns about one ELF file.
type Info struct {
	Machine elf.Machine // EM_X86_64, EM_AARCH64, ...
	Class   elf.Class
	Type    elf.Type
	OSABI   elf.OSABI // ELFOSABI_NONE (System V) or ELFOSABI_LINUX for Linux; others name BSDs and the like
	Interp  string    // PT_INTERP, the dynamic loader an executable asks for ("" for libraries and static programs)
	Soname  string    // DT_SONAME
	Needed  []string  // DT_NEEDED, in file order
	// RunPath lists the DT_RUNPATH folders, or the DT_RPATH ones when there is no
	// DT_RUNPATH (the loader ignores DT_RPATH then). Tokens such as $ORIGIN are kept.
	RunPath []string

	// MaxGLIBC is the highest glibc version among the version needs
	// (.gnu.version_r) that the loader enforces: GLIBC_x.y[.z] names, compared
	// numerically, plus GLIBC_ABI_DT_RELR, which glibc 2.36 introduced.
	// GLIBC_PRIVATE and weak needs are ignored. Zero when there are none.
	MaxGLIBC lambda.GlibcVersion
	// GLIBCNeed is the version-need name that set MaxGLIBC ("GLIBC_2.34",
	// "GLIBC_ABI_DT_RELR"); "" when MaxGLIBC is zero.
	GLIBCNeed string
	// GLIBCSymbol names an imported symbol bound to GLIBCNeed, for messages
	// ("__libc_start_main@GLIBC_2.34"); the alphabetically first when several are,
	// "" when none is (GLIBC_ABI_DT_RELR has no symbols).
	GLIBCSymbol string

	// Static reports a program that needs no dynamic loader: an executable
	// (ET_EXEC, or ET_DYN marked DF_1_PIE) without PT_INTERP and without DT_NEEDED.
	// Shared libraries and object files are never Static.
	Static bool
}

// IsELF reports whether head, the first bytes of a file, starts with the ELF magic.
func IsELF(head []byte) bool {
	return len(head) >= len(elf.ELFMAG) && string(head[:len(elf.ELFMAG)]) == elf.ELFMAG
}

// relrVersion is the glibc release that introduced the GLIBC_ABI_DT_RELR version
// (support for DT_RELR packed relative relocations; see glibc 2.36 NEWS).
var relrVersion = glibcVersion{2, 36, 0}

// Inspect reads the ELF file r.
func Inspect(r io.ReaderAt) (*Info, error) {
	f, err := elf.NewFile(r)
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, fmt.Errorf("elfinfo: truncated ELF file: %w", err)
	}
	if err != nil {
		return nil, fmt.Errorf("elfinfo: %w", err)
	}
	defer f.Close()

	info := &Info{Machine: f.Machine, Class: f.Class, Type: f.Type, OSABI: f.OSABI}
	for _, p := range f.Progs {
		if p.Type != elf.PT_INTERP {
			continue
		}
		b, err := io.ReadAll(p.Open())
		if err != nil {
			return nil, fmt.Errorf("elfinfo: reading PT_INTERP: %w", err)
		}
		info.Interp = string(bytes.TrimRight(b, "\x00"))
	}

	if info.Needed, err = f.DynString(elf.DT_NEEDED); err != nil {
		return nil, fmt.Errorf("elfinfo: reading DT_NEEDED: %w", err)
	}
	sonames, err := f.DynString(elf.DT_SONAME)
	if err != nil {
		return nil, fmt.Errorf("elfinfo: reading DT_SONAME: %w", err)
	}
	if len(sonames) > 0 {
		info.Soname = sonames[0]
	}
	runpath, err := f.DynString(elf.DT_RUNPATH)
	if err != nil {
		return nil, fmt.Errorf("elfinfo: reading DT_RUNPATH: %w", err)
	}
	if len(runpath) == 0 {
		if runpath, err = f.DynString(elf.DT_RPATH); err != nil {
			return nil, fmt.Errorf("elfinfo: reading DT_RPATH: %w", err)
		}
	}
	for _, v := range runpath {
		for _, dir := range strings.Split(v, ":") {
			if dir != "" {
				info.RunPath = append(info.RunPath, dir)
			}
		}
	}

	if err := readGLIBC(f, info); err != nil {
		return nil, err
	}

	if info.Interp == "" && len(info.Needed) == 0 {
		switch info.Type {
		case elf.ET_EXEC:
			info.Static = true
		case elf.ET_DYN:
			flags, err := f.DynValue(elf.DT_FLAGS_1)
			if err != nil {
				return nil, fmt.Errorf("elfinfo: reading DT_FLAGS_1: %w", err)
			}
			info.Static = len(flags) > 0 && flags[0]&uint64(elf.DF_1_PIE) != 0
		}
	}
	return info, nil
}

// readGLIBC fills MaxGLIBC, GLIBCNeed and GLIBCSymbol from the version needs.
func readGLIBC(f *elf.File, info *Info) error {
	// DynamicVersionNeeds wants a dynamic symbol table and a version table; a file
	// without them (static, or not versioned) needs no glibc version.
	if f.SectionByType(elf.SHT_GNU_VERSYM) == nil || f.SectionByType(elf.SHT_GNU_VERNEED) == nil {
		return nil
	}
	syms, err := f.DynamicSymbols()
	if errors.Is(err, elf.ErrNoSymbols) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("elfinfo: reading dynamic symbols: %w", err)
	}
	needs, err := f.DynamicVersionNeeds()
	if err != nil {
		return fmt.Errorf("elfinfo: reading version needs: %w", err)
	}
	var max glibcVersion
	for _, lib := range needs {
		for _, dep := range lib.Needs {
			if dep.Flags&elf.VER_FLG_WEAK != 0 {
				continue // the loader does not insist on weak needs
			}
			v, ok := parseGLIBC(dep.Dep)
			if !ok || !max.less(v) {
				continue
			}
			max, info.GLIBCNeed = v, dep.Dep
		}
	}
	if info.GLIBCNeed == "" {
		return nil
	}
	info.MaxGLIBC = lambda.GlibcVersion{Major: max[0], Minor: max[1]}
	var names []string
	for _, s := range syms {
		if s.Section == elf.SHN_UNDEF && s.HasVersion && s.Version == info.GLIBCNeed {
			names = append(names, s.Name)
		}
	}
	if len(names) > 0 {
		sort.Strings(names)
		info.GLIBCSymbol = names[0] + "@" + info.GLIBCNeed
	}
	return nil
}

// glibcVersion is major, minor, patch ("GLIBC_2.2.5" is {2, 2, 5}).
type glibcVersion [3]int

func (v glibcVersion) less(w glibcVersion) bool {
	for i := range v {
		if v[i] != w[i] {
			return v[i] < w[i]
		}
	}
	return false
}

// parseGLIBC reads a glibc symbol version name. It accepts GLIBC_<major>.<minor>
// with an optional .<patch>, and GLIBC_ABI_DT_RELR; everything else (GLIBC_PRIVATE,
// versions of other libraries) is not a glibc release requirement.
func parseGLIBC(name string) (glibcVersion, bool) {
	if name == "GLIBC_ABI_DT_RELR" {
		return relrVersion, true
	}
	rest, ok := strings.CutPrefix(name, "GLIBC_")
	if !ok {
		return glibcVersion{}, false
	}
	parts := strings.Split(rest, ".")
	if len(parts) < 2 || len(parts) > 3 {
		return glibcVersion{}, false
	}
	var v glibcVersion
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || p == "" || p[0] == '+' {
			return glibcVersion{}, false
		}
		v[i] = n
	}
	return v, true
}
