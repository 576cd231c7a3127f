#!/usr/bin/env bash
# Installs everything the compatibility harness drives, so a fresh Debian 12 machine can run
# `python3 compat-tests/run.py`: the FUSE programs under test (Debian packages), the tools the
# workloads and fixtures use, libfuse's examples + test_syscalls (tools/fetch-libfuse-examples.sh),
# and fusepy/mfusepy in a small venv of their own (the project's pyproject is not ours to extend,
# and the ordinary test user must be able to read it, hence /var/tmp).
# Idempotent; run as root. Prints what it did not manage rather than failing the whole run.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
externals="${VUFUSE_EXTERNALS:-/var/tmp/vufuse-externals}"
venv="$externals/compat-venv"

packages=(
    fuse3 libfuse2                                   # fusermount3 / fusermount; fusepy's libfuse2
    squashfuse squashfs-tools                        # squashfuse + mksquashfs
    fuse2fs e2fsprogs                                # fuse2fs + mkfs.ext4
    fuse-zip zip archivemount bindfs unionfs-fuse fuse-overlayfs
    sshfs openssh-server openssh-sftp-server openssh-client  # sshfs to a loopback sshd of our own
    gocryptfs rclone
    git sqlite3 tar diffutils findutils coreutils util-linux procps python3 python3-venv
)

if [ "$(id -u)" -ne 0 ]; then
    echo "compat-tests/setup.sh: run as root (apt-get install ${packages[*]})" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
missing=()
for pkg in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "compat setup: installing ${missing[*]}" >&2
    # openssh-server would start a system sshd listening on every address; the harness only
    # wants the binary (it runs its own, unprivileged, on loopback). Debian's policy-rc.d hook
    # keeps maintainer scripts from starting services while we install.
    policy=/usr/sbin/policy-rc.d
    made_policy=
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod +x "$policy"; made_policy=1
    fi
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || status=$?
    [ -n "$made_policy" ] && rm -f "$policy"
    [ "${status:-0}" -eq 0 ] || exit "$status"
fi
# sshd, even unprivileged, insists on its privilege-separation directory.
mkdir -p /run/sshd

"$repo/tools/fetch-libfuse-examples.sh" "$externals/libfuse"

# The real pyfuse3 (PyPI sdist built against libfuse3) with its examples, for the
# real-pyfuse3:* rows and pyfuse3's own suite; pytest into that venv to run the suite with it.
VUFUSE_REAL_PYFUSE3="$externals/real-pyfuse3" "$repo/tests/e2e/setup_real_pyfuse3.sh"
if ! "$externals/real-pyfuse3/venv/bin/python" -c "import pytest" 2>/dev/null; then
    "$externals/real-pyfuse3/venv/bin/python" -m pip install -q --disable-pip-version-check \
        "pytest>=8" >>"$externals/compat-venv.log" 2>&1 || { cat "$externals/compat-venv.log" >&2; exit 1; }
fi

if [ ! -x "$venv/bin/python" ]; then
    /usr/bin/python3 -m venv "$venv"
fi
# fusepy is the libfuse2 binding most Python FUSE programs use; mfusepy its maintained fork
# that also speaks libfuse3. Quiet unless it fails.
if ! "$venv/bin/pip" install -q --disable-pip-version-check "fusepy==3.0.1" "mfusepy>=3.1" \
        >"$externals/compat-venv.log" 2>&1; then
    cat "$externals/compat-venv.log" >&2
    exit 1
fi
chmod -R a+rX "$externals"
echo "compat setup: ready ($externals)"
