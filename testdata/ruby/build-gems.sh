#!/bin/sh
# build-gems.sh DEST: builds the fixture gems of testdata/ruby/gems into DEST
# (a vendor/cache folder) with `gem build`. SOURCE_DATE_EPOCH fixes the dates
# inside the .gem files, so the same sources give the same bytes.
set -eu
src=$(cd "$(dirname "$0")/gems" && pwd)
dest=$1
mkdir -p "$dest"
dest=$(cd "$dest" && pwd)
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-315532800}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
build() { # build NAME [PLATFORM]
	d=$tmp/$1-${2:-ruby}
	cp -R "$src/$1" "$d"
	if [ "$1" = lp_plat ]; then
		mkdir -p "$d/lib/lp_plat"
		echo "${2:-ruby}" >"$d/lib/lp_plat/platform.txt"
	fi
	(cd "$d" && LP_PLATFORM=${2:-ruby} gem build --silent "$1.gemspec" >/dev/null && mv ./*.gem "$dest/")
}
build lp_pure
build lp_native
build lp_devonly
build lp_plat
build lp_plat x86_64-linux
build lp_plat aarch64-linux
