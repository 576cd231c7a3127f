"""Pieces of the commands that need no session: argument rewriting, statistics, output."""

from __future__ import annotations

import io

from vufuse.cli import _expand_bare_debug
from vufuse.commands import print_mounts, print_stats
from vufuse.control import LATENCY_SAMPLES, OpcodeStats, RequestStats


def test_bare_debug_before_the_command_only() -> None:
    assert _expand_bare_debug(["run", "--debug", "ls", "--debug"]) == [
        "run", "--debug=-", "ls", "--debug"]  # fmt: skip
    assert _expand_bare_debug(["--debug", "run", "--", "--debug"]) == [
        "--debug=-", "run", "--", "--debug"]  # fmt: skip
    assert _expand_bare_debug(["run", "--debug=f", "x"]) == ["run", "--debug=f", "x"]
    assert _expand_bare_debug(["mount", "prog", "--debug"]) == ["mount", "prog", "--debug"]


def test_percentiles() -> None:
    stats = OpcodeStats()
    for micro in range(1, 101):
        stats.add(micro / 1e6, failed=micro % 10 == 0)
    summary = stats.summary()
    assert summary["count"] == 100 and summary["errors"] == 10
    assert summary["p50_us"] == 51.0 and summary["p99_us"] == 100.0
    assert summary["max_us"] == 100.0


def test_latency_samples_are_bounded() -> None:
    stats = OpcodeStats()
    for _ in range(LATENCY_SAMPLES + 10):
        stats.add(0.001, failed=False)
    assert len(stats.latencies) == LATENCY_SAMPLES and stats.count == LATENCY_SAMPLES + 10


def test_output_formats() -> None:
    requests = RequestStats()
    requests.record("LOOKUP", 0.0002, failed=True)
    requests.background["FORGET"] = 2
    out = io.StringIO()
    print_stats({"syscalls": {"notifications": 5, "fast_continue": 3, "queued": 2},
                 "mounts": [requests.summary() | {"mountpoint": "/m"}]}, out)  # fmt: skip
    text = out.getvalue()
    assert "syscalls trapped: 5  fast path (C): 3  slow path (Python): 2" in text
    assert "LOOKUP" in text and "FORGET" in text and "/m\n" in text
    out = io.StringIO()
    print_mounts([], out)
    assert out.getvalue() == "no FUSE mounts\n"
