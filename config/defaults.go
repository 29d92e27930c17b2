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
			if p.Compile == nil {
				// build = "host" promises no container; bytecode from the host's
				// CPython would depend on this machine's build of it.
				on := p.Build != "host"
				p.Compile = &on
			}
			if p.BytecodeBudget == 0 {
				p.BytecodeBudget = DefaultBytecodeBudget
			}
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

// DefaultBytecodeBudget leaves 50 MiB of Lambda's 250 MiB unzipped limit
// (262144000 bytes, for the function and all its layers together) to the
// function's own package and its other layers: bytecode is an optimisation and
// must not be what makes a deployment fail.
const DefaultBytecodeBudget = 200 << 20
