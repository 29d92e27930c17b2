package verify

import (
	"archive/zip"
	"debug/elf"
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/layerpack/layerpack/elfinfo"
	"github.com/layerpack/layerpack/lambda"
)

// machineNames are the CPU names messages use, as uname -m spells them.
var machineNames = map[elf.Machine]string{
	elf.EM_X86_64:    "x86_64",
	elf.EM_AARCH64:   "aarch64",
	elf.EM_386:       "i386",
	elf.EM_ARM:       "arm",
	elf.EM_PPC64:     "ppc64",
	elf.EM_PPC:       "ppc",
	elf.EM_S390:      "s390x",
	elf.EM_RISCV:     "riscv",
	elf.EM_MIPS:      "mips",
	elf.EM_LOONGARCH: "loongarch",
	elf.EM_SPARCV9:   "sparcv9",
}

func machineName(m elf.Machine) string {
	if n, ok := machineNames[m]; ok {
		return n
	}
	return strings.ToLower(strings.TrimPrefix(m.String(), "EM_"))
}

// foreignOSABI are ELF OS/ABI values of systems other than Linux; such files are
// left alone.
var foreignOSABI = map[elf.OSABI]bool{
	elf.ELFOSABI_HPUX: true, elf.ELFOSABI_NETBSD: true, elf.ELFOSABI_SOLARIS: true,
	elf.ELFOSABI_AIX: true, elf.ELFOSABI_IRIX: true, elf.ELFOSABI_FREEBSD: true,
	elf.ELFOSABI_TRU64: true, elf.ELFOSABI_MODESTO: true, elf.ELFOSABI_OPENBSD: true,
	elf.ELFOSABI_OPENVMS: true, elf.ELFOSABI_NSK: true, elf.ELFOSABI_AROS: true,
	elf.ELFOSABI_FENIXOS: true, elf.ELFOSABI_CLOUDABI: true,
}

// foreignOSWords in a path mark builds for another operating system
// (prebuilds/android-arm64/, com/sun/jna/freebsd-x86-64/, ...).
var foreignOSWords = map[string]bool{
	"android": true, "darwin": true, "macos": true, "osx": true, "win32": true,
	"win64": true, "windows": true, "freebsd": true, "openbsd": true, "netbsd": true,
	"dragonfly": true, "sunos": true, "solaris": true, "illumos": true, "aix": true,
}

// archWords are CPU names as packages spell them in paths and file names, after
// archKey has joined "x86_64", "x86-64", "aarch_64" and "aarch-64".
var archWords = map[string]bool{
	"x64": true, "amd64": true, "x8664": true, "aarch64": true, "arm64": true, "arm64e": true,
	"arm": true, "armhf": true, "armel": true, "armv6": true, "armv6l": true, "armv7": true,
	"armv7l": true, "armv7a": true, "armv8": true, "ia32": true, "x86": true, "i386": true,
	"i486": true, "i586": true, "i686": true, "ppc": true, "ppc64": true, "ppc64le": true,
	"s390x": true, "riscv64": true, "loongarch64": true, "loong64": true, "mips": true,
	"mipsel": true, "mips64": true, "mips64el": true, "sparc": true, "sparcv9": true,
}

var archJoiner = strings.NewReplacer("x86_64", "x8664", "x86-64", "x8664", "aarch_64", "aarch64", "aarch-64", "aarch64")

// words splits a lower-case path into its runs of letters and digits.
func words(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool {
		return !('a' <= r && r <= 'z' || '0' <= r && r <= '9')
	})
}

// archKey is name with every CPU word replaced by "{arch}", so builds of the same
// library for different CPUs (prebuilds/linux-x64/a.node, prebuilds/linux-arm64/a.node)
// share a key.
func archKey(name string) string {
	s := archJoiner.Replace(strings.ToLower(name))
	var b strings.Builder
	for i := 0; i < len(s); {
		j := i
		for j < len(s) && isWordByte(s[j]) {
			j++
		}
		if j == i {
			b.WriteByte(s[i])
			i++
			continue
		}
		if archWords[s[i:j]] {
			b.WriteString("{arch}")
		} else {
			b.WriteString(s[i:j])
		}
		i = j
	}
	return b.String()
}

func isWordByte(c byte) bool { return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' }

// loadable reports whether the file is something Lambda's Linux might load: an
// executable or shared object, not built for another operating system.
func loadable(name string, info *elfinfo.Info) bool {
	if info.Type != elf.ET_EXEC && info.Type != elf.ET_DYN {
		return false // object files, core dumps
	}
	if foreignOSABI[info.OSABI] {
		return false
	}
	for _, w := range words(strings.ToLower(name)) {
		if foreignOSWords[w] {
			return false
		}
	}
	return true
}

// CheckELF checks one ELF file that will be in a layer, named as it will be in the
// zip: its machine against opt.Arch (elf-machine) and its glibc needs against every
// runtime in opt.Runtimes (elf-glibc). Files that are not executables or shared
// objects, or whose OS/ABI or path marks another operating system, are not checked.
//
// Unlike Reader, CheckELF sees one file at a time: it cannot tell that a file for
// another CPU sits next to the same build for the layer's CPU (prebuilds/linux-x64/
// beside prebuilds/linux-arm64/) and reports it; and it does not check DT_NEEDED.
func CheckELF(name string, info *elfinfo.Info, opt Options) []Finding {
	if info == nil || !loadable(name, info) {
		return nil
	}
	if want, ok := machines[opt.Arch]; ok && info.Machine != want {
		return []Finding{machineFinding(name, info, opt.Arch)}
	}
	return glibcFindings(name, info, opt.Runtimes)
}

func machineFinding(name string, info *elfinfo.Info, arch lambda.Arch) Finding {
	return Finding{Severity: Error, Entry: name, Check: CheckELFMachine,
		Message: fmt.Sprintf("%q is %s (%s) but the layer is for %s", name, machineName(info.Machine), info.Machine, arch)}
}

func glibcFindings(name string, info *elfinfo.Info, runtimes []lambda.Runtime) []Finding {
	if info.MaxGLIBC == (lambda.GlibcVersion{}) {
		return nil
	}
	var old []lambda.Runtime
	for _, rt := range runtimes {
		if rt.GLIBC.Less(info.MaxGLIBC) {
			old = append(old, rt)
		}
	}
	if len(old) == 0 {
		return nil
	}
	need := "GLIBC_" + info.MaxGLIBC.String()
	detail := ""
	switch {
	case info.GLIBCSymbol != "":
		detail = " (" + info.GLIBCSymbol + ")"
	case info.GLIBCNeed != "" && info.GLIBCNeed != need:
		detail = " (" + info.GLIBCNeed + ")"
	}
	// Group the runtimes by operating system: "python3.10, python3.11 (Amazon Linux 2) have glibc 2.26".
	groups := groupByOS(old)
	var parts []string
	for _, g := range groups {
		verb := "has"
		if len(g.runtimes) > 1 {
			verb = "have"
		}
		parts = append(parts, fmt.Sprintf("%s (%s) %s glibc %s", strings.Join(g.runtimes, ", "), lambda.OSName(g.os), verb, g.glibc))
	}
	return []Finding{{Severity: Error, Entry: name, Check: CheckELFGlibc,
		Message: fmt.Sprintf("%q needs %s%s but %s", name, need, detail, strings.Join(parts, " and "))}}
}

type osGroup struct {
	os       string
	glibc    lambda.GlibcVersion
	runtimes []string
}

// groupByOS groups runtimes by operating system, oldest glibc first, keeping the
// runtimes' order within a group.
func groupByOS(rts []lambda.Runtime) []osGroup {
	var groups []osGroup
	for _, rt := range rts {
		i := 0
		for i < len(groups) && groups[i].os != rt.OS {
			i++
		}
		if i == len(groups) {
			groups = append(groups, osGroup{os: rt.OS, glibc: rt.GLIBC})
		}
		groups[i].runtimes = append(groups[i].runtimes, rt.ID)
	}
	sort.SliceStable(groups, func(i, j int) bool { return groups[i].glibc.Less(groups[j].glibc) })
	return groups
}

// checkELFs runs the machine, glibc, needed and shadowed checks on every ELF file
// readContents found.
func (c *checker) checkELFs(files []*zip.File) {
	want, checkMachine := machines[c.opt.Arch]
	type scoped struct{ jar, key string }
	matched := make(map[scoped]bool) // builds for the layer's CPU, by archKey
	jarMatched := make(map[string]bool)
	var candidates []elfFile
	for _, e := range c.elfs {
		if !loadable(e.name, e.info) {
			continue
		}
		candidates = append(candidates, e)
		if !checkMachine || e.info.Machine == want {
			matched[scoped{e.jar, archKey(e.name)}] = true
			jarMatched[e.jar] = true
		}
	}
	idx := newLibIndex(files, c.elfs, c.neededDirs(candidates, want, checkMachine))
	for _, e := range candidates {
		if checkMachine && e.info.Machine != want {
			// A build for another CPU is fine when the same library is also there for
			// ours (multi-platform npm packages and jars pick theirs at run time).
			if matched[scoped{e.jar, archKey(e.name)}] || e.jar != "" && jarMatched[e.jar] {
				continue
			}
			c.findings = append(c.findings, machineFinding(e.name, e.info, c.opt.Arch))
			continue
		}
		c.findings = append(c.findings, glibcFindings(e.name, e.info, c.opt.Runtimes)...)
		if e.jar == "" {
			c.checkNeeded(e, idx)
			c.checkShadowed(e)
		}
	}
}

// libIndex records, per folder of the layer, the names a library can be found by:
// the base names of all entries and the SONAMEs of the ELF files.
type libIndex map[string]map[string]bool

// neededDirs are the folders checkNeeded looks in for the candidates it checks:
// the only ones newLibIndex need index.
func (c *checker) neededDirs(candidates []elfFile, want elf.Machine, checkMachine bool) map[string]bool {
	dirs := make(map[string]bool)
	for _, e := range candidates {
		if e.jar == "" && (!checkMachine || e.info.Machine == want) {
			for _, d := range searchDirs(e) {
				dirs[d] = true
			}
		}
	}
	return dirs
}

// newLibIndex indexes the folders in dirs.
func newLibIndex(files []*zip.File, elfs []elfFile, dirs map[string]bool) libIndex {
	idx := make(libIndex)
	if len(dirs) == 0 {
		return idx
	}
	add := func(dir, name string) {
		if !dirs[dir] {
			return
		}
		if idx[dir] == nil {
			idx[dir] = make(map[string]bool)
		}
		idx[dir][name] = true
	}
	for _, f := range files {
		if strings.HasSuffix(f.Name, "/") {
			continue
		}
		add(path.Dir(f.Name), path.Base(f.Name))
	}
	for _, e := range elfs {
		if e.jar == "" && e.info.Soname != "" {
			add(path.Dir(e.name), e.info.Soname)
		}
	}
	return idx
}

// searchDirs are the layer folders the loader (or an earlier load) finds e's
// libraries in: lib/ (LD_LIBRARY_PATH has /opt/lib), e's own folder, and its
// RUNPATH folders inside /opt with $ORIGIN resolved.
func searchDirs(e elfFile) []string {
	dir := path.Dir(e.name)
	dirs := []string{"lib", dir}
	origin := path.Join("/opt", dir)
	for _, rp := range e.info.RunPath {
		s := strings.ReplaceAll(rp, "${ORIGIN}", origin)
		s = strings.ReplaceAll(s, "$ORIGIN", origin)
		if strings.Contains(s, "$") || !path.IsAbs(s) {
			continue // $LIB, $PLATFORM or a relative folder: not resolvable here
		}
		s = path.Clean(s)
		switch {
		case s == "/opt":
			dirs = append(dirs, ".")
		case strings.HasPrefix(s, "/opt/"):
			dirs = append(dirs, strings.TrimPrefix(s, "/opt/"))
		}
	}
	return dirs
}

func (c *checker) checkNeeded(e elfFile, idx libIndex) {
	dirs := searchDirs(e)
	for _, lib := range e.info.Needed {
		found := false
		for _, d := range dirs {
			if idx[d][lib] {
				found = true
				break
			}
		}
		if found {
			continue
		}
		missing := c.systemsLacking(lib)
		if missing == "" {
			continue
		}
		c.add(Warning, e.name, CheckNeeded, "%q needs %s, which is neither in the layer (lib/, its own folder or its RUNPATH) nor part of %s",
			e.name, lib, missing)
	}
}

// systemsLacking names the compatible runtimes (or, without runtimes, the
// operating systems) that do not provide soname; "" when all do.
func (c *checker) systemsLacking(soname string) string {
	if len(c.opt.Runtimes) == 0 {
		var oses []string
		for _, os := range lambda.OSes {
			if !lambda.BaseSystemProvides(os, soname) {
				oses = append(oses, lambda.OSName(os))
			}
		}
		return strings.Join(oses, " or ")
	}
	var lacking []lambda.Runtime
	for _, rt := range c.opt.Runtimes {
		if !lambda.BaseSystemProvides(rt.OS, soname) && !lambda.RuntimeProvides(rt, soname) {
			lacking = append(lacking, rt)
		}
	}
	return runtimesByOS(lacking, " or ")
}

// runtimesByOS writes "python3.10, python3.11 (Amazon Linux 2)<sep>python3.12 (Amazon Linux 2023)".
func runtimesByOS(rts []lambda.Runtime, sep string) string {
	var parts []string
	for _, g := range groupByOS(rts) {
		parts = append(parts, strings.Join(g.runtimes, ", ")+" ("+lambda.OSName(g.os)+")")
	}
	return strings.Join(parts, sep)
}

// checkShadowed warns about a library in lib/ whose SONAME the system already has
// in /lib64: LD_LIBRARY_PATH lists /lib64 before /opt/lib, so the bundled copy is
// never the one loaded by that name.
func (c *checker) checkShadowed(e elfFile) {
	if path.Dir(e.name) != "lib" || e.info.Type != elf.ET_DYN {
		return
	}
	soname := e.info.Soname
	if soname == "" {
		soname = path.Base(e.name)
	}
	var who string
	if len(c.opt.Runtimes) == 0 {
		var oses []string
		for _, os := range lambda.OSes {
			if lambda.BaseSystemProvides(os, soname) {
				oses = append(oses, lambda.OSName(os))
			}
		}
		who = strings.Join(oses, " and ")
	} else {
		var have []lambda.Runtime
		for _, rt := range c.opt.Runtimes {
			if lambda.BaseSystemProvides(rt.OS, soname) {
				have = append(have, rt)
			}
		}
		who = runtimesByOS(have, " and ")
	}
	if who == "" {
		return
	}
	c.add(Warning, e.name, CheckShadowed, "%q (SONAME %s) is shadowed: %s already has %s in /lib64, which comes before /opt/lib on LD_LIBRARY_PATH, so programs get the system copy",
		e.name, soname, who, soname)
}
