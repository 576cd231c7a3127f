#!/usr/bin/env bash
# The whole test suite, as `make test` runs it (and CI through .ci/run).
#
# As root (CI): installs what the tests drive, prepares the ordinary test user (no /dev/fuse for
# it), runs the main suite AS THAT USER, then the few tests that need the real kernel FUSE as
# root (the reference backend). As an ordinary user: runs the main suite as yourself and skips
# the kernel pass.
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD
user="${VUFUSE_TEST_USER:-vufuse-test}"
python="${PYTHON:-$(command -v /usr/bin/python3 || command -v python3)}"

if [ "$(id -u)" -eq 0 ]; then
    tools/install-deps.sh test
    tools/test-user.sh
    compat-tests/setup.sh   # FUSE daemons, clients, libfuse examples (tools/fetch-libfuse-examples.sh)
    tests/e2e/setup_real_pyfuse3.sh   # the real pyfuse3 3.5.0 (built on libfuse3-dev) and its examples
    # The test user must be able to read the checkout and run its venv. A clone under root's
    # home is not reachable for it: stage a copy in a world-readable place.
    if ! runuser -u "$user" -- test -r "$src/Makefile" -a -x "$src/tools"; then
        stage=/var/tmp/vufuse-test-src
        echo "staging the checkout in $stage (not readable by $user where it is)"
        rm -rf "$stage"; mkdir -p "$stage"
        tar -C "$src" --exclude=./.venv -cf - . | tar -C "$stage" -xf -
        chmod -R a+rX "$stage"
        src=$stage; cd "$src"
    fi
else
    tools/install-deps.sh build
fi

make --no-print-directory venv-test PYTHON="$python"
venv="$src/.venv"
chmod -R a+rX "$src" 2>/dev/null || true

echo "== lint: ruff, mypy"
"$venv/bin/ruff" check .
"$venv/bin/mypy"

pytest_args=(-p no:cacheprovider -ra "$@")
status=0
if [ "$(id -u)" -eq 0 ]; then
    echo "== main suite as the ordinary user $user (no kernel FUSE)"
    home=$(getent passwd "$user" | cut -d: -f6)
    runuser -u "$user" -- env -i HOME="$home" USER="$user" LOGNAME="$user" \
        PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8 CI="${CI:-}" \
        VUFUSE_TEST_AS_USER=1 \
        "$venv/bin/python" -m pytest -m "not kernel and not root" "${pytest_args[@]}" || status=$?
    if [ -e /dev/fuse ]; then
        echo "== kernel FUSE reference tests, and the few that must act as another uid, as root"
        rc=0
        "$venv/bin/python" -m pytest -m "kernel or root" "${pytest_args[@]}" || rc=$?
        # 5: no test selected (none marked kernel yet) is not a failure of this pass
        if [ "$rc" -ne 0 ] && [ "$rc" -ne 5 ]; then status=$rc; fi
    fi
else
    "$venv/bin/python" -m pytest -m "not kernel and not root" "${pytest_args[@]}" || status=$?
fi
exit "$status"
