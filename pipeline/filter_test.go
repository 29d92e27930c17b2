package pipeline

import (
	"reflect"
	"testing"

	"github.com/layerpack/layerpack/zipper"
)

func names(es []zipper.Entry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Name)
	}
	return out
}

func TestFilter(t *testing.T) {
	in := []zipper.Entry{
		{Name: "python/"}, {Name: "python/a/"}, {Name: "python/a/__init__.py"},
		{Name: "python/a/__pycache__/"}, {Name: "python/a/__pycache__/x.pyc"},
		{Name: "python/a/README.md"}, {Name: "python/empty/"}, {Name: "bin/"}, {Name: "bin/tool"},
	}
	tests := []struct {
		name             string
		include, exclude []string
		want             []string
		dropped          int
	}{
		{"none", nil, nil, names(in), 0},
		{"exclude", nil, []string{"**/__pycache__/**", "**/*.md"},
			[]string{"python/a/__init__.py", "python/empty/", "bin/tool"}, 2},
		{"include", []string{"python/**"}, nil,
			[]string{"python/a/__init__.py", "python/a/__pycache__/x.pyc", "python/a/README.md", "python/empty/"}, 1},
		{"include then exclude", []string{"python/**"}, []string{"**/*.pyc", "python/empty"},
			[]string{"python/a/__init__.py", "python/a/README.md"}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, dropped, err := Filter(in, tt.include, tt.exclude)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(names(got), tt.want) || dropped != tt.dropped {
				t.Errorf("got %v (%d dropped), want %v (%d)", names(got), dropped, tt.want, tt.dropped)
			}
		})
	}
}
