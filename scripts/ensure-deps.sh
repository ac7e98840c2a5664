#!/usr/bin/env bash
# Install the Debian packages poold needs to build and test, when missing.
# Sourced by run.sh and test.sh; usage: ensure_deps [extra packages...]
ensure_deps() {
	local want=(gcc meson ninja-build pkg-config libevent-dev libcjson-dev libnanomsg-dev
		libinih-dev libsystemd-dev libsodium-dev libssl-dev openssl iproute2
		python3 socat "$@")
	local missing=() p
	for p in "${want[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
			missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	echo "installing: ${missing[*]}" >&2
	local sudo=()
	[ "$(id -u)" -eq 0 ] || sudo=(sudo)
	export DEBIAN_FRONTEND=noninteractive
	"${sudo[@]}" apt-get update -qq </dev/null >&2 &&
		"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" \
			</dev/null >&2
}
