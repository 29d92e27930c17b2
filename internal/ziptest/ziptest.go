// Package ziptest makes hostile zips for tests that no zip writer would make.
package ziptest

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// Bomb is the zip bomb of issue 11 in small: n central directory entries
// (f00000, f00001, ...) that all point at one local header and one deflate stream
// of size zero bytes. Each entry declares declared bytes (size when 0).
func Bomb(n, size, declared int) []byte {
	var data bytes.Buffer
	fw, _ := flate.NewWriter(&data, flate.BestCompression)
	zeros := make([]byte, size)
	fw.Write(zeros)
	fw.Close()
	crc := crc32.ChecksumIEEE(zeros)
	if declared == 0 {
		declared = size
	}
	var b bytes.Buffer
	w := func(v ...any) {
		for _, x := range v {
			binary.Write(&b, binary.LittleEndian, x)
		}
	}
	name := "a"
	w(uint32(0x04034b50), uint16(20), uint16(0), uint16(8), uint16(0), uint16(0x21), crc, uint32(data.Len()), uint32(declared), uint16(len(name)), uint16(0))
	b.WriteString(name)
	b.Write(data.Bytes())
	cd := b.Len()
	for i := range n {
		nm := fmt.Sprintf("f%05d", i)
		w(uint32(0x02014b50), uint16(3<<8|20), uint16(20), uint16(0), uint16(8), uint16(0), uint16(0x21), crc, uint32(data.Len()), uint32(declared),
			uint16(len(nm)), uint16(0), uint16(0), uint16(0), uint16(0), uint32(0o100644<<16), uint32(0))
		b.WriteString(nm)
	}
	w(uint32(0x06054b50), uint16(0), uint16(0), uint16(n), uint16(n), uint32(b.Len()-cd), uint32(cd), uint16(0))
	return b.Bytes()
}
