package zipper

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strconv"
	"time"
)

// Options control Write. The zero value stores every entry uncompressed with
// the 1980-01-01 timestamp on NumCPU workers.
type Options struct {
	// Level is 0 to store every entry, or a deflate level from 1 to 9. Callers
	// wanting the usual trade-off use 6. Optional.
	Level int
	// Time is the single timestamp written on every entry, in UTC, rounded
	// down to an even second. The zero time and anything before 1980 mean
	// 1980-01-01 00:00:00; after 2107 is an error. Use Epoch. Optional.
	Time time.Time
	// Workers is the number of goroutines compressing entries; <= 0 means
	// runtime.NumCPU(). It never changes the output. Optional.
	Workers int
	// Store, when set, forces the "stored" method for the regular files whose
	// name it reports true for (for example *.jar, *.zip, *.gz). Optional.
	Store func(name string) bool
	// Progress, when set, is called from one goroutine (never two calls at
	// once) at most about five times a second, and once more with the final
	// figures when Write succeeds. No call happens after Write returns. Optional.
	Progress func(p Progress)
	// Reuse, when set, is a store of compressed entries: a file whose content,
	// encoder version and level match a stored entry is copied from it instead
	// of compressed again, and what is compressed is put there. The output is
	// the same byte for byte with or without it. Optional.
	Reuse Reuse
	// Inspect, when set, is called once for each regular file with what Write
	// saw of it: its name in the archive, size, CRC-32 and first bytes (all of
	// them up to InspectHead, which the call must not keep), so a checker can
	// trust the archive's entries without inflating them again. It is called
	// from several goroutines at once, and before the entry is written: an
	// error from Write voids what it was told. Optional.
	Inspect func(name string, size int64, crc uint32, head []byte)
	// InspectLess, when set, names the files whose first InspectShort bytes
	// are all Inspect needs: those Write copies from Reuse without reading
	// them get no more than that, which spares inflating 64 KiB. Optional.
	InspectLess func(name string) bool
	// Hashed, when set, is called with the SHA-256 of a regular file's content
	// whenever Write has it (Entry.Sum, or the hash Reuse is looked up by; with
	// no Reuse, never), so a checker can remember what it found in that content.
	// Called from several goroutines at once; the call must not keep sum. Optional.
	Hashed func(name string, sum []byte)
	// Previous, when set, is an archive an earlier Write made with Options.Index,
	// paired with that index (NewPrevious): a file whose content (its Entry.Sum,
	// or the hash of what is read) is in it has its data copied from there, not
	// compressed again. Ignored when made at another level or by another encoder
	// version. The output is the same byte for byte with or without it. Optional.
	Previous *Previous
	// Index, when true, makes Write return the Index of the archive in
	// Stats.Index, for a later Write's Previous. Optional.
	Index bool
}

// InspectShort is the head Inspect gets of a file InspectLess names, when the
// file is copied from Reuse unread (at least this much, or all of a shorter file).
const InspectShort = 64

// InspectHead is how many leading bytes of a file Options.Inspect gets.
const InspectHead = 64 << 10

// Progress is a snapshot of a running Write. Files counts the regular files and
// symlinks written (folders are not counted); Bytes counts the uncompressed
// bytes of file and symlink content read and compressed so far.
type Progress struct {
	Files, TotalFiles int
	Bytes, TotalBytes int64
}

// Stats describe a written archive. Entries = Files + Dirs + Symlinks; Stored
// counts files and symlinks written uncompressed; UnzippedSize sums their
// uncompressed sizes; ZippedSize is the size of the whole archive in bytes.
type Stats struct {
	Entries, Files, Dirs, Symlinks, Stored int
	UnzippedSize, ZippedSize               int64
	// Copied counts the files whose data came from Options.Previous.
	Copied int
	// Index is the archive's Index, when Options.Index was set.
	Index *Index
}

// EpochVar is the environment variable Epoch reads.
const EpochVar = "SOURCE_DATE_EPOCH"

// Epoch returns the timestamp to write, from SOURCE_DATE_EPOCH (decimal
// seconds since 1970, UTC). Unset or empty gives 1980-01-01 00:00:00 UTC, the
// earliest time a zip can hold; earlier values are clamped to it. A value that
// is not a decimal integer, or lies after 2107 (the last year a zip can hold),
// is an error naming the variable and the value.
func Epoch(getenv func(string) string) (time.Time, error) {
	s := getenv(EpochVar)
	if s == "" {
		return minDOSTime, nil
	}
	sec, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("zipper: %s=%q: not a decimal number of seconds: %w", EpochVar, s, err)
	}
	if sec < minDOSTime.Unix() {
		return minDOSTime, nil
	}
	if sec > maxDOSTime.Unix()+1 {
		return time.Time{}, fmt.Errorf("zipper: %s=%q: after %s, the last time a zip can hold", EpochVar, s, maxDOSTime.Format(time.RFC3339))
	}
	return time.Unix(sec, 0).UTC(), nil
}

// Encoder is the deflate implementation Write uses. Its output changes between
// versions, so the version (EncoderVersion) belongs in any record of how an
// archive was made.
const Encoder = "github.com/klauspost/compress/flate"

const (
	encoderModule = "github.com/klauspost/compress"
	// encoderVersion is the version pinned in go.mod; a test keeps them equal.
	encoderVersion = "v1.20.3"
)

// EncoderVersion returns the version of Encoder's module linked into this
// binary, from the build information, or the pinned version when the binary
// carries none. A replaced module reports the replacement.
func EncoderVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return encoderVersion
	}
	for _, d := range bi.Deps {
		if d.Path != encoderModule {
			continue
		}
		if r := d.Replace; r != nil {
			if r.Version != "" && r.Path == encoderModule {
				return r.Version
			}
			return d.Version + " => " + r.Path + " " + r.Version
		}
		if d.Version != "" {
			return d.Version
		}
	}
	return encoderVersion
}

// checked is Options after validation, with defaults filled in.
type checked struct {
	Options
	dos dosTime
}

func (o Options) check() (checked, error) {
	if o.Level < 0 || o.Level > 9 {
		return checked{}, fmt.Errorf("zipper: level %d: want 0 (store) to 9", o.Level)
	}
	if o.Workers <= 0 {
		o.Workers = runtime.NumCPU()
	}
	t := o.Time
	if t.Before(minDOSTime) {
		t = minDOSTime
	}
	if t.After(maxDOSTime.Add(time.Second)) {
		return checked{}, fmt.Errorf("zipper: time %s: after %s, the last time a zip can hold", t.UTC().Format(time.RFC3339), maxDOSTime.Format(time.RFC3339))
	}
	return checked{Options: o, dos: toDOSTime(t)}, nil
}
