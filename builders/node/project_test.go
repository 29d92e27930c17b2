package node

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestLoadProjectLockfiles(t *testing.T) {
	const pkg = `{"name":"app"}`
	tests := []struct {
		name     string
		files    map[string]string
		manager  string
		lockfile string
		err      string
	}{
		{name: "npm", files: map[string]string{"package.json": pkg, "package-lock.json": "{}"}, manager: npm, lockfile: "package-lock.json"},
		{name: "shrinkwrap wins over package-lock", files: map[string]string{"package.json": pkg, "package-lock.json": "{}", "npm-shrinkwrap.json": "{}"},
			manager: npm, lockfile: "npm-shrinkwrap.json"},
		{name: "pnpm", files: map[string]string{"package.json": pkg, "pnpm-lock.yaml": "lockfileVersion: '9.0'\n"}, manager: pnpm, lockfile: "pnpm-lock.yaml"},
		{name: "yarn", files: map[string]string{"package.json": pkg, "yarn.lock": "# yarn lockfile v1\n"}, manager: yarn, lockfile: "yarn.lock"},
		{name: "packageManager chooses", files: map[string]string{"package.json": `{"packageManager":"yarn@4.1.0+sha512.abc"}`,
			"package-lock.json": "{}", "yarn.lock": ""}, manager: yarn, lockfile: "yarn.lock"},
		{name: "no lockfile", files: map[string]string{"package.json": pkg},
			err: `no lockfile in app: layerpack installs exactly what a lockfile pins; add package-lock.json, npm-shrinkwrap.json, pnpm-lock.yaml or yarn.lock ("npm install --package-lock-only" writes package-lock.json) and keep it with package.json`},
		{name: "no lockfile, pnpm project", files: map[string]string{"package.json": `{"packageManager":"pnpm@9.1.0"}`},
			err: `no lockfile in app: layerpack installs exactly what a lockfile pins; add package-lock.json, npm-shrinkwrap.json, pnpm-lock.yaml or yarn.lock ("pnpm install --lockfile-only" writes pnpm-lock.yaml) and keep it with package.json`},
		{name: "several lockfiles", files: map[string]string{"package.json": pkg, "package-lock.json": "{}", "yarn.lock": ""},
			err: `app has several lockfiles (package-lock.json, yarn.lock): set packageManager in package.json to choose, or delete the stale one`},
		{name: "packageManager without its lockfile", files: map[string]string{"package.json": `{"packageManager":"pnpm@9.1.0"}`, "package-lock.json": "{}"},
			err: `app/package.json says packageManager "pnpm@9.1.0" but app has no pnpm lockfile (found package-lock.json)`},
		{name: "unknown packageManager", files: map[string]string{"package.json": `{"packageManager":"bun@1.1.0"}`, "package-lock.json": "{}"},
			err: `app/package.json: packageManager "bun@1.1.0": layerpack installs with npm, pnpm or yarn`},
		{name: "no package.json", files: map[string]string{"package-lock.json": "{}"}, err: `no package.json in app`},
		{name: "bad package.json", files: map[string]string{"package.json": "{", "package-lock.json": "{}"},
			err: `app/package.json: unexpected end of JSON input`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFiles(t, dir, tt.files)
			p, err := loadProject(dir, "app")
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Fatalf("error:\n got %v\nwant %s", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.Manager != tt.manager || p.Lockfile != tt.lockfile {
				t.Errorf("got %s with %s, want %s with %s", p.Manager, p.Lockfile, tt.manager, tt.lockfile)
			}
		})
	}
}

func TestProjectSourcesAndNpmrc(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"package.json":        `{"name":"app"}`,
		"pnpm-lock.yaml":      "lockfileVersion: '9.0'\n",
		"pnpm-workspace.yaml": "packages: []\n",
		".npmrc":              "//registry.example.com/:_authToken=${NPM_TOKEN}\n@s:registry=${REG_URL}\nx=${NPM_TOKEN}\n",
		"patches/a.patch":     "",
	})
	p, err := loadProject(dir, "app")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{".npmrc", "package.json", "patches", "pnpm-lock.yaml", "pnpm-workspace.yaml"}; !reflect.DeepEqual(p.sources(), want) {
		t.Errorf("sources = %q, want %q", p.sources(), want)
	}
	if want := []string{"NPM_TOKEN", "REG_URL"}; !reflect.DeepEqual(p.NpmrcEnv, want) {
		t.Errorf("NpmrcEnv = %q, want %q", p.NpmrcEnv, want)
	}
}

func TestLocalDeps(t *testing.T) {
	npmLock := `{
  "lockfileVersion": 3,
  "packages": {
    "": {"dependencies": {"a": "file:vendor/a-1.0.0.tgz", "b": "file:../libs/b"}},
    "../libs/b": {"version": "0.1.0"},
    "node_modules/a": {"version": "1.0.0", "resolved": "file:vendor/a-1.0.0.tgz", "integrity": "sha512-x"},
    "node_modules/b": {"resolved": "../libs/b", "link": true},
    "node_modules/c": {"version": "2.0.0", "resolved": "https://registry.npmjs.org/c/-/c-2.0.0.tgz"}
  }
}`
	if got, want := localDeps("package-lock.json", []byte(npmLock)), []string{"../libs/b", "vendor/a-1.0.0.tgz"}; !reflect.DeepEqual(got, want) {
		t.Errorf("npm: got %q, want %q", got, want)
	}
	v1 := `{"lockfileVersion": 1, "dependencies": {"a": {"version": "file:vendor/a.tgz", "dependencies": {"n": {"version": "file:../n"}}}}}`
	if got, want := localDeps("package-lock.json", []byte(v1)), []string{"../n", "vendor/a.tgz"}; !reflect.DeepEqual(got, want) {
		t.Errorf("npm v1: got %q, want %q", got, want)
	}
	pnpmLock := "importers:\n  .:\n    dependencies:\n      a:\n        specifier: file:vendor/a-1.0.0.tgz\n        version: file:vendor/a-1.0.0.tgz\n" +
		"packages:\n  a@file:vendor/a-1.0.0.tgz:\n    resolution: {tarball: file:vendor/a-1.0.0.tgz}\n"
	if got, want := localDeps("pnpm-lock.yaml", []byte(pnpmLock)), []string{"vendor/a-1.0.0.tgz"}; !reflect.DeepEqual(got, want) {
		t.Errorf("pnpm: got %q, want %q", got, want)
	}
	yarnLock := "\"a@file:./vendor/a.tgz\":\n  version \"1.0.0\"\n  resolved \"file:./vendor/a.tgz#abc\"\n"
	if got, want := localDeps("yarn.lock", []byte(yarnLock)), []string{"vendor/a.tgz"}; !reflect.DeepEqual(got, want) {
		t.Errorf("yarn: got %q, want %q", got, want)
	}
}

func TestMayRunScripts(t *testing.T) {
	lock := func(entries string) string {
		return `{"lockfileVersion": 3, "packages": {"": {"name": "app"}, ` + entries + `}}`
	}
	tests := []struct {
		name  string
		lock  string
		files map[string]string
		arch  platform
		want  bool
	}{
		{name: "pure JS", lock: lock(`"node_modules/a": {"version": "1.0.0"}`), want: false},
		{name: "install script", lock: lock(`"node_modules/a": {"version": "1.0.0", "hasInstallScript": true}`), want: true},
		{name: "dev only", lock: lock(`"node_modules/a": {"version": "1.0.0", "dev": true, "hasInstallScript": true}`), want: false},
		{name: "other platform only", lock: lock(`"node_modules/a": {"version": "1.0.0", "hasInstallScript": true, "cpu": ["arm64"], "optional": true}`), want: false},
		{name: "musl only", lock: lock(`"node_modules/a": {"version": "1.0.0", "hasInstallScript": true, "os": ["linux"], "libc": ["musl"]}`), want: false},
		{name: "local tarball with binding.gyp", lock: lock(`"node_modules/a": {"version": "1.0.0", "resolved": "file:a"}`),
			files: map[string]string{"a/package.json": `{"name":"a"}`, "a/binding.gyp": "{}"}, want: true},
		{name: "local folder without scripts", lock: lock(`"node_modules/a": {"resolved": "a", "link": true}`),
			files: map[string]string{"a/package.json": `{"name":"a"}`}, want: false},
		{name: "lockfile v1", lock: `{"lockfileVersion": 1, "dependencies": {}}`, want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			files := map[string]string{"package.json": `{"name":"app"}`, "package-lock.json": tt.lock}
			for k, v := range tt.files {
				files[k] = v
			}
			writeFiles(t, dir, files)
			p, err := loadProject(dir, "app")
			if err != nil {
				t.Fatal(err)
			}
			got, err := p.mayRunScripts(targetPlatform("x86_64"))
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestLocalHasScriptsTarball(t *testing.T) {
	dir := fixtureProject(t, []string{"addon", "purejs"}, nil)
	ents, err := os.ReadDir(filepath.Join(dir, "vendor"))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, e := range ents {
		got[e.Name()] = localHasScripts(filepath.Join(dir, "vendor", e.Name()))
	}
	want := map[string]bool{"layerpack-fixture-addon-1.0.0.tgz": true, "layerpack-fixture-purejs-2.1.0.tgz": false}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestPrepareSourceKeepsRelativePaths(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "app")
	writeFiles(t, root, map[string]string{
		"app/package.json":      `{"name":"app"}`,
		"app/package-lock.json": `{"lockfileVersion":3,"packages":{"node_modules/a":{"resolved":"file:../vendor/a.tgz"},"node_modules/b":{"resolved":"file:sub/b.tgz"}}}`,
		"app/.npmrc":            "x=1\n",
		"app/node_modules/x/y":  "not copied",
		"vendor/a.tgz":          "A",
		"app/sub/b.tgz":         "B",
	})
	p, err := loadProject(dir, "app")
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	src, rel, err := prepareSource(p, work, false)
	if err != nil {
		t.Fatal(err)
	}
	if rel != "p/project" {
		t.Errorf("rel = %q", rel)
	}
	want := []string{"p/project/package-lock.json", "p/project/package.json", "p/project/sub/b.tgz", "p/vendor/a.tgz"}
	if got := listFiles(t, src); !reflect.DeepEqual(got, want) {
		t.Errorf("files = %q, want %q", got, want)
	}
}
