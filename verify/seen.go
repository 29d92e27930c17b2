package verify

import (
	"archive/zip"
	"bytes"
	"sync"

	"github.com/layerpack/layerpack/elfinfo"
	"github.com/layerpack/layerpack/secrets"
	"github.com/layerpack/layerpack/zipper"
)

// Seen is what the writer of a zip saw of its files while it wrote them (the
// zipper's Inspect hook): each file's size, CRC-32 and what its first bytes say.
// Given as Options.Seen, it spares verify inflating every entry again: an entry
// whose name, size and CRC match what was seen, and whose head showed neither ELF
// nor a jar, is checked from the head seen. Any other entry (not seen, different
// size or CRC, ELF, jar) is read from the zip in full, as without Seen, so a zip
// that is not the one seen is still checked completely.
type Seen struct {
	mu    sync.Mutex
	files map[string]seenFile
	sums  map[string][]byte // from Hashed, by name
}

type seenFile struct {
	size   int64
	crc    uint32
	full   bool             // the head is ELF or a jar: read the entry itself
	elf    bool             // the head is ELF (and was long enough to judge secrets)
	secret *secrets.Finding // what the head looked like, before allow_secrets
	sum    []byte           // the content's SHA-256, when the writer had it
}

// NewSeen returns an empty Seen.
func NewSeen() *Seen { return &Seen{files: make(map[string]seenFile)} }

// Add records a file: its name in the zip, its size and CRC-32, and its first bytes
// (up to secrets.HeadLimit; fewer only when the file is shorter). Add may be called
// from several goroutines at once and does not keep head.
func (s *Seen) Add(name string, size int64, crc uint32, head []byte) {
	f := seenFile{size: size, crc: crc}
	need := int64(secrets.HeadLimit)
	if Short(name) {
		need = zipper.InspectShort
	}
	switch {
	case int64(len(head)) < min(size, need):
		f.full = true // not enough seen to judge
	case elfinfo.IsELF(head):
		f.full, f.elf = true, true
		f.secret, _ = secrets.Check(name, bytes.NewReader(head))
	case isJar(name) && bytes.HasPrefix(head, []byte("PK")):
		f.full = true
	default:
		f.secret, _ = secrets.Check(name, bytes.NewReader(head))
	}
	s.mu.Lock()
	f.sum = s.sums[name]
	s.files[name] = f
	s.mu.Unlock()
}

// Hashed records the SHA-256 of a file's content (zipper.Options.Hashed), by which
// an ELF file's inspection is remembered (Options.ELFMemo). It may come before or
// after Add.
func (s *Seen) Hashed(name string, sum []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sums == nil {
		s.sums = map[string][]byte{}
	}
	b := bytes.Clone(sum)
	s.sums[name] = b
	if f, ok := s.files[name]; ok {
		f.sum = b
		s.files[name] = f
	}
}

// ELFMemo remembers what elfinfo.Inspect found in a file, by the SHA-256 of its
// content, so a shared library a build saw before is not read again. A memo that
// loses or garbles entries only costs a reading. Get and Put may be called from
// several goroutines at once.
type ELFMemo interface {
	Get(sum []byte) (*elfinfo.Info, bool)
	Put(sum []byte, info *elfinfo.Info)
}

// seenELF checks an ELF entry from the memo: it reports whether the entry matched
// what was seen and the memo knew its content.
func (c *checker) seenELF(f *zip.File) bool {
	s, m := c.opt.Seen, c.opt.ELFMemo
	if s == nil || m == nil {
		return false
	}
	sf, ok := s.lookup(f)
	if !ok || !sf.elf || sf.sum == nil {
		return false
	}
	info, ok := m.Get(sf.sum)
	if !ok {
		return false
	}
	if sf.secret != nil {
		c.secretFinding(f.Name, sf.secret)
	}
	c.elfs = append(c.elfs, elfFile{name: f.Name, info: info})
	return true
}

// rememberELF puts what was found in an ELF entry into the memo, when the entry is
// the one the writer saw (so the sum is its content's).
func (c *checker) rememberELF(f *zip.File, info *elfinfo.Info) {
	s, m := c.opt.Seen, c.opt.ELFMemo
	if s == nil || m == nil {
		return
	}
	if sf, ok := s.lookup(f); ok && sf.elf && sf.sum != nil {
		m.Put(sf.sum, info)
	}
}

// lookup returns what was seen of f, if its size and CRC match.
func (s *Seen) lookup(f *zip.File) (seenFile, bool) {
	s.mu.Lock()
	sf, ok := s.files[f.Name]
	s.mu.Unlock()
	if !ok || sf.size < 0 || uint64(sf.size) != f.UncompressedSize64 || sf.crc != f.CRC32 {
		return seenFile{}, false
	}
	return sf, true
}

// Short reports whether the first zipper.InspectShort bytes of the file name are
// all Seen needs (zipper.Options.InspectLess): no secret check applies to it, and
// its first bytes tell ELF and jars apart.
func Short(name string) bool {
	return secrets.InPackage(name) || secrets.IsVCS(name)
}

// seenEntry reports whether f can be checked from what was seen, and does so.
func (c *checker) seenEntry(f *zip.File) bool {
	s := c.opt.Seen
	if s == nil {
		return false
	}
	s.mu.Lock()
	sf, ok := s.files[f.Name]
	s.mu.Unlock()
	if !ok || sf.full || sf.size < 0 || uint64(sf.size) != f.UncompressedSize64 || sf.crc != f.CRC32 {
		return false
	}
	if sf.secret != nil {
		c.secretFinding(f.Name, sf.secret)
	}
	return true
}
