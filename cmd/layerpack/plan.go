package main

import (
	"encoding/json"
	"fmt"

	"github.com/layerpack/layerpack/plan"
)

type planCmd struct {
	selection
	engineFlags
	JSON bool `help:"Print JSON."`
}

func (c *planCmd) Run(e *env) error {
	cfg, items, err := c.load()
	if err != nil {
		return err
	}
	eng, err := c.openEngine(e, cfg, "", "quiet", e.stderr)
	if err != nil {
		return usageError{err}
	}
	defer eng.Close()
	out, err := plan.Describe(cfg, items, eng.Describe, c.describeStepEnv(e, cfg))
	if err != nil {
		return err
	}
	if c.JSON {
		b, err := json.MarshalIndent(out, "", "  ")
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "%s\n", b)
		return nil
	}
	for _, p := range out {
		fmt.Fprintf(e.stdout, "%s (%s) -> %s\n", p.Layer, p.Architecture, p.File)
		fmt.Fprintf(e.stdout, "  runtimes: %v\n", p.Runtimes)
		for _, im := range p.Images {
			if len(p.Images) == 1 {
				fmt.Fprintf(e.stdout, "  image:    %s\n  endpoint: %s\n", im.Ref, im.Endpoint)
			} else {
				fmt.Fprintf(e.stdout, "  image:    %s (%s, %s)\n  endpoint: %s\n", im.Ref, im.Runtime, im.Architecture, im.Endpoint)
			}
		}
		if len(p.Images) > 0 {
			for _, s := range p.StepEnv {
				fmt.Fprintf(e.stdout, "  env:      %s\n", s)
			}
		}
		for _, s := range p.Steps {
			fmt.Fprintf(e.stdout, "  step:     %s\n", s)
		}
		for _, s := range p.Inputs {
			fmt.Fprintf(e.stdout, "  input:    %s\n", s)
		}
		if len(p.Include) > 0 {
			fmt.Fprintf(e.stdout, "  include:  %v\n", p.Include)
		}
		if len(p.Exclude) > 0 {
			fmt.Fprintf(e.stdout, "  exclude:  %v\n", p.Exclude)
		}
	}
	return nil
}
