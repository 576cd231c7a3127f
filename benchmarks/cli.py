"""The command line: ``python -m benchmarks [options]``.

A full run (no selection, not ``--quick``) regenerates ``docs/performance.md``,
``docs/performance.png`` and the committed ``benchmarks/results/performance.json`` they are made
from; every run writes ``benchmarks/results/latest.json`` (or ``--output``). Partial and quick runs
leave the docs alone unless ``--docs`` is given, so a smoke test can never overwrite real numbers.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.backends import REPOSITORY_ROOT, all_backends
from benchmarks.placement import PLACEMENTS
from benchmarks.report import write_docs
from benchmarks.results import format_quantity, read_document, write_document
from benchmarks.runner import Plan, Progress, Runner
from benchmarks.workloads import all_workloads

RESULTS_DIRECTORY = REPOSITORY_ROOT / "benchmarks" / "results"
LATEST_RESULTS = RESULTS_DIRECTORY / "latest.json"
PUBLISHED_RESULTS = RESULTS_DIRECTORY / "performance.json"
MARKDOWN = REPOSITORY_ROOT / "docs" / "performance.md"
CHART = REPOSITORY_ROOT / "docs" / "performance.png"


def _names(text: str, known: Sequence[str], kind: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in known]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown {kind}: {', '.join(unknown)} (known: {', '.join(known)})"
        )
    return names


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (also used by ``--help``)."""
    workload_names = list(all_workloads(quick=False))
    backend_names = list(all_backends())
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Compare native, `vufuse run`, proot and FUSE (kernel vs vufuse) on the same"
        " workloads in one run.",
    )
    parser.add_argument(
        "--workloads",
        type=lambda text: _names(text, workload_names, "workload"),
        help=f"comma-separated subset of: {', '.join(workload_names)} (default: all)",
    )
    parser.add_argument(
        "--backends",
        type=lambda text: _names(text, backend_names, "backend"),
        help=f"comma-separated subset of: {', '.join(backend_names)} (default: all;"
        " native is always added, it is every ratio's denominator)",
    )
    parser.add_argument(
        "--placement",
        choices=[*PLACEMENTS, "both"],
        default="both",
        help="CPU placement: pinned (taskset -c 0), unpinned, or both one after the other"
        " (default: both)",
    )
    parser.add_argument(
        "--repetitions",
        type=_positive,
        help="timed runs per backend and placement, for every workload",
    )
    parser.add_argument(
        "--quick", action="store_true", help="tiny sizes, one run each: a smoke test in seconds"
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=LATEST_RESULTS,
        help=f"results JSON (default: {LATEST_RESULTS})",
    )
    docs = parser.add_mutually_exclusive_group()
    docs.add_argument(
        "--docs",
        action="store_true",
        default=None,
        help="regenerate docs/performance.{md,png} even for a partial or quick run",
    )
    docs.add_argument("--no-docs", dest="docs", action="store_false", help="never touch docs/")
    parser.add_argument(
        "--render",
        type=Path,
        metavar="JSON",
        help="only regenerate docs/performance.{md,png} from an existing results file",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=180.0,
        help="seconds one run may take before it counts as failed (default 180: a vufuse-fuse"
        " `tar xf` into the mount takes 20-40 s on a loaded 2-CPU VM)",
    )
    parser.add_argument(
        "--scratch-root", type=Path, help="where workload files go (default: /dev/shm if tmpfs)"
    )
    parser.add_argument("--keep-scratch", action="store_true", help="keep the scratch directory")
    parser.add_argument("--vufuse", type=Path, help="the vufuse executable (default: .venv's)")
    parser.add_argument(
        "--list", action="store_true", help="list workloads and backends, then exit"
    )
    return parser


def _print_summary(document: dict[str, Any]) -> None:
    """A plain-text digest on stdout: medians, ratios, targets."""
    units = {w["name"]: w["unit"] for w in document["workloads"]}
    print(f"{'workload':<15} {'placement':<9} {'backend':<15} {'median':>10} {'min':>10} ratio")
    for m in document["measurements"]:
        if m["status"] != "ok":
            print(f"{m['workload']:<15} {m['placement']:<9} {m['backend']:<15} {m['status']}")
            continue
        ratio = f"{m['ratio_median']:.2f}x" if m["ratio_median"] is not None else ""
        if m.get("ratio_kernel_fuse_median") is not None and m["backend"] != "kernel-fuse":
            ratio += f" ({m['ratio_kernel_fuse_median']:.2f}x kernel FUSE)"
        median = format_quantity(m["median"], units[m["workload"]])
        minimum = format_quantity(m["min"], units[m["workload"]])
        print(
            f"{m['workload']:<15} {m['placement']:<9} {m['backend']:<15}"
            f" {median:>10} {minimum:>10} {ratio}"
        )
    words = {True: "met", False: "NOT MET", None: "not measured"}
    for target in document["targets"]:
        if target["value"] is None:
            value = "n/a"
        elif target["unit"] == "ns":
            value = "+" + format_quantity(target["value"], "ns")
        elif target["unit"] == "ns per file":
            value = format_quantity(target["value"], "ns") + " per file"
        else:
            value = f"{target['value']:.3g}{target['unit']}"
        verdict = words[target["met"]]
        print(f"target {target['id']:<18} {target['placement']:<9} {value:<22} {verdict}")


def _publish(document: dict[str, Any]) -> None:
    write_document(document, PUBLISHED_RESULTS)
    write_docs(document, MARKDOWN, CHART, str(PUBLISHED_RESULTS.relative_to(REPOSITORY_ROOT)))
    print(f"bench: wrote {MARKDOWN}, {CHART} and {PUBLISHED_RESULTS}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; 0 unless a measurement failed (an unavailable backend is no failure)."""
    arguments = build_parser().parse_args(argv)
    if arguments.render is not None:
        try:
            document = read_document(arguments.render)
        except (OSError, ValueError) as error:
            print(f"bench: cannot render {arguments.render}: {error}", file=sys.stderr)
            return 2
        write_docs(document, MARKDOWN, CHART, str(arguments.render))
        print(f"bench: wrote {MARKDOWN} and {CHART}", file=sys.stderr)
        return 0
    workloads = all_workloads(quick=arguments.quick)
    backends = all_backends(vufuse_executable=arguments.vufuse)
    if arguments.list:
        for workload in workloads.values():
            print(f"workload {workload.name:<15} {workload.title}")
        for backend in backends.values():
            print(f"backend  {backend.name:<15} {backend.description}")
        return 0
    selected_backends = arguments.backends or list(backends)
    if "native" not in selected_backends:
        selected_backends = ["native", *selected_backends]
    placements = list(PLACEMENTS) if arguments.placement == "both" else [arguments.placement]
    plan = Plan(
        workloads=[workloads[name] for name in arguments.workloads or workloads],
        backends=[backends[name] for name in backends if name in selected_backends],
        placements=[PLACEMENTS[name] for name in placements],
        quick=arguments.quick,
        repetitions=arguments.repetitions,
        timeout=arguments.timeout,
        scratch_root=arguments.scratch_root,
        keep_scratch=arguments.keep_scratch,
    )
    document = Runner(plan, Progress()).run()
    write_document(document, arguments.output)
    print(f"bench: wrote {arguments.output}", file=sys.stderr)
    _print_summary(document)
    full_run = not (
        arguments.quick
        or arguments.workloads
        or arguments.backends
        or arguments.repetitions is not None
        or arguments.placement != "both"
    )
    if arguments.docs if arguments.docs is not None else full_run:
        _publish(document)
    failed = [m for m in document["measurements"] if m["status"] == "failed"]
    return 1 if failed else 0
