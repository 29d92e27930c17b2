package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/layerpack/layerpack/config"
)

func TestAddErrorSplitsConfigErrors(t *testing.T) {
	r := New("build", "v")
	r.AddError(fmt.Errorf("loading: %w", config.Errors{
		{File: "a.toml", Line: 3, Key: "layer.x", Msg: "bad"},
		{File: "a.toml", Key: "defaults", Msg: "worse"},
	}))
	r.AddError(fmt.Errorf("plain"))
	want := []Error{{Message: "bad", File: "a.toml", Line: 3, Key: "layer.x"}, {Message: "worse", File: "a.toml", Key: "defaults"}, {Message: "plain"}}
	if fmt.Sprint(r.Errors) != fmt.Sprint(want) {
		t.Fatalf("got %+v, want %+v", r.Errors, want)
	}
}

func TestEmptyListsAreArrays(t *testing.T) {
	var b bytes.Buffer
	if err := New("build", "v").Write(&b); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	if _, ok := m["layers"].([]any); !ok {
		t.Fatalf("layers is not an array: %s", b.String())
	}
	if _, ok := m["errors"].([]any); !ok {
		t.Fatalf("errors is not an array: %s", b.String())
	}
	if m["schema"] != float64(Schema) {
		t.Fatalf("schema: %v", m["schema"])
	}
}
