# moto.sh - moto's AWS API emulator (Lambda layers, S3) for the publish tests.
# Sourced by scripts/testenv.sh: setup_moto installs it into a venv under
# $CACHE/moto (idempotent; pip uses the host's configured index), env_moto
# exports LAYERPACK_TEST_MOTO_SERVER, the moto_server program. The tests start
# their own server on a free 127.0.0.1 port; nothing runs in the background.

MOTO_VERSION=5.2.5

setup_moto() {
	local dir=$CACHE/moto
	if [[ -x $dir/venv/bin/moto_server && $(cat "$dir/.stamp" 2>/dev/null) == "$MOTO_VERSION" ]]; then
		log "moto $MOTO_VERSION: cached in $dir"
		return 0
	fi
	command -v python3 >/dev/null || die "python3 is needed for moto (apt-get install python3 python3-venv)"
	python3 -c 'import venv, ensurepip' 2>/dev/null ||
		{ [[ $(id -u) -eq 0 ]] && apt-get install -y -q python3-venv >&2; } ||
		die "python3's venv module is missing (apt-get install python3-venv)"
	rm -rf "$dir/venv" "$dir/.stamp"
	mkdir -p "$dir"
	python3 -m venv "$dir/venv"
	"$dir/venv/bin/pip" install -q "moto[server]==$MOTO_VERSION" >&2
	"$dir/venv/bin/moto_server" --help >/dev/null
	printf '%s' "$MOTO_VERSION" >"$dir/.stamp"
	log "moto $MOTO_VERSION: installed in $dir"
}

env_moto() {
	local bin=$CACHE/moto/venv/bin/moto_server
	[[ -x $bin ]] && printf 'export LAYERPACK_TEST_MOTO_SERVER=%q\n' "$bin"
	return 0
}
