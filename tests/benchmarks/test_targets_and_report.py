"""The pure parts of the benchmark's results: target verdicts, ratios, the report's tables.

No workload runs here; documents are built by hand, so every rule can be pinned exactly.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.report import render_markdown
from benchmarks.results import (
    AT_MOST,
    MORE_THAN,
    Measurement,
    Target,
    attach_ratios,
    evaluate_fuse_targets,
    target_to_json,
)


def _target(value: float | None, threshold: float, direction: str = AT_MOST) -> Target:
    return Target("t", "d", "pinned", "vufuse", value, "x", threshold, "detail", direction)


@pytest.mark.parametrize(
    ("value", "direction", "met"),
    [
        (2.9, AT_MOST, True),
        (3.0, AT_MOST, True),
        (3.1, AT_MOST, False),
        (3.1, MORE_THAN, True),
        (3.0, MORE_THAN, False),
        (None, AT_MOST, None),
    ],
)
def test_met_follows_value_threshold_and_direction(
    value: float | None, direction: str, met: bool | None
) -> None:
    target = _target(value, 3.0, direction)
    assert target.met is met
    assert target_to_json(target)["met"] is met


def test_unknown_direction_is_refused() -> None:
    with pytest.raises(ValueError, match="direction"):
        _target(1.0, 1.0, "about")


def _measured(workload: str, backend: str, *samples: float) -> Measurement:
    return Measurement(workload, backend, "pinned", samples=list(samples))


def test_write_side_targets_compare_vufuse_fuse_with_kernel_fuse() -> None:
    measurements = [
        _measured("fuse-creates", "kernel-fuse", 1.0, 1.2, 1.1),
        _measured("fuse-creates", "vufuse-fuse", 4.0, 4.4, 4.2),
        _measured("fuse-tar-xf", "kernel-fuse", 2.0),
        _measured("fuse-tar-xf", "vufuse-fuse", 5.0),
    ]
    targets = {t.id: t for t in evaluate_fuse_targets(measurements, ["pinned"])}
    assert targets["fuse-creates"].value == pytest.approx(4.2 / 1.1)
    assert targets["fuse-creates"].met is False
    assert targets["fuse-tar-xf"].value == pytest.approx(2.5)
    assert targets["fuse-tar-xf"].met is True
    assert targets["fuse-write-c"].met is None  # not measured, never a verdict


def test_a_failed_measurement_leaves_its_target_unmeasured() -> None:
    failed = _measured("fuse-write", "vufuse-fuse", 0.5)
    failed.status, failed.error = "failed", "dd's output file has 0 bytes"
    measurements = [_measured("fuse-write", "kernel-fuse", 1.0), failed]
    targets = {t.id: t for t in evaluate_fuse_targets(measurements, ["pinned"])}
    assert targets["fuse-write"].value is None and targets["fuse-write"].met is None


def test_only_vufuse_fuse_gets_a_ratio_to_kernel_fuse() -> None:
    measurements = [
        _measured("git-status", "native", 1.0),
        _measured("git-status", "vufuse", 2.0),
        _measured("git-status", "kernel-fuse", 4.0),
        _measured("git-status", "vufuse-fuse", 8.0),
    ]
    attach_ratios(measurements)
    by_backend = {m.backend: m for m in measurements}
    assert by_backend["vufuse-fuse"].ratio_kernel_fuse_median == pytest.approx(2.0)
    assert by_backend["vufuse"].ratio_kernel_fuse_median is None
    assert by_backend["vufuse"].ratio_median == pytest.approx(2.0)


def _document() -> dict[str, object]:
    details = {
        "seconds": [2.0],
        "harness_wall_seconds": [2.5],
        "vufuse_stats_notifications": [1000.0],
        "vufuse_stats_fast_continue": [750.0],
        "vufuse_stats_queued": [250.0],
        "vufuse_time_session_ns": [2.5e9],
        "vufuse_time_latency_ns": [250 * 100_000.0],
        "vufuse_time_latency_count": [250.0],
        "vufuse_time_handler_ns": [250 * 80_000.0],
        "vufuse_time_handled": [250.0],
        "vufuse_time_python_cpu_ns": [250 * 60_000.0],
        "vufuse_time_process_cpu_ns": [250 * 70_000.0],
    }

    def measurement(workload: str, backend: str, median: float, **extra: object) -> dict:
        return {
            "workload": workload, "backend": backend, "placement": "pinned", "status": "ok",
            "samples": [median], "min": median, "median": median, "ratio_min": None,
            "ratio_median": None, "net_median": None, "ratio_net_median": None,
            "ratio_kernel_fuse_median": None, "details": {}, "error": None, **extra,
        }  # fmt: skip

    backends = ["native", "vufuse", "proot", "kernel-fuse", "vufuse-fuse"]
    return {
        "created": "2026-11-28T12:00:00Z",
        "quick": False,
        "duration_seconds": 1.0,
        "machine": {
            "virtual_machine": True, "cpus": 2, "cpu_model": "cpu", "memory_mib": 1,
            "kernel": "6", "os": "Debian", "load_average_at_start": [0.0],
        },  # fmt: skip
        "scratch": {"root": "/dev/shm", "filesystem": "tmpfs"},
        "placements": [{"name": "pinned", "description": "d", "available": True}],
        "backends": [
            {"name": b, "description": b, "available": True, "reason": None, "version": None}
            for b in backends
        ],
        "workloads": [
            {"name": n, "title": n, "metric": "seconds", "unit": "s", "repetitions": 1,
             "parameters": {}, "error": None}
            for n in ("fuse-creates", "make-j2")
        ],  # fmt: skip
        "measurements": [
            measurement("fuse-creates", "native", 0.1),
            measurement("fuse-creates", "kernel-fuse", 1.0),
            measurement("fuse-creates", "vufuse-fuse", 2.0, details=details),
            *(measurement("make-j2", backend, 1.0) for backend in backends),
        ],
        "targets": [
            target_to_json(
                Target("fuse-creates", "creates at most 3× kernel FUSE", "pinned",
                       "vufuse-fuse", 2.0, "× kernel FUSE", 3.0, "ratio")
            ),
            target_to_json(
                Target("tar-vs-proot", "faster than proot", "pinned", "vufuse", 0.5,
                       "× faster", 1.0, "ratio", MORE_THAN)
            ),
        ],  # fmt: skip
    }


def test_report_shows_where_the_time_goes_and_real_work_with_every_backend() -> None:
    page = render_markdown(_document(), "x.json", None)
    row = "| fuse-creates | 1,000 | 400 | 75% | 250 | 100.0 µs | 80.0 µs | 60.0 µs | 70.0 µs |"
    assert row in page
    real_work = page[page.index("Real work") :]
    assert "| workload | native | vufuse | proot | kernel-fuse | vufuse-fuse |" in real_work
    target = "| creates at most 3× kernel FUSE | pinned | 2.00× kernel FUSE | ≤ 3.0× kernel FUSE"
    assert target in page
    assert "| faster than proot | pinned | 0.50× faster | > 1× faster | **not met** |" in page


def test_committed_results_still_render() -> None:
    """The committed document (older than ``direction``) must keep rendering."""
    committed = Path(__file__).resolve().parents[2] / "benchmarks/results/performance.json"
    page = render_markdown(json.loads(committed.read_text()), "committed", None)
    assert "## Targets" in page
