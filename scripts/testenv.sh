#!/usr/bin/env bash
# testenv.sh - make a bare Debian machine ready for layerpack's real-BuildKit
# tests and for building the example layers.
#
#   scripts/testenv.sh setup   install everything (idempotent) and start the daemon
#   scripts/testenv.sh start   register QEMU and start buildkitd unless it answers
#   scripts/testenv.sh stop    stop the buildkitd this script started
#   scripts/testenv.sh env     print export lines: eval "$(scripts/testenv.sh env)"
#
# Slow things are cached outside the repository, so a second `setup` takes
# seconds:
#   $CACHE = ${LAYERPACK_TESTENV_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/layerpack-testenv}
#   $CACHE/bin/{buildkitd,buildctl}   built from tools/buildkitd (+ .stamp)
#   $CACHE/rootfs/<key>-{amd64,arm64} Debian root filesystems (base images)
#   $CACHE/rootfs/<jkey>-java-<arch>  the host architecture's one plus a JDK and
#                                     Maven (the Java builder's container mode)
#   $CACHE/debs/<arch>/               debootstrap's .deb cache
#   $CACHE/buildkitd-root/            the daemon's state
#   $CACHE/buildkitd.{sock,pid,log}
#   $CACHE/logs/                      logs of the slow phases
#
# Knobs: LAYERPACK_TESTENV_MIRROR (Debian mirror for debootstrap),
#        LAYERPACK_TESTENV_PARALLEL=0 (build the two root filesystems one
#        after the other instead of at the same time),
#        LAYERPACK_TESTENV_GC (buildkitd's GC limits, see DAEMON_GC).
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TOOLS_DIR=$REPO_ROOT/tools/buildkitd
CACHE=${LAYERPACK_TESTENV_CACHE:-${XDG_CACHE_HOME:-${HOME:?is not set: set LAYERPACK_TESTENV_CACHE}/.cache}/layerpack-testenv}
BIN=$CACHE/bin
SOCK=$CACHE/buildkitd.sock
ADDR=unix://$SOCK
PIDFILE=$CACHE/buildkitd.pid
DAEMON_LOG=$CACHE/buildkitd.log
LOGS=$CACHE/logs

# ruby/bundler build the Ruby test fixtures; maven and a JDK run the Java builder
# and its tests (the machine image usually has them already).
HOST_APT_PACKAGES=(runc qemu-user-static debootstrap zip unzip patchelf binutils file
	ruby ruby-dev bundler maven openjdk-17-jdk-headless)

# The root filesystems. Bump ROOTFS_RECIPE_VERSION whenever build_rootfs
# changes in a way that changes its result: it is part of the cache key.
ROOTFS_RECIPE_VERSION=3
ROOTFS_SUITE=bookworm
ROOTFS_MIRROR=${LAYERPACK_TESTENV_MIRROR:-http://deb.debian.org/debian}
ROOTFS_PACKAGES=(
	gcc g++ make libc6-dev pkg-config patchelf binutils file ca-certificates
	python3 python3-dev python3-pip python3-venv
	nodejs libnode-dev ruby ruby-dev
	libjansson-dev # an external shared library, to test bundling of .so files
)
# npm and bundler pull in hundreds of node-*/ruby-* packages that fail to
# configure when given to debootstrap's --include; apt inside the chroot copes.
ROOTFS_LATE_PACKAGES=(npm bundler)
ROOTFS_ARCHES=(amd64 arm64)

# The Java build image: a copy of the host architecture's root filesystem plus
# these packages. Java steps always run on the host's architecture (jars do not
# depend on the CPU that resolved them), so no arm64 variant is made; and the base
# images stay as they are (adding a JDK to ROOTFS_PACKAGES would rebuild the arm64
# one under QEMU). Bump JAVA_ROOTFS_RECIPE_VERSION when build_java_rootfs changes.
JAVA_ROOTFS_RECIPE_VERSION=1
JAVA_ROOTFS_PACKAGES=(openjdk-17-jdk-headless maven)

DAEMON_START_TIMEOUT=60
# BuildKit's GC limits in MB, "reserved,min-free,max-used". Its defaults scale
# with the disk (here: prune only past 100 GB, or under 51 GB free) and every
# build that sends a root filesystem as a local source adds ~650 MB, which
# filled this machine's disk to 86% within an hour of tests.
DAEMON_GC=${LAYERPACK_TESTENV_GC:-2000,20000,15000}

# chroot, debootstrap and runc live in sbin, which a CI environment's PATH may lack.
case ":$PATH:" in *:/usr/sbin:*) ;; *) PATH=$PATH:/usr/sbin:/sbin ;; esac

log() { printf 'testenv: %s\n' "$*" >&2; }
die() {
	printf 'testenv: error: %s\n' "$*" >&2
	exit 1
}

need_root() {
	host_arch >/dev/null # dies here, not in a $(...) later, on an unsupported host
	[[ $(id -u) -eq 0 ]] || die "'$1' must run as root (it installs packages, mounts binfmt_misc and runs buildkitd with runc)"
}

# now prints a timestamp with microseconds; elapsed START prints seconds since it.
now() { printf '%s' "${EPOCHREALTIME/,/.}"; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

TIMINGS=()        # lines of the timing summary
PHASE_DETAILS=()  # extra timing lines a phase adds below its own
CURRENT_PHASE=

# Say which step failed: set -e ends the script at the failing command, and
# wrapping the step in `if`/`||` instead would switch set -e off inside it.
on_exit() {
	local rc=$?
	if [[ $rc -ne 0 && -n $CURRENT_PHASE ]]; then
		printf 'testenv: error: phase "%s" failed (exit %d)\n' "$CURRENT_PHASE" "$rc" >&2
	fi
}
trap on_exit EXIT

# phase NAME FUNC [ARGS...]: run one step, time it.
phase() {
	local name=$1 t0
	shift
	log "== $name"
	t0=$(now)
	CURRENT_PHASE=$name
	PHASE_DETAILS=()
	"$@"
	CURRENT_PHASE=
	TIMINGS+=("$(printf '%-18s %7ss' "$name" "$(elapsed "$t0")")")
	[[ ${#PHASE_DETAILS[@]} -eq 0 ]] || TIMINGS+=("${PHASE_DETAILS[@]}")
}

host_arch() {
	case $(uname -m) in
	x86_64) echo amd64 ;;
	aarch64) echo arm64 ;;
	*) die "unsupported host architecture $(uname -m) (need x86_64 or aarch64)" ;;
	esac
}

# The QEMU binfmt entry to register: the architecture that is not the host's.
foreign_qemu_arch() {
	case $(host_arch) in
	amd64) echo aarch64 ;;
	arm64) echo x86_64 ;;
	esac
}

# ---------------------------------------------------------------------------
# 1. apt packages

ensure_apt_packages() {
	local missing=() p cross=()
	# Unit tests make arm64 ELF files with aarch64-linux-gnu-gcc, no containers:
	# a cross compiler on amd64, the native gcc (same triplet name) on arm64.
	case $(host_arch) in
	amd64) cross=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross) ;;
	arm64) cross=(gcc libc6-dev) ;;
	esac
	for p in "${HOST_APT_PACKAGES[@]}" "${cross[@]}"; do
		# dpkg-query prints "install ok installed" only for fully configured packages.
		if [[ $(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true) != "install ok installed" ]]; then
			missing+=("$p")
		fi
	done
	if [[ ${#missing[@]} -eq 0 ]]; then
		log "apt packages already installed"
		return 0
	fi
	log "installing: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get -q update >"$LOGS/apt.log" 2>&1 || {
		tail -n 20 "$LOGS/apt.log" >&2
		log "apt-get update failed (log: $LOGS/apt.log)"
		return 1
	}
	apt-get -q install -y --no-install-recommends -o DPkg::Lock::Timeout=120 "${missing[@]}" >>"$LOGS/apt.log" 2>&1 || {
		tail -n 20 "$LOGS/apt.log" >&2
		log "apt-get install failed (log: $LOGS/apt.log)"
		return 1
	}
}

# ---------------------------------------------------------------------------
# 2. binfmt_misc

ensure_binfmt() {
	local mnt=/proc/sys/fs/binfmt_misc arch conf line name entry
	if [[ ! -e $mnt/register ]]; then
		mount -t binfmt_misc binfmt_misc "$mnt" ||
			{ log "cannot mount binfmt_misc on $mnt (inside an unprivileged container?)"; return 1; }
	fi
	arch=$(foreign_qemu_arch)
	conf=/usr/lib/binfmt.d/qemu-$arch.conf
	[[ -r $conf ]] || { log "$conf missing: is qemu-user-static installed?"; return 1; }
	# The file holds one register line; its F flag makes the kernel open the
	# interpreter now, so it also works inside containers with another root.
	line=$(grep -v '^[[:space:]]*\(#\|$\)' "$conf" | head -n 1)
	name=$(cut -d: -f2 <<<"$line")
	[[ -n $name ]] || { log "cannot parse $conf"; return 1; }
	entry=$mnt/$name
	if [[ -e $entry ]]; then
		local interp
		interp=$(sed -n 's/^interpreter //p' "$entry")
		if grep -qx enabled "$entry" && grep -q '^flags:.*F' "$entry" && [[ -x $interp ]]; then
			log "binfmt $name already registered ($(sed -n 's/^flags: //p' "$entry"))"
			return 0
		fi
		# Registered some other way (disabled, no F flag or a missing
		# interpreter): replace it, or foreign-architecture builds fail.
		log "replacing unusable binfmt entry $name"
		echo -1 >"$entry"
	fi
	printf '%s' "$line" >"$mnt/register" || { log "writing to $mnt/register failed"; return 1; }
	log "registered binfmt $name ($(sed -n 's/^flags: //p' "$entry"))"
}

# ---------------------------------------------------------------------------
# 3. buildkitd and buildctl

buildkit_stamp() {
	cat "$TOOLS_DIR/go.mod" "$TOOLS_DIR/go.sum" | sha256sum | cut -c1-16
}

ensure_buildkit_binaries() {
	BUILDKIT_REBUILT=0
	local stamp tmp version
	command -v go >/dev/null || { log "go is not on PATH"; return 1; }
	[[ -f $TOOLS_DIR/go.sum ]] || { log "$TOOLS_DIR/go.sum missing"; return 1; }
	stamp=$(buildkit_stamp)
	if [[ -x $BIN/buildkitd && -x $BIN/buildctl && $(cat "$BIN/.stamp" 2>/dev/null || true) == "$stamp" ]]; then
		log "buildkitd and buildctl up to date ($("$BIN/buildkitd" --version 2>/dev/null | head -n 1))"
		return 0
	fi
	# GOWORK=off: a go.work above the repo must not pull this module into a
	# workspace; -mod=readonly: the pinned go.sum is the contract.
	version=$(cd "$TOOLS_DIR" && GOWORK=off go list -m -f '{{.Version}}' github.com/moby/buildkit)
	mkdir -p "$BIN"
	tmp=$(mktemp -d "$BIN/.build.XXXXXX")
	log "building buildkitd and buildctl $version (log: $LOGS/buildkit-build.log)"
	if ! (cd "$TOOLS_DIR" && GOWORK=off GOFLAGS="${GOFLAGS:+$GOFLAGS }-mod=readonly" go build -trimpath \
		-ldflags "-X github.com/moby/buildkit/version.Version=$version" \
		-o "$tmp/" github.com/moby/buildkit/cmd/buildkitd github.com/moby/buildkit/cmd/buildctl) \
		>"$LOGS/buildkit-build.log" 2>&1; then
		tail -n 30 "$LOGS/buildkit-build.log" >&2
		rm -rf "$tmp"
		return 1
	fi
	# rename(2) each binary so a running daemon or client never sees half a file.
	mv -f "$tmp/buildkitd" "$BIN/buildkitd"
	mv -f "$tmp/buildctl" "$BIN/buildctl"
	rmdir "$tmp"
	echo "$stamp" >"$BIN/.stamp"
	BUILDKIT_REBUILT=1
}

# ---------------------------------------------------------------------------
# 4. Debian root filesystems

rootfs_key() {
	printf '%s\n' "$ROOTFS_RECIPE_VERSION" "$ROOTFS_SUITE" "${ROOTFS_PACKAGES[*]}" "${ROOTFS_LATE_PACKAGES[*]}" |
		sha256sum | cut -c1-12
}

rootfs_dir() { echo "$CACHE/rootfs/$(rootfs_key)-$1"; }

# The Java image's key covers its base image's key, so a new base makes a new one.
java_rootfs_key() {
	printf '%s\n' "$(rootfs_key)" "$JAVA_ROOTFS_RECIPE_VERSION" "${JAVA_ROOTFS_PACKAGES[*]}" |
		sha256sum | cut -c1-12
}

java_rootfs_dir() { echo "$CACHE/rootfs/$(java_rootfs_key)-java-$1"; }

# Unmount everything mounted at or below DIR, deepest first.
umount_below() {
	local dir m
	dir=$(realpath -m "$1")
	# /proc/self/mounts escapes spaces as \040; our paths have none worth handling.
	awk -v d="$dir" '$2 == d || index($2, d "/") == 1 { print $2 }' /proc/self/mounts | sort -r |
		while read -r m; do
			umount "$m" 2>/dev/null || umount -l "$m" || true
		done
}

remove_tree() {
	umount_below "$1"
	# --one-file-system: never follow a mount we failed to remove into the host.
	rm -rf --one-file-system "$1"
}

# Leftovers of a run that was killed (SIGKILL, power loss); setup holds the lock.
remove_stale_rootfs_tmp() {
	local d
	for d in "$CACHE"/rootfs/.tmp-*; do
		[[ -e $d ]] || continue
		log "removing leftover $d"
		remove_tree "$d"
	done
}

# Documentation is dead weight in a build image: it slows the arm64 build under
# QEMU and every transfer of the rootfs to BuildKit (the same choice as Debian's
# -slim images). Copyright files stay. Kept in the rootfs, so later installs
# skip these paths too.
DPKG_EXCLUDES='path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias'

# slim_apt_state DIR: drop apt's lists and caches and the logs. Small but usable:
# `apt-get update` brings the lists back when needed.
slim_apt_state() {
	rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin "$1"/var/cache/debconf/*-old \
		"$1"/var/log/*.log "$1"/var/log/apt/* "$1"/tmp/* "$1"/root/.cache
	mkdir -p "$1/var/lib/apt/lists/partial"
}

# build_rootfs ARCH: debootstrap into a temp dir, then rename it into place so
# a half-built tree never has the final name.
build_rootfs() {
	local arch=$1 final tmp logf t0 include
	final=$(rootfs_dir "$arch")
	logf=$LOGS/rootfs-$arch.log
	t0=$(now)
	if [[ -d $final ]]; then
		log "rootfs $arch ready: $final"
		echo "0.0" >"$LOGS/rootfs-$arch.time"
		return 0
	fi
	mkdir -p "$CACHE/rootfs" "$CACHE/debs/$arch"
	tmp=$(mktemp -d "$CACHE/rootfs/.tmp-$(rootfs_key)-$arch.XXXXXX")
	# This runs as its own process (a background job), so these traps are its own.
	# shellcheck disable=SC2064 # expand $tmp now: it is local to this function
	trap "remove_tree '$tmp'" EXIT
	trap 'exit 130' INT TERM
	# mktemp made it 0700: apt's _apt user could not reach its download dir,
	# and a container's / must be 0755.
	chmod 0755 "$tmp"
	log "building rootfs $arch (log: $logf)"
	: >"$logf"
	# step MSG: a timestamped line in the log, to see where the time goes.
	step() { printf 'testenv: [%ss] %s\n' "$(elapsed "$t0")" "$*" >>"$logf"; }

	include=$(
		IFS=,
		echo "${ROOTFS_PACKAGES[*]}"
	)
	# --foreign splits off the second stage (run in the chroot; for arm64 on an
	# amd64 host under QEMU via binfmt_misc) so dpkg's config can go in first.
	step "debootstrap first stage"
	if ! debootstrap --foreign --variant=minbase --arch="$arch" --include="$include" \
		--cache-dir="$CACHE/debs/$arch" "$ROOTFS_SUITE" "$tmp" "$ROOTFS_MIRROR" >>"$logf" 2>&1; then
		tail -n 20 "$logf" >&2
		log "debootstrap (first stage) $arch failed (log: $logf)"
		return 1
	fi
	mkdir -p "$tmp/etc/dpkg/dpkg.cfg.d"
	printf '%s\n' "# Added by layerpack scripts/testenv.sh" "$DPKG_EXCLUDES" >"$tmp/etc/dpkg/dpkg.cfg.d/01-testenv-nodoc"
	# No fsync per file while building (a throw-away tree until the rename);
	# removed before the rootfs is used.
	echo force-unsafe-io >"$tmp/etc/dpkg/dpkg.cfg.d/zz-testenv-unsafe-io"

	step "debootstrap second stage"
	if ! chroot "$tmp" /debootstrap/debootstrap --second-stage >>"$logf" 2>&1; then
		tail -n 20 "$logf" >&2
		[[ -f $tmp/debootstrap/debootstrap.log ]] && tail -n 20 "$tmp/debootstrap/debootstrap.log" >&2
		log "debootstrap (second stage) $arch failed (log: $logf)"
		return 1
	fi

	step "apt-get install ${ROOTFS_LATE_PACKAGES[*]}"
	# apt and maintainer scripts need /proc; the EXIT trap unmounts it on error.
	mount -t proc proc "$tmp/proc"
	if ! DEBIAN_FRONTEND=noninteractive chroot "$tmp" apt-get -q install -y --no-install-recommends \
		"${ROOTFS_LATE_PACKAGES[@]}" >>"$logf" 2>&1; then
		tail -n 20 "$logf" >&2
		log "apt-get install ${ROOTFS_LATE_PACKAGES[*]} in the $arch rootfs failed (log: $logf)"
		return 1
	fi
	chroot "$tmp" apt-get clean >>"$logf" 2>&1
	umount "$tmp/proc"

	step "clean up"
	rm -f "$tmp/etc/dpkg/dpkg.cfg.d/zz-testenv-unsafe-io"
	# The first stage unpacked the required packages before the excludes
	# existed, and dpkg leaves such files alone: remove them the same way.
	find "$tmp/usr/share/doc" -xdev ! -type d ! -name copyright -delete
	find "$tmp/usr/share/doc" -xdev -mindepth 1 -type d -empty -delete
	find "$tmp/usr/share/locale" -xdev -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
	rm -rf "$tmp"/usr/share/man/* "$tmp"/usr/share/info/* "$tmp"/usr/share/groff/* "$tmp"/usr/share/lintian/*
	slim_apt_state "$tmp"
	mv -T "$tmp" "$final"
	trap - EXIT INT TERM
	step "done"
	elapsed "$t0" >"$LOGS/rootfs-$arch.time"
	log "rootfs $arch built in $(cat "$LOGS/rootfs-$arch.time")s: $final ($(du -sh "$final" | cut -f1))"
}

# build_java_rootfs ARCH: copy ARCH's root filesystem, install the JDK and Maven
# in the copy, rename it into place. Runs as a background job, like build_rootfs.
build_java_rootfs() {
	local arch=$1 base final tmp logf t0
	base=$(rootfs_dir "$arch")
	final=$(java_rootfs_dir "$arch")
	logf=$LOGS/rootfs-java-$arch.log
	t0=$(now)
	if [[ -d $final ]]; then
		log "java rootfs $arch ready: $final"
		echo "0.0" >"$LOGS/rootfs-java-$arch.time"
		return 0
	fi
	[[ -d $base ]] || { log "the $arch rootfs $base is missing"; return 1; }
	tmp=$(mktemp -d "$CACHE/rootfs/.tmp-$(java_rootfs_key)-java-$arch.XXXXXX")
	# shellcheck disable=SC2064 # expand $tmp now: it is local to this function
	trap "remove_tree '$tmp'" EXIT
	trap 'exit 130' INT TERM
	log "building java rootfs $arch (log: $logf)"
	: >"$logf"
	step() { printf 'testenv: [%ss] %s\n' "$(elapsed "$t0")" "$*" >>"$logf"; }

	# A real copy, not hard links: dpkg and maintainer scripts rewrite some files
	# in place, which would change the base image through a shared inode.
	step "copy $base"
	cp -a "$base/." "$tmp/"
	chmod 0755 "$tmp"
	echo force-unsafe-io >"$tmp/etc/dpkg/dpkg.cfg.d/zz-testenv-unsafe-io"

	step "apt-get install ${JAVA_ROOTFS_PACKAGES[*]}"
	# The JVM (run by ca-certificates-java's and maven's scripts) needs /proc,
	# /sys and device nodes; the EXIT trap unmounts them on error.
	mount -t proc proc "$tmp/proc"
	mount -t sysfs sysfs "$tmp/sys"
	# OpenJDK's postinst links its man pages with update-alternatives, which fails
	# when the folder is missing (the base image has no man pages).
	mkdir -p "$tmp/usr/share/man/man1"
	mount --bind /dev "$tmp/dev"
	if ! { DEBIAN_FRONTEND=noninteractive chroot "$tmp" apt-get -q update &&
		DEBIAN_FRONTEND=noninteractive chroot "$tmp" apt-get -q install -y --no-install-recommends \
			"${JAVA_ROOTFS_PACKAGES[@]}"; } >>"$logf" 2>&1; then
		tail -n 20 "$logf" >&2
		log "apt-get install ${JAVA_ROOTFS_PACKAGES[*]} in the java $arch rootfs failed (log: $logf)"
		return 1
	fi
	chroot "$tmp" apt-get clean >>"$logf" 2>&1
	umount_below "$tmp"

	step "clean up"
	rm -f "$tmp/etc/dpkg/dpkg.cfg.d/zz-testenv-unsafe-io"
	rm -rf "$tmp"/usr/share/man/*
	slim_apt_state "$tmp"
	mv -T "$tmp" "$final"
	trap - EXIT INT TERM
	step "done"
	elapsed "$t0" >"$LOGS/rootfs-java-$arch.time"
	log "java rootfs $arch built in $(cat "$LOGS/rootfs-java-$arch.time")s: $final ($(du -sh "$final" | cut -f1))"
}

ensure_java_rootfs() {
	local arch pid rc=0
	arch=$(host_arch)
	trap 'stop_rootfs_jobs; exit 130' INT TERM
	set -m
	build_java_rootfs "$arch" &
	pid=$!
	set +m
	ROOTFS_JOBS=("$pid")
	wait "$pid" || rc=$?
	trap - INT TERM
	ROOTFS_JOBS=()
	if [[ -f $LOGS/rootfs-java-$arch.time ]]; then
		PHASE_DETAILS+=("$(printf '  %-16s %7ss' "java-$arch" "$(cat "$LOGS/rootfs-java-$arch.time")")")
		rm -f "$LOGS/rootfs-java-$arch.time"
	fi
	return "$rc"
}

ROOTFS_JOBS=()
# On Ctrl-C or TERM, end the builds' whole process groups (debootstrap, dpkg,
# qemu); each job's EXIT trap then unmounts and removes its temp dir.
stop_rootfs_jobs() {
	local p
	for p in "${ROOTFS_JOBS[@]}"; do
		kill -TERM -- "-$p" 2>/dev/null || true
	done
	for p in "${ROOTFS_JOBS[@]}"; do
		wait "$p" 2>/dev/null || true
	done
}

ensure_rootfs() {
	local arch pid rc=0 d pids=()
	remove_stale_rootfs_tmp
	trap 'stop_rootfs_jobs; exit 130' INT TERM
	# Each build runs as a background job even when sequential: a job keeps
	# set -e working inside build_rootfs, where `( ... ) || handler` would not.
	# set -m gives each job its own process group, so stop_rootfs_jobs can end it.
	for arch in "${ROOTFS_ARCHES[@]}"; do
		set -m
		build_rootfs "$arch" &
		pid=$!
		set +m
		ROOTFS_JOBS+=("$pid")
		if [[ ${LAYERPACK_TESTENV_PARALLEL:-1} == 1 ]]; then
			# Both at once: amd64 is mostly downloads and dpkg I/O, arm64's
			# second stage is CPU under QEMU, so they overlap even on 2 cores.
			pids+=("$arch:$pid")
		else
			wait "$pid" || { rc=$?; log "rootfs $arch failed"; break; }
		fi
	done
	for pid in "${pids[@]}"; do
		wait "${pid#*:}" || { rc=$?; log "rootfs ${pid%%:*} failed"; }
	done
	trap - INT TERM
	ROOTFS_JOBS=()
	for arch in "${ROOTFS_ARCHES[@]}"; do
		[[ -f $LOGS/rootfs-$arch.time ]] || continue
		PHASE_DETAILS+=("$(printf '  %-16s %7ss' "$arch" "$(cat "$LOGS/rootfs-$arch.time")")")
		rm -f "$LOGS/rootfs-$arch.time"
	done
	for d in "$CACHE"/rootfs/*-*; do
		[[ -d $d && $(basename "$d") != "$(rootfs_key)"-* && $(basename "$d") != "$(java_rootfs_key)"-java-* ]] || continue
		log "note: $d is from another recipe; remove it if nothing uses it"
	done
	return "$rc"
}

# ---------------------------------------------------------------------------
# 5. the daemon

# Prints the worker listing if the daemon answers.
daemon_workers() {
	[[ -S $SOCK && -x $BIN/buildctl ]] || return 1
	timeout 10 "$BIN/buildctl" --addr "$ADDR" debug workers -v 2>/dev/null
}

# has_platforms LISTING: both architectures the tests build for are there.
has_platforms() {
	grep -qw 'linux/amd64' <<<"$1" && grep -qw 'linux/arm64' <<<"$1"
}

# alive PID: the process exists and is not a zombie (kill -0 succeeds on a
# zombie, and a daemon that died while we started it is our zombie child).
alive() {
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	[[ ${stat:0:1} != Z ]]
}

# The daemon's command line; a running daemon of ours started with another
# one (an older script, other binaries) is restarted by start.
daemon_cmd() {
	DAEMON_CMD=("$BIN/buildkitd" --oci-worker=true --containerd-worker=false
		--oci-worker-gc=true --oci-worker-gc-keepstorage "$DAEMON_GC"
		--root "$CACHE/buildkitd-root" --addr "$ADDR")
}

# The pid in the pid file, if that process is still our buildkitd.
our_daemon_pid() {
	local pid cmdline
	pid=$(cat "$PIDFILE" 2>/dev/null) || return 1
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
	[[ $cmdline == *buildkitd*" --addr $ADDR "* ]] || return 1
	echo "$pid"
}

stop_daemon() {
	local pid i
	if ! pid=$(our_daemon_pid); then
		log "buildkitd is not running (no live pid in $PIDFILE)"
		rm -f "$PIDFILE"
		return 0
	fi
	log "stopping buildkitd (pid $pid)"
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 300; i++)); do
		alive "$pid" || break
		sleep 0.1
	done
	if alive "$pid"; then
		log "buildkitd did not exit in 30 s; sending SIGKILL"
		kill -KILL "$pid" 2>/dev/null || true
		while alive "$pid"; do sleep 0.1; done
	fi
	rm -f "$PIDFILE"
	log "buildkitd stopped"
}

start_daemon() {
	local workers pid deadline
	[[ -x $BIN/buildkitd && -x $BIN/buildctl ]] || { log "$BIN/buildkitd missing: run '$0 setup' first"; return 1; }
	command -v runc >/dev/null || { log "runc is not installed: run '$0 setup' first"; return 1; }
	daemon_cmd
	if workers=$(daemon_workers); then
		pid=$(our_daemon_pid) || pid=
		if has_platforms "$workers"; then
			if [[ -z $pid || $(tr '\0' ' ' <"/proc/$pid/cmdline") == "${DAEMON_CMD[*]} " ]]; then
				log "buildkitd already answers on $ADDR"
				return 0
			fi
			log "running buildkitd (pid $pid) has other flags than this script's; restarting it"
		else
			# Platforms are probed at start; one started before binfmt was set up lacks arm64.
			[[ -n $pid ]] || { log "a buildkitd not started by this script answers on $ADDR without linux/amd64 and linux/arm64"; return 1; }
			log "running buildkitd lacks a platform; restarting it"
		fi
		stop_daemon
	elif pid=$(our_daemon_pid); then
		# Alive but not answering: wedged, or still starting from a parallel call.
		log "buildkitd (pid $pid) does not answer; restarting it"
		stop_daemon
	fi
	# (108 bytes is the limit of a unix socket path)
	[[ ${#SOCK} -lt 100 ]] || { log "socket path too long for a unix socket: $SOCK (set LAYERPACK_TESTENV_CACHE)"; return 1; }
	mkdir -p "$CACHE/buildkitd-root"
	rm -f "$SOCK"
	log "starting buildkitd (log: $DAEMON_LOG)"
	# New session, no terminal, every fd away from the caller (CI waits for
	# its pipes to close; fd 9 is our lock), cwd / (the checkout may go away),
	# so it outlives this script. The subshell execs, so $! is buildkitd's pid.
	(cd / && exec setsid "${DAEMON_CMD[@]}") </dev/null >>"$DAEMON_LOG" 2>&1 9>&- &
	pid=$!
	echo "$pid" >"$PIDFILE"
	deadline=$((SECONDS + DAEMON_START_TIMEOUT))
	while ((SECONDS < deadline)); do
		if ! alive "$pid"; then
			tail -n 30 "$DAEMON_LOG" >&2
			log "buildkitd exited during start (log: $DAEMON_LOG)"
			rm -f "$PIDFILE"
			return 1
		fi
		if workers=$(daemon_workers) && has_platforms "$workers"; then
			log "buildkitd (pid $pid) answers on $ADDR; platforms: $(sed -n 's/^Platforms:[[:space:]]*//p' <<<"$workers" | head -n 1)"
			return 0
		fi
		sleep 0.5
	done
	tail -n 30 "$DAEMON_LOG" >&2
	[[ -n ${workers:-} ]] && printf '%s\n' "$workers" >&2
	log "buildkitd did not answer with linux/amd64 and linux/arm64 within ${DAEMON_START_TIMEOUT}s (log: $DAEMON_LOG)"
	return 1
}

# ---------------------------------------------------------------------------

take_lock() {
	mkdir -p "$CACHE" "$LOGS"
	exec 9>"$CACHE/.lock"
	if ! flock -n 9; then
		log "waiting for another testenv.sh to finish (lock $CACHE/.lock)"
		flock -w 3600 9 || die "another testenv.sh still holds $CACHE/.lock after an hour"
	fi
}

cmd_setup() {
	local t0
	need_root setup
	take_lock
	t0=$(now)
	log "cache: $CACHE"
	phase "apt packages" ensure_apt_packages
	phase "binfmt_misc" ensure_binfmt
	phase "buildkitd build" ensure_buildkit_binaries
	phase "rootfs (both)" ensure_rootfs
	phase "rootfs (java)" ensure_java_rootfs
	if [[ $BUILDKIT_REBUILT == 1 ]] && our_daemon_pid >/dev/null; then
		log "binaries changed; restarting the running buildkitd"
		phase "daemon stop" stop_daemon
	fi
	phase "daemon start" start_daemon
	run_parts setup
	log "timings:"
	printf '  %s\n' "${TIMINGS[@]}" >&2
	log "setup done in $(elapsed "$t0")s; use: eval \"\$($0 env)\""
}

# binfmt entries vanish on reboot while the cache stays, so start redoes them.
cmd_start() {
	need_root start
	take_lock
	phase "binfmt_misc" ensure_binfmt
	phase "daemon start" start_daemon
}

cmd_stop() {
	need_root stop
	take_lock
	phase "daemon stop" stop_daemon
}

# Extra services and tools (an AWS API emulator, a registry, workflow linters) live
# in scripts/testenv.d/NAME.sh, one file each, so they stay small and apart. Each
# file defines setup_NAME (install, idempotent, cached under $CACHE/NAME) and
# env_NAME (print export lines for what exists). They are sourced, not executed.
PARTS_DIR=$REPO_ROOT/scripts/testenv.d
run_parts() {
	local f name
	for f in "$PARTS_DIR"/*.sh; do
		[[ -e $f ]] || continue
		name=$(basename "$f" .sh)
		# shellcheck source=/dev/null
		source "$f"
		if [[ $1 == setup ]]; then
			phase "$name" "setup_$name"
		else
			"env_$name"
		fi
	done
}

# Only what exists, so tests can skip cleanly when a part is missing.
cmd_env() {
	local dir var arch
	if [[ -S $SOCK ]] && our_daemon_pid >/dev/null; then
		printf 'export LAYERPACK_TEST_BUILDKIT=%q\n' "$ADDR"
	fi
	for arch in "${ROOTFS_ARCHES[@]}"; do
		dir=$(rootfs_dir "$arch")
		[[ -d $dir ]] || continue
		case $arch in
		amd64) var=LAYERPACK_TEST_ROOTFS_X86_64 ;;
		arm64) var=LAYERPACK_TEST_ROOTFS_ARM64 ;;
		esac
		printf 'export %s=%q\n' "$var" "$dir"
		dir=$(java_rootfs_dir "$arch")
		[[ -d $dir ]] || continue
		printf 'export %s=%q\n' "${var/ROOTFS_/ROOTFS_JAVA_}" "$dir"
	done
	if [[ -d $BIN ]]; then
		# $PATH is expanded by the eval, not here; no double prepend.
		# shellcheck disable=SC2016
		printf 'case ":$PATH:" in *:%q:*) ;; *) export PATH=%q":$PATH" ;; esac\n' "$BIN" "$BIN"
	fi
	run_parts env
}

usage() {
	sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2
	exit 2
}

case ${1:-} in
setup) cmd_setup ;;
start) cmd_start ;;
stop) cmd_stop ;;
env) cmd_env ;;
-h | --help | help) usage ;;
*) usage ;;
esac
