package zipdiff

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// The record signatures of the zip format (APPNOTE.TXT).
const (
	sigLocal       = 0x04034b50
	sigCentral     = 0x02014b50
	sigEOCD        = 0x06054b50
	sigZip64EOCD   = 0x06064b50
	sigZip64Locate = 0x07064b50
	sigDescriptor  = 0x08074b50

	localLen     = 30
	centralLen   = 46
	eocdLen      = 22
	zip64LocLen  = 20
	zip64EOCDLen = 56
)

// archive is a zip file as its records lay it out, read without archive/zip so that
// the fields archive/zip hides (local headers, offsets, internal attributes, the
// end records) can be compared too.
type archive struct {
	r    io.ReaderAt
	size int64

	eocdOffset int64
	eocd       []byte // the fixed 22 bytes of the end of central directory record
	comment    []byte
	zip64      bool  // a zip64 end of central directory record and locator are present
	zip64Len   int64 // their length (record plus locator)
	cdOffset   int64
	cdSize     int64
	cdCount    uint64 // the entry count the end record states

	entries []*entry
}

// entry is one central directory record and the local header it points to.
type entry struct {
	index    int // position in the central directory
	name     string
	creator  uint16 // version made by
	reader   uint16 // version needed to extract
	flags    uint16
	method   uint16
	dosTime  uint16
	dosDate  uint16
	crc      uint32
	csize    uint64
	usize    uint64
	extra    []byte
	comment  []byte
	disk     uint16
	internal uint16
	external uint32
	offset   int64 // of the local header

	local      localHeader
	dataOffset int64
	descLen    int64 // length of the data descriptor after the data, 0 if none
}

type localHeader struct {
	reader, flags, method, dosTime, dosDate uint16
	crc, csize, usize                       uint32
	name                                    string
	extra                                   []byte
}

// countsOff reports whether the end record's entry counts disagree with the
// number of central directory records.
func (a *archive) countsOff() bool {
	n := uint64(len(a.entries))
	return a.cdCount != n || (!a.zip64 && uint64(le.Uint16(a.eocd[8:])) != n)
}

func (a *archive) endRecord() string {
	return fmt.Sprintf("disk %d, central directory on disk %d, %d entries on this disk and %d in all for %d records",
		le.Uint16(a.eocd[4:]), le.Uint16(a.eocd[6:]), le.Uint16(a.eocd[8:]), a.cdCount, len(a.entries))
}

// end is where the entry's record ends: after its data and data descriptor.
func (e *entry) end() int64 { return e.dataOffset + int64(e.csize) + e.descLen }

var le = binary.LittleEndian

func readAt(r io.ReaderAt, off int64, n int) ([]byte, error) {
	b := make([]byte, n)
	if _, err := r.ReadAt(b, off); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return b, nil
}

func readArchive(r io.ReaderAt, size int64) (*archive, error) {
	a := &archive{r: r, size: size}
	if err := a.readEnd(); err != nil {
		return nil, err
	}
	if err := a.readCentral(); err != nil {
		return nil, err
	}
	for _, e := range a.entries {
		if err := a.readLocal(e); err != nil {
			return nil, fmt.Errorf("entry %q: %w", e.name, err)
		}
	}
	return a, nil
}

// readEnd finds the end of central directory record: the last signature whose
// comment fits in the file.
func (a *archive) readEnd() error {
	n := int64(eocdLen + 0xffff)
	if n > a.size {
		n = a.size
	}
	if n < eocdLen {
		return errors.New("not a zip file: too short")
	}
	tail, err := readAt(a.r, a.size-n, int(n))
	if err != nil {
		return err
	}
	i := len(tail) - eocdLen
	for ; i >= 0; i-- {
		if le.Uint32(tail[i:]) == sigEOCD && i+eocdLen+int(le.Uint16(tail[i+20:])) <= len(tail) {
			break
		}
	}
	if i < 0 {
		return errors.New("not a zip file: no end of central directory record")
	}
	rec := tail[i : i+eocdLen]
	a.eocdOffset = a.size - n + int64(i)
	a.eocd = rec
	a.comment = tail[i+eocdLen : i+eocdLen+int(le.Uint16(rec[20:]))]
	a.cdCount = uint64(le.Uint16(rec[10:]))
	a.cdSize = int64(le.Uint32(rec[12:]))
	a.cdOffset = int64(le.Uint32(rec[16:]))

	// A zip64 locator sits right before the end record.
	if a.eocdOffset >= zip64LocLen {
		loc, err := readAt(a.r, a.eocdOffset-zip64LocLen, zip64LocLen)
		if err != nil {
			return err
		}
		if le.Uint32(loc) == sigZip64Locate {
			// Every offset and size below comes from the file: compare them
			// without arithmetic that can wrap.
			off64 := le.Uint64(loc[8:])
			if off64 > uint64(a.eocdOffset-zip64LocLen) || uint64(a.eocdOffset-zip64LocLen)-off64 < zip64EOCDLen {
				return fmt.Errorf("zip64 locator points to offset %d, where no zip64 end record fits before the locator at %d", off64, a.eocdOffset-zip64LocLen)
			}
			off := int64(off64)
			rec, err := readAt(a.r, off, zip64EOCDLen)
			if err != nil {
				return fmt.Errorf("zip64 end record: %w", err)
			}
			if le.Uint32(rec) != sigZip64EOCD {
				return errors.New("zip64 locator points to no zip64 end record")
			}
			a.zip64 = true
			a.zip64Len = a.eocdOffset - off
			a.cdCount = le.Uint64(rec[32:])
			size, offset := le.Uint64(rec[40:]), le.Uint64(rec[48:])
			if offset > uint64(a.size) || size > uint64(a.size)-offset {
				return fmt.Errorf("central directory of %d bytes at offset %d lies outside the %d-byte file", size, offset, a.size)
			}
			a.cdSize, a.cdOffset = int64(size), int64(offset)
		}
	}
	if a.cdOffset > a.size || a.cdSize > a.size-a.cdOffset {
		return fmt.Errorf("central directory of %d bytes at offset %d lies outside the %d-byte file", a.cdSize, a.cdOffset, a.size)
	}
	return nil
}

func (a *archive) readCentral() error {
	cd, err := readAt(a.r, a.cdOffset, int(a.cdSize))
	if err != nil {
		return fmt.Errorf("central directory: %w", err)
	}
	for len(cd) > 0 {
		if len(cd) < centralLen || le.Uint32(cd) != sigCentral {
			return fmt.Errorf("central directory: bad record at offset %d", a.cdOffset+a.cdSize-int64(len(cd)))
		}
		nameLen, extraLen, commentLen := int(le.Uint16(cd[28:])), int(le.Uint16(cd[30:])), int(le.Uint16(cd[32:]))
		total := centralLen + nameLen + extraLen + commentLen
		if len(cd) < total {
			return errors.New("central directory: truncated record")
		}
		e := &entry{
			index:    len(a.entries),
			creator:  le.Uint16(cd[4:]),
			reader:   le.Uint16(cd[6:]),
			flags:    le.Uint16(cd[8:]),
			method:   le.Uint16(cd[10:]),
			dosTime:  le.Uint16(cd[12:]),
			dosDate:  le.Uint16(cd[14:]),
			crc:      le.Uint32(cd[16:]),
			csize:    uint64(le.Uint32(cd[20:])),
			usize:    uint64(le.Uint32(cd[24:])),
			disk:     le.Uint16(cd[34:]),
			internal: le.Uint16(cd[36:]),
			external: le.Uint32(cd[38:]),
			offset:   int64(le.Uint32(cd[42:])),
			name:     string(cd[centralLen : centralLen+nameLen]),
			extra:    cd[centralLen+nameLen : centralLen+nameLen+extraLen],
			comment:  cd[centralLen+nameLen+extraLen : total],
		}
		e.applyZip64()
		a.entries = append(a.entries, e)
		cd = cd[total:]
	}
	return nil
}

// applyZip64 takes the sizes and offset that do not fit 32 bits from the zip64
// extra field, in the order the format gives them.
func (e *entry) applyZip64() {
	data, ok := findExtra(e.extra, 0x0001)
	if !ok {
		return
	}
	next := func() (uint64, bool) {
		if len(data) < 8 {
			return 0, false
		}
		v := le.Uint64(data)
		data = data[8:]
		return v, true
	}
	if e.usize == 0xffffffff {
		if v, ok := next(); ok {
			e.usize = v
		}
	}
	if e.csize == 0xffffffff {
		if v, ok := next(); ok {
			e.csize = v
		}
	}
	if e.offset == 0xffffffff {
		if v, ok := next(); ok {
			e.offset = int64(v)
		}
	}
}

func (a *archive) readLocal(e *entry) error {
	if e.offset < 0 || e.offset > a.size-localLen {
		return fmt.Errorf("local header offset %d lies outside the %d-byte file", uint64(e.offset), a.size)
	}
	h, err := readAt(a.r, e.offset, localLen)
	if err != nil {
		return fmt.Errorf("local header: %w", err)
	}
	if le.Uint32(h) != sigLocal {
		return fmt.Errorf("no local header at offset %d", e.offset)
	}
	nameLen, extraLen := int(le.Uint16(h[26:])), int(le.Uint16(h[28:]))
	rest, err := readAt(a.r, e.offset+localLen, nameLen+extraLen)
	if err != nil {
		return fmt.Errorf("local header: %w", err)
	}
	e.local = localHeader{
		reader: le.Uint16(h[4:]), flags: le.Uint16(h[6:]), method: le.Uint16(h[8:]),
		dosTime: le.Uint16(h[10:]), dosDate: le.Uint16(h[12:]),
		crc: le.Uint32(h[14:]), csize: le.Uint32(h[18:]), usize: le.Uint32(h[22:]),
		name: string(rest[:nameLen]), extra: rest[nameLen:],
	}
	e.dataOffset = e.offset + localLen + int64(nameLen+extraLen)
	if e.csize > uint64(a.size-e.dataOffset) {
		return fmt.Errorf("%d bytes of data at offset %d run past the end of the %d-byte file", e.csize, e.dataOffset, a.size)
	}
	if e.flags&0x8 != 0 {
		e.descLen = a.descriptorLen(e)
	}
	return nil
}

// descriptorLen measures the data descriptor after e's data: an optional
// signature, the CRC-32, and two sizes of 4 bytes, or 8 bytes in zip64 entries.
func (a *archive) descriptorLen(e *entry) int64 {
	off := e.dataOffset + int64(e.csize)
	sizes := int64(8)
	if _, ok := findExtra(e.local.extra, 0x0001); ok {
		sizes = 16
	}
	b, err := readAt(a.r, off, 4)
	if err != nil {
		return 0
	}
	n := 4 + sizes
	if le.Uint32(b) == sigDescriptor {
		n += 4
	}
	// A descriptor cut off by the end of the file counts as far as it goes.
	return min(n, a.size-off)
}

// extraField is one field of an extra block.
type extraField struct {
	id   uint16
	data []byte
}

// parseExtra splits an extra block into fields and counts the bytes at its end
// that do not form a whole field.
func parseExtra(b []byte) (fields []extraField, trailing int) {
	for len(b) >= 4 {
		id, n := le.Uint16(b), int(le.Uint16(b[2:]))
		if len(b) < 4+n {
			break
		}
		fields = append(fields, extraField{id: id, data: b[4 : 4+n]})
		b = b[4+n:]
	}
	return fields, len(b)
}

func findExtra(b []byte, id uint16) ([]byte, bool) {
	fields, _ := parseExtra(b)
	for _, f := range fields {
		if f.id == id {
			return f.data, true
		}
	}
	return nil, false
}
