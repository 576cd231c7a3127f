"""Runs a benchmark plan: probes, sets up, times every run, and builds the results document.

Repetitions are interleaved across backends (run 1 of every backend, then run 2 of every
backend, ...) so that slow drift of the machine — page cache, writeback, a neighbour on the
host — spreads over all columns instead of landing on one. Placements are run one after the
other, each with its own native column, because ratios are only compared within a placement.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from benchmarks.backends import Availability, Backend, BackendSession
from benchmarks.machine import describe_machine, filesystem_type
from benchmarks.placement import Placement
from benchmarks.process import run_in_own_group
from benchmarks.results import (
    SCHEMA,
    Measurement,
    attach_ratios,
    evaluate_targets,
    format_quantity,
    target_to_json,
)
from benchmarks.workloads import RunContext, SetupContext, Workload, WorkloadError


@dataclass
class Plan:
    """What one invocation of the benchmark measures."""

    workloads: list[Workload]
    backends: list[Backend]
    placements: list[Placement]
    quick: bool = False
    repetitions: int | None = None
    """Overrides every workload's own count when set."""
    timeout: float = 180.0
    """Seconds one run may take before it counts as failed."""
    probe_timeout: float = 15.0
    scratch_root: Path | None = None
    keep_scratch: bool = False
    compiler: str = field(default_factory=lambda: os.environ.get("CC", "gcc"))

    def repetitions_of(self, workload: Workload) -> int:
        """How many timed runs the workload gets per backend and placement."""
        if self.repetitions is not None:
            return self.repetitions
        return 1 if self.quick else workload.repetitions


@dataclass
class Progress:
    """One line per step on the terminal, so a long run shows which workload it is on."""

    stream: TextIO = field(default_factory=lambda: sys.stderr)
    total_runs: int = 0
    done_runs: int = 0

    def note(self, message: str) -> None:
        """A setup or probe message."""
        print(f"bench: {message}", file=self.stream, flush=True)

    def run_finished(self, label: str, outcome: str) -> None:
        """One timed run has ended."""
        self.done_runs += 1
        width = len(str(self.total_runs))
        print(
            f"[{self.done_runs:>{width}}/{self.total_runs}] {label}  {outcome}",
            file=self.stream,
            flush=True,
        )


def default_scratch_root() -> Path:
    """Where workloads put their files: tmpfs when there is one.

    On these VMs' ext4 (mounted with ``discard``), extracting /usr/include again where it was
    just deleted slows native ``tar xf`` from 0.25 s to 5 s and more from one run to the next;
    tmpfs keeps the disk out of a measurement of syscall overhead.
    """
    shm = Path("/dev/shm")
    if filesystem_type(shm) == "tmpfs" and shm.is_dir() and _writable(shm):
        return shm
    return Path(tempfile.gettempdir())


def _writable(directory: Path) -> bool:
    try:
        with tempfile.TemporaryFile(dir=directory):
            return True
    except OSError:
        return False


def _tool_version(argv: list[str]) -> str | None:
    """The first line a tool prints about its version, for the record; None if it won't run."""
    try:
        completed = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = completed.stdout.strip().splitlines()
    return lines[0] if completed.returncode == 0 and lines else None


def _tail(text: str, lines: int = 3) -> str:
    """The end of a failed command's stderr, on one line for the JSON and the docs."""
    return " / ".join(text.strip().splitlines()[-lines:])


def _applies(backend: Backend, workload: Workload) -> bool:
    """Whether the backend runs the workload: both sides may restrict the pairing."""
    return backend.applies(workload.name) and (
        workload.backends is None or backend.name in workload.backends
    )


class Runner:
    """Executes a ``Plan`` and returns the results document (see ``benchmarks.results``)."""

    def __init__(self, plan: Plan, progress: Progress | None = None) -> None:
        self.plan = plan
        self.progress = progress or Progress()
        self.availability: dict[str, Availability] = {}
        self.placement_reasons: dict[str, str | None] = {}
        self.setup_errors: dict[str, str] = {}
        self.measurements: list[Measurement] = []

    def run(self) -> dict[str, Any]:
        """Probe, set up, measure; return the document. Never raises for a failing backend."""
        started = time.perf_counter()
        created = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
        machine = describe_machine()
        machine["compiler"] = _tool_version([self.plan.compiler, "--version"])
        busy = os.getloadavg()[0]
        if busy > 0.5:
            self.progress.note(f"the machine is busy (load {busy:.2f}): expect noisy numbers")
        scratch_root = self.plan.scratch_root or default_scratch_root()
        scratch = Path(tempfile.mkdtemp(prefix="vufuse-bench-", dir=scratch_root))
        try:
            self._probe()
            self._set_up(scratch)
            self._count_runs()
            for workload in self.plan.workloads:
                for placement in self.plan.placements:
                    self._measure(workload, placement, scratch)
        finally:
            if self.plan.keep_scratch:
                self.progress.note(f"scratch kept in {scratch}")
            else:
                shutil.rmtree(scratch, ignore_errors=True)
        wall_time = [w.name for w in self.plan.workloads if not w.metric.reported_by_program]
        attach_ratios(self.measurements, wall_time_workloads=wall_time)
        machine["load_average_at_end"] = list(os.getloadavg())
        placements = [p.name for p in self.plan.placements]
        targets = evaluate_targets(self.measurements, placements)
        return {
            "schema": SCHEMA,
            "created": created.isoformat().replace("+00:00", "Z"),
            "quick": self.plan.quick,
            "duration_seconds": round(time.perf_counter() - started, 1),
            "machine": machine,
            "scratch": {
                "root": str(scratch_root),
                "filesystem": filesystem_type(scratch_root),
            },
            "placements": [
                {
                    "name": p.name,
                    "description": p.description,
                    "available": self.placement_reasons[p.name] is None,
                    "reason": self.placement_reasons[p.name],
                }
                for p in self.plan.placements
            ],
            "backends": [
                {
                    "name": b.name,
                    "description": b.description,
                    "available": self.availability[b.name].available,
                    "reason": self.availability[b.name].reason,
                    "version": self.availability[b.name].version,
                    "applies_to": sorted(b.applies_to) if b.applies_to is not None else None,
                }
                for b in self.plan.backends
            ],
            "workloads": [
                {
                    "name": w.name,
                    "title": w.title,
                    "metric": w.metric.name,
                    "unit": w.metric.unit,
                    "repetitions": self.plan.repetitions_of(w),
                    "parameters": w.parameters,
                    "error": self.setup_errors.get(w.name),
                }
                for w in self.plan.workloads
            ],
            "measurements": [m.to_json() for m in self.measurements],
            "targets": [target_to_json(t) for t in targets],
        }

    def _probe(self) -> None:
        for backend in self.plan.backends:
            availability = backend.probe(self.plan.probe_timeout)
            self.availability[backend.name] = availability
            state = "available" if availability.available else f"UNAVAILABLE: {availability.reason}"
            version = f" ({availability.version})" if availability.version else ""
            self.progress.note(f"backend {backend.name}{version}: {state}")
        for placement in self.plan.placements:
            reason = placement.unavailable_reason()
            self.placement_reasons[placement.name] = reason
            if reason:
                self.progress.note(f"placement {placement.name}: UNAVAILABLE: {reason}")

    def _set_up(self, scratch: Path) -> None:
        context = SetupContext(scratch=scratch / "shared", compiler=self.plan.compiler)
        context.scratch.mkdir(parents=True, exist_ok=True)
        for workload in self.plan.workloads:
            self.progress.note(f"setting up {workload.name}")
            try:
                workload.setup(context)
            except (WorkloadError, OSError, subprocess.SubprocessError) as error:
                self.setup_errors[workload.name] = str(error)
                self.progress.note(f"setting up {workload.name} FAILED: {error}")

    def _runnable(self, workload: Workload, placement: Placement) -> list[Backend]:
        if workload.name in self.setup_errors or self.placement_reasons[placement.name]:
            return []
        return [
            b
            for b in self.plan.backends
            if _applies(b, workload) and self.availability[b.name].available
        ]

    def _count_runs(self) -> None:
        self.progress.total_runs = sum(
            len(self._runnable(w, p)) * self.plan.repetitions_of(w)
            for w in self.plan.workloads
            for p in self.plan.placements
        )

    def _measure(self, workload: Workload, placement: Placement, scratch: Path) -> None:
        """All repetitions of one workload at one placement, interleaved across backends."""
        runnable = self._runnable(workload, placement)
        measurements: dict[str, Measurement] = {}
        for backend in self.plan.backends:
            if not _applies(backend, workload):
                continue
            measurement = Measurement(workload.name, backend.name, placement.name)
            self.measurements.append(measurement)
            if workload.name in self.setup_errors:
                measurement.status, measurement.error = "failed", self.setup_errors[workload.name]
            elif self.placement_reasons[placement.name]:
                measurement.status = "unavailable"
                measurement.error = self.placement_reasons[placement.name]
            elif not self.availability[backend.name].available:
                measurement.status = "unavailable"
                measurement.error = self.availability[backend.name].reason
            measurements[backend.name] = measurement
        if not runnable:
            return
        with contextlib.ExitStack() as stack:
            sessions: dict[str, BackendSession] = {}
            for backend in runnable:
                work_dir = scratch / placement.name / workload.name / backend.name
                try:
                    session = stack.enter_context(backend.session(work_dir))
                    workload.populate(session.real_dir)
                except (OSError, subprocess.SubprocessError, WorkloadError) as error:
                    measurements[backend.name].status = "failed"
                    measurements[backend.name].error = f"session start failed: {error}"
                    continue
                sessions[backend.name] = session
            repetitions = self.plan.repetitions_of(workload)
            for repetition in range(1, repetitions + 1):
                for backend in runnable:
                    measurement = measurements[backend.name]
                    label = (
                        f"{workload.name:<15} {placement.name:<8} {backend.name:<15}"
                        f" run {repetition}/{repetitions}"
                    )
                    if measurement.status != "ok" or backend.name not in sessions:
                        self.progress.run_finished(label, "skipped (failed earlier)")
                        continue
                    session = sessions[backend.name]
                    self._run_once(workload, placement, backend, session, measurement)
                    outcome = (
                        format_quantity(measurement.samples[-1], workload.metric.unit)
                        if measurement.status == "ok"
                        else f"FAILED: {measurement.error}"
                    )
                    self.progress.run_finished(label, outcome)
            for session in sessions.values():
                shutil.rmtree(session.real_dir, ignore_errors=True)

    def _run_once(
        self,
        workload: Workload,
        placement: Placement,
        backend: Backend,
        session: BackendSession,
        measurement: Measurement,
    ) -> None:
        """One timed run; a failure marks the measurement failed and stops its repetitions."""
        run = RunContext(
            backend=backend.name,
            work_dir=session.work_dir,
            mount=session.mount,
            real_dir=session.real_dir,
        )
        try:
            workload.reset(run)
            argv = placement.wrap(session.wrap(workload.command(run)))
            started = time.perf_counter()
            completed = run_in_own_group(argv, session.real_dir, self.plan.timeout)
            wall_seconds = time.perf_counter() - started
            if completed.returncode not in workload.ok_statuses:
                stderr = _tail(completed.stderr) or "(no stderr)"
                raise WorkloadError(f"exit status {completed.returncode}: {stderr}")
            workload.verify(run, completed.stdout)
            measurement.samples.append(workload.measure(completed.stdout, wall_seconds))
            details = workload.details(completed.stdout)
            if details:
                details["harness_wall_seconds"] = wall_seconds
            for key, value in details.items():
                measurement.details.setdefault(key, []).append(value)
        except subprocess.TimeoutExpired:
            measurement.status = "failed"
            measurement.error = f"timed out after {self.plan.timeout:g} s"
        except (WorkloadError, OSError, ValueError) as error:
            measurement.status = "failed"
            measurement.error = str(error)
