// Package zipper writes zip archives whose bytes depend only on the names,
// kinds, permissions and contents of their entries, the chosen level and
// timestamp, and the deflate encoder's version: not on the machine, the file
// system's order or mtimes, the umask, the time zone, the Go release or the
// number of CPUs. It knows nothing about what the archive is for.
//
// # Rules
//
//   - Entries are sorted by the byte order of their slash-separated names;
//     two entries with one name are an error. Every parent folder is written
//     as an entry, listed or not, so "a/" comes before "a/x" and empty
//     folders survive.
//   - Every entry carries one timestamp (Options.Time, see Epoch) as an
//     MS-DOS date and time in UTC. No extra fields are written at all: no
//     extended timestamp, no uid/gid; the only exception is the zip64 field
//     of an entry that needs it.
//   - Modes are normalised: regular files 0644, or 0755 if any execute bit
//     is set; folders 0755; symlinks 0777, kept as symlinks whose content is
//     the target, and only when the target is relative and, resolved as the
//     kernel will after extraction (through the archive's other links, at most
//     40 of them: package symlinks), stays inside the archive. An entry below a
//     link is an error. Other file types are errors. The mode is the Unix one, in the
//     external attributes of a "made by Unix" header.
//   - Sizes and CRC are in the local header (no data descriptors). The UTF-8
//     flag is set exactly for names that are not ASCII. An entry is stored
//     rather than deflated when deflate would not make it smaller, when
//     Options.Store says so, or at level 0. Zip64 records appear only when a
//     size or offset reaches 0xffffffff (4 GiB less one byte) or there are
//     65535 entries or more.
//   - Deflate is Encoder at the version EncoderVersion reports, fixed by
//     go.mod: a different version may produce different bytes.
//
// The zip records are written by this package, not archive/zip, so that the
// Go release cannot move a byte.
//
// # Memory
//
// Entries are compressed concurrently by Options.Workers goroutines and
// written in order by the calling goroutine. A dispatcher hands entries to the
// workers in archive order and, before each, takes its share of a fixed byte
// budget (64 MiB); the writer gives it back once the entry is written. Because
// budget is taken in order, the entries holding it are always the next ones
// the writer needs, so the pipeline cannot deadlock, and however large the
// tree is, the bytes in flight stay under the budget:
//
//   - A small file (up to 1 MiB) is read whole into a pooled buffer and
//     deflated into another; the output buffer is capped at the input's size,
//     which is also where deflate stops being worth it.
//   - A large file is streamed in 256 KiB reads. Its compressed form goes to
//     a 4 MiB pooled buffer and, past that, to an unlinked temporary file
//     (in WriteFile's target folder, or os.TempDir for Write); the writer
//     copies it out when the entry's turn comes. If deflate does not shrink
//     it, the copy is dropped and the writer streams the file again with a
//     second Open, checking the CRC.
//
// Beyond that, memory is a compressor and a read buffer per worker, a 1 MiB
// output buffer, and about a hundred bytes per entry for the central
// directory, which has to wait for the end. No file is ever held whole unless
// it is small.
//
// # Reuse
//
// With Options.Reuse, a file of 4 KiB or more is looked up by the SHA-256 of
// its content, salted with the encoder's version and the level, before it is
// compressed; a hit supplies the deflate bytes, CRC and method (the decision
// to store counts too), and what is compressed is put there. Deflate output
// depends on nothing else, so the archive is the same byte for byte. A large
// file is hashed in a first read; on a miss it is compressed from a second
// read and stored only if that read hashes the same. Blobs over 4 MiB
// compressed are not kept, so a hit fits the entry's budget.
package zipper
