// Package config reads layerpack.toml. Decoding is strict (unknown keys and wrong types
// are errors) and every problem found is reported with its file, line and key path.
// Cross-field rules live in validate.go.
package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/BurntSushi/toml"

	"github.com/layerpack/layerpack/lambda"
)

// DefaultFile is the config file read when -c is not given.
const DefaultFile = "layerpack.toml"

// File is a decoded, validated layerpack.toml.
type File struct {
	Path string // as given on the command line
	Dir  string // absolute folder of the file: relative paths in it start here

	Defaults Defaults
	// Images maps a runtime identifier or "default" to a build image; "{arch}" in a
	// value becomes x86_64 or arm64. Optional.
	Images   map[string]string
	BuildKit BuildKit
	Publish  Publish  // [publish], see publish.go
	Layers   []*Layer // sorted by name
}

// Defaults apply to every layer. All optional.
type Defaults struct {
	Architectures []lambda.Arch // default: x86_64 and arm64
	OutDir        string        // default "dist", relative to the config folder
	Compression   int           // deflate level 1-9, 0 = store; default 6
}

// BuildKit says where the daemon is. All optional.
type BuildKit struct {
	Addr string
	// ArchAddr points one architecture at its own daemon ([buildkit.arm64] addr).
	ArchAddr map[lambda.Arch]string
	// TrustHostCA mounts the host CA bundle into build steps; nil means the default.
	TrustHostCA *bool
	// TLS secures tcp:// addresses; ArchTLS replaces it for one architecture.
	TLS     TLS
	ArchTLS map[lambda.Arch]TLS
	// CacheFrom and CacheTo are BuildKit cache specs (--cache-from, --cache-to).
	CacheFrom, CacheTo []string
}

// Layer is one [layer.NAME] table.
type Layer struct {
	Name               string
	Description        string           // optional, <= 256 characters
	LicenseInfo        string           // optional, <= 512 characters
	CompatibleRuntimes []string         // required, 1-15 known identifiers
	Runtimes           []lambda.Runtime `json:"-"`
	Architectures      []lambda.Arch    // optional, overrides defaults
	Include            []string         // optional doublestar globs over paths in the layer
	Exclude            []string         // optional, applied after Include
	// AllowSecrets are doublestar globs of paths that look like credentials but are
	// meant to ship (a test fixture key, say); optional. Left out of the cache key's
	// JSON when empty, so adding the key did not change every layer's key.
	AllowSecrets []string `json:",omitempty"`
	Image        string   // optional build image for this layer
	// CrossCompile is how compile steps run: "auto" (default: zig cc for the
	// runtime's CPU and glibc, the image's own compiler when that fails), "cross"
	// (zig only) or "emulate" (the image's compiler, under QEMU for a foreign
	// CPU). Keyed by the compiling builders' inputs, not here: a layer that
	// compiles nothing keeps its key.
	CrossCompile string        `json:"-"`
	Files        []Files       // optional
	Native       *Native       // optional [layer.NAME.native]
	Python       *Python       // optional [layer.NAME.python]
	Node         *Node         // optional [layer.NAME.node]
	Ruby         *Ruby         // optional [layer.NAME.ruby]
	Java         *Java         // optional [layer.NAME.java]
	Publish      *LayerPublish `json:"-"` // optional [layer.NAME.publish]; not in the cache key: it cannot change the bytes
}

// Files is one [[layer.NAME.files]] entry.
type Files struct {
	Src  string // required, relative to the config folder
	Dest string // optional path inside the layer; default: the layer root
	Mode string // optional octal mode forced on regular files, e.g. "0755"

	AbsSrc string `json:"-"` // resolved Src
}

// Native is [layer.NAME.native]: a script that compiles code in the build container
// and installs into /opt.
type Native struct {
	Context    string            // required folder mounted at /src
	Packages   []string          // optional, installed first with dnf, yum or apt-get
	Script     string            // required, run with sh -e in /src
	Env        map[string]string // optional
	BundleLibs bool              // default true
	Strip      bool              // default false

	AbsContext string `json:"-"`
}

// Load reads and validates a config file.
func Load(path string) (*File, error) {
	src, err := readConfig(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, Errors{{File: path, Msg: "config file not found (create one, see layerpack.toml.example, or pass -c FILE)"}}
		}
		return nil, Errors{{File: path, Msg: err.Error()}}
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, filepath.Dir(abs), src)
}

// MaxFileSize bounds a config file: a real one is a few kilobytes, and a device
// like /dev/zero passed as -c must end in an error, not in running out of memory.
const MaxFileSize = 4 << 20

// readConfig reads a regular file of at most MaxFileSize bytes. A FIFO or a device
// is refused before it is opened, so `-c FIFO` cannot hang.
func readConfig(path string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.IsDir() {
		return nil, fmt.Errorf("is a folder, not a config file (pass -c FILE)")
	}
	if !st.Mode().IsRegular() {
		kind := "a special file"
		switch t := st.Mode().Type(); {
		case t&fs.ModeNamedPipe != 0:
			kind = "a named pipe (FIFO)"
		case t&fs.ModeDevice != 0:
			kind = "a device"
		case t&fs.ModeSocket != 0:
			kind = "a socket"
		}
		return nil, fmt.Errorf("is %s, not a regular file; pass a TOML file with -c", kind)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > MaxFileSize {
		return nil, fmt.Errorf("is larger than %d bytes; a layerpack config is a small TOML file", MaxFileSize)
	}
	return b, nil
}

// Parse decodes src as the file at path whose folder is dir.
func Parse(path, dir string, src []byte) (*File, error) {
	var raw map[string]any
	if _, err := toml.Decode(string(src), &raw); err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, Errors{{File: path, Line: pe.Position.Line, Msg: "invalid TOML: " + pe.Message}}
		}
		return nil, Errors{{File: path, Msg: "invalid TOML: " + err.Error()}}
	}
	w := &walker{file: path, lines: indexLines(string(src))}
	f := &File{Path: path, Dir: dir}
	decodeFile(w, w.root(raw), f)
	validate(w, f)
	if len(w.errs) > 0 {
		w.errs.sort()
		return nil, w.errs.capped()
	}
	applyDefaults(f)
	return f, nil
}

// Layer returns the layer called name.
func (f *File) Layer(name string) *Layer {
	for _, l := range f.Layers {
		if l.Name == name {
			return l
		}
	}
	return nil
}

// ArchList is the layer's architectures: its own, else the defaults.
func (f *File) ArchList(l *Layer) []lambda.Arch {
	if len(l.Architectures) > 0 {
		return l.Architectures
	}
	return f.Defaults.Architectures
}

// OutDir is the absolute output folder.
func (f *File) OutDir() string {
	if filepath.IsAbs(f.Defaults.OutDir) {
		return f.Defaults.OutDir
	}
	return filepath.Join(f.Dir, f.Defaults.OutDir)
}

func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Key == e.Key && t.Msg == e.Msg
}

// CrossCompileModes are the values of [layer.NAME] cross_compile.
var CrossCompileModes = []string{"auto", "cross", "emulate"}
