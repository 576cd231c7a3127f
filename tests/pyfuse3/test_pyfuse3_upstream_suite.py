"""pyfuse3 3.5.0's own test suite and examples, run against vufuse's pyfuse3 on the real kernel.

The sdist is fetched at test time (tests/external/pyfuse3_sdist.py). Its suite silently skips
whole modules when it thinks FUSE is unavailable, so we check the exact number of tests that
ran and passed, that ``import pyfuse3`` gave vufuse's module, and that no libfuse was loaded.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from kernel_fuse import ALIAS_DIR, REPO_ROOT, require_kernel_fuse
from pyfuse3_sdist import sdist_dir

pytestmark = pytest.mark.kernel

#: Measured: test_api 6, test_examples 5 (hello, hello_asyncio, tmpfs, passthroughfs x2),
#: test_fs 7, test_rounding 1.
EXPECTED_PASSED = 19


def test_pyfuse3_suite_passes_on_vufuse(tmp_path: Path) -> None:
    require_kernel_fuse()
    source = sdist_dir()
    report_path = tmp_path / "report.json"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ALIAS_DIR), str(REPO_ROOT / "tests" / "external"), str(REPO_ROOT)]
    )
    env["VUFUSE_GUARD_REPORT"] = str(report_path)
    env.pop("CI", None)  # pyfuse3's suite skips timestamp checks under CI=true; keep them
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--installed", "-p", "vufuse_guard",
         "-p", "no:cacheprovider", "--basetemp", str(tmp_path / "upstream"), "test"],
        cwd=source, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    output = result.stdout[-6000:] + result.stderr[-3000:]
    assert result.returncode == 0, output
    report = json.loads(report_path.read_text())
    assert report["outcomes"] == {"passed": EXPECTED_PASSED}, output
    assert "vufuse" in report["pyfuse3_file"]
    assert report["libfuse_mapped"] is False
