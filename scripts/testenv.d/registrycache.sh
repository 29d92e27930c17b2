# registrycache.sh - Debian's docker-registry, for the shared BuildKit cache test
# (engine: --cache-to/--cache-from type=registry between two daemons). The test
# starts its own registry on a free 127.0.0.1 port with storage in a temp folder;
# the package's service is not used (stopped and disabled under systemd).
# Idempotent; shares LAYERPACK_TEST_REGISTRY with registry.sh when both exist.

registrycache_bin() { command -v docker-registry 2>/dev/null || true; }

setup_registrycache() {
	local dir=$CACHE/registrycache
	mkdir -p "$dir"
	if [[ -z $(registrycache_bin) ]]; then
		log "installing docker-registry"
		export DEBIAN_FRONTEND=noninteractive
		apt-get -q install -y --no-install-recommends -o DPkg::Lock::Timeout=120 docker-registry >"$dir/apt.log" 2>&1 ||
			{ apt-get -q update >>"$dir/apt.log" 2>&1 &&
				apt-get -q install -y --no-install-recommends -o DPkg::Lock::Timeout=120 docker-registry >>"$dir/apt.log" 2>&1; } || {
			tail -n 20 "$dir/apt.log" >&2
			die "apt-get install docker-registry failed (log: $dir/apt.log)"
		}
	fi
	[[ -n $(registrycache_bin) ]] || die "docker-registry is not on PATH after installing it"
	if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null; then
		systemctl disable --now docker-registry.service >/dev/null 2>&1 || true
	fi
	log "docker-registry: $(registrycache_bin)"
}

env_registrycache() {
	local bin
	bin=$(registrycache_bin)
	[[ -n $bin ]] || return 0
	printf 'export LAYERPACK_TEST_REGISTRY=%q\n' "$bin"
}
