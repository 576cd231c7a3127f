"""Smoke test of ``python -m benchmarks --quick``: the harness runs end to end, in seconds.

It checks the shape of the results JSON that ``docs/performance.md`` is generated from, never a
timing: numbers from a shared 2-vCPU VM under a test runner mean nothing. vufuse is included
whenever its probe (``vufuse run -- cat /proc/self/status`` under a seccomp filter) succeeds;
otherwise the document must say it is unavailable and why. The FUSE backends (``kernel-fuse``:
libfuse's passthrough_ll on the kernel's FUSE, root only; ``vufuse-fuse``: the same daemon inside
``vufuse run``) run only the FUSE workloads, which in turn run only on them and native; as an
ordinary user ``kernel-fuse`` must be reported unavailable because it needs root.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
BACKENDS = ("native", "vufuse", "proot", "kernel-fuse", "vufuse-fuse")
FUSE_BACKENDS = {"kernel-fuse", "vufuse-fuse"}
FUSE_TARGETS = {
    "fuse-stat-cold",
    "fuse-stat-warm",
    "fuse-grep",
    "fuse-read",
    "fuse-read-c",
    "fuse-write-c",
    "fuse-write",
    "fuse-creates",
    "fuse-tar-xf",
}
REAL_WORK = {"git-status", "make-j2"}
"""On a real directory (native, vufuse, proot) and on the FUSE mount (kernel-fuse, vufuse-fuse)."""
FUSE_WORKLOADS = FUSE_TARGETS | REAL_WORK
KNOWN_FAILURES: dict[tuple[str, str], str] = {}
"""(workload, backend) -> the cause a real, reported bug gives, while it is being fixed: such a
measurement may pass or fail with exactly this cause; any other failure fails the test. Empty:
dd's lost writes through fd 1 and ENODEV from mmap on a vufuse mount were fixed."""
TOP_LEVEL_KEYS = {
    "schema",
    "created",
    "quick",
    "duration_seconds",
    "machine",
    "scratch",
    "placements",
    "backends",
    "workloads",
    "measurements",
    "targets",
}
MEASUREMENT_KEYS = {
    "workload",
    "backend",
    "placement",
    "status",
    "samples",
    "min",
    "median",
    "ratio_min",
    "ratio_median",
    "net_median",
    "ratio_net_median",
    "ratio_kernel_fuse_median",
    "details",
    "error",
}
TARGET_KEYS = {
    "id",
    "description",
    "placement",
    "backend",
    "value",
    "unit",
    "threshold",
    "direction",
    "met",
    "detail",
}


@pytest.mark.e2e  # runs `vufuse run` sessions whenever vufuse works
def test_quick_run_writes_a_complete_results_document(tmp_path: Path) -> None:
    output = tmp_path / "results.json"
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks",
            "--quick",
            "--no-docs",
            "--backends",
            ",".join(BACKENDS),
            "--output",
            str(output),
            "--scratch-root",
            str(tmp_path),
        ],
        cwd=REPOSITORY_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    document = json.loads(output.read_text())
    failed = {
        (m["workload"], m["backend"]): m["error"]
        for m in document["measurements"]
        if m["status"] == "failed"
    }
    unexplained = {
        pair: error
        for pair, error in failed.items()
        if pair not in KNOWN_FAILURES or KNOWN_FAILURES[pair] not in error
    }
    assert not unexplained, unexplained
    # A failed measurement of an *available* backend exits 1.
    assert completed.returncode == (1 if failed else 0), completed.stdout + completed.stderr

    assert set(document) == TOP_LEVEL_KEYS
    assert document["schema"] == "vufuse-benchmarks/1"
    assert document["quick"] is True

    backends = {backend["name"]: backend for backend in document["backends"]}
    assert set(backends) == set(BACKENDS), "a selected backend was dropped"
    assert backends["native"]["available"] is True
    if shutil.which("proot"):
        assert backends["proot"]["available"] is True, backends["proot"]["reason"]
    for backend in backends.values():
        assert backend["available"] or backend["reason"], "unavailable without a reason"
    if os.geteuid() != 0:
        assert backends["kernel-fuse"]["available"] is False
        assert "needs root" in backends["kernel-fuse"]["reason"]

    placements = {placement["name"] for placement in document["placements"]}
    workloads = {workload["name"] for workload in document["workloads"]}
    assert {"getppid", "stat", "tar-xf", "python-startup"} | FUSE_WORKLOADS <= workloads
    assert all(workload["error"] is None for workload in document["workloads"])

    measured = {(m["workload"], m["backend"], m["placement"]): m for m in document["measurements"]}
    for measurement in document["measurements"]:
        assert set(measurement) == MEASUREMENT_KEYS
    for workload in workloads:
        for placement in placements:
            for name, backend in backends.items():
                paired = (workload in FUSE_WORKLOADS) == (name in FUSE_BACKENDS) or (
                    workload in REAL_WORK and name in {"vufuse", "proot"}
                )
                if not paired and name != "native":
                    assert (workload, name, placement) not in measured, "runs where not meant to"
                    continue
                measurement = measured[(workload, name, placement)]
                if not backend["available"]:
                    assert measurement["status"] == "unavailable"
                    assert measurement["error"]
                    continue
                if (workload, name) in failed:
                    continue
                assert measurement["status"] == "ok", measurement["error"]
                assert len(measurement["samples"]) == 1
                assert measurement["min"] > 0 and measurement["median"] > 0
                assert isinstance(measurement["ratio_median"], float)
                if name == "native":
                    assert measurement["ratio_median"] == 1.0
                if name in FUSE_BACKENDS:
                    details = measurement["details"]
                    assert len(details["mount_seconds"]) == 1, details
                    assert len(details["harness_wall_seconds"]) == 1, details
                if name == "vufuse-fuse":
                    assert measurement["details"]["vufuse_stats_notifications"][0] > 0
                    if backends["kernel-fuse"]["available"]:
                        assert isinstance(measurement["ratio_kernel_fuse_median"], float)

    assert document["targets"], "targets of the issue are always reported"
    for target in document["targets"]:
        assert set(target) == TARGET_KEYS
        assert target["met"] in (True, False, None)
        assert target["placement"] in placements
    fuse_targets = {t["id"] for t in document["targets"] if t["backend"] == "vufuse-fuse"}
    assert fuse_targets == FUSE_TARGETS
