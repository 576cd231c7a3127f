"""The results document: samples, statistics, ratios and the targets of the issue.

The JSON written by a run is the only input of ``report``, so the documentation can always be
regenerated from the committed copy it was made from. Shape (``SCHEMA``)::

    {"schema", "created", "quick", "duration_seconds", "machine", "scratch",
     "placements": [{"name", "description", "available", "reason"}],
     "backends": [{"name", "description", "available", "reason", "version", "applies_to"}],
     "workloads": [{"name", "title", "metric", "unit", "repetitions", "parameters", "error"}],
     "measurements": [{"workload", "backend", "placement", "status", "samples", "min",
                       "median", "ratio_min", "ratio_median", "net_median",
                       "ratio_net_median", "ratio_kernel_fuse_median", "details", "error"}],
     "targets": [{"id", "description", "placement", "backend", "value", "unit", "threshold",
                  "direction", "met", "detail"}]}

``status`` is ``ok``, ``failed`` (the command failed; ``error`` says how) or ``unavailable`` (the
backend or placement could not run here; ``error`` says why). Ratios are taken against native in
the same workload and placement of the same run, never across runs or placements; the FUSE
workloads also get a ratio to ``kernel-fuse`` (``ratio_kernel_fuse_median``), the comparison
the FUSE targets are about.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

SCHEMA = "vufuse-benchmarks/1"
KERNEL_FUSE = "kernel-fuse"
VUFUSE_FUSE = "vufuse-fuse"
STATUSES = ("ok", "failed", "unavailable")


@dataclass
class Measurement:
    """All samples of one workload under one backend at one placement."""

    workload: str
    backend: str
    placement: str
    status: str = "ok"
    samples: list[float] = field(default_factory=list)
    error: str | None = None
    ratio_min: float | None = None
    ratio_median: float | None = None
    net_median: float | None = None
    """Wall-time workloads: the median less this backend's median session start-up."""
    ratio_net_median: float | None = None
    """``net_median`` over native's: the overhead of the work itself, start-up set aside."""
    ratio_kernel_fuse_median: float | None = None
    """FUSE workloads: the median over kernel-fuse's median, same workload and placement."""
    details: dict[str, list[float]] = field(default_factory=dict)
    """Other figures of each run, by name (FUSE: ``mount_seconds``, ``unmount_seconds``,
    ``harness_wall_seconds``; vufuse-fuse also ``vufuse_stats_<counter>``)."""

    @property
    def minimum(self) -> float | None:
        """The least sample: the run least disturbed by the rest of the machine."""
        return min(self.samples) if self.samples and self.status == "ok" else None

    @property
    def median(self) -> float | None:
        """The median sample: what a user typically sees."""
        return statistics.median(self.samples) if self.samples and self.status == "ok" else None

    def to_json(self) -> dict[str, Any]:
        """The JSON object for this measurement (``min``/``median`` included for readers)."""
        document = asdict(self)
        document["min"] = self.minimum
        document["median"] = self.median
        return document


def attach_ratios(
    measurements: Sequence[Measurement],
    wall_time_workloads: Iterable[str] = (),
    startup_workload: str = "session-start",
) -> None:
    """Fill the ratios against native of the same workload and placement.

    For wall-time workloads also fill the figures *net of start-up*: a backend's fixed cost of
    starting (``startup_workload``, e.g. importing trio for vufuse) otherwise dominates a
    0.15 s ``tar xf`` and hides what each syscall costs.
    """
    native = {(m.workload, m.placement): m for m in measurements if m.backend == "native"}
    for measurement in measurements:
        baseline = native.get((measurement.workload, measurement.placement))
        if baseline is None:
            continue
        measurement.ratio_min = _ratio(measurement.minimum, baseline.minimum)
        measurement.ratio_median = _ratio(measurement.median, baseline.median)
    kernel_fuse = {(m.workload, m.placement): m for m in measurements if m.backend == KERNEL_FUSE}
    for measurement in measurements:
        reference = kernel_fuse.get((measurement.workload, measurement.placement))
        # Only the same daemon on vufuse compares with it: vufuse or proot on a real
        # directory (git, make) against a FUSE mount would be a ratio of different things.
        if reference is not None and measurement.backend == VUFUSE_FUSE:
            measurement.ratio_kernel_fuse_median = _ratio(measurement.median, reference.median)
    startups = {
        (m.backend, m.placement): m.median
        for m in measurements
        if m.workload == startup_workload and m.median is not None
    }
    nets: dict[tuple[str, str, str], float] = {}
    wall_time = set(wall_time_workloads) - {startup_workload}
    for measurement in measurements:
        startup = startups.get((measurement.backend, measurement.placement))
        if measurement.workload in wall_time and measurement.median is not None and startup:
            measurement.net_median = measurement.median - startup
            key = (measurement.workload, measurement.backend, measurement.placement)
            nets[key] = measurement.net_median
    for measurement in measurements:
        if measurement.net_median is not None:
            native_net = nets.get((measurement.workload, "native", measurement.placement))
            measurement.ratio_net_median = _ratio(measurement.net_median, native_net)


def _ratio(value: float | None, baseline: float | None) -> float | None:
    if value is None or baseline is None or baseline <= 0:
        return None
    return value / baseline


AT_MOST = "at most"
MORE_THAN = "more than"
DIRECTIONS = (AT_MOST, MORE_THAN)


@dataclass(frozen=True)
class Target:
    """One goal of an issue, evaluated on the medians of one placement.

    Whether it is met is derived from ``value``, ``threshold`` and ``direction``, never stated
    beside them, so a target cannot say "met" about a number that misses its threshold.
    """

    id: str
    description: str
    placement: str
    backend: str
    value: float | None
    unit: str
    threshold: float
    detail: str
    direction: str = AT_MOST
    """``AT_MOST``: met when value <= threshold; ``MORE_THAN``: met when value > threshold."""

    def __post_init__(self) -> None:
        if self.direction not in DIRECTIONS:
            raise ValueError(f"target {self.id}: direction {self.direction!r}")

    @property
    def met(self) -> bool | None:
        """None when a measurement it needs is missing (backend unavailable or failed)."""
        if self.value is None:
            return None
        if self.direction == AT_MOST:
            return self.value <= self.threshold
        return self.value > self.threshold


def _medians(measurements: Iterable[Measurement]) -> dict[tuple[str, str, str], float]:
    return {
        (m.workload, m.backend, m.placement): m.median for m in measurements if m.median is not None
    }


def evaluate_targets(
    measurements: Sequence[Measurement], placements: Sequence[str], backend: str = "vufuse"
) -> list[Target]:
    """The issue's targets for ``backend``, per placement, from medians of this run only."""
    medians = _medians(measurements)
    net_ratios = {
        (m.workload, m.backend, m.placement): m.ratio_net_median
        for m in measurements
        if m.ratio_net_median is not None
    }
    targets: list[Target] = []
    for placement in placements:

        def median(workload: str, of: str, placement: str = placement) -> float | None:
            return medians.get((workload, of, placement))

        targets.append(
            _ratio_target(
                "untrapped",
                "untrapped syscall (getppid) at most 1.5× native",
                placement,
                backend,
                median("getppid", backend),
                median("getppid", "native"),
                1.5,
            )
        )
        trapped, native_stat = median("stat", backend), median("stat", "native")
        added = None if trapped is None or native_stat is None else trapped - native_stat
        targets.append(
            Target(
                id="trapped-fast-path",
                description="trapped fast-path syscall (stat) adds at most 10 µs",
                placement=placement,
                backend=backend,
                value=added,
                unit="ns",
                threshold=10_000.0,
                detail="median ns/call minus native median ns/call",
            )
        )
        tar_target = _ratio_target(
            "tar-vs-native",
            "`tar xf` on a real directory at most 5× native",
            placement,
            backend,
            median("tar-xf", backend),
            median("tar-xf", "native"),
            5.0,
        )
        net_ratio = net_ratios.get(("tar-xf", backend, placement))
        if net_ratio is not None:
            tar_target = replace(
                tar_target,
                detail=f"{tar_target.detail}; {net_ratio:.2f}× net of session start-up",
            )
        targets.append(tar_target)
        ours, proot = median("tar-xf", backend), median("tar-xf", "proot")
        speedup = None if ours is None or proot is None or ours <= 0 else proot / ours
        targets.append(
            Target(
                id="tar-vs-proot",
                description="`tar xf` faster than proot in the same run",
                placement=placement,
                backend=backend,
                value=speedup,
                unit="× faster",
                threshold=1.0,
                detail="proot median wall time / vufuse median wall time",
                direction=MORE_THAN,
            )
        )
    targets += evaluate_fuse_targets(measurements, placements)
    return targets


def evaluate_fuse_targets(
    measurements: Sequence[Measurement], placements: Sequence[str]
) -> list[Target]:
    """The FUSE targets for vufuse-fuse: ratios to kernel-fuse in the same run, warm stat µs."""
    medians = _medians(measurements)
    targets: list[Target] = []
    for placement in placements:
        for workload, target_id, description in (
            ("fuse-stat-cold", "fuse-stat-cold", "cold stat-10k on a FUSE mount"),
            ("fuse-grep", "fuse-grep", "`grep -r` on a FUSE mount"),
            ("fuse-read", "fuse-read", "1 GiB sequential read (`dd`) on a FUSE mount"),
            ("fuse-read-c", "fuse-read-c", "1 GiB sequential read (C reader) on a FUSE mount"),
            ("fuse-write-c", "fuse-write-c", "1 GiB sequential write (C writer) on a FUSE mount"),
            ("fuse-write", "fuse-write", "1 GiB sequential write (`dd`) on a FUSE mount"),
            ("fuse-creates", "fuse-creates", "10,000 small-file creates on a FUSE mount"),
            ("fuse-tar-xf", "fuse-tar-xf", "`tar xf` of /usr/include into a FUSE mount"),
        ):
            ratio = _ratio(
                medians.get((workload, VUFUSE_FUSE, placement)),
                medians.get((workload, KERNEL_FUSE, placement)),
            )
            targets.append(
                Target(
                    id=target_id,
                    description=f"{description} at most 3× kernel FUSE",
                    placement=placement,
                    backend=VUFUSE_FUSE,
                    value=ratio,
                    unit="× kernel FUSE",
                    threshold=3.0,
                    detail="vufuse-fuse median / kernel-fuse median (passthrough_ll on both)",
                )
            )
        warm = medians.get(("fuse-stat-warm", VUFUSE_FUSE, placement))
        targets.append(
            Target(
                id="fuse-stat-warm",
                description="warm stat-10k on a FUSE mount at most 30 µs per file",
                placement=placement,
                backend=VUFUSE_FUSE,
                value=warm,
                unit="ns per file",
                threshold=30_000.0,
                detail="vufuse-fuse median ns per file, second pass",
            )
        )
    return targets


def _ratio_target(
    target_id: str,
    description: str,
    placement: str,
    backend: str,
    value: float | None,
    native: float | None,
    threshold: float,
) -> Target:
    ratio = _ratio(value, native)
    return Target(
        id=target_id,
        description=description,
        placement=placement,
        backend=backend,
        value=ratio,
        unit="× native",
        threshold=threshold,
        detail="ratio of medians to native",
    )


def target_to_json(target: Target) -> dict[str, Any]:
    """The JSON object for one target, ``met`` included for readers of the file."""
    document = asdict(target)
    document["met"] = target.met
    return document


def write_document(document: dict[str, Any], path: Path) -> None:
    """Write the document atomically: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(document, indent=2, sort_keys=False) + "\n")
    temporary.replace(path)


def read_document(path: Path) -> dict[str, Any]:
    """Read and minimally check a results document."""
    document: dict[str, Any] = json.loads(path.read_text())
    if document.get("schema") != SCHEMA:
        raise ValueError(f"{path}: schema {document.get('schema')!r}, expected {SCHEMA!r}")
    return document


def format_quantity(value: float | None, unit: str) -> str:
    """A human-readable quantity: ns become µs or ms, seconds become ms, as the size asks."""
    if value is None:
        return "n/a"
    if unit == "ns":
        if value < 1_000:
            return f"{value:.0f} ns"
        if value < 1_000_000:
            return f"{value / 1_000:.1f} µs"
        return f"{value / 1_000_000:.2f} ms"
    if unit == "s":
        if value < 1:
            return f"{value * 1_000:.0f} ms"
        return f"{value:.2f} s"
    return f"{value:.3g} {unit}"
