package main

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/layerpack/layerpack/lambda"
	"github.com/layerpack/layerpack/manifest"
	"github.com/layerpack/layerpack/secrets"
	"github.com/layerpack/layerpack/verify"
)

type verifyCmd struct {
	Zips    []string `arg:"" name:"zip" help:"Zip files."`
	Runtime []string `help:"Compatible runtime to check against; repeatable (default: from the manifest beside the zip)." placeholder:"R"`
	Arch    string   `help:"Architecture (default: from the manifest, or the -x86_64/-arm64 suffix of the name)." enum:",x86_64,arm64" default:"" placeholder:"A"`
	JSON    bool     `help:"Print JSON."`
	// AllowSecret is allow_secrets for zips made elsewhere: the build's own zips
	// were checked with the config's list already.
	AllowSecret []string `help:"Entries (doublestar patterns) that look like credentials but belong in the layer; repeatable." placeholder:"PATTERN"`
}

type verifyResult struct {
	File         string           `json:"file"`
	Architecture string           `json:"architecture,omitempty"`
	Runtimes     []string         `json:"compatible_runtimes"`
	OK           bool             `json:"ok"`
	Findings     []verify.Finding `json:"findings"`
}

func (c *verifyCmd) Run(e *env) error {
	var runtimes []lambda.Runtime
	for _, id := range c.Runtime {
		r, ok := lambda.LookupRuntime(id)
		if !ok {
			return usageError{fmt.Errorf("--runtime: unknown runtime %q (known: %s)", id, strings.Join(lambda.RuntimeIDs(), ", "))}
		}
		runtimes = append(runtimes, r)
	}
	if err := secrets.ValidatePatterns(c.AllowSecret); err != nil {
		return usageError{fmt.Errorf("--allow-secret: %w", err)}
	}
	var results []verifyResult
	failed := false
	for _, z := range c.Zips {
		arch, rts := lambda.Arch(c.Arch), runtimes
		t := manifest.TargetOf(z)
		if arch == "" {
			arch = t.Arch
		}
		if rts == nil {
			for _, id := range t.Runtimes {
				if r, ok := lambda.LookupRuntime(id); ok {
					rts = append(rts, r)
				}
			}
		}
		rep, err := verify.ZipContext(e.ctx, z, verify.Options{Arch: arch, Runtimes: rts, AllowSecrets: c.AllowSecret})
		if err != nil {
			return fmt.Errorf("%s: %w", z, err)
		}
		res := verifyResult{File: z, Architecture: string(arch), OK: rep.Err() == nil, Findings: rep.Findings}
		for _, r := range rts {
			res.Runtimes = append(res.Runtimes, r.ID)
		}
		if res.Findings == nil {
			res.Findings = []verify.Finding{}
		}
		failed = failed || !res.OK
		results = append(results, res)
		if !c.JSON {
			fmt.Fprintf(e.stdout, "%s: ", z)
			if res.OK {
				fmt.Fprintf(e.stdout, "ok (%d entries, %d bytes unzipped", rep.Entries, rep.UnzippedSize)
				if arch != "" {
					fmt.Fprintf(e.stdout, ", %s", arch)
				}
				if len(res.Runtimes) > 0 {
					fmt.Fprintf(e.stdout, ", %s", strings.Join(res.Runtimes, " "))
				} else {
					fmt.Fprintf(e.stdout, ", layout not checked: no --runtime")
				}
				fmt.Fprintln(e.stdout, ")")
			} else {
				fmt.Fprintln(e.stdout, "FAILED")
			}
			rep.Write(e.stdout)
		}
	}
	if c.JSON {
		b, err := json.MarshalIndent(results, "", "  ")
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "%s\n", b)
	}
	if failed {
		return errFailed
	}
	return nil
}
