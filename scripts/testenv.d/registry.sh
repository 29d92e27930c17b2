# registry.sh - a real OCI registry for the image tests (ociimage, layerpack image):
# Debian's docker-registry (distribution v2.8). Tests start it themselves on a free
# 127.0.0.1 port with a config of their own (storage in a temp folder, htpasswd for
# the credentials test) and stop it afterwards; the package's systemd service is not
# used, and is stopped and disabled when systemd runs it, so nothing listens on :5000.
#
# Exports LAYERPACK_TEST_REGISTRY (the binary). htpasswd lines are made in Go
# (golang.org/x/crypto/bcrypt), so apache2-utils is not needed.

registry_bin() { command -v docker-registry 2>/dev/null || true; }

setup_registry() {
	local dir=$CACHE/registry
	mkdir -p "$dir"
	if [[ -z $(registry_bin) ]]; then
		log "installing docker-registry"
		export DEBIAN_FRONTEND=noninteractive
		apt-get -q install -y --no-install-recommends -o DPkg::Lock::Timeout=120 docker-registry >"$dir/apt.log" 2>&1 ||
			{ apt-get -q update >>"$dir/apt.log" 2>&1 &&
				apt-get -q install -y --no-install-recommends -o DPkg::Lock::Timeout=120 docker-registry >>"$dir/apt.log" 2>&1; } || {
			tail -n 20 "$dir/apt.log" >&2
			die "apt-get install docker-registry failed (log: $dir/apt.log)"
		}
	fi
	[[ -n $(registry_bin) ]] || die "docker-registry is not on PATH after installing it"
	if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null; then
		systemctl disable --now docker-registry.service >/dev/null 2>&1 || true
	fi
	"$(registry_bin)" --version >"$dir/version" 2>&1 || true
	log "docker-registry: $(head -n 1 "$dir/version")"
}

env_registry() {
	local bin
	bin=$(registry_bin)
	[[ -n $bin ]] || return 0
	printf 'export LAYERPACK_TEST_REGISTRY=%q\n' "$bin"
}
