package verify

import (
	"io/fs"
	"testing"
)

// TestLayoutLambdaAccepts holds the layers of issue 11 that Lambda runs and the
// layout check once refused, and the root bootstrap of custom runtimes.
func TestLayoutLambdaAccepts(t *testing.T) {
	tests := []struct {
		name     string
		runtimes []string
		files    []file
		want     string
	}{
		{"CDK's AWS CLI layer, used as /opt/awscli/aws", []string{"python3.12", "nodejs20.x"},
			[]file{{name: "awscli/aws", mode: 0o755}, {name: "awscli/dist/awscli/data/ac.index"}, {name: "awscli/dist/libpython3.12.so.1.0"}}, ""},
		{"kubectl and helm layers", []string{"python3.12"},
			[]file{{name: "kubectl/kubectl", mode: 0o755}, {name: "helm/helm", mode: 0o755}}, ""},
		{"sam build's nodejs layer", []string{"nodejs20.x"},
			[]file{{name: "nodejs/package.json", data: "{}"}, {name: "nodejs/package-lock.json", data: "{}"}, {name: "nodejs/node_modules/left-pad/index.js"}}, ""},
		{"data under share/", []string{"provided.al2023"},
			[]file{{name: "share/"}, {name: "share/zoneinfo/UTC"}, {name: "share/man/man1/tool.1"}, {name: "etc/tool.conf"}}, ""},
		{"wrapper script at the root", []string{"python3.12"},
			[]file{{name: "wrapper", mode: 0o755, data: "#!/bin/sh\nexec \"$@\"\n"}}, ""},
		{"bootstrap of a custom runtime", []string{"provided.al2023", "provided.al2"},
			[]file{{name: "bootstrap", mode: 0o755, data: "#!/bin/sh\n"}}, ""},
		{"bootstrap that cannot run", []string{"provided.al2023"},
			[]file{{name: "bootstrap", mode: 0o644, data: "#!/bin/sh\n"}},
			`error exec-bit [bootstrap] "bootstrap" has mode 0644; provided.al2023 runs /opt/bootstrap as the runtime when the function has none, so it must be executable by everyone (0755)
`},
		{"bootstrap as a folder", []string{"provided.al2"},
			[]file{{name: "bootstrap/"}, {name: "bootstrap/x"}},
			`error exec-bit [bootstrap/] "bootstrap/" is a folder; provided.al2 runs /opt/bootstrap as the runtime when the function has none, so it must be an executable file
`},
		{"bootstrap for a managed runtime", []string{"python3.12", "nodejs22.x"},
			[]file{{name: "bootstrap", mode: 0o755}},
			`warning layout [bootstrap] "bootstrap" at the top of the layer is run only by the custom runtimes (provided.al2, provided.al2023); python3.12 and nodejs22.x never run it
`},
		{"bootstrap symlink", []string{"provided.al2023"},
			[]file{{name: "bootstrap", mode: fs.ModeSymlink | 0o777, data: "bin/runtime"}, {name: "bin/runtime", mode: 0o755}}, ""},
		{"a python3.9 folder in a python3.12 layer", []string{"python3.12"},
			[]file{{name: "python/lib/python3.9/site-packages/six.py"}},
			`warning layout [python/lib/python3.9/site-packages/six.py] "python/lib/python3.9/site-packages/six.py" is in the site-packages folder of Python 3.9, which python3.12 does not search (python/ or python/lib/python3.12/site-packages/); install the packages for Python 3.12 instead
`},
		{"pip --target zipped at the root", []string{"python3.12"},
			[]file{{name: "six-1.16.0.dist-info/RECORD"}, {name: "yaml/__init__.py"}, {name: "yaml/dumper.py"}},
			`warning layout [six-1.16.0.dist-info/RECORD] "six-1.16.0.dist-info/RECORD" is part of a Python package at the top of the layer, which python3.12 does not search (python/ or python/lib/python3.12/site-packages/); move it to "python/six-1.16.0.dist-info/RECORD"
warning layout [yaml/__init__.py] "yaml/__init__.py" is part of a Python package at the top of the layer, which python3.12 does not search (python/ or python/lib/python3.12/site-packages/); move it to "python/yaml/__init__.py"
warning layout [yaml/dumper.py] "yaml/dumper.py" is part of a Python package at the top of the layer, which python3.12 does not search (python/ or python/lib/python3.12/site-packages/); move it to "python/yaml/dumper.py"
`},
		{"a package at the root of a node layer is fine", []string{"nodejs20.x"},
			[]file{{name: "yaml/__init__.py"}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep := check(t, Options{Runtimes: runtimes(t, tt.runtimes...)}, tt.files...)
			if got := messages(rep.Findings); got != tt.want {
				t.Errorf("findings:\n%s\nwant:\n%s", got, tt.want)
			}
			if tt.want == "" && rep.Err() != nil {
				t.Errorf("Err() = %v", rep.Err())
			}
		})
	}
}
