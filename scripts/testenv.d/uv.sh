# uv.sh - uv, the Python installer that installer = "uv" uses, for the Python
# builder's tests (which otherwise only test the fallback to pip). Installed from
# PyPI into a venv under $CACHE/uv; only the uv program is put on PATH (through
# $CACHE/uv/bin), so the venv's python does not shadow the host's.

UV_VERSION=0.13.8

setup_uv() {
	local dir=$CACHE/uv
	if [[ -x $dir/bin/uv && $(cat "$dir/.stamp" 2>/dev/null) == "$UV_VERSION" ]]; then
		log "uv $UV_VERSION: cached in $dir"
		return 0
	fi
	command -v python3 >/dev/null || die "python3 is needed to install uv"
	rm -rf "$dir"
	mkdir -p "$dir/bin"
	python3 -m venv "$dir/venv"
	"$dir/venv/bin/pip" install -q "uv==$UV_VERSION" >&2
	ln -sfn "$dir/venv/bin/uv" "$dir/bin/uv"
	"$dir/bin/uv" --version >&2
	printf '%s' "$UV_VERSION" >"$dir/.stamp"
	log "uv $UV_VERSION: installed in $dir"
}

env_uv() {
	local bin=$CACHE/uv/bin
	[[ -x $bin/uv ]] || return 0
	# shellcheck disable=SC2016
	printf 'case ":$PATH:" in *:%q:*) ;; *) export PATH=%q":$PATH" ;; esac\n' "$bin" "$bin"
}
