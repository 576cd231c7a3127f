"""Load: 8 processes x 4 threads hammer one mount (memfs, our pyfuse3) for two bounded
rounds with a data-verifying workload (tests/reliability/load.py): no corruption, no
deadlock, and the hypervisor's memory stays bounded -- the second round does not grow it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from reliabilityhelp import run_session

pytestmark = pytest.mark.e2e

ROUND_SECONDS = 12


def test_eight_processes_four_threads_against_a_model(tmp_path: Path) -> None:
    run = run_session(f"""
        mkdir m; "$VUFUSE" mount "$PY" "$MEMFS" "$PWD/m"
        hypervisor=$("$VUFUSE" status --json \\
                     | "$PY" -c 'import json, sys; print(json.load(sys.stdin)["pid"])')
        "$PY" "$HERE/load.py" "$PWD/m" $hypervisor {ROUND_SECONDS} 8 4 9
        "$PY" "$HERE/load.py" "$PWD/m" $hypervisor {ROUND_SECONDS} 8 4 10
        "$VUFUSE" umount "$PWD/m"; echo "umount rc=$?"
    """, tmp_path, timeout=240)
    assert run.status == 0, run.output
    rounds = [json.loads(line) for line in run.output.splitlines() if line.startswith("{")]
    assert len(rounds) == 2 and run.output.splitlines()[-1] == "umount rc=0", run.output
    for figures in rounds:
        print(json.dumps(figures))  # the figures docs/reliability.md reports (pytest -s)
        assert figures["errors"] == 0, figures["messages"]
        assert figures["operations"] > 500 and figures["verified"] > 1 << 20
    first, second = rounds
    assert first["rss_peak_kib"] < first["rss_before_kib"] + 256 * 1024
    # Nothing accumulates per operation: a second round leaves the peak where it was.
    assert second["rss_peak_kib"] < first["rss_peak_kib"] + 32 * 1024
