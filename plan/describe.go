package plan

import (
	"path/filepath"

	"github.com/layerpack/layerpack/config"
	"github.com/layerpack/layerpack/lambda"
)

// Description is what `layerpack plan` shows of an item; its JSON form is the
// output of `plan --json` (fields are added, never renamed).
type Description struct {
	Layer        string   `json:"layer"`
	Architecture string   `json:"architecture"`
	File         string   `json:"file"`
	Runtimes     []string `json:"compatible_runtimes"`
	Builders     []string `json:"builders"`
	// Engine is whether steps run in build containers: never, maybe (an auto
	// mode, for what has no prebuilt package) or always.
	Engine string `json:"engine"`
	// Image and Endpoint are the first of Images, as earlier versions showed.
	Image    string             `json:"image,omitempty"`
	Endpoint string             `json:"endpoint,omitempty"`
	Images   []ImageDescription `json:"images,omitempty"`
	Steps    []string           `json:"steps"`
	Inputs   []string           `json:"inputs"`
	Include  []string           `json:"include,omitempty"`
	Exclude  []string           `json:"exclude,omitempty"`
	StepEnv  []string           `json:"step_env,omitempty"`
	// Config is the layer's section with every default filled in: what is built.
	Config *config.Layer `json:"config"`
}

// ImageDescription is one build image of an item and the daemon its steps go to.
type ImageDescription struct {
	Runtime      string `json:"runtime"`
	Architecture string `json:"architecture"` // the architecture steps run as
	Ref          string `json:"ref"`
	Endpoint     string `json:"endpoint"`
}

// Describe describes items. endpoint names the daemon of an architecture;
// stepEnv is what every step gets from the host (shown when an item has images).
func Describe(cfg *config.File, items []Item, endpoint func(lambda.Arch) string, stepEnv []string) ([]Description, error) {
	out := []Description{}
	for _, it := range items {
		d := Description{
			Layer: it.Layer.Name, Architecture: string(it.Target.Arch),
			File:     filepath.ToSlash(filepath.Join(cfg.Defaults.OutDir, it.File)),
			Runtimes: it.Layer.CompatibleRuntimes, Engine: it.Engine.String(),
			Include: it.Layer.Include, Exclude: it.Layer.Exclude,
			Steps: []string{}, Inputs: []string{}, Config: it.Layer,
		}
		for _, im := range it.Images {
			d.Images = append(d.Images, ImageDescription{Runtime: im.Runtime, Architecture: string(im.Arch), Ref: im.Ref, Endpoint: endpoint(im.Arch)})
		}
		if len(d.Images) > 0 {
			d.Image, d.Endpoint = d.Images[0].Ref, d.Images[0].Endpoint
			d.StepEnv = stepEnv
		}
		for _, b := range it.Builders {
			d.Builders = append(d.Builders, b.Name())
			d.Steps = append(d.Steps, b.Steps(it.Layer, it.Target)...)
			ins, err := b.Inputs(it.Layer, it.Target)
			if err != nil {
				return nil, err
			}
			for _, in := range ins {
				d.Inputs = append(d.Inputs, in.Name)
			}
		}
		out = append(out, d)
	}
	return out, nil
}
