package cache

import (
	"encoding/binary"
	"hash/crc32"
	"os"
	"path/filepath"
)

// The last build of a layer and architecture of a project: the key of its zip in
// the cache and the zipper's index of that zip, so the next build copies what did
// not change from it (zipper.Options.Previous). It lives beside the layer's pack
// and is pruned with it. Like the entry blobs it is renamed into place without a
// sync: it carries a checksum, and a torn or stale record reads as none.
const lastMagic = "LPL1"

// lastMaxBytes bounds what is read as a record: an index is about 150 bytes per
// file, and Lambda allows far fewer files than this holds.
const lastMaxBytes = 256 << 20

func (e *Entries) lastPath(name string) string {
	return filepath.Join(e.dir, "packs", name+".last")
}

// Last returns the zip key and index the last build of name (see Pack) recorded.
func (e *Entries) Last(name string) (key string, index []byte, ok bool) {
	if !validKey(name) {
		return "", nil, false
	}
	b, err := readLimited(e.lastPath(name), lastMaxBytes)
	if err != nil || len(b) < len(lastMagic)+1+4 || string(b[:len(lastMagic)]) != lastMagic ||
		crc32.ChecksumIEEE(b[:len(b)-4]) != binary.LittleEndian.Uint32(b[len(b)-4:]) {
		return "", nil, false
	}
	body := b[len(lastMagic) : len(b)-4]
	kl := int(body[0])
	if len(body) < 1+kl || !validKey(string(body[1:1+kl])) {
		return "", nil, false
	}
	touch(e.lastPath(name))
	return string(body[1 : 1+kl]), body[1+kl:], true
}

// PutLast records the zip key and index of name's last build; failing to record
// only costs compressions next time.
func (e *Entries) PutLast(name, key string, index []byte) {
	if !validKey(name) || !validKey(key) {
		return
	}
	dir := filepath.Join(e.dir, "packs")
	if os.MkdirAll(dir, 0o755) != nil {
		return
	}
	b := make([]byte, 0, len(lastMagic)+1+len(key)+len(index)+4)
	b = append(b, lastMagic...)
	b = append(b, byte(len(key)))
	b = append(b, key...)
	b = append(b, index...)
	b = binary.LittleEndian.AppendUint32(b, crc32.ChecksumIEEE(b))
	renameInto(e.lastPath(name), func(f *os.File) error {
		_, err := f.Write(b)
		return err
	})
}
