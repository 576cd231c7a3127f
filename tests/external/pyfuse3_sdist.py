"""Fetch pyfuse3 3.5.0's source distribution at test time, for its examples and test suite.

Nothing from it is committed: the sdist is downloaded with pip into a cache directory
(``$VUFUSE_CACHE_DIR`` or ``<tmp>/vufuse-cache``) and unpacked there once. Run as a script it
prints the unpacked directory, so the suite can also be run by hand::

    .venv/bin/python tests/external/pyfuse3_sdist.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

VERSION = "3.5.0"


def cache_dir() -> Path:
    """Where downloads are kept between runs."""
    return Path(os.environ.get("VUFUSE_CACHE_DIR", Path(tempfile.gettempdir()) / "vufuse-cache"))


def sdist_dir() -> Path:
    """The unpacked pyfuse3 sdist (downloaded and unpacked on first use)."""
    root = cache_dir() / f"pyfuse3-{VERSION}-sdist"
    unpacked = root / f"pyfuse3-{VERSION}"
    if (unpacked / "test" / "test_fs.py").exists():
        return unpacked
    root.mkdir(parents=True, exist_ok=True)
    archive = root / f"pyfuse3-{VERSION}.tar.gz"
    if not archive.exists():
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
             "--no-binary", ":all:", f"pyfuse3=={VERSION}", "-d", str(root)],
            check=True,
        )  # fmt: skip
    staging = Path(tempfile.mkdtemp(dir=root))
    with tarfile.open(archive) as tar:
        members = tar.getmembers()
        for member in members:  # no absolute paths, no "..", no links: plain files only
            parts = Path(member.name).parts
            if member.name.startswith("/") or ".." in parts or member.issym() or member.islnk():
                raise RuntimeError(f"unsafe path in {archive}: {member.name}")
        tar.extractall(staging, members=members)
    (staging / f"pyfuse3-{VERSION}").rename(unpacked)
    staging.rmdir()
    return unpacked


if __name__ == "__main__":
    print(sdist_dir())
