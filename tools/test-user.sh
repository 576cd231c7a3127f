#!/usr/bin/env bash
# Prepares the ordinary user the end-to-end tests run as, and proves kernel FUSE is out of reach.
# Run as root. The user gets a passwd entry and a usable password (fusermount3 and sshd look
# them up); /dev/fuse is made unopenable for it (stock Debian ships it 0666) and that is asserted.
set -euo pipefail
user="${VUFUSE_TEST_USER:-vufuse-test}"

if ! id "$user" >/dev/null 2>&1; then
    useradd --create-home --shell /bin/bash "$user"
fi
echo "$user:$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')" | chpasswd

if [ -e /dev/fuse ]; then
    chmod 0600 /dev/fuse
    chown root:root /dev/fuse
fi
if runuser -u "$user" -- sh -c 'exec 3<>/dev/fuse' 2>/dev/null; then
    echo "vufuse: /dev/fuse is still openable by $user; refusing to test" >&2
    exit 1
fi
echo "test user $user: /dev/fuse not openable (asserted)"
