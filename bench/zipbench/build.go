package main

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// endToEnd times `layerpack build` of a files layer of the npm tree, the way a
// user runs it, against Info-ZIP on the same tree in the same run: the cold build
// (--no-cache), the first build with an empty cache, a no-op build, and the
// rebuild after one file changed, whose zip must equal a clean build's byte for
// byte.
func endToEnd(c config, out string) (missed int, err error) {
	tree := c.tree
	if tree == "" {
		if tree, err = nodeTree(c.cache); err != nil {
			return 0, err
		}
	}
	zipBin, err := exec.LookPath("zip")
	if err != nil {
		return 0, errors.New("Info-ZIP zip is not installed (apt-get install zip)")
	}
	if c.baseline != "" {
		if c.baseline, err = filepath.Abs(c.baseline); err != nil {
			return 0, err
		}
	}
	bin := c.layerpack
	if bin != "" {
		if bin, err = filepath.Abs(bin); err != nil { // the builds run in the project folder
			return 0, err
		}
	} else {
		bin = filepath.Join(out, "layerpack")
		cmd := exec.Command("go", "build", "-trimpath", "-o", bin, "./cmd/layerpack")
		cmd.Stderr = os.Stderr
		if err := cmd.Run(); err != nil {
			return 0, fmt.Errorf("building layerpack (run from the repository, or give -layerpack): %w", err)
		}
	}
	// The project: a hard-linked copy of the tree (a changed file is replaced,
	// never written through a link) and a config of one files layer.
	proj := filepath.Join(out, "project")
	src := filepath.Join(proj, "nm")
	if err := linkTree(tree, src); err != nil {
		return 0, err
	}
	cfg := "[layer.nm]\ncompatible_runtimes = [\"nodejs20.x\"]\narchitectures = [\"x86_64\"]\n" +
		"[[layer.nm.files]]\nsrc = \"nm\"\ndest = \"nodejs/node_modules\"\n"
	if err := os.WriteFile(filepath.Join(proj, "layerpack.toml"), []byte(cfg), 0o644); err != nil {
		return 0, err
	}
	files, size, err := treeSize(src)
	if err != nil {
		return 0, err
	}
	fmt.Printf("\n== end to end: layerpack build of a files layer of %s (%d files, %.1f MB)\n", tree, files, float64(size)/1e6)

	zipOut := filepath.Join(proj, "dist", "nm-x86_64.zip")
	run := func(bin, xdg string, args ...string) (time.Duration, time.Duration, error) {
		cmd := exec.Command(bin, append([]string{"build", "--progress", "quiet"}, args...)...)
		cmd.Dir, cmd.Env = proj, append(os.Environ(), "XDG_CACHE_HOME="+filepath.Join(out, xdg), "SOURCE_DATE_EPOCH=")
		var o bytes.Buffer
		cmd.Stdout, cmd.Stderr = &o, &o
		start := time.Now()
		if err := cmd.Run(); err != nil {
			return 0, 0, fmt.Errorf("layerpack build %s: %w\n%s", strings.Join(args, " "), err, o.String())
		}
		return time.Since(start), cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(), nil
	}
	build := func(args ...string) (time.Duration, time.Duration, error) { return run(bin, "xdg", args...) }
	infoZip := func() (time.Duration, time.Duration, error) {
		archive := filepath.Join(out, "e2e-infozip.zip")
		os.Remove(archive)
		cmd := exec.Command(zipBin, "-q", "-r", "-X", "-y", "-6", archive, ".")
		cmd.Dir, cmd.Stderr = src, os.Stderr
		start := time.Now()
		if err := cmd.Run(); err != nil {
			return 0, 0, fmt.Errorf("zip: %w", err)
		}
		return time.Since(start), cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(), nil
	}

	type timing struct{ wall, cpu []time.Duration }
	var tInfo, tCold, tFirst, tNoop, tOne, tBaseCold, tBaseOne timing
	add := func(t *timing, w, c time.Duration) { t.wall, t.cpu = append(t.wall, w), append(t.cpu, c) }
	changed := filepath.Join(src, "lodash", "README.md")
	orig, err := os.ReadFile(changed)
	if err != nil {
		return 0, fmt.Errorf("the tree has no lodash/README.md to change: %w", err)
	}
	for i := range c.runs {
		w, cp, err := infoZip()
		if err != nil {
			return 0, err
		}
		add(&tInfo, w, cp)
		if w, cp, err = build("--no-cache"); err != nil {
			return 0, err
		}
		add(&tCold, w, cp)
		os.RemoveAll(filepath.Join(out, "xdg")) // an empty cache: zips and entries
		if w, cp, err = build(); err != nil {
			return 0, err
		}
		add(&tFirst, w, cp)
		if w, cp, err = build(); err != nil {
			return 0, err
		}
		add(&tNoop, w, cp)
		// One file changed (new content each run), then rebuilt.
		if err := replaceFile(changed, append(slices.Clip(orig), fmt.Sprintf("\nchanged by zipbench, run %d\n", i)...)); err != nil {
			return 0, err
		}
		if w, cp, err = build(); err != nil {
			return 0, err
		}
		add(&tOne, w, cp)
		if c.baseline != "" { // the other binary on the same tree: cold, then the same change again
			if w, cp, err = run(c.baseline, "xdg-baseline", "--no-cache"); err != nil {
				return 0, err
			}
			add(&tBaseCold, w, cp)
			if err := replaceFile(changed, append(slices.Clip(orig), fmt.Sprintf("\nchanged by zipbench, baseline run %d\n", i)...)); err != nil {
				return 0, err
			}
			if w, cp, err = run(c.baseline, "xdg-baseline"); err != nil {
				return 0, err
			}
			add(&tBaseOne, w, cp)
			fmt.Printf("  run %d, baseline %s: cold %.2f s (cpu %.2f), one file changed %.2f s (cpu %.2f)\n", i+1, c.baseline,
				tBaseCold.wall[i].Seconds(), tBaseCold.cpu[i].Seconds(), tBaseOne.wall[i].Seconds(), tBaseOne.cpu[i].Seconds())
		}
		fmt.Printf("  run %d: Info-ZIP %.2f s (cpu %.2f), cold %.2f s (cpu %.2f), first %.2f s, no-op %.3f s, one file changed %.2f s (cpu %.2f)\n",
			i+1, tInfo.wall[i].Seconds(), tInfo.cpu[i].Seconds(), tCold.wall[i].Seconds(), tCold.cpu[i].Seconds(),
			tFirst.wall[i].Seconds(), tNoop.wall[i].Seconds(), tOne.wall[i].Seconds(), tOne.cpu[i].Seconds())
	}
	// The incremental zip must be the clean build's, byte for byte.
	if c.baseline != "" { // the baseline wrote the last zip: rebuild it, from the entry store
		if _, _, err := build(); err != nil {
			return 0, err
		}
	}
	inc, err := fileSum(zipOut)
	if err != nil {
		return 0, err
	}
	if _, _, err := build("--no-cache"); err != nil {
		return 0, err
	}
	clean, err := fileSum(zipOut)
	if err != nil {
		return 0, err
	}
	if err := replaceFile(changed, orig); err != nil {
		return 0, err
	}

	best := func(t timing) (time.Duration, time.Duration) { return slices.Min(t.wall), slices.Min(t.cpu) }
	iw, ic := best(tInfo)
	cw, cc := best(tCold)
	fw, _ := best(tFirst)
	nw, _ := best(tNoop)
	ow, oc := best(tOne)
	fmt.Printf("Info-ZIP zip -6            : %6.2f s (cpu %.2f s)\n", iw.Seconds(), ic.Seconds())
	fmt.Printf("build --no-cache (cold)    : %6.2f s (cpu %.2f s)\n", cw.Seconds(), cc.Seconds())
	fmt.Printf("build, empty cache         : %6.2f s\n", fw.Seconds())
	fmt.Printf("build, no-op               : %6.3f s\n", nw.Seconds())
	fmt.Printf("build, one file changed    : %6.2f s (cpu %.2f s)  (best of %d)\n", ow.Seconds(), oc.Seconds(), c.runs)
	if c.baseline != "" {
		bw, bc := best(tBaseCold)
		bow, boc := best(tBaseOne)
		fmt.Printf("baseline --no-cache (cold) : %6.2f s (cpu %.2f s), Info-ZIP ratio %.2fx\n", bw.Seconds(), bc.Seconds(), iw.Seconds()/bw.Seconds())
		fmt.Printf("baseline, one file changed : %6.2f s (cpu %.2f s)\n", bow.Seconds(), boc.Seconds())
	}
	ratio := iw.Seconds() / cw.Seconds()
	missed += verdict("cold ratio", fmt.Sprintf("%.2fx", ratio), fmt.Sprintf(">= %.2gx", c.buildTarget), ratio >= c.buildTarget)
	fmt.Printf("%-16s: %.2fx (Info-ZIP cpu / cold build cpu)\n", "cold cpu ratio", ic.Seconds()/cc.Seconds())
	missed += verdict("one file changed", fmt.Sprintf("%.2f s", ow.Seconds()), fmt.Sprintf("<= %.2g s", c.incrTarget.Seconds()), ow <= c.incrTarget)
	missed += verdict("incremental zip", map[bool]string{true: "identical", false: "DIFFERS"}[inc == clean], "= clean", inc == clean)
	return missed, nil
}

// linkTree makes dst a copy of src whose files are hard links (copies across
// file systems).
func linkTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		to := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(to, 0o755)
		case d.Type()&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(link, to)
		case d.Type().IsRegular():
			if os.Link(p, to) == nil {
				return nil
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(to, b, info.Mode().Perm())
		}
		return nil
	})
}

// replaceFile gives path new content through a new file, so the tree the link
// came from is not changed.
func replaceFile(path string, data []byte) error {
	tmp := path + ".zipbench-tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func fileSum(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return fmt.Sprintf("%x", h.Sum(nil)), nil
}
