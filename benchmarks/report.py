"""``docs/performance.md`` and ``docs/performance.png`` from a results document.

The report reads nothing but the JSON, so the committed copy regenerates the committed page
exactly (``python -m benchmarks --render FILE``); nothing on the page is typed by hand.
"""

from __future__ import annotations

import datetime
import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.results import format_quantity

MET_WORDS = {True: "**met**", False: "**not met**", None: "not measured"}
METRIC_WORDS = {
    "ns_per_call": "ns/call",
    "wall_seconds": "wall time",
    "cold_ns_per_file": "per file",
    "warm_ns_per_file": "per file",
    "seconds": "command time inside the session",
}
FUSE_BACKENDS = ("kernel-fuse", "vufuse-fuse")
COUNTERS = ("notifications", "fast_continue", "queued")
PROFILE_NOTES = Path(__file__).resolve().parent / "where-the-time-goes.md"
"""Hand-written findings of profiling a vufuse-fuse session (py-spy), included verbatim."""


def _by_name(items: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in items}


def _measurement_index(document: dict[str, Any]) -> dict[tuple[str, str, str], dict[str, Any]]:
    return {(m["workload"], m["backend"], m["placement"]): m for m in document["measurements"]}


def _cell(measurement: dict[str, Any] | None, unit: str, backend: str) -> str:
    """Median (min) and the ratio of medians: the two numbers a reader compares."""
    if measurement is None:
        return "—"
    if measurement["status"] == "unavailable":
        return "unavailable"
    if measurement["status"] == "failed":
        return "failed"
    text = (
        f"{format_quantity(measurement['median'], unit)}"
        f" ({format_quantity(measurement['min'], unit)})"
    )
    if backend != "native" and measurement["ratio_median"] is not None:
        text += f"<br>**{measurement['ratio_median']:.2f}×**"
        if measurement.get("ratio_net_median") is not None:
            text += f"<br>{measurement['ratio_net_median']:.2f}× net of start-up"
    if backend not in ("native", "kernel-fuse") and measurement.get("ratio_kernel_fuse_median"):
        text += f"<br>**{measurement['ratio_kernel_fuse_median']:.2f}× kernel FUSE**"
    return text


def _median(values: Sequence[float]) -> float | None:
    ordered = sorted(values)
    if not ordered:
        return None
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def _fuse_costs(document: dict[str, Any], placement: str) -> list[str]:
    """Mount, unmount, session overhead and vufuse's counters of the FUSE runs (medians)."""
    rows = []
    units = {w["name"]: w["unit"] for w in document["workloads"]}
    for measurement in document["measurements"]:
        details = measurement.get("details") or {}
        if measurement["placement"] != placement or measurement["backend"] not in FUSE_BACKENDS:
            continue
        if measurement["status"] != "ok" or "harness_wall_seconds" not in details:
            continue
        walls = details["harness_wall_seconds"]
        # The command's own time: a detail, or the sample itself when it is the metric.
        inner = details.get("seconds") or (
            measurement["samples"] if units.get(measurement["workload"]) == "s" else []
        )
        mounts = details.get("mount_seconds", [0.0] * len(walls))
        unmounts = details.get("unmount_seconds", [0.0] * len(walls))
        overheads = [
            wall - command - mount - unmount
            for wall, command, mount, unmount in zip(walls, inner, mounts, unmounts, strict=False)
        ]
        counters = []
        for counter in COUNTERS:
            values = details.get(f"vufuse_stats_{counter}")
            if values:
                counters.append(f"{counter} {_median(values):,.0f}")
        rows.append(
            f"| {measurement['workload']} | {measurement['backend']}"
            f" | {format_quantity(_median(walls), 's')}"
            f" | {format_quantity(_median(inner), 's') if inner else 'n/a'}"
            f" | {format_quantity(_median(mounts), 's')}"
            f" | {format_quantity(_median(unmounts), 's')}"
            f" | {format_quantity(_median(overheads), 's') if overheads else 'n/a'}"
            f" | {', '.join(counters) or '—'} |"
        )
    if not rows:
        return []
    return [
        "Where each FUSE run's wall time went (medians over the runs): the harness's wall time"
        " around the whole command; the command itself as `timed_run` measured it inside the"
        " session (for the stat rows this includes both passes); the mount (daemon start until"
        " its foreground process exits) and `fusermount3 -u`; the rest (session start-up,"
        " process start, teardown; for vufuse-fuse about the fixed cost of a `vufuse run`);"
        " and, for vufuse-fuse, the C core's counters for the whole session (`Tracer.stats()`:"
        " seccomp notifications received, answered CONTINUE in C, queued to Python).",
        "",
        "| workload | backend | harness wall | command | mount | unmount | rest"
        " | vufuse counters |",
        "|---|---|---|---|---|---|---|---|",
        *rows,
    ]


def _per(total: float | None, count: float | None) -> float | None:
    return None if total is None or not count else total / count


def _time_breakdown(document: dict[str, Any], placement: str) -> list[str]:
    """Where vufuse-fuse's time goes, per workload: traps, fast path, latency, Python time."""
    rows = []
    for measurement in document["measurements"]:
        details = measurement.get("details") or {}
        if (
            measurement["placement"] != placement
            or measurement["backend"] != "vufuse-fuse"
            or measurement["status"] != "ok"
            or "vufuse_time_session_ns" not in details
        ):
            continue

        def median(name: str, details: dict[str, list[float]] = details) -> float | None:
            return _median(details.get(name, []))

        traps, fast = median("vufuse_stats_notifications"), median("vufuse_stats_fast_continue")
        queued, session = median("vufuse_stats_queued"), median("vufuse_time_session_ns")
        share = _per(fast, traps)
        rate = _per(traps, None if session is None else session / 1e9)
        latency = _per(median("vufuse_time_latency_ns"), median("vufuse_time_latency_count"))
        handler = _per(median("vufuse_time_handler_ns"), median("vufuse_time_handled"))
        python_cpu = _per(median("vufuse_time_python_cpu_ns"), queued)
        process_cpu = _per(median("vufuse_time_process_cpu_ns"), queued)
        rows.append(
            f"| {measurement['workload']} | {traps or 0:,.0f} | {rate or 0:,.0f}"
            f" | {'n/a' if share is None else f'{share:.0%}'} | {queued or 0:,.0f}"
            f" | {format_quantity(latency, 'ns')} | {format_quantity(handler, 'ns')}"
            f" | {format_quantity(python_cpu, 'ns')} | {format_quantity(process_cpu, 'ns')} |"
        )
    if not rows:
        return []
    return [
        "",
        "Where the time goes for vufuse-fuse (medians over the runs, whole session: daemon,"
        " mount, command and unmount). *traps*: seccomp notifications; *per s*: over the"
        " session's wall time; *fast path*: the share answered CONTINUE by the C core without"
        " Python; *queued*: handed to Python. *Trap to answer*: mean, over the queued ones, from"
        " the C listener reading the notification (its `received_ns` stamp) to Python's answer;"
        " *handler*: of that, the mean time inside `Session.handle` (the rest is the wait for"
        " the trio loop). *Python CPU*: the supervisor thread's CPU time"
        " (`time.thread_time`) over the session per queued trap; *process CPU*: the whole"
        " supervisor's (C listener thread included) per queued trap. Measured by"
        " `benchmarks/vufuse_run.py`, which wraps `Session.handle` (one extra coroutine per"
        " queued trap).",
        "",
        "| workload | traps | per s | fast path | queued | trap to answer | handler"
        " | Python CPU / queued | process CPU / queued |",
        "|---|---|---|---|---|---|---|---|---|",
        *rows,
    ]


def _target_value(target: dict[str, Any]) -> str:
    value = target["value"]
    if value is None:
        return "n/a"
    if target["unit"] == "ns":
        return f"+{format_quantity(value, 'ns')}" if value >= 0 else format_quantity(value, "ns")
    if target["unit"] == "ns per file":
        return f"{format_quantity(value, 'ns')} per file"
    text = f"{value:.2f}{target['unit']}"
    _, _, extra = target["detail"].partition(";")
    return f"{text} ({extra.strip()})" if extra else text


def _target_how(target: dict[str, Any]) -> str:
    """How a target's value was computed, without the run-specific part of the detail."""
    return f"{target['id']}: {target['detail'].split(';')[0]}"


def _target_threshold(target: dict[str, Any]) -> str:
    # Documents older than the ``direction`` field only had one "more than" target.
    more = target.get("direction", "more than" if target["id"] == "tar-vs-proot" else "at most")
    sign = ">" if more == "more than" else "≤"
    if target["unit"] == "ns":
        return f"{sign} +{format_quantity(target['threshold'], 'ns')}"
    if target["unit"] == "× faster":
        return f"{sign} {target['threshold']:.0f}× faster"
    if target["unit"] == "ns per file":
        return f"{sign} {format_quantity(target['threshold'], 'ns')} per file"
    if target["unit"] == "× kernel FUSE":
        return f"{sign} {target['threshold']:.1f}× kernel FUSE"
    return f"{sign} {target['threshold']:.1f}× native"


def render_markdown(document: dict[str, Any], source_name: str, chart_name: str | None) -> str:
    """The whole of ``docs/performance.md`` for ``document``."""
    backends = document["backends"]
    workloads = document["workloads"]
    placements = document["placements"]
    index = _measurement_index(document)
    created = datetime.datetime.fromisoformat(document["created"].replace("Z", "+00:00"))
    lines = [
        "# Performance",
        "",
        f"<!-- Generated by `python -m benchmarks` from `{source_name}`."
        " Do not edit: rerun the benchmark, or `python -m benchmarks --render FILE`. -->",
        "",
        f"Measured {created:%Y-%m-%d %H:%M} UTC"
        f"{' (QUICK smoke run: sizes too small to mean anything)' if document['quick'] else ''}."
        " Every ratio is to native in the same run and at the same CPU placement; never"
        " compare numbers across runs or placements.",
        "",
        "## Targets",
        "",
        "Evaluated on medians: the first four (hypervisor-core issue) for `vufuse run` with no"
        " virtual mount, the FUSE ones (read path and write path issues) for `vufuse-fuse`"
        " (libfuse's `passthrough_ll` mounted inside `vufuse run`) against `kernel-fuse` (the"
        " same daemon on the kernel's FUSE) in the same run. *met* is computed from the measured"
        " value and the threshold; a failed or unavailable measurement is *not measured*.",
        "",
        "| target | placement | measured | threshold | result |",
        "|---|---|---|---|---|",
    ]
    for target in document["targets"]:
        lines.append(
            f"| {target['description']} | {target['placement']} | {_target_value(target)}"
            f" | {_target_threshold(target)} | {MET_WORDS[target['met']]} |"
        )
    lines += [
        "",
        "Measured as: " + "; ".join(sorted({_target_how(t) for t in document["targets"]})) + ".",
    ]
    for placement in placements:
        lines += ["", f"## Results, {placement['name']}: {placement['description']}", ""]
        if not placement["available"]:
            lines.append(f"Not measured: {placement['reason']}.")
            continue
        fuse_workloads = {
            m["workload"] for m in document["measurements"] if m["backend"] in FUSE_BACKENDS
        }
        other_backends = {b["name"] for b in backends} - set(FUSE_BACKENDS) - {"native"}
        real_work = {
            m["workload"]
            for m in document["measurements"]
            if m["workload"] in fuse_workloads and m["backend"] in other_backends
        }
        real_work_backends = {
            m["backend"] for m in document["measurements"] if m["workload"] in real_work
        }
        tables = [
            (
                "Each cell: median (min) over the repetitions; in bold, the ratio of medians to"
                " native; for wall times, also that ratio after subtracting each backend's own"
                " session start-up median. “—”: the backend is not meant for that workload.",
                [w for w in workloads if w["name"] not in fuse_workloads],
                [b for b in backends if b["name"] not in FUSE_BACKENDS],
            ),
            (
                "FUSE: native on the source tree (tmpfs), `kernel-fuse` and"
                " `vufuse-fuse` on a fresh `passthrough_ll` mount of it in every run. Each cell:"
                " median (min); in bold, the ratio of medians to native and, for vufuse-fuse, to"
                " kernel FUSE. Times are the command's own, measured inside the session by"
                " `timed_run`: session start-up and mount excluded (see the next tables). Every"
                " write run is checked afterwards on the real files (sizes, contents): a run"
                " whose bytes did not land counts as failed.",
                [w for w in workloads if w["name"] in fuse_workloads - real_work],
                [b for b in backends if b["name"] == "native" or b["name"] in FUSE_BACKENDS],
            ),
            (
                "Real work, on a real directory (native, `vufuse` with no mount, `proot`) and on"
                " the `passthrough_ll` mount (`kernel-fuse`, `vufuse-fuse`), timed inside the"
                " session by `timed_run` like the FUSE rows. Ratios to native; vufuse-fuse also"
                " to kernel FUSE.",
                [w for w in workloads if w["name"] in real_work],
                [b for b in backends if b["name"] in real_work_backends],
            ),
        ]
        for caption, table_workloads, columns in tables:
            if not table_workloads:
                continue
            lines += [
                caption,
                "",
                "| workload | " + " | ".join(b["name"] for b in columns) + " |",
                "|---|" + "---|" * len(columns),
            ]
            for workload in table_workloads:
                metric = METRIC_WORDS.get(workload["metric"], workload["metric"])
                row = [f"{workload['title']}, {metric}"]
                for backend in columns:
                    measurement = index.get((workload["name"], backend["name"], placement["name"]))
                    row.append(_cell(measurement, workload["unit"], backend["name"]))
                lines.append("| " + " | ".join(row) + " |")
            lines.append("")
        lines += _fuse_costs(document, placement["name"])
        lines += _time_breakdown(document, placement["name"])
    if chart_name:
        lines += ["", f"![Ratios of medians to native, per placement]({chart_name})"]
    lines += ["", "## Backends", ""]
    for backend in backends:
        version = f" ({backend['version']})" if backend["version"] else ""
        state = "" if backend["available"] else f" — **unavailable**: {backend['reason']}"
        lines.append(f"- `{backend['name']}`{version}: {backend['description']}{state}")
    if PROFILE_NOTES.exists():
        lines += ["", PROFILE_NOTES.read_text().strip()]
    failures = [m for m in document["measurements"] if m["status"] == "failed"]
    failures += [
        {"workload": w["name"], "backend": "all", "placement": "all", "error": w["error"]}
        for w in workloads
        if w["error"]
    ]
    if failures:
        lines += ["", "## Failures", ""]
        for failure in failures:
            error = " ".join(str(failure["error"]).split())
            lines.append(
                f"- {failure['workload']} / {failure['backend']} / {failure['placement']}: {error}"
            )
    lines += ["", "## How measured", "", _how_measured(document)]
    lines += [
        "",
        "## Regenerating",
        "",
        "`python -m benchmarks` (or `make bench`) runs everything and rewrites this page, the"
        " chart and `benchmarks/results/performance.json`; `python -m benchmarks --help` lists"
        " the options (`--workloads`, `--backends`, `--placement`, `--repetitions`, `--quick`).",
        "",
    ]
    return "\n".join(lines)


def _parameter(value: object) -> str:
    """A parameter as a reader wants it: commands as shell lines, sizes with separators."""
    if isinstance(value, list):
        return f"`{shlex.join(str(item) for item in value)}`"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _how_measured(document: dict[str, Any]) -> str:
    machine = document["machine"]
    kind = "a virtual machine" if machine["virtual_machine"] else "bare metal"
    repetitions = ", ".join(f"{w['name']} {w['repetitions']}" for w in document["workloads"])
    parameters = "; ".join(
        f"{w['name']}: "
        + ", ".join(
            f"{key} {_parameter(value)}" for key, value in w["parameters"].items() if key != "tar"
        )
        for w in document["workloads"]
        if w["parameters"]
    )
    placements = "; ".join(f"*{p['name']}*: {p['description']}" for p in document["placements"])
    return (
        f"On {kind}: {machine['cpus']} × {machine['cpu_model']}, {machine['memory_mib']} MiB,"
        f" Linux {machine['kernel']} ({machine['os']}); 1-minute load average"
        f" {machine['load_average_at_start'][0]:.2f} at start,"
        f" {machine.get('load_average_at_end', [float('nan')])[0]:.2f} at end. The run took"
        f" {document['duration_seconds']:.0f} s. CPU placement: {placements}. Each workload"
        f" was repeated ({repetitions} runs per backend and placement), the runs interleaved"
        " across backends so drift of the machine spreads over every column; min and median"
        " are over those runs. Loop workloads (getppid, stat) are small C programs compiled"
        f" with `-O2` by {machine.get('compiler') or 'the C compiler'} in the run; they time"
        " their own loop (after a 10% warm-up)"
        " with CLOCK_MONOTONIC and exclude start-up. Wall-time workloads are timed by the"
        " harness around the whole command, backend start-up included (the session start-up"
        " row is that fixed cost). Files live in a fresh directory under"
        f" `{document['scratch']['root']}` ({document['scratch']['filesystem']}), which keeps"
        " disk writeback out of a measurement of syscall overhead; the tar destination is"
        f" emptied and `sync` run before each extraction. Sizes: {parameters}."
        " FUSE workloads: libfuse's `passthrough_ll -o source=SRC -o timeout=60 MNT` (`cache=auto`"
        " data caching; a 60 s entry/attribute timeout on both sides, so that nothing expires"
        " within a run: with the default 1 s a cold pass slower than 1 s leaves the warm pass"
        " nothing cached), the same binary on both sides; every run"
        " mounts a fresh instance and unmounts it (`timed_run` does both around the command,"
        " inside the backend's session, so vufuse-fuse's daemon and workload share one"
        " `vufuse run` session). The figure is the command's own wall time, or the stat"
        " program's per-pass time, taken inside the session: the ~0.15 s start-up of a vufuse"
        " session and the mount are excluded from it and reported apart. The FUSE sources are"
        " hard links to one shared copy on the scratch tmpfs, so native reads hit the page cache"
        " as FUSE's daemon does."
    )


BACKEND_COLOURS = {
    "vufuse": "tab:blue",
    "vufuse-mounted": "tab:cyan",
    "proot": "tab:green",
    "kernel-fuse": "tab:orange",
    "vufuse-fuse": "tab:purple",
}


def _target_ratios(document: dict[str, Any], placement: str) -> dict[str, float]:
    """Each target as a ratio to native on its workload's axis, for the chart's red marks."""
    index = _measurement_index(document)
    ratios: dict[str, float] = {}
    for target in document["targets"]:
        if target["placement"] != placement:
            continue
        if target["id"] == "untrapped":
            ratios["getppid"] = target["threshold"]
        elif target["id"] == "tar-vs-native":
            ratios["tar-xf"] = target["threshold"]
        elif target["id"] == "trapped-fast-path":
            native = index.get(("stat", "native", placement))
            if native and native["median"]:
                ratios["stat"] = (native["median"] + target["threshold"]) / native["median"]
        elif target["unit"] == "× kernel FUSE":
            kernel = index.get((target["id"], "kernel-fuse", placement))
            if kernel and kernel["ratio_median"]:
                ratios[target["id"]] = target["threshold"] * kernel["ratio_median"]
        elif target["id"] == "fuse-stat-warm":
            native = index.get(("fuse-stat-warm", "native", placement))
            if native and native["median"]:
                ratios["fuse-stat-warm"] = target["threshold"] / native["median"]
    return ratios


def render_chart(document: dict[str, Any], path: Path) -> bool:
    """Draw the ratios of medians to native, one panel per placement; False if no matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as pyplot
    except ImportError:
        return False
    placements = [p for p in document["placements"] if p["available"]]
    workloads = document["workloads"]
    backends = [b["name"] for b in document["backends"] if b["name"] != "native"]
    index = _measurement_index(document)
    panels = max(len(placements), 1)
    width = max(8.0, 0.6 * len(workloads))
    figure, axes_list = pyplot.subplots(panels, 1, figsize=(width, 5.2 * panels), squeeze=False)
    for axes, placement in zip(axes_list[:, 0], placements, strict=False):
        labelled: set[str] = set()
        targets = _target_ratios(document, placement["name"])
        for position, workload in enumerate(workloads):
            # Only the backends meant for this workload share its slot, so no gaps.
            present = [
                (backend, index[(workload["name"], backend, placement["name"])])
                for backend in backends
                if (workload["name"], backend, placement["name"]) in index
            ]
            width = 0.8 / max(len(present), 1)
            for offset, (backend, measurement) in enumerate(present):
                x = position + (offset - (len(present) - 1) / 2) * width
                ratio = measurement["ratio_median"]
                if ratio is None:
                    axes.annotate(
                        f"{backend}: {measurement['status']}",
                        (x, 1.0),
                        ha="center",
                        va="bottom",
                        fontsize=6,
                        rotation=90,
                    )
                    continue
                axes.bar(
                    x,
                    ratio,
                    width,
                    color=BACKEND_COLOURS.get(backend),
                    label=None if backend in labelled else backend,
                )
                labelled.add(backend)
                axes.annotate(f"{ratio:.3g}×", (x, ratio), ha="center", va="bottom", fontsize=7)
            if workload["name"] in targets:
                axes.hlines(
                    targets[workload["name"]],
                    position - 0.45,
                    position + 0.45,
                    colors="red",
                    linestyles="dashed",
                    label=None if "target" in labelled else "target (vufuse)",
                )
                labelled.add("target")
        axes.axhline(1.0, color="black", linewidth=0.8)
        axes.set_yscale("log")
        axes.set_xticks(range(len(workloads)))
        axes.set_xticklabels([w["name"] for w in workloads], rotation=20, ha="right")
        axes.set_ylabel("median / native median (log scale)")
        axes.set_title(placement["name"])
        axes.legend(fontsize=8)
    figure.suptitle(f"vufuse benchmarks, {document['created']}: ratio to native, lower is better")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    pyplot.close(figure)
    return True


def write_docs(
    document: dict[str, Any], markdown_path: Path, chart_path: Path, source: str
) -> None:
    """Write the chart, then the page that links it (without the link if no chart was made)."""
    has_chart = render_chart(document, chart_path)
    markdown = render_markdown(document, source, chart_path.name if has_chart else None)
    markdown_path.parent.mkdir(parents=True, exist_ok=True)
    markdown_path.write_text(markdown)
