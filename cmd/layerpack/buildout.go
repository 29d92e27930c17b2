package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/layerpack/layerpack/config"
	"github.com/layerpack/layerpack/ghactions"
	"github.com/layerpack/layerpack/internal/bytesize"
	"github.com/layerpack/layerpack/internal/version"
	"github.com/layerpack/layerpack/manifest"
	"github.com/layerpack/layerpack/pipeline"
	"github.com/layerpack/layerpack/report"
)

// buildRun is what a build leaves for the outputs made after it: the --json
// document, GitHub Actions outputs, summary and annotations.
type buildRun struct {
	command  string // "build" or "publish": the report's command
	cfgPath  string
	cfg      *config.File
	out      string
	results  []*pipeline.Result
	manifest string // path, when it was written
	epoch    time.Time
	// published is what publishing did, for the report (nil without it).
	published []report.Published
	// images are the container images made (layerpack image), for the report.
	images []manifest.Image
}

// report turns the run into the --json document.
func (b *buildRun) report(err error) *report.Report {
	cmd := b.command
	if cmd == "" {
		cmd = "build"
	}
	rep := report.New(cmd, version.Version)
	rep.Published = b.published
	rep.Images = b.images
	rep.OK = err == nil
	if b.cfg != nil && len(b.results) > 0 {
		z := pipeline.ZipSettings(b.cfg, b.epoch)
		rep.Zip = &z
	}
	if b.manifest != "" {
		rep.Manifest = display(b.manifest)
	}
	failed := false
	for _, r := range b.results {
		if r == nil {
			continue
		}
		l := report.Layer{Layer: pipeline.ManifestEntry(r), Cached: r.Cached, DurationMS: r.Duration.Milliseconds(), Warnings: []report.Finding{}}
		for _, w := range r.Warnings {
			l.Warnings = append(l.Warnings, report.Finding{Check: w.Check, Entry: w.Entry, Message: w.Message})
		}
		if r.Err != nil {
			failed = true
			e := b.layerError(r)
			l.Error = &e
			rep.Errors = append(rep.Errors, e)
		}
		rep.Layers = append(rep.Layers, l)
	}
	if err != nil && !failed && !errors.Is(err, errFailed) {
		rep.AddError(err)
	}
	return rep
}

// layerError locates a layer's failure at its [layer.NAME] table in the config.
func (b *buildRun) layerError(r *pipeline.Result) report.Error {
	name := r.Item.Layer.Name
	return report.Error{
		Message: r.Err.Error(), File: b.cfgPath, Line: layerLine(b.cfgPath, name), Key: "layer." + name,
		Layer: name, Architecture: string(r.Item.Target.Arch),
	}
}

// layerLine is the line of the first table header of a layer ([layer.NAME],
// [layer.NAME.python], [[layer.NAME.files]]), or 0.
func layerLine(path, name string) int {
	src, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(src))
	for n := 1; sc.Scan(); n++ {
		h := strings.TrimSpace(sc.Text())
		h = strings.TrimLeft(h, "[")
		h = strings.Join(strings.Fields(h), "")
		if strings.HasPrefix(h, "layer."+name+"]") || strings.HasPrefix(h, "layer."+name+".") ||
			strings.HasPrefix(h, `layer."`+name+`"`) {
			return n
		}
	}
	return 0
}

// github writes the step outputs, the job summary and, as a GitHub Actions step,
// error annotations. Every part is a no-op outside Actions.
func (b *buildRun) github(e *env, rep *report.Report) error {
	if ghactions.Enabled(e.getenv) {
		for _, er := range rep.Errors {
			file := er.File
			if ws := e.getenv("GITHUB_WORKSPACE"); ws != "" && filepath.IsAbs(file) {
				if rel, err := filepath.Rel(ws, file); err == nil && !strings.HasPrefix(rel, "..") {
					file = rel
				}
			}
			msg := er.Message
			if er.Key != "" && er.Layer == "" {
				msg = er.Key + ": " + msg
			}
			ghactions.Annotation(e.stderr, "error", file, er.Line, msg)
		}
	}
	// Per zip, one output each; and the same as JSON objects keyed "<layer>-<arch>",
	// for composite actions, whose outputs must be declared by name in advance.
	kv := map[string]string{}
	shas, zips := map[string]string{}, map[string]string{}
	for _, l := range rep.Layers {
		if l.Error != nil {
			continue
		}
		p := l.Name + "-" + l.Architecture
		shas[p], zips[p] = l.CodeSha256, display(filepath.Join(b.out, l.File))
		kv[p+"-code-sha256"] = shas[p]
		kv[p+"-zip"] = zips[p]
		if l.SBOM != "" {
			kv[p+"-sbom"] = display(filepath.Join(b.out, l.SBOM))
		}
	}
	if len(shas) > 0 {
		for k, m := range map[string]map[string]string{"code-sha256": shas, "zips": zips} {
			js, err := json.Marshal(m) // keys sorted: the same bytes every run
			if err != nil {
				return err
			}
			kv[k] = string(js)
		}
	}
	if rep.Manifest != "" {
		kv["manifest"] = rep.Manifest
		m, err := manifest.Read(b.manifest)
		if err != nil {
			return fmt.Errorf("reading %s for GITHUB_OUTPUT: %w", b.manifest, err)
		}
		js, err := json.Marshal(m.Layers)
		if err != nil {
			return err
		}
		kv["layers"] = string(js)
	}
	if err := ghactions.Outputs(e.getenv, kv); err != nil {
		return err
	}
	return ghactions.Summary(e.getenv, summary(rep))
}

// summary is the job summary: one table row per zip.
func summary(rep *report.Report) string {
	if len(rep.Layers) == 0 && len(rep.Errors) == 0 {
		return ""
	}
	var s strings.Builder
	s.WriteString("### layerpack build\n\n")
	if len(rep.Layers) > 0 {
		s.WriteString("| layer | architecture | CodeSha256 | zipped | unzipped | status |\n|---|---|---|---:|---:|---|\n")
		for _, l := range rep.Layers {
			status := "built"
			switch {
			case l.Error != nil:
				status = "**failed**"
			case l.Cached:
				status = "cached"
			}
			sha, zipped, unzipped := "`"+l.CodeSha256+"`", bytesize.Format(l.Size), bytesize.Format(l.UnzippedSize)
			if l.Error != nil {
				sha, zipped, unzipped = "-", "-", "-"
			}
			fmt.Fprintf(&s, "| %s | %s | %s | %s | %s | %s |\n", mdCell(l.Name), l.Architecture, sha, zipped, unzipped, status)
		}
	}
	if len(rep.Errors) > 0 {
		s.WriteString("\nErrors:\n\n")
		for _, er := range rep.Errors {
			loc := er.File
			if er.Line > 0 {
				loc += fmt.Sprintf(":%d", er.Line)
			}
			if loc != "" {
				loc = "`" + loc + "` "
			}
			fmt.Fprintf(&s, "- %s%s\n", loc, mdCell(er.Message))
		}
	}
	s.WriteString("\n")
	return s.String()
}

// mdCell keeps a value inside one table cell / list line.
func mdCell(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ", "\r", " ").Replace(s)
}

// finish writes what comes after a build: --json, then the Actions files.
func (b *buildRun) finish(e *env, jsonOut bool, err error) error {
	rep := b.report(err)
	var werr error
	if jsonOut {
		werr = rep.Write(e.stdout)
	}
	if gerr := b.github(e, rep); gerr != nil {
		fmt.Fprintf(e.stderr, "layerpack: %v\n", gerr)
		if err == nil {
			err = errFailed
		}
	}
	if err == nil && werr != nil {
		err = werr
	}
	return err
}
