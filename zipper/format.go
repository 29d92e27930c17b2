package zipper

import (
	"encoding/binary"
	"time"
)

// The zip records are written by this file rather than by archive/zip so that
// every byte is decided here and cannot move with the Go release: archive/zip
// adds an extended-timestamp extra field, picks zip64 and version fields by its
// own rules, and may change them. References are to PKWARE's APPNOTE.TXT 6.3.

const (
	sigLocal     = 0x04034b50 // 4.3.7 local file header
	sigCentral   = 0x02014b50 // 4.3.12 central directory header
	sigEnd       = 0x06054b50 // 4.3.16 end of central directory record
	sigEnd64     = 0x06064b50 // 4.3.14 zip64 end of central directory record
	sigLocator64 = 0x07064b50 // 4.3.15 zip64 end of central directory locator

	methodStore   = 0
	methodDeflate = 8

	flagUTF8 = 1 << 11 // 4.4.4 bit 11: name is UTF-8

	creatorUnix = 3 // 4.4.2.2: high byte of "version made by"

	versionStore   = 10 // 4.4.3.2: 1.0 default
	versionDeflate = 20 // 2.0: folder, deflate
	versionZip64   = 45 // 4.5: zip64 extra field

	extraZip64 = 0x0001 // 4.5.3 zip64 extended information extra field

	max16 = 0xffff
	max32 = 0xffffffff

	localHeaderLen   = 30
	centralHeaderLen = 46
	end64Len         = 56
	locator64Len     = 20
	endLen           = 22

	// Unix file type bits, as stored in the high 16 bits of the external
	// attributes.
	unixRegular = 0o100000
	unixDir     = 0o040000
	unixSymlink = 0o120000
	dosDir      = 0x10 // MS-DOS directory attribute, low byte of the external attributes
)

// record is one entry as written: what the central directory repeats.
type record struct {
	name   string
	method uint16
	flags  uint16
	crc    uint32
	usize  uint64
	csize  uint64
	offset uint64 // of the local header
	attrs  uint32 // external attributes
}

// Zip64 decisions. A 32-bit field holding 0xffffffff (or a 16-bit count
// holding 0xffff) means "see the zip64 record", so a value equal to the
// maximum needs zip64 as well; anything smaller never gets a zip64 record.

// sizesNeedZip64 reports whether an entry's local header needs the zip64
// extra field (which then carries both sizes, as 4.5.3 requires).
func sizesNeedZip64(usize, csize uint64) bool {
	return usize >= max32 || csize >= max32
}

// entryNeedsZip64 reports whether an entry's central directory header needs
// the zip64 extra field (sizes or the local header's offset).
func entryNeedsZip64(usize, csize, offset uint64) bool {
	return sizesNeedZip64(usize, csize) || offset >= max32
}

// endNeedsZip64 reports whether the archive needs the zip64 end of central
// directory record and locator.
func endNeedsZip64(entries, cdSize, cdOffset uint64) bool {
	return entries >= max16 || cdSize >= max32 || cdOffset >= max32
}

func (r *record) versionNeeded() uint16 {
	switch {
	case entryNeedsZip64(r.usize, r.csize, r.offset):
		return versionZip64
	case r.method == methodDeflate || r.attrs&dosDir != 0:
		return versionDeflate
	}
	return versionStore
}

// versionMadeBy says Unix and the spec level used (2.0, or 4.5 with zip64).
func (r *record) versionMadeBy() uint16 {
	v := uint16(versionDeflate)
	if entryNeedsZip64(r.usize, r.csize, r.offset) {
		v = versionZip64
	}
	return creatorUnix<<8 | v
}

func sat32(v uint64) uint32 { return uint32(min(v, max32)) }
func sat16(v uint64) uint16 { return uint16(min(v, max16)) }

// appendLocal appends the local file header of r (sizes and CRC included: no
// data descriptor) with the given MS-DOS time.
func appendLocal(b []byte, r *record, t dosTime) []byte {
	z := sizesNeedZip64(r.usize, r.csize)
	extra := 0
	if z {
		extra = 4 + 16
	}
	b = binary.LittleEndian.AppendUint32(b, sigLocal)
	b = binary.LittleEndian.AppendUint16(b, r.versionNeeded())
	b = binary.LittleEndian.AppendUint16(b, r.flags)
	b = binary.LittleEndian.AppendUint16(b, r.method)
	b = binary.LittleEndian.AppendUint16(b, t.time)
	b = binary.LittleEndian.AppendUint16(b, t.date)
	b = binary.LittleEndian.AppendUint32(b, r.crc)
	if z {
		b = binary.LittleEndian.AppendUint32(b, max32)
		b = binary.LittleEndian.AppendUint32(b, max32)
	} else {
		b = binary.LittleEndian.AppendUint32(b, uint32(r.csize))
		b = binary.LittleEndian.AppendUint32(b, uint32(r.usize))
	}
	b = binary.LittleEndian.AppendUint16(b, uint16(len(r.name)))
	b = binary.LittleEndian.AppendUint16(b, uint16(extra))
	b = append(b, r.name...)
	if z {
		b = binary.LittleEndian.AppendUint16(b, extraZip64)
		b = binary.LittleEndian.AppendUint16(b, 16)
		b = binary.LittleEndian.AppendUint64(b, r.usize)
		b = binary.LittleEndian.AppendUint64(b, r.csize)
	}
	return b
}

// appendCentral appends the central directory header of r. Its zip64 extra
// field, when needed, holds only the fields whose 32-bit slot overflowed, in
// the order 4.5.3 gives.
func appendCentral(b []byte, r *record, t dosTime) []byte {
	var z []uint64
	if r.usize >= max32 {
		z = append(z, r.usize)
	}
	if r.csize >= max32 {
		z = append(z, r.csize)
	}
	if r.offset >= max32 {
		z = append(z, r.offset)
	}
	extra := 0
	if len(z) > 0 {
		extra = 4 + 8*len(z)
	}
	b = binary.LittleEndian.AppendUint32(b, sigCentral)
	b = binary.LittleEndian.AppendUint16(b, r.versionMadeBy())
	b = binary.LittleEndian.AppendUint16(b, r.versionNeeded())
	b = binary.LittleEndian.AppendUint16(b, r.flags)
	b = binary.LittleEndian.AppendUint16(b, r.method)
	b = binary.LittleEndian.AppendUint16(b, t.time)
	b = binary.LittleEndian.AppendUint16(b, t.date)
	b = binary.LittleEndian.AppendUint32(b, r.crc)
	b = binary.LittleEndian.AppendUint32(b, sat32(r.csize))
	b = binary.LittleEndian.AppendUint32(b, sat32(r.usize))
	b = binary.LittleEndian.AppendUint16(b, uint16(len(r.name)))
	b = binary.LittleEndian.AppendUint16(b, uint16(extra))
	b = binary.LittleEndian.AppendUint16(b, 0) // comment length
	b = binary.LittleEndian.AppendUint16(b, 0) // disk number start
	b = binary.LittleEndian.AppendUint16(b, 0) // internal attributes
	b = binary.LittleEndian.AppendUint32(b, r.attrs)
	b = binary.LittleEndian.AppendUint32(b, sat32(r.offset))
	b = append(b, r.name...)
	if len(z) > 0 {
		b = binary.LittleEndian.AppendUint16(b, extraZip64)
		b = binary.LittleEndian.AppendUint16(b, uint16(8*len(z)))
		for _, v := range z {
			b = binary.LittleEndian.AppendUint64(b, v)
		}
	}
	return b
}

// appendEnd appends the end of central directory record, preceded by the
// zip64 record and locator when endNeedsZip64 says so. A field too small for
// its value holds the maximum (4.4.1.4); the others hold the value.
func appendEnd(b []byte, entries, cdOffset, cdSize uint64) []byte {
	if endNeedsZip64(entries, cdSize, cdOffset) {
		end64Offset := cdOffset + cdSize
		b = binary.LittleEndian.AppendUint32(b, sigEnd64)
		b = binary.LittleEndian.AppendUint64(b, end64Len-12) // size of the rest of the record
		b = binary.LittleEndian.AppendUint16(b, creatorUnix<<8|versionZip64)
		b = binary.LittleEndian.AppendUint16(b, versionZip64)
		b = binary.LittleEndian.AppendUint32(b, 0) // this disk
		b = binary.LittleEndian.AppendUint32(b, 0) // disk with the central directory
		b = binary.LittleEndian.AppendUint64(b, entries)
		b = binary.LittleEndian.AppendUint64(b, entries)
		b = binary.LittleEndian.AppendUint64(b, cdSize)
		b = binary.LittleEndian.AppendUint64(b, cdOffset)

		b = binary.LittleEndian.AppendUint32(b, sigLocator64)
		b = binary.LittleEndian.AppendUint32(b, 0) // disk with the zip64 end record
		b = binary.LittleEndian.AppendUint64(b, end64Offset)
		b = binary.LittleEndian.AppendUint32(b, 1) // total disks
	}
	b = binary.LittleEndian.AppendUint32(b, sigEnd)
	b = binary.LittleEndian.AppendUint16(b, 0) // this disk
	b = binary.LittleEndian.AppendUint16(b, 0) // disk with the central directory
	b = binary.LittleEndian.AppendUint16(b, sat16(entries))
	b = binary.LittleEndian.AppendUint16(b, sat16(entries))
	b = binary.LittleEndian.AppendUint32(b, sat32(cdSize))
	b = binary.LittleEndian.AppendUint32(b, sat32(cdOffset))
	b = binary.LittleEndian.AppendUint16(b, 0) // comment length
	return b
}

// dosTime is an MS-DOS date and time (2-second resolution, years 1980-2107).
type dosTime struct{ date, time uint16 }

var (
	minDOSTime = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)
	maxDOSTime = time.Date(2107, 12, 31, 23, 59, 58, 0, time.UTC)
)

// toDOSTime converts t, read in UTC, to MS-DOS form. Odd seconds round down.
// The caller keeps t within [minDOSTime, maxDOSTime].
func toDOSTime(t time.Time) dosTime {
	t = t.UTC()
	return dosTime{
		date: uint16((t.Year()-1980)<<9 | int(t.Month())<<5 | t.Day()),
		time: uint16(t.Hour()<<11 | t.Minute()<<5 | t.Second()>>1),
	}
}
