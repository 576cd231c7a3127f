"""16 processes create, write, append, truncate, rename and unlink in overlapping directories
of examples/fs/memfs.py; the tree left behind must equal, byte for byte, the model computed
from the workers' seeded plans (tests/e2e/memfs_stress.py)."""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest
from e2ehelp import Sessions
from memfs_stress import WORKERS, expected

pytestmark = pytest.mark.e2e

STRESS = Path(__file__).with_name("memfs_stress.py")

SCRIPT = r"""
mkdir -p mnt
"$PY" "$EXAMPLES/memfs.py" "$PWD/mnt" 2>daemon.err &
daemon=$!
wait_mounted "$PWD/mnt" || {{ cat daemon.err; exit 1; }}
"$PY" {stress} "$PWD/mnt"; echo "stress rc=$?"
fusermount3 -u "$PWD/mnt"; echo "unmount rc=$?"
wait $daemon; echo "daemon rc=$?"
"""


def test_memfs_sixteen_process_stress(sessions: Sessions) -> None:
    run = sessions.run(SCRIPT.format(stress=STRESS), timeout=120)
    lines = run.lines()
    assert not [line for line in lines if line.startswith("MISMATCH")], run.output
    assert "workers failed: 0" in lines, run.output
    tree = [line for line in lines if line.startswith(("d ", "f "))]
    model = expected()
    assert tree == model, "\n".join(difflib.unified_diff(model, tree, "model", "mount",
                                                         lineterm=""))  # fmt: skip
    assert sum(1 for line in model if line.startswith("f ")) > WORKERS  # a real tree
    for line in ("stress rc=0", "unmount rc=0", "daemon rc=0"):
        assert line in lines, run.output
