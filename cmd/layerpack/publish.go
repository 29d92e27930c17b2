package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/layerpack/layerpack/ghactions"
	"github.com/layerpack/layerpack/manifest"
	"github.com/layerpack/layerpack/publish"
	"github.com/layerpack/layerpack/report"
)

// publishCmd is `layerpack publish`: the normal cached build, then publishing.
type publishCmd struct {
	buildFlags
	publishFlags
}

func (c *publishCmd) Run(e *env) error { return runBuild(e, &c.buildFlags, &c.publishFlags) }

// publishFlags are the flags of publish and of build --publish.
type publishFlags struct {
	Region  []string `help:"Publish to this region (default: [publish] regions, else the AWS SDK's region); repeatable." placeholder:"REGION"`
	Profile string   `help:"AWS shared config profile (default: AWS_PROFILE or the default profile)." placeholder:"NAME"`
	DryRun  bool     `help:"Read what is published and print what would change; make no change."`
}

// openAWS gives the API clients; tests point it at an emulator with call counting.
var openAWS = func(ctx context.Context, profile string) (publish.Opener, string, error) {
	return publish.AWS(ctx, profile)
}

func (c *publishFlags) publish(e *env, b *buildRun) error {
	mpath := filepath.Join(b.out, manifest.FileName)
	m, err := manifest.Read(mpath)
	if err != nil {
		return fmt.Errorf("reading the manifest: %w", err)
	}
	// The manifest's entries are what was built: their CodeSha256 is what the zip
	// must still have when it is sent.
	entries := map[string]manifest.Layer{}
	for _, l := range m.Layers {
		entries[l.Name+"/"+l.Architecture] = l
	}
	cfg := b.cfg
	var zips []publish.Zip
	for _, r := range b.results {
		l := r.Item.Layer
		if l.Publish != nil && l.Publish.Skip {
			continue
		}
		arch := string(r.Item.Target.Arch)
		ent, ok := entries[l.Name+"/"+arch]
		if !ok {
			return fmt.Errorf("layer %s (%s): not in %s", l.Name, arch, display(mpath))
		}
		zips = append(zips, publish.Zip{
			Layer: l.Name, Arch: arch, Path: filepath.Join(b.out, ent.File), CodeSha256: ent.CodeSha256, Size: ent.Size,
			Name: cfg.PublishName(l, r.Item.Target.Arch), Runtimes: ent.CompatibleRuntimes,
			Description: ent.Description, LicenseInfo: ent.LicenseInfo, Permissions: cfg.PublishPermissions(l),
		})
	}
	if len(zips) == 0 {
		fmt.Fprintln(e.stderr, "publish: nothing to publish (every selected layer has skip = true)")
		return nil
	}
	open, sdkRegion, err := openAWS(e.ctx, c.Profile)
	if err != nil {
		return err
	}
	regions := c.Region
	if len(regions) == 0 {
		regions = cfg.Publish.Regions
	}
	if len(regions) == 0 && sdkRegion != "" {
		regions = []string{sdkRegion}
	}
	if len(regions) == 0 {
		return usageError{errors.New("no region to publish to: set [publish] regions, pass --region, or set AWS_REGION")}
	}
	lines := e.stdout
	results, runErr := publish.Run(e.ctx, zips, publish.Options{
		Regions: regions, S3Bucket: cfg.Publish.S3Bucket, S3Prefix: cfg.Publish.S3Prefix,
		Keep: cfg.Publish.Keep, DryRun: c.DryRun, Open: open, Out: lines,
	})
	if results == nil && runErr != nil {
		return runErr // nothing was called
	}
	if !c.DryRun {
		if err := publish.Record(mpath, results); err != nil {
			return err
		}
	}
	b.published = publishReport(results)
	if !c.DryRun {
		if err := ghactions.Outputs(e.getenv, publishOutputs(results, regions)); err != nil {
			return err
		}
	}
	if runErr != nil {
		fmt.Fprintln(e.stderr, "layerpack: publishing failed:")
		for _, r := range results {
			if r.Err != nil {
				fmt.Fprintf(e.stderr, "  %v\n", r.Err)
			}
		}
		fmt.Fprintf(e.stderr, "layerpack: what was published is recorded in %s; a rerun finishes the rest\n", display(mpath))
		return errFailed
	}
	return nil
}

// publishOutputs is one step output per layer and architecture with the version ARN
// of the first region, and one per region: <layer>-<arch>[-<region>]-layer-version-arn.
func publishOutputs(results []publish.Result, regions []string) map[string]string {
	kv := map[string]string{}
	for _, r := range results {
		if r.Err != nil || r.LayerVersionArn == "" {
			continue
		}
		base := r.Layer + "-" + r.Arch
		kv[base+"-"+r.Region+"-layer-version-arn"] = r.LayerVersionArn
		if r.Region == regions[0] {
			kv[base+"-layer-version-arn"] = r.LayerVersionArn
		}
	}
	return kv
}

// publishReport is the results as the --json document shows them.
func publishReport(results []publish.Result) []report.Published {
	out := make([]report.Published, 0, len(results))
	for _, r := range results {
		p := report.Published{
			Layer: r.Layer, Architecture: r.Arch, Region: r.Region, LayerName: r.Name, Status: r.Status, Reason: r.Reason,
			LayerArn: r.LayerArn, LayerVersionArn: r.LayerVersionArn, Version: r.Version,
			PermissionsAdded: r.PermissionsAdded, PermissionsRemoved: r.PermissionsRemoved, DeletedVersions: r.Deleted,
		}
		if r.Err != nil {
			p.Error = r.Err.Error()
		}
		out = append(out, p)
	}
	return out
}
