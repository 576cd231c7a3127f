"""Turning workload output into something comparable across filesystems.

Two directories that hold the same files still differ in what ``ls -l`` prints: times, block
totals, directory sizes and link counts are properties of the filesystem, not of the content,
and paths differ between the mount and the reference. These functions remove exactly those
differences and nothing else, so a difference that survives is one a user would notice.
Pure functions: unit-tested without FUSE (tests/compat/test_harness.py).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

# `ls -l --time-style=+T` prints the literal T where the time would be, which keeps the line
# splittable whatever the locale: MODE LINKS OWNER GROUP SIZE-or-"MAJ, MIN" T NAME.
_LS_ENTRY = re.compile(
    r"^(?P<mode>[-bcdlps][-rwxsStT]{9})[.+@]?\s+(?P<links>\d+)\s+(?P<owner>\S+)\s+(?P<group>\S+)\s+"
    r"(?P<size>\d+|\d+,\s*\d+)\s+T\s(?P<name>.*)$"
)
_LS_TOTAL = re.compile(r"^total \d+$")


def substitute_paths(text: str, paths: Mapping[str, str]) -> str:
    """Replace each absolute path in *paths* by its placeholder, longest first.

    Longest first, so ``/w/mnt/src`` becomes ``<ROOT>`` before ``/w/mnt`` could turn it into
    ``<MNT>/src``.
    """
    for path in sorted(paths, key=len, reverse=True):
        if path:
            text = text.replace(path, paths[path])
    return text


def normalise_ls(text: str, keep_owner: bool = False) -> str:
    """Normalise ``ls -lR --time-style=+T`` output.

    Drops ``total`` lines (block usage), link counts (directories' vary by filesystem), the
    size of directories (4096 on ext4, entry-count based elsewhere), and owner/group unless
    *keep_owner* (they depend on who mounted, which is the backend's business, not the data's).
    Keeps the file type, permission bits, sizes of non-directories, names and symlink targets.
    """
    lines = []
    for line in text.splitlines():
        if _LS_TOTAL.match(line):
            continue
        entry = _LS_ENTRY.match(line)
        if entry is None:
            lines.append(line)
            continue
        mode = entry["mode"]
        size = "-" if mode.startswith("d") else re.sub(r",\s*", ",", entry["size"])
        owner = f" {entry['owner']}:{entry['group']}" if keep_owner else ""
        lines.append(f"{mode}{owner} {size} {entry['name']}")
    return "\n".join(lines) + ("\n" if lines else "")


def normalise_sorted(text: str) -> str:
    """Sort lines bytewise: for output whose order is the filesystem's readdir order."""
    lines = sorted(text.splitlines())
    return "\n".join(lines) + ("\n" if lines else "")


def drop_lines(text: str, patterns: Iterable[str]) -> str:
    """Remove lines matching any of *patterns* (regular expressions, searched)."""
    compiled = [re.compile(pattern) for pattern in patterns]
    kept = [line for line in text.splitlines() if not any(p.search(line) for p in compiled)]
    return "\n".join(kept) + ("\n" if kept else "")


@dataclass(frozen=True)
class Comparison:
    """The verdict on one workload: equal or not, and a short human reason when not."""

    equal: bool
    reason: str = ""


def compare_outputs(
    mounted: str,
    reference: str,
    mounted_status: int,
    reference_status: int,
    mounted_stderr: str = "",
    context_lines: int = 3,
) -> Comparison:
    """Compare a workload's normalised output and exit status on the mount vs the reference.

    The reason names the first thing a reader needs: the exit status and the first stderr line
    when those differ, else the first few lines of a unified diff (reference → mount).
    """
    if mounted_status != reference_status:
        first_error = first_meaningful_line(mounted_stderr)
        what = describe_status(mounted_status)
        reason = f"{what} (reference: exit {reference_status})"
        if first_error:
            reason += f": {first_error}"
        return Comparison(False, reason)
    if mounted == reference:
        return Comparison(True)
    diff = [
        line
        for line in difflib.unified_diff(
            reference.splitlines(), mounted.splitlines(), "reference", "mount", n=0, lineterm=""
        )
        if not line.startswith(("---", "+++", "@@"))
    ]
    shown = "; ".join(diff[:context_lines])
    more = f" (+{len(diff) - context_lines} more lines)" if len(diff) > context_lines else ""
    return Comparison(False, f"output differs: {shown}{more}")


def describe_status(status: int) -> str:
    """Say what an exit status from ``timeout CMD`` means (124/137: our time limit hit)."""
    if status == 124:
        return "timed out"
    if status == 137:
        return "killed after timing out"
    if status > 128:
        return f"killed by signal {status - 128}"
    return f"exit {status}"


_NOISE = (
    re.compile(r"^\s*$"),
    re.compile(r"Ignoring invalid max threads value"),
)
# Go's log prefix (rclone, gocryptfs): a date and time that would make every reason unique.
_LOG_STAMP = re.compile(r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d(\.\d+)?\s+")


def first_meaningful_line(text: str, limit: int = 240) -> str:
    """The line of an error output that best says what went wrong, shortened to *limit*.

    Skips blank lines, known harmless chatter and log time stamps. A Python traceback says
    little by itself ("RuntimeError: 1" from fusepy): what libfuse printed before it is the
    cause, so both are given, the cause first.
    """
    lines = [_LOG_STAMP.sub("", line.strip()) for line in text.splitlines()]
    lines = [line for line in lines if not any(p.search(line) for p in _NOISE)]
    if not lines:
        return ""
    traceback = next((i for i, line in enumerate(lines) if line.startswith("Traceback")), None)
    if traceback is None:
        return lines[0][:limit]
    exceptions = [
        line for line in lines[traceback:] if re.match(r"^[\w.]+(Error|Exception)\b", line)
    ]
    before = lines[0] if traceback > 0 else ""
    exception = exceptions[-1] if exceptions else ""
    if before and exception:
        return f"{before} ({exception})"[:limit]
    return (before or exception or lines[0])[:limit]


_SUBTEST = re.compile(r"^\s*(?P<number>\d+)\s+\[(?P<name>[^\]]*)\]\s*(?P<rest>.*)$")


@dataclass(frozen=True)
class SyscallSuite:
    """What one run of libfuse's test_syscalls reported."""

    executed: int
    failed: tuple[str, ...]
    last: int = 0
    """The number of the last subtest that printed a verdict (0: none)."""

    @property
    def passed(self) -> int:
        """Subtests that printed OK."""
        return self.executed - len(self.failed)


def parse_test_syscalls(output: str) -> SyscallSuite:
    """Count the subtests test_syscalls ran and name those that did not end in OK.

    Each subtest prints `` N [name] OK`` (or an error text instead of OK); failures may add
    lines of detail, which are not subtests and are not counted.
    """
    seen: dict[str, str] = {}
    for line in output.splitlines():
        match = _SUBTEST.match(line)
        if match is None:
            continue
        number, rest = match["number"], match["rest"].strip()
        # A failing subtest may print several prefixed lines; its first error is its verdict.
        if number not in seen or (seen[number].endswith("OK") and not rest.endswith("OK")):
            seen[number] = f"{number} [{match['name']}] {rest}".strip()
    failed = tuple(line for line in seen.values() if not line.endswith("OK"))
    return SyscallSuite(len(seen), failed, max(map(int, seen), default=0))
