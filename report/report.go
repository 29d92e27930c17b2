// Package report is the JSON document that `layerpack build --json` (and publish and
// image, which add their own sections) print on stdout: one document per run, whatever
// happened, so a CI step can read results and errors without parsing log lines.
//
// The schema is versioned by Schema. Within one schema version fields are only ever
// added (each new one omitempty); a removal or a change of meaning bumps the version.
// README.md ("Machine-readable output") documents every field.
package report

import (
	"encoding/json"
	"errors"
	"io"

	"github.com/layerpack/layerpack/config"
	"github.com/layerpack/layerpack/manifest"
)

// Schema is the version of the document's layout.
const Schema = 1

// Report is the whole document.
type Report struct {
	Schema           int    `json:"schema"`
	Command          string `json:"command"` // "build", "publish", "image"
	LayerpackVersion string `json:"layerpack_version"`
	OK               bool   `json:"ok"` // the command succeeded (exit code 0)
	// Manifest is the path of the manifest written, "" when none was (a failure).
	Manifest string        `json:"manifest,omitempty"`
	Zip      *manifest.Zip `json:"zip,omitempty"`
	// Layers has one entry per zip of the run, in plan order, failed ones included.
	Layers []Layer `json:"layers"`
	// Errors is every error of the run: config errors (with file, line and key) and
	// each failed layer's error (with layer and architecture).
	Errors []Error `json:"errors"`
	// Published has one entry per layer, architecture and region that publishing
	// (layerpack publish, build --publish) decided on; absent for a plain build.
	Published []Published `json:"published,omitempty"`
	// Images are the container images `layerpack image` made, as the manifest
	// records them; absent for other commands.
	Images []manifest.Image `json:"images,omitempty"`
}

// Published is what publishing did for one layer, architecture and region.
type Published struct {
	Layer              string   `json:"layer"`
	Architecture       string   `json:"architecture"`
	Region             string   `json:"region"`
	LayerName          string   `json:"layer_name"`
	Status             string   `json:"status,omitempty"` // new, unchanged, or would-publish with --dry-run
	Reason             string   `json:"reason,omitempty"`
	LayerArn           string   `json:"layer_arn,omitempty"`
	LayerVersionArn    string   `json:"layer_version_arn,omitempty"`
	Version            int64    `json:"version,omitempty"`
	PermissionsAdded   []string `json:"permissions_added,omitempty"`
	PermissionsRemoved []string `json:"permissions_removed,omitempty"`
	DeletedVersions    []int64  `json:"deleted_versions,omitempty"`
	Error              string   `json:"error,omitempty"`
}

// Layer is one zip: the manifest's fields plus what this run did.
type Layer struct {
	manifest.Layer
	Cached     bool      `json:"cached"`
	DurationMS int64     `json:"duration_ms"`
	Warnings   []Finding `json:"warnings"`
	Error      *Error    `json:"error,omitempty"`
}

// Finding is a check's warning about a zip (see verify: check identifiers are stable).
type Finding struct {
	Check   string `json:"check"`
	Entry   string `json:"entry,omitempty"`
	Message string `json:"message"`
}

// Error is one error, located as precisely as known.
type Error struct {
	Message      string `json:"message"`
	File         string `json:"file,omitempty"`
	Line         int    `json:"line,omitempty"`
	Key          string `json:"key,omitempty"`
	Layer        string `json:"layer,omitempty"`
	Architecture string `json:"architecture,omitempty"`
}

// New starts a report for a command.
func New(command, version string) *Report {
	return &Report{Schema: Schema, Command: command, LayerpackVersion: version, Layers: []Layer{}, Errors: []Error{}}
}

// AddError records err, split into one Error per config problem when it carries
// config.Errors.
func (r *Report) AddError(err error) {
	var ce config.Errors
	if errors.As(err, &ce) {
		for _, e := range ce {
			r.Errors = append(r.Errors, Error{Message: e.Msg, File: e.File, Line: e.Line, Key: e.Key})
		}
		return
	}
	var one *config.Error
	if errors.As(err, &one) {
		r.Errors = append(r.Errors, Error{Message: one.Msg, File: one.File, Line: one.Line, Key: one.Key})
		return
	}
	r.Errors = append(r.Errors, Error{Message: err.Error()})
}

// Write prints the document, indented, newline-terminated.
func (r *Report) Write(w io.Writer) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}
