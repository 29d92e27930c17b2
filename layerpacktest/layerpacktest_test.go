package layerpacktest_test

import (
	"flag"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/layerpack/layerpack/layerpacktest"
)

var update = flag.Bool("update", false, "rewrite the golden outputs in testdata")

// TestScripts runs testdata/*.txtar the way a user's suite would: Setup on plain
// Params, the real layerpack program built from this module.
func TestScripts(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the layerpack program")
	}
	p := testscript.Params{
		Dir:           "testdata",
		UpdateScripts: *update,
		Setup: func(e *testscript.Env) error {
			e.Setenv("XDG_CACHE_HOME", e.WorkDir+"/.cache")
			e.Setenv("SOURCE_DATE_EPOCH", "")
			return nil
		},
		Condition: func(cond string) (bool, error) {
			if cond == "mine" {
				return true, nil
			}
			return false, nil
		},
	}
	layerpacktest.Setup(&p)
	testscript.Run(t, p)
}

func TestSetupKeepsTheUsersCommandsAndConditions(t *testing.T) {
	called := false
	p := testscript.Params{
		Cmds:      map[string]func(ts *testscript.TestScript, neg bool, args []string){"zipls": func(*testscript.TestScript, bool, []string) { called = true }},
		Condition: func(cond string) (bool, error) { return cond == "mine", nil },
	}
	layerpacktest.Setup(&p)
	p.Cmds["zipls"](nil, false, nil)
	if !called {
		t.Error("Setup replaced the user's zipls")
	}
	for _, name := range []string{"layerpack", "codesha", "cmpzip"} {
		if p.Cmds[name] == nil {
			t.Errorf("no %s command", name)
		}
	}
	if ok, err := p.Condition("mine"); !ok || err != nil {
		t.Errorf("the user's condition: %v %v", ok, err)
	}
	want := layerpacktest.DaemonReachable()
	if ok, err := p.Condition("buildkit"); ok != want || err != nil {
		t.Errorf("buildkit: %v %v, want %v", ok, err, want)
	}
}

func TestDaemonReachableFollowsBUILDKIT_HOST(t *testing.T) {
	t.Setenv("BUILDKIT_HOST", "tcp://127.0.0.1:1")
	if !layerpacktest.DaemonReachable() {
		t.Fatal("BUILDKIT_HOST set, but no daemon reported")
	}
}
