#!/usr/bin/env bash
# scripts/setup.sh - bring a clone (fresh Debian 12) to a built tree.
#
# usage: scripts/setup.sh [BUILDDIR [CONFIGURE-FLAGS...]]
#
# Idempotent, each step only when needed:
#   1. apt-get install the missing Debian packages (apt-get update first
#      only when the package lists do not know one of them);
#   2. autoreconf -fi when there is no configure script yet (afterwards
#      the generated Makefiles rerun autotools themselves);
#   3. ../configure in BUILDDIR (default: build) when it has no Makefile;
#      the build is out of tree so that a normal and a sanitizer build
#      (build-san) can live side by side;
#   4. make.
set -euo pipefail

cd "$(dirname "$0")/.."
top=$(pwd)
builddir=${1:-build}
[ $# -gt 0 ] && shift

pkgs=(build-essential autoconf automake pkg-config libfuse3-dev fuse3
	libzmq3-dev libzstd-dev libcmocka-dev clang-format
	libpython3.11-testsuite stress-ng) # the last two: make check-posix

missing=()
for p in "${pkgs[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
		grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done
if [ "${#missing[@]}" -gt 0 ]; then
	echo "setup: installing ${missing[*]}" >&2
	sudo=
	[ "$(id -u)" -ne 0 ] && sudo=sudo
	export DEBIAN_FRONTEND=noninteractive
	if ! apt-cache show "${missing[@]}" >/dev/null 2>&1; then
		$sudo apt-get update
	fi
	$sudo apt-get install -y --no-install-recommends "${missing[@]}"
fi

if [ -f config.status ]; then
	echo "setup: the source tree is configured in place; out-of-tree" \
		"builds need a clean tree: run 'make distclean' here first" >&2
	exit 1
fi

if [ ! -x configure ] || [ ! -f Makefile.in ]; then
	echo "setup: autoreconf -fi" >&2
	autoreconf -fi
fi

mkdir -p "$builddir"
cd "$builddir"
if [ ! -f Makefile ]; then
	echo "setup: configuring $builddir $*" >&2
	"$top/configure" "$@"
fi
make -j"$(nproc 2>/dev/null || echo 2)"
