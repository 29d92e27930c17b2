# zig.sh - a folder for the zig that cross_compile fetches (crosscc), shared by every
# test so the ~100 MB ziglang wheel is downloaded once, by layerpack's own fetch
# (which the first compiling test exercises), and kept with the rest of the cache
# between CI runs. env_zig exports LAYERPACK_TEST_ZIG_DIR; tests pass it on as
# LAYERPACK_ZIG_DIR (or crosscc.Provider.CacheDir).

setup_zig() {
	mkdir -p "$CACHE/zig"
	log "zig: folder $CACHE/zig (layerpack fetches zig into it on first use)"
}

env_zig() {
	[[ -d $CACHE/zig ]] || return 0
	printf 'export LAYERPACK_TEST_ZIG_DIR=%q\n' "$CACHE/zig"
}
