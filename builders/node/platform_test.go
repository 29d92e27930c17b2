package node

import (
	"reflect"
	"strings"
	"testing"

	"github.com/layerpack/layerpack/lambda"
)

func TestPlatformFlags(t *testing.T) {
	for arch, want := range map[lambda.Arch]string{
		lambda.X86_64: "--os=linux --cpu=x64 --libc=glibc",
		lambda.ARM64:  "--os=linux --cpu=arm64 --libc=glibc",
	} {
		if got := strings.Join(targetPlatform(arch).npmFlags(), " "); got != want {
			t.Errorf("%s: %s, want %s", arch, got, want)
		}
	}
}

func TestAccepts(t *testing.T) {
	arm := targetPlatform(lambda.ARM64)
	tests := []struct {
		os, cpu, libc []string
		want          bool
	}{
		{nil, nil, nil, true},
		{[]string{"linux"}, []string{"arm64"}, []string{"glibc"}, true},
		{[]string{"linux"}, []string{"arm64"}, []string{"musl"}, false},
		{[]string{"linux"}, []string{"x64"}, nil, false},
		{[]string{"darwin"}, []string{"arm64"}, nil, false},
		{[]string{"!win32"}, nil, nil, true},
		{nil, []string{"!arm64"}, nil, false},
		{[]string{"linux", "darwin"}, []string{"x64", "arm64"}, nil, true},
		{nil, []string{"any"}, nil, true},
	}
	for _, tt := range tests {
		if got := arm.accepts(tt.os, tt.cpu, tt.libc); got != tt.want {
			t.Errorf("os=%v cpu=%v libc=%v: %v, want %v", tt.os, tt.cpu, tt.libc, got, tt.want)
		}
	}
}

func TestHostCommand(t *testing.T) {
	other := lambda.ARM64 // the target that is not this host's CPU
	if hostCPU() == "arm64" {
		other = lambda.X86_64
	}
	tp := targetPlatform(other)
	flags := " --os=linux --cpu=" + tp.CPU + " --libc=glibc"
	tests := []struct {
		manager, version string
		want             string
		foreign          bool
		env              []string
		err              string
	}{
		{manager: npm, version: "11.19.1", want: "npm ci --omit=dev --ignore-scripts --install-links --no-audit --no-fund --no-update-notifier" + flags},
		{manager: npm, version: "10.1.0", want: "npm ci --omit=dev --ignore-scripts --install-links --no-audit --no-fund --no-update-notifier" + flags},
		{manager: npm, version: "9.2.0", err: "npm 9.2.0 on this host cannot pick packages for linux-" + tp.CPU +
			"-glibc: --os/--cpu/--libc need npm 10.1 or later (npm install -g npm@10), or set build = \"container\""},
		{manager: pnpm, version: "10.14.0", want: "pnpm install --frozen-lockfile --prod --ignore-scripts --config.node-linker=hoisted --config.package-import-method=copy" + flags},
		{manager: pnpm, version: "9.15.0", err: "pnpm 9.15.0 on this host cannot pick packages for linux-" + tp.CPU + "-glibc: --os/--cpu/--libc need pnpm 10.14 or later"},
		{manager: yarn, version: "1.22.22", foreign: true,
			want: "yarn install --frozen-lockfile --production --ignore-scripts --ignore-platform --ignore-engines --non-interactive --no-progress"},
		{manager: yarn, version: "4.5.0", want: "yarn workspaces focus --all --production",
			env: []string{"YARN_NODE_LINKER=node-modules", "YARN_ENABLE_SCRIPTS=false", "YARN_ENABLE_IMMUTABLE_INSTALLS=true", "YARN_ENABLE_TELEMETRY=false", "YARN_ENABLE_GLOBAL_CACHE=true"}},
	}
	for _, tt := range tests {
		c, err := hostCommand(&project{Manager: tt.manager}, tt.version, tp)
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("%s %s: error %v, want %s", tt.manager, tt.version, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s %s: %v", tt.manager, tt.version, err)
			continue
		}
		if c.String() != tt.want || c.Foreign != tt.foreign || !reflect.DeepEqual(c.Env, tt.env) {
			t.Errorf("%s %s:\n got %s (foreign %v, env %q)\nwant %s (foreign %v, env %q)", tt.manager, tt.version,
				c, c.Foreign, c.Env, tt.want, tt.foreign, tt.env)
		}
	}
	// Old npm and pnpm still work for the host's own CPU: other platforms'
	// packages are removed afterwards.
	same := targetPlatform(lambda.X86_64)
	if hostCPU() == "arm64" {
		same = targetPlatform(lambda.ARM64)
	}
	c, err := hostCommand(&project{Manager: npm}, "9.2.0", same)
	if err != nil || !c.Foreign || strings.Contains(c.String(), "--cpu") {
		t.Errorf("npm 9 for the host's CPU: %v, %v", c, err)
	}
	yc, _ := hostCommand(&project{Manager: yarn}, "4.5.0", tp)
	if want := "supportedArchitectures:\n  os: [linux]\n  cpu: [" + tp.CPU + "]\n  libc: [glibc]\n"; yc.YarnRC != want {
		t.Errorf("yarn berry rc:\n%s\nwant\n%s", yc.YarnRC, want)
	}
}

func TestAtLeast(t *testing.T) {
	for v, want := range map[string]bool{"10.1.0": true, "10.0.9": false, "11.0.0": true, "9.9.9": false, "10.14.1": true, "x": false} {
		if got := atLeast(v, 10, 1); got != want {
			t.Errorf("atLeast(%s, 10, 1) = %v", v, got)
		}
	}
}

// The version read from npm's package.json is what `npm --version` prints.
func TestToolVersion(t *testing.T) {
	npmPath := needTool(t, "npm")
	want := strings.TrimSpace(run(t, t.TempDir(), npmPath, "--version"))
	if got := scriptVersion(npmPath, "npm"); got != want && got != "" {
		t.Errorf("scriptVersion = %q, npm --version = %q", got, want)
	}
	_, v, err := newTools().version("npm")
	if err != nil || v != want {
		t.Errorf("version(npm) = %q, %v; want %q", v, err, want)
	}
	if _, _, err := newTools().version("no-such-tool-here"); err == nil || err.Error() != "no-such-tool-here is not on PATH" {
		t.Errorf("missing tool: %v", err)
	}
}
