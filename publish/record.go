package publish

import (
	"fmt"

	"github.com/layerpack/layerpack/manifest"
)

// Record writes the versions that hold each zip into the manifest's entries,
// atomically: the pairs that failed are left out, so a partial run records exactly
// what was done. Dry-run results are not recorded.
func Record(path string, results []Result) error {
	m, err := manifest.Read(path)
	if err != nil {
		return fmt.Errorf("reading the manifest: %w", err)
	}
	for _, r := range results {
		if r.Err != nil || (r.Status != StatusNew && r.Status != StatusUnchanged) {
			continue
		}
		for i := range m.Layers {
			l := &m.Layers[i]
			if l.Name != r.Layer || l.Architecture != r.Arch {
				continue
			}
			p := manifest.Published{Region: r.Region, LayerName: r.Name, LayerArn: r.LayerArn,
				LayerVersionArn: r.LayerVersionArn, Version: r.Version, Status: r.Status}
			replaced := false
			for j := range l.Published {
				if l.Published[j].Region == r.Region {
					l.Published[j], replaced = p, true
				}
			}
			if !replaced {
				l.Published = append(l.Published, p)
			}
		}
	}
	if err := m.Write(path); err != nil {
		return fmt.Errorf("writing the manifest: %w", err)
	}
	return nil
}
