#!/usr/bin/env bash
# The real pyfuse3 3.5.0 (PyPI, built against Debian's libfuse3-dev) in its own venv, with its
# sdist's examples beside it, for tests/e2e/test_real_pyfuse3.py.  Run as root by the test
# set-up (tools/run-tests.sh); idempotent; the venv is world-readable so vufuse-test can use it.
set -euo pipefail
dest="${VUFUSE_REAL_PYFUSE3:-/var/tmp/vufuse-externals/real-pyfuse3}"
version=3.5.0
python="${PYTHON:-/usr/bin/python3}"

if [ -x "$dest/venv/bin/python" ] && [ -f "$dest/examples/hello.py" ] \
    && "$dest/venv/bin/python" -c "import pyfuse3, sys; sys.exit(pyfuse3.__version__ != '$version')" 2>/dev/null; then
    exit 0
fi
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    missing=()
    for package in libfuse3-dev pkg-config gcc python3-dev python3-venv; do
        dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        apt-get install -y --no-install-recommends "${missing[@]}"
    fi
fi
rm -rf "$dest.new"; mkdir -p "$dest.new"
"$python" -m venv "$dest.new/venv"
"$dest.new/venv/bin/pip" install --quiet --no-binary pyfuse3 "pyfuse3==$version"
# The examples ship only in the sdist.
"$dest.new/venv/bin/pip" download --quiet --no-deps --no-binary pyfuse3 -d "$dest.new/sdist" \
    "pyfuse3==$version"
mkdir -p "$dest.new/examples"
tar -C "$dest.new/examples" --strip-components=2 -xzf "$dest.new/sdist/pyfuse3-$version.tar.gz" \
    "pyfuse3-$version/examples"
rm -rf "$dest"; mv "$dest.new" "$dest"
# The venv was made at $dest.new: point its scripts' shebangs at $dest (python -m works anyway).
chmod -R a+rX "$dest"
echo "real pyfuse3 $version in $dest"
