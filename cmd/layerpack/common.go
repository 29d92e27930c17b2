package main

import (
	"os"
	"path/filepath"

	"github.com/layerpack/layerpack/builders"
	"github.com/layerpack/layerpack/builders/files"
	"github.com/layerpack/layerpack/builders/java"
	"github.com/layerpack/layerpack/builders/native"
	"github.com/layerpack/layerpack/builders/node"
	"github.com/layerpack/layerpack/builders/python"
	"github.com/layerpack/layerpack/builders/ruby"
	"github.com/layerpack/layerpack/config"
	"github.com/layerpack/layerpack/lambda"
	"github.com/layerpack/layerpack/plan"
)

// allBuilders is every builder in the order they run: language builders fill the tree
// first, then [[files]] can add to or overlay it.
func allBuilders() []builders.Builder {
	return []builders.Builder{
		native.New(),
		python.New(),
		node.New(),
		ruby.New(),
		java.New(),
		files.New(),
	}
}

// selection is what build and plan share: the config file and what to take from it.
type selection struct {
	Config string   `short:"c" default:"layerpack.toml" help:"Config file." placeholder:"FILE"`
	Arch   []string `help:"Only this architecture (x86_64 or arm64); repeatable." enum:"x86_64,arm64" placeholder:"ARCH"`
	Layers []string `arg:"" optional:"" name:"layer" help:"Layers to build (default: all)."`
}

func (s *selection) load() (*config.File, []plan.Item, error) {
	cfg, err := config.Load(s.Config)
	if err != nil {
		return nil, nil, err
	}
	var arches []lambda.Arch
	for _, a := range s.Arch {
		arches = append(arches, lambda.Arch(a))
	}
	items, err := plan.Make(cfg, s.Layers, arches, allBuilders())
	if err != nil {
		return nil, nil, usageError{err}
	}
	return cfg, items, nil
}

// display shortens a path to be relative to the working directory when inside it.
func display(p string) string {
	wd, err := os.Getwd()
	if err != nil {
		return p
	}
	if rel, err := filepath.Rel(wd, p); err == nil && !filepath.IsAbs(rel) && len(rel) < len(p) && rel[:min(2, len(rel))] != ".." {
		return rel
	}
	return p
}
