"""Results JSON and docs/compatibility.md.

The JSON keeps every row of the latest run of each backend (a run of one backend or a few
programs replaces only its own rows), so the document always shows both backends. The
document is for a user deciding whether their program works: one table per backend, a symbol
per cell, and below it the reason for every cell that is not a pass.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from .model import Row, Status

SYMBOL = {
    Status.PASS: "✅",
    Status.FAIL: "❌",
    Status.UNSUPPORTED: "🚧",
    Status.SKIPPED: "⏭️",
    Status.ERROR: "⚠️",
}
NOT_APPLICABLE = "–"

# The results file as JSON gives it: {"generated", "runs": {backend: {...}}, "rows": [...]}
Document = dict[str, Any]


def load(path: Path) -> Document:
    """The stored results, or an empty document."""
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {"rows": [], "runs": {}}
    data.setdefault("rows", [])
    data.setdefault("runs", {})
    return data


def merge(previous: Document, rows: Sequence[Row], runs: dict[str, dict[str, Any]]) -> Document:
    """Replace the rows of the (program, backend) pairs just run; keep every other row."""
    fresh = {(row.program, row.backend) for row in rows}
    kept = [
        Row.from_json(data)
        for data in previous.get("rows", [])
        if (data["program"], data["backend"]) not in fresh
    ]
    all_runs = dict(previous.get("runs", {}))
    all_runs.update(runs)
    merged = sorted([*kept, *rows], key=lambda row: (row.backend, row.program))
    return {
        "generated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "runs": all_runs,
        "rows": [row.to_json() for row in merged],
    }


def save(path: Path, document: Document) -> None:
    """Write the results JSON (pretty, stable order, so diffs between runs read well)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n")


def counts(rows: Iterable[Row]) -> dict[str, int]:
    """How many rows have each status."""
    tally: dict[str, int] = {}
    for row in rows:
        tally[str(row.status)] = tally.get(str(row.status), 0) + 1
    return tally


def _cell(row: Row) -> str:
    """A status symbol; the suites (test_syscalls, pyfuse3's) add "OK/run" for the count seen."""
    symbol = SYMBOL[row.status]
    executed = row.details.get("executed")
    failed = row.details.get("failed")
    if isinstance(executed, int) and executed:
        failures = len(failed) if isinstance(failed, list) else 0
        hung = " + hang" if "hung_after" in row.details else ""
        return f"{symbol} {executed - failures}/{executed}{hung}"
    return symbol


def render_markdown(
    document: Document,
    column_order: Sequence[str],
    program_order: Sequence[str],
    descriptions: dict[str, str],
) -> str:
    """docs/compatibility.md from a results document."""
    rows = [Row.from_json(data) for data in document["rows"]]
    runs: dict[str, dict[str, Any]] = document.get("runs", {})
    lines = [
        "# Compatibility",
        "",
        "Real FUSE programs, mounted and used with real commands, on two backends:",
        "",
        "- **kernel** — the real kernel FUSE, as root: the reference behaviour.",
        "- **vufuse** — the same program inside `vufuse run` as an ordinary user for whom",
        "  `/dev/fuse` is not openable.",
        "",
        "Each workload runs the same commands on the mount and on a plain directory holding what",
        "the mount should show; a cell passes when outputs (normalised for times, link counts,",
        "block totals, directory sizes and owners) and exit statuses agree. `test_syscalls` is",
        "libfuse's own syscall test (subtests OK / run). `mount`/`unmount`: the mount came up;",
        "`fusermount3 -u` worked and the daemon then exited 0 by itself.",
        "",
        f"Legend: {SYMBOL[Status.PASS]} pass · {SYMBOL[Status.FAIL]} fail · "
        f"{SYMBOL[Status.UNSUPPORTED]} not yet supported (could not mount) · "
        f"{SYMBOL[Status.SKIPPED]} skipped (program not installed) · "
        f"{SYMBOL[Status.ERROR]} harness error · {NOT_APPLICABLE} not applicable "
        "(write workloads on read-only mounts; python/git need the fixture tree).",
        "",
        "Regenerate: `python3 compat-tests/run.py` as root (`compat-tests/setup.sh` installs",
        "what it drives); results JSON: `compat-tests/results/latest.json`.",
        f"Generated {document.get('generated', '?')}.",
        "",
    ]
    by_backend: dict[str, dict[str, dict[str, Row]]] = {}
    for row in rows:
        by_backend.setdefault(row.backend, {}).setdefault(row.program, {})[row.workload] = row
    for backend in ("kernel", "vufuse"):
        mine = [row for row in rows if row.backend == backend]
        if not mine:
            continue
        run = runs.get(backend, {})
        tally = counts(mine)
        summary = ", ".join(f"{count} {status}" for status, count in sorted(tally.items()))
        lines += [f"## Backend `{backend}`", ""]
        if run:
            lines += [
                f"Last run {run.get('finished', '?')} as `{run.get('user', '?')}`, "
                f"{run.get('seconds', '?')} s{' (--quick)' if run.get('quick') else ''}: "
                f"{summary}.",
                "",
            ]
        if backend != "kernel" and "kernel" in by_backend:
            lines += [_agreement(mine, by_backend["kernel"]), ""]
        present = {row.workload for row in mine}
        cols = [c for c in column_order if c in present]
        lines.append("| program | " + " | ".join(cols) + " |")
        lines.append("|---|" + "---|" * len(cols))
        by_program = by_backend[backend]
        ordered = [p for p in program_order if p in by_program]
        ordered += sorted(p for p in by_program if p not in program_order)
        for program in ordered:
            cells = by_program[program]
            line = " | ".join(_cell(cells[c]) if c in cells else NOT_APPLICABLE for c in cols)
            lines.append(f"| `{program}` | {line} |")
        lines += ["", f"### Why (backend `{backend}`)", ""]
        kernel_rows = by_backend.get("kernel") if backend != "kernel" else None
        notes = _reasons(ordered, by_program, cols, kernel_rows)
        lines += notes or ["Every row passed."]
        lines.append("")
    lines += ["## Programs", ""]
    for program in program_order:
        if program in descriptions:
            lines.append(f"- `{program}`: {descriptions[program]}")
    lines += ["", *METHOD, ""]
    return "\n".join(lines)


METHOD = [
    "## How a row is decided",
    "",
    "- One POSIX shell script per (program, backend) mounts the daemon in the foreground, waits",
    "  for the mount (30 s), runs the workloads, runs test_syscalls where it applies, and always",
    "  unmounts (`fusermount3 -u`, then `umount`, then a lazy detach) and stops the daemon.",
    "  Every step has a time limit (`timeout -k`); the harness kills anything left (by pid, found",
    "  through a marker in the environment) and detaches any mount under its workspace.",
    "- The kernel backend runs that script as root; the vufuse backend runs the very same",
    "  script as `runuser -u vufuse-test -- .venv/bin/vufuse run -- sh -c '<script>'`.",
    "  A mount that never comes up on vufuse is recorded as *not yet supported* with the",
    "  error the daemon (or vufuse) printed — never as a pass, never dropped.",
    "- The reference runs the same commands natively, as the same user, on a copy of the",
    "  fixture tree (for hello: the declared file; for demofs: a `cp -a` snapshot of the mount,",
    "  which checks consistency only). The ext4 image has its `lost+found` removed.",
    "- Fixture tree: text files, a 3 MiB binary, an empty file, names with spaces and UTF-8,",
    "  0600/0755 modes, a deep path, a hard link, symlinks to a file, a directory and nowhere,",
    "  and a copy",
    "  of Python's stdlib `json` package (the python workload imports it from the mount).",
    "- Read-only mounts get ls, find, cat, python, cp and tar; read-write mounts also write:",
    "  cp -a back in, tar x into the mount, a git repository (deterministic commit hashes),",
    "  and sqlite databases in rollback-journal and WAL mode (WAL needs shared mmap).",
    "- Not covered yet: owners and times are not compared (they depend on who mounted);",
    "  xattrs, ACLs, special files and concurrent access are not exercised;",
    "  test_syscalls runs without `-u` (the unlinked-file checks).",
]


def _agreement(rows: Sequence[Row], kernel: dict[str, dict[str, Row]]) -> str:
    """How much of what works on the kernel works here too: the number vufuse is chasing."""
    passing_on_kernel = [
        row
        for row in rows
        if kernel.get(row.program, {}).get(row.workload, row).status is Status.PASS
        and row.workload in kernel.get(row.program, {})
    ]
    also = sum(row.status is Status.PASS for row in passing_on_kernel)
    return (
        f"**{also} of the {len(passing_on_kernel)} rows that pass on the kernel pass here.** "
        "This backend runs as an ordinary user and the kernel reference as root, so a "
        "permission-dependent row can differ for that reason alone."
    )


def _reasons(
    ordered: Sequence[str],
    by_program: dict[str, dict[str, Row]],
    cols: Sequence[str],
    kernel: dict[str, dict[str, Row]] | None = None,
) -> list[str]:
    """One bullet per non-passing cell; a program whose rows all share one reason gets one.

    With *kernel* (the reference backend's rows), a failure the kernel shows too is marked, so
    a reader tells the program's own behaviour from vufuse's at a glance.
    """

    def also_on_kernel(row: Row) -> str:
        reference = (kernel or {}).get(row.program, {}).get(row.workload)
        if reference is not None and reference.status in (Status.FAIL, Status.ERROR):
            return " *(fails on kernel too)*"
        return ""

    notes = []
    for program in ordered:
        cells = [by_program[program][c] for c in cols if c in by_program[program]]
        bad = [row for row in cells if row.status is not Status.PASS]
        if not bad:
            continue
        first = bad[0]
        if all(row.status is first.status for row in cells) and first.status in (
            Status.UNSUPPORTED,
            Status.SKIPPED,
            Status.ERROR,
        ):
            notes.append(f"- `{program}` (all {len(cells)} rows): {_escape(first.reason)}")
            continue
        if first.workload == "mount" and all(row.reason == "not mounted" for row in bad[1:]):
            notes.append(
                f"- `{program}` / mount (so all {len(cells)} rows): {_escape(first.reason)}"
            )
            continue
        for row in bad:
            notes.append(
                f"- `{program}` / {row.workload}: {_escape(row.reason)}{also_on_kernel(row)}"
            )
    return notes


def _escape(text: str) -> str:
    """Keep a reason on its bullet line and stop it from turning into markdown."""
    return text.replace("\n", " ").replace("|", "\\|").replace("`", "'")
