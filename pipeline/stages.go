package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/layerpack/layerpack/builders"
	"github.com/layerpack/layerpack/cache"
	"github.com/layerpack/layerpack/internal/atomicfile"
	"github.com/layerpack/layerpack/lambda"
	"github.com/layerpack/layerpack/plan"
	"github.com/layerpack/layerpack/sbom"
	"github.com/layerpack/layerpack/verify"
	"github.com/layerpack/layerpack/zipper"
)

// item is the state one plan item carries through its stages.
type item struct {
	o   *Options
	h   *cache.Hasher
	it  *plan.Item
	r   *Result
	key string

	work    string            // scratch folder (the stage lives in it)
	stage   string            // the staged tree, the zip's root
	overlay *builders.Overlay // entries put in the zip by reference, beside the stage
	entries []zipper.Entry    // what the zip will hold
	tmp     *os.File          // the zip being written, beside the output
	synced  chan error        // the zip's sync, done while it is verified
	stats   zipper.Stats
	index   []byte       // the zipper's index of the zip, for the next build (cache.Entries.PutLast)
	sum     string       // the zip's CodeSha256, hashed as it was written
	seen    *verify.Seen // what the zipper read of each file, so verify need not inflate it

	// doc is closed when the SBOM being made from the written zip while it is
	// verified is ready in docBytes, docErr.
	doc      chan struct{}
	docBytes []byte
	docErr   error

	cleanups []func()
	done     bool // a stage settled the item (a cache hit); the rest is skipped
}

// stage is one step of an item's build.
type stage struct {
	name string
	run  func(x *item, ctx context.Context) error
	// afterHit: the stage also runs when an earlier one settled the item (an
	// output made from the zip, whether built or taken from the cache).
	afterHit bool
}

// stages are an item's steps, in order (see the package doc).
var stages = []stage{
	{"key", (*item).computeKey, false},
	{"lock", (*item).lock, false},
	{"cached", (*item).useCached, false},
	{"stage", (*item).fillStage, false},
	{"filter", (*item).filter, false},
	{"zip", (*item).writeZip, false},
	{"verify", (*item).verifyZip, false},
	{"place", (*item).place, false},
	{"store", (*item).store, false},
	{"sbom", (*item).writeSBOM, true},
}

func runItem(ctx context.Context, o *Options, h *cache.Hasher, it *plan.Item) *Result {
	start := time.Now()
	x := &item{o: o, h: h, it: it, r: &Result{Item: *it, Path: filepath.Join(o.OutDir, it.File)}}
	if o.Events != nil {
		o.Events.Start(it)
	}
	for _, s := range stages {
		if x.done && !s.afterHit {
			continue
		}
		if err := ctx.Err(); err != nil {
			x.r.Err = err
			break
		}
		t := time.Now()
		err := s.run(x, ctx)
		x.r.Stages = append(x.r.Stages, StageTime{s.name, time.Since(t)})
		if err != nil {
			x.r.Err = err
			break
		}
	}
	for i := len(x.cleanups) - 1; i >= 0; i-- {
		x.cleanups[i]()
	}
	x.r.Duration = time.Since(start)
	if x.r.Err != nil {
		x.r.Err = fmt.Errorf("layer %s (%s): %w", it.Layer.Name, it.Target.Arch, x.r.Err)
	}
	if o.Events != nil {
		o.Events.Done(x.r)
	}
	return x.r
}

func (x *item) onDone(f func()) { x.cleanups = append(x.cleanups, f) }

// computeKey: the cache key, a hash of everything that can change the bytes.
func (x *item) computeKey(ctx context.Context) (err error) {
	x.key, err = Key(ctx, x.o, x.h, x.it)
	return err
}

// lock: hold the key's lock until the item is done, so two runs never build one key at once.
func (x *item) lock(context.Context) error {
	unlock, err := x.o.Cache.Lock(x.key)
	if err != nil {
		return err
	}
	x.onDone(unlock)
	return nil
}

// useCached: on a hit, make the output the cached zip and settle the item.
func (x *item) useCached(context.Context) error {
	if x.o.NoCache {
		return nil
	}
	e, zipPath, ok := x.o.Cache.Get(x.key)
	if !ok {
		return nil
	}
	if err := placeCached(e, zipPath, x.r.Path); err != nil {
		return nil // a cache that cannot be used only costs a rebuild
	}
	x.r.Cached, x.r.CodeSha256, x.r.Size, x.r.UnzippedSize, x.r.Entries = true, e.CodeSha256, e.Size, e.UnzippedSize, e.Entries
	x.done = true
	return nil
}

// placeCached makes out the cached zip, unless it already is: the no-op build of an
// unchanged layer reads no zip at all.
func placeCached(e *cache.Entry, zipPath, out string) error {
	st, err := os.Lstat(out)
	if err == nil && st.Mode().IsRegular() {
		if cst, err := os.Stat(zipPath); err == nil && os.SameFile(st, cst) {
			return nil
		}
		if st.Size() == e.Size {
			if sum, err := lambda.FileCodeSha256(out); err == nil && sum == e.CodeSha256 {
				return nil
			}
		}
	}
	return atomicfile.LinkOrCopy(zipPath, out)
}

// fillStage: every builder of the item, in order, fills one private staged tree.
func (x *item) fillStage(ctx context.Context) error {
	it, o := x.it, x.o
	work, err := o.Cache.TempDir("build-" + it.Layer.Name + "-" + string(it.Target.Arch))
	if err != nil {
		return err
	}
	x.work = work
	x.onDone(func() { os.RemoveAll(work) })
	x.stage = filepath.Join(work, "stage")
	if err := os.Mkdir(x.stage, 0o755); err != nil {
		return err
	}
	x.overlay = builders.NewOverlay()
	for _, b := range it.Builders {
		j := &builders.Job{
			Layer: it.Layer, Target: it.Target, Stage: x.stage, Overlay: x.overlay, Known: x.h.Known, Walked: x.h.Walk,
			Work: filepath.Join(work, b.Name()), Engine: o.Engine,
			Images: it.Images, Image: it.Image, StepArch: it.StepArch,
			SourceDateEpoch: o.Epoch.Unix(), NoCache: o.NoCache, Log: o.Log, CacheDir: o.Cache.Dir,
			Cross: o.Cross,
		}
		if err := os.Mkdir(j.Work, 0o755); err != nil {
			return err
		}
		if err := b.Build(ctx, j); err != nil {
			return fmt.Errorf("%s builder: %w", b.Name(), err)
		}
	}
	return nil
}

// filter: scan the staged tree; VCS folders, include/exclude and credentials decide what stays.
func (x *item) filter(context.Context) error {
	entries, err := zipper.Scan(x.stage)
	if err != nil {
		return err
	}
	if entries, err = mergeOverlay(entries, x.overlay); err != nil {
		return err
	}
	entries, vcs := dropVCS(entries, x.it.Layer.AllowSecrets)
	entries, dropped, err := Filter(entries, x.it.Layer.Include, x.it.Layer.Exclude)
	if err != nil {
		return err
	}
	if dropped+vcs > 0 {
		x.r.Saved = strconv.Itoa(dropped+vcs) + " files left out"
		if vcs > 0 {
			x.r.Saved += " (" + strconv.Itoa(vcs) + " of version control)"
		}
	}
	x.entries = entries
	return nil
}

// mergeOverlay adds the overlay's entries to the staged ones, sorted by name. A
// folder may be in both; anything else in both was written twice.
func mergeOverlay(staged []zipper.Entry, ov *builders.Overlay) ([]zipper.Entry, error) {
	if ov.Len() == 0 {
		return staged, nil
	}
	more := ov.Entries()
	if len(staged) == 0 {
		return more, nil
	}
	out := make([]zipper.Entry, 0, len(staged)+len(more))
	i, j := 0, 0
	for i < len(staged) || j < len(more) {
		switch {
		case j == len(more) || i < len(staged) && staged[i].Name < more[j].Name:
			out = append(out, staged[i])
			i++
		case i == len(staged) || more[j].Name < staged[i].Name:
			out = append(out, more[j])
			j++
		default:
			if !staged[i].Mode.IsDir() || !more[j].Mode.IsDir() {
				return nil, fmt.Errorf("%s is written twice: by a builder into the stage and by [[files]]", staged[i].Name)
			}
			out = append(out, staged[i])
			i, j = i+1, j+1
		}
	}
	return out, nil
}

// writeZip: the deterministic zip, to a temp file in the output folder.
func (x *item) writeZip(ctx context.Context) error {
	o, it := x.o, x.it
	tmp, err := atomicfile.CreateTemp(o.OutDir, it.File)
	if err != nil {
		return err
	}
	x.tmp = tmp
	x.onDone(func() {
		if x.tmp != nil {
			x.tmp.Close()
			os.Remove(x.tmp.Name())
		}
	})
	opt := zipper.Options{Level: o.Config.Defaults.Compression, Time: o.Epoch, Store: alreadyCompressed, Index: true}
	if !o.NoCache {
		// Unchanged files are copied from the layer's last zip, not compressed
		// again; without one, from the entry store, small files from the layer's
		// pack, read in one go. What is compressed goes to the entry store.
		entries := o.Cache.Entries()
		defer entries.MaybePrune()
		if prev := x.previous(entries); prev != nil {
			opt.Previous, opt.Reuse = prev, entries
		} else {
			pack := entries.Pack(packName(o.Config.Dir, it))
			opt.Reuse = pack
			defer pack.Close()
		}
	}
	if o.Events != nil {
		opt.Progress = func(p zipper.Progress) { o.Events.Zip(it, p) }
	}
	x.seen = verify.NewSeen()
	opt.Inspect, opt.InspectLess, opt.Hashed = x.seen.Add, verify.Short, x.seen.Hashed
	// The CodeSha256 is hashed on the way to the file: place need not read the zip again.
	h := sha256.New()
	st, err := zipper.Write(ctx, io.MultiWriter(atomicfile.NewWriteback(tmp), h), x.entries, opt)
	if err != nil {
		return err
	}
	x.stats = st
	x.r.Copied = st.Copied
	if st.Index != nil {
		x.index, _ = st.Index.MarshalBinary()
	}
	x.sum = base64.StdEncoding.EncodeToString(h.Sum(nil))
	// The zip reaches the disk while verify reads it; place waits for that.
	x.synced = make(chan error, 1)
	go func() { x.synced <- tmp.Sync() }()
	x.onDone(func() { x.waitSync() })
	x.startSBOM()
	return nil
}

func (x *item) sbomPath() string {
	return filepath.Join(x.o.OutDir, strings.TrimSuffix(x.it.File, ".zip")+".cdx.json")
}

func (x *item) sbomOptions() sbom.Options {
	return sbom.Options{Name: x.it.Layer.Name, Architecture: string(x.it.Target.Arch), Time: x.o.Epoch}
}

// startSBOM makes the SBOM of the zip just written on a goroutine of its own:
// verify reads the zip on one core, this on the other. The zip is opened now,
// before place renames it.
func (x *item) startSBOM() {
	sum, err := base64.StdEncoding.DecodeString(x.sum)
	if x.o.NoSBOM || err != nil || sbom.UpToDate(x.sbomPath(), x.sum, x.o.Epoch) {
		return
	}
	f, err := os.Open(x.tmp.Name())
	if err != nil {
		return // writeSBOM reads the placed zip instead
	}
	x.doc = make(chan struct{})
	o, name := x.sbomOptions(), x.r.Path
	go func() {
		defer close(x.doc)
		x.docBytes, x.docErr = sbom.Render(f, name, sum, o)
	}()
	x.onDone(func() { <-x.doc }) // a failed build still waits for it: nothing outlives Run
}

// waitSync waits for the zip's sync (once) and closes it.
func (x *item) waitSync() error {
	if x.synced == nil {
		return nil
	}
	err := <-x.synced
	x.synced = nil
	if cerr := x.tmp.Close(); err == nil {
		err = cerr
	}
	return err
}

// previous opens the zip the layer's last build made, with its index, for the
// zipper to copy unchanged entries from; nil when there is none (a first build,
// a cache that lost it), or when it is not the zip the index describes.
func (x *item) previous(entries *cache.Entries) *zipper.Previous {
	key, index, ok := entries.Last(packName(x.o.Config.Dir, x.it))
	if !ok {
		return nil
	}
	_, zipPath, ok := x.o.Cache.Get(key)
	if !ok {
		return nil
	}
	f, err := os.Open(zipPath)
	if err != nil {
		return nil
	}
	prev, err := zipper.NewPrevious(f, index)
	if err != nil {
		f.Close()
		return nil
	}
	x.onDone(func() { f.Close() })
	return prev
}

// packName names the entry pack of a layer and architecture of a project: builds of
// one layer share their small entries, other projects' layers of the same name do not.
func packName(projectDir string, it *plan.Item) string {
	h := sha256.Sum256([]byte("layerpack pack\x00" + projectDir + "\x00" + it.Layer.Name + "\x00" + string(it.Target.Arch)))
	return hex.EncodeToString(h[:16])
}

// verifyZip: Lambda's rules on the bytes just written; warnings are kept for the summary.
func (x *item) verifyZip(ctx context.Context) error {
	opt := verify.Options{Arch: x.it.Target.Arch, Runtimes: x.it.Target.Runtimes,
		ZipSize: x.stats.ZippedSize, AllowSecrets: x.it.Layer.AllowSecrets, Seen: x.seen}
	if !x.o.NoCache {
		opt.ELFMemo = x.o.Cache.Entries().ELFMemo() // shared libraries seen before are not read again
	}
	rep, err := verify.ZipContext(ctx, x.tmp.Name(), opt)
	if err != nil {
		return fmt.Errorf("verifying zip: %w", err)
	}
	for _, f := range rep.Findings {
		if f.Severity != verify.Error {
			x.r.Warnings = append(x.r.Warnings, f)
		}
	}
	return rep.Err()
}

// place: the verified zip gets its final name, atomically, once it is on disk.
func (x *item) place(context.Context) error {
	sum := x.sum
	if err := x.waitSync(); err != nil {
		return err
	}
	if err := os.Chmod(x.tmp.Name(), 0o644); err != nil {
		return err
	}
	if err := os.Rename(x.tmp.Name(), x.r.Path); err != nil {
		return fmt.Errorf("placing %s: %w", x.r.Path, err)
	}
	x.tmp = nil
	x.r.CodeSha256, x.r.Size, x.r.UnzippedSize, x.r.Entries = sum, x.stats.ZippedSize, x.stats.UnzippedSize, x.stats.Entries
	return nil
}

// store: the zip goes into the cache; failing to store only costs a rebuild next time.
func (x *item) store(context.Context) error {
	r := x.r
	e := &cache.Entry{Key: x.key, CodeSha256: r.CodeSha256, Size: r.Size, UnzippedSize: r.UnzippedSize,
		Entries: r.Entries, Encoder: zipper.Encoder + "@" + zipper.EncoderVersion()}
	if err := x.o.Cache.Put(e, r.Path); err != nil {
		fmt.Fprintf(x.o.Log, "layerpack: warning: %v\n", err)
		return nil
	}
	if x.index != nil {
		x.o.Cache.Entries().PutLast(packName(x.o.Config.Dir, x.it), x.key, x.index)
	}
	return nil
}

// writeSBOM: the layer's CycloneDX document beside its zip (unless Options.NoSBOM).
// A zip is good without it, so a failure is a warning and the entry names no SBOM.
func (x *item) writeSBOM(context.Context) error {
	if x.o.NoSBOM {
		return nil
	}
	out := x.sbomPath()
	var err error
	if x.doc != nil {
		<-x.doc
		if err = x.docErr; err == nil {
			err = atomicfile.WriteFile(out, x.docBytes, 0o644)
		}
	} else {
		err = sbom.WriteFile(out, x.r.Path, x.r.CodeSha256, x.sbomOptions())
	}
	if err != nil {
		x.r.Warnings = append(x.r.Warnings, verify.Finding{Severity: verify.Warning, Check: "sbom",
			Message: fmt.Sprintf("writing the SBOM %s: %v", out, err)})
		return nil
	}
	x.r.SBOM = out
	return nil
}
