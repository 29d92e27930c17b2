# sshd.sh - Debian's openssh-server and client, for the ssh:// builder test
# (engine: TestSSHBuilder). The test starts its own sshd on a free 127.0.0.1 port
# with throwaway host and user keys and its own config; the package's system
# service is never started or enabled by this part: a policy-rc.d blocks the start
# during the install, and under systemd the units are disabled right after.
# A machine that already had openssh-server is left as it was.

setup_sshd() {
	local dir=$CACHE/sshd
	mkdir -p "$dir"
	if [[ -x /usr/sbin/sshd ]] && command -v ssh >/dev/null && command -v ssh-keygen >/dev/null; then
		log "openssh: $(/usr/sbin/sshd -V 2>&1 | head -n 1 || true)"
		return 0
	fi
	log "installing openssh-server and openssh-client (the system service stays off)"
	local policy=/usr/sbin/policy-rc.d ours=""
	if [[ ! -e $policy ]]; then
		printf '#!/bin/sh\n# layerpack testenv: no service starts during this install\nexit 101\n' >"$policy"
		chmod 0755 "$policy"
		ours=1
	fi
	export DEBIAN_FRONTEND=noninteractive
	local ok=1
	apt-get -q install -y --no-install-recommends -o DPkg::Lock::Timeout=120 openssh-server openssh-client >"$dir/apt.log" 2>&1 ||
		{ apt-get -q update >>"$dir/apt.log" 2>&1 &&
			apt-get -q install -y --no-install-recommends -o DPkg::Lock::Timeout=120 openssh-server openssh-client >>"$dir/apt.log" 2>&1; } || ok=""
	[[ -n $ours ]] && rm -f "$policy"
	if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null; then
		systemctl disable --now ssh.service ssh.socket >/dev/null 2>&1 || true
	fi
	if [[ -z $ok ]]; then
		tail -n 20 "$dir/apt.log" >&2
		die "apt-get install openssh-server failed (log: $dir/apt.log)"
	fi
	[[ -x /usr/sbin/sshd ]] || die "/usr/sbin/sshd is missing after installing openssh-server"
	log "openssh-server installed (service disabled; tests run their own sshd)"
}

# The test finds sshd, ssh and ssh-keygen on PATH; nothing to export.
env_sshd() { return 0; }
