# actiontools.sh - actionlint and act, for the GitHub Action's tests (action.yml and
# the README's example workflow are linted; a workflow using the local action runs
# under act on the host, no Docker). Sourced by scripts/testenv.sh: setup_actiontools
# go-installs pinned versions into $CACHE/actiontools/bin (idempotent) and apt-installs
# ShellCheck (which actionlint runs over the action's scripts); env_actiontools exports
# LAYERPACK_TEST_ACTIONLINT, LAYERPACK_TEST_ACT and LAYERPACK_TEST_SHELLCHECK.

ACTIONLINT_VERSION=v1.7.12
ACT_VERSION=v0.2.89

setup_actiontools() {
	local dir=$CACHE/actiontools stamp="actionlint@$ACTIONLINT_VERSION act@$ACT_VERSION"
	if ! command -v shellcheck >/dev/null; then
		[[ $(id -u) -eq 0 ]] || die "shellcheck is missing (apt-get install shellcheck, as root)"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q shellcheck >&2 || die "apt-get install shellcheck failed"
	fi
	if [[ -x $dir/bin/actionlint && -x $dir/bin/act && $(cat "$dir/.stamp" 2>/dev/null) == "$stamp" ]]; then
		log "actiontools ($stamp): cached in $dir"
		return 0
	fi
	command -v go >/dev/null || die "go is needed to install actionlint and act"
	rm -f "$dir/.stamp"
	mkdir -p "$dir/bin"
	GOBIN=$dir/bin GOFLAGS=-buildvcs=false go install "github.com/rhysd/actionlint/cmd/actionlint@$ACTIONLINT_VERSION" >&2 ||
		die "go install actionlint@$ACTIONLINT_VERSION failed"
	GOBIN=$dir/bin GOFLAGS=-buildvcs=false go install "github.com/nektos/act@$ACT_VERSION" >&2 ||
		die "go install act@$ACT_VERSION failed"
	"$dir/bin/actionlint" -version >/dev/null
	"$dir/bin/act" --version >/dev/null
	printf '%s' "$stamp" >"$dir/.stamp"
	log "actiontools ($stamp): installed in $dir"
}

env_actiontools() {
	local dir=$CACHE/actiontools/bin
	[[ -x $dir/actionlint ]] && printf 'export LAYERPACK_TEST_ACTIONLINT=%q\n' "$dir/actionlint"
	[[ -x $dir/act ]] && printf 'export LAYERPACK_TEST_ACT=%q\n' "$dir/act"
	command -v shellcheck >/dev/null && printf 'export LAYERPACK_TEST_SHELLCHECK=%q\n' "$(command -v shellcheck)"
	return 0
}
