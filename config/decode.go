package config

import (
	"sort"

	"github.com/layerpack/layerpack/lambda"
)

func decodeFile(w *walker, root *table, f *File) {
	f.Defaults = Defaults{OutDir: "dist", Compression: 6}
	if d := root.table("defaults"); d != nil {
		var arches []string
		if d.strs("architectures", &arches) {
			// An explicit empty list stays empty (an error in validate), unlike a missing one.
			f.Defaults.Architectures = parseArchList(w, d.key("architectures"), arches)
		}
		d.str("out_dir", &f.Defaults.OutDir)
		d.integer("compression", &f.Defaults.Compression)
		d.done("architectures", "out_dir", "compression")
	}
	if f.Defaults.Architectures == nil {
		f.Defaults.Architectures = append([]lambda.Arch(nil), lambda.Arches...)
	}
	root.strMap("images", &f.Images)
	decodeBuildKit(w, root, f)
	if ls := root.table("layer"); ls != nil {
		for _, name := range ls.keys() {
			lt := ls.table(name)
			if lt == nil {
				continue
			}
			f.Layers = append(f.Layers, decodeLayer(w, lt, name))
		}
	}
	sort.Slice(f.Layers, func(i, j int) bool { return f.Layers[i].Name < f.Layers[j].Name })
	decodePublish(root, f)
	root.done("defaults", "images", "buildkit", "layer", "publish")
}

var layerKeys = []string{"description", "license_info", "compatible_runtimes", "architectures",
	"include", "exclude", "allow_secrets", "image", "cross_compile", "files", "native", "python", "node", "ruby", "java", "publish"}

func decodeLayer(w *walker, t *table, name string) *Layer {
	l := &Layer{Name: name}
	t.str("description", &l.Description)
	t.str("license_info", &l.LicenseInfo)
	t.strs("compatible_runtimes", &l.CompatibleRuntimes)
	var arches []string
	if t.strs("architectures", &arches) {
		l.Architectures = parseArchList(w, t.key("architectures"), arches)
	}
	t.strs("include", &l.Include)
	t.strs("exclude", &l.Exclude)
	t.strs("allow_secrets", &l.AllowSecrets)
	t.str("image", &l.Image)
	t.str("cross_compile", &l.CrossCompile)
	for _, ft := range t.tables("files") {
		var fc Files
		ft.str("src", &fc.Src)
		ft.str("dest", &fc.Dest)
		ft.str("mode", &fc.Mode)
		ft.done()
		l.Files = append(l.Files, fc)
	}
	if nt := t.table("native"); nt != nil {
		n := &Native{BundleLibs: true}
		nt.str("context", &n.Context)
		nt.strs("packages", &n.Packages)
		nt.str("script", &n.Script)
		nt.strMap("env", &n.Env)
		var b *bool
		if nt.boolean("bundle_libs", &b) {
			n.BundleLibs = *b
		}
		if nt.boolean("strip", &b) {
			n.Strip = *b
		}
		nt.done()
		l.Native = n
	}
	decodeLanguages(t, l)
	decodeLayerPublish(t, l)
	t.done(layerKeys...)
	return l
}

// parseArchList keeps an explicit empty list empty (validate reports it), while a list
// whose items were all invalid becomes nil so the defaults apply and only the items
// are reported.
func parseArchList(w *walker, key string, ss []string) []lambda.Arch {
	if len(ss) == 0 {
		return []lambda.Arch{}
	}
	var out []lambda.Arch
	for i, s := range ss {
		a, err := lambda.ParseArch(s)
		if err != nil {
			w.errorf(key+"["+itoa(i)+"]", "%s", err.Error())
			continue
		}
		out = append(out, a)
	}
	return out
}
