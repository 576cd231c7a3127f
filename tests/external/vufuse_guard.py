"""A pytest plugin loaded into pyfuse3's own test run (``-p vufuse_guard``) to keep it honest.

It fails the run unless ``import pyfuse3`` gives vufuse's implementation, and it writes a JSON
report (to ``$VUFUSE_GUARD_REPORT``) with the outcome counts, the module that was imported, and
whether any libfuse was mapped into the process, for our own test to check. It prints nothing:
pyfuse3's suite fails tests on unexpected output.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from typing import Any

import pytest
from kernel_fuse import libfuse_mapped

_outcomes: Counter[str] = Counter()
_module_file = ""


def pytest_configure(config: pytest.Config) -> None:
    global _module_file
    import pyfuse3

    _module_file = os.path.realpath(pyfuse3.__file__ or "")
    if os.sep.join(("vufuse", "pyfuse3")) not in _module_file:
        raise pytest.UsageError(f"pyfuse3 is not vufuse's: {_module_file}")


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        _outcomes[report.outcome] += 1


def pytest_sessionfinish(session: pytest.Session, exitstatus: Any) -> None:
    path = os.environ.get("VUFUSE_GUARD_REPORT")
    if not path:
        return
    report = {
        "outcomes": dict(_outcomes),
        "pyfuse3_file": _module_file,
        "libfuse_mapped": libfuse_mapped(os.getpid()),
        "exitstatus": int(exitstatus),
    }
    with open(path, "w") as out:
        json.dump(report, out)
