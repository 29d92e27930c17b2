package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
)

type planCmd struct {
	selection
	engineFlags
	JSON bool `help:"Print JSON."`
}

type planItem struct {
	Layer        string   `json:"layer"`
	Architecture string   `json:"architecture"`
	File         string   `json:"file"`
	Runtimes     []string `json:"compatible_runtimes"`
	Builders     []string `json:"builders"`
	Image        string   `json:"image,omitempty"`
	Endpoint     string   `json:"endpoint,omitempty"`
	Steps        []string `json:"steps"`
	Inputs       []string `json:"inputs"`
	Include      []string `json:"include,omitempty"`
	Exclude      []string `json:"exclude,omitempty"`
	StepEnv      []string `json:"step_env,omitempty"`
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
	var out []planItem
	for _, it := range items {
		p := planItem{
			Layer: it.Layer.Name, Architecture: string(it.Target.Arch),
			File:     filepath.ToSlash(filepath.Join(cfg.Defaults.OutDir, it.File)),
			Runtimes: it.Layer.CompatibleRuntimes, Image: it.Image,
			Include: it.Layer.Include, Exclude: it.Layer.Exclude,
			Steps: []string{}, Inputs: []string{},
		}
		if it.Image != "" {
			p.Endpoint = eng.Describe(it.StepArch)
			p.StepEnv = c.describeStepEnv(e, cfg)
		}
		for _, b := range it.Builders {
			p.Builders = append(p.Builders, b.Name())
			p.Steps = append(p.Steps, b.Steps(it.Layer, it.Target)...)
			ins, err := b.Inputs(it.Layer, it.Target)
			if err != nil {
				return err
			}
			for _, in := range ins {
				p.Inputs = append(p.Inputs, in.Name)
			}
		}
		out = append(out, p)
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
		if p.Image != "" {
			fmt.Fprintf(e.stdout, "  image:    %s\n  endpoint: %s\n", p.Image, p.Endpoint)
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
