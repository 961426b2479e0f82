#!/bin/sh
# Install every Debian package vhdfs needs to build and test. Idempotent:
# packages already present are skipped, so a second run touches nothing.
set -eu

# clang and libclang-rt-14-dev (its libFuzzer and TSan runtimes): make fuzz
# and make tsan.
PKGS="build-essential pkg-config libfuse3-dev fuse3 uuid-dev libcmocka-dev
qemu-utils libvhdi-utils python3-libvhdi e2fsprogs util-linux fdisk
bsdextrautils attr fio kmod clang-format clang libclang-rt-14-dev"

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
		grep -q 'install ok installed'; then
		missing="$missing $p"
	fi
done

if [ -z "$missing" ]; then
	echo "install-deps: all packages present"
	exit 0
fi

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing
echo "install-deps: installed$missing"
