#!/usr/bin/env bash
# Builds libfuse's own examples and its syscall test from Debian's `fuse3` source package,
# against Debian's libfuse3, into $1 (default /var/tmp/vufuse-externals/libfuse).
# Nothing of libfuse is committed: it is fetched here, at test set-up time. Run as root the
# first time (it adds a deb-src entry and installs the build packages).
set -euo pipefail
out="${1:-/var/tmp/vufuse-externals/libfuse}"
marker="$out/.built"
programs="hello hello_ll passthrough passthrough_ll passthrough_fh poll poll_client"
# Built already, with every program of the list (a list that grew builds again).
if [ -e "$marker" ]; then
    missing=0
    for prog in $programs; do [ -e "$out/$prog" ] || missing=1; done
    [ "$missing" -eq 0 ] && exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "vufuse: building libfuse examples needs root once (deb-src entry, apt-get source)" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
srclist=/etc/apt/sources.list.d/vufuse-deb-src.sources
if ! grep -rqs '^Types:.*deb-src' /etc/apt/sources.list.d/ && ! grep -qs '^deb-src' /etc/apt/sources.list; then
    cat > "$srclist" <<'SRC'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
fi
apt-get update -qq
apt-get install -y -qq --no-install-recommends dpkg-dev libfuse3-dev pkg-config g++ fuse3 >/dev/null

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get source -qq --download-only fuse3 >/dev/null && dpkg-source -x --skip-patches fuse3_*.dsc src >/dev/null 2>&1 || dpkg-source -x fuse3_*.dsc src >/dev/null)
s="$work/src"
mkdir -p "$out"
# What libfuse's meson would detect on glibc: the examples compile their optional parts
# (xattrs, fallocate, copy_file_range, utimensat) only when told these exist.
have="-DHAVE_FORK -DHAVE_FSTATAT -DHAVE_OPENAT -DHAVE_READLINKAT -DHAVE_PIPE2 -DHAVE_SPLICE
 -DHAVE_VMSPLICE -DHAVE_POSIX_FALLOCATE -DHAVE_FDATASYNC -DHAVE_UTIMENSAT -DHAVE_COPY_FILE_RANGE
 -DHAVE_FALLOCATE -DHAVE_SETXATTR -DHAVE_STRUCT_STAT_ST_ATIM"
mkdir -p "$work/cfg"
for d in $have; do echo "#define ${d#-D} 1"; done > "$work/cfg/fuse_config.h"
cflags="$(pkg-config fuse3 --cflags) $have -I$work/cfg"
libs=$(pkg-config fuse3 --libs)
for prog in $programs; do
    gcc -O2 -Wall -D_FILE_OFFSET_BITS=64 $cflags -I"$s/example" -I"$s/include" \
        "$s/example/$prog.c" -o "$out/$prog" $libs -lpthread
done
# passthrough_hp is C++ and wants libfuse's own headers for a few helpers; best effort.
g++ -O2 -std=c++17 -D_FILE_OFFSET_BITS=64 $cflags -I"$s/example" -I"$s/include" \
    "$s/example/passthrough_hp.cc" -o "$out/passthrough_hp" $libs -lpthread 2>"$out/passthrough_hp.build-log" \
    || echo "passthrough_hp did not build (see $out/passthrough_hp.build-log)" >&2
gcc -O2 -D_GNU_SOURCE $cflags "$s/test/test_syscalls.c" -o "$out/test_syscalls" $libs
cp "$work"/fuse3_*.dsc "$out/" 2>/dev/null || true
chmod -R a+rX "$out"
touch "$marker"
echo "libfuse examples built in $out"
