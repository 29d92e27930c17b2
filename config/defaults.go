package config

// applyDefaults fills every optional key that has a default, once, after a file
// validated: builders read the effective value instead of each re-deriving it, and
// `layerpack plan --json` shows the config as it will be built.
func applyDefaults(f *File) {
	for _, l := range f.Layers {
		def(&l.CrossCompile, "auto")
		if p := l.Python; p != nil {
			def(&p.Installer, "pip")
			def(&p.Layout, "site-packages")
			def(&p.Build, "auto")
		}
		if n := l.Node; n != nil {
			def(&n.Layout, "node_modules")
			def(&n.Build, "auto")
		}
		if r := l.Ruby; r != nil {
			def(&r.Build, "auto")
		}
		if j := l.Java; j != nil {
			def(&j.Build, "auto")
		}
	}
}

func def(s *string, v string) {
	if *s == "" {
		*s = v
	}
}
