#!/usr/bin/env bash
# Installs the Debian packages a target needs, or names them exactly when we are not root.
#   tools/install-deps.sh build   # compiler, make, Python headers and venv
#   tools/install-deps.sh test    # + what the test suite drives (fusermount3, proot, clients)
set -euo pipefail

build_pkgs=(gcc make python3-dev python3-venv)
test_pkgs=(fuse3 proot git sqlite3 procps util-linux)

case "${1:-build}" in
    build) wanted=("${build_pkgs[@]}") ;;
    test) wanted=("${build_pkgs[@]}" "${test_pkgs[@]}") ;;
    *) echo "usage: $0 build|test" >&2; exit 2 ;;
esac

missing=()
for pkg in "${wanted[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "vufuse: missing Debian packages; install them as root with:" >&2
    echo "    apt-get update && apt-get install -y ${missing[*]}" >&2
    exit 1
fi
echo "installing: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
