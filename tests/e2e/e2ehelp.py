"""Helpers for the end-to-end tests: running bash scripts inside `vufuse run`, the daemons.

Each test writes a bash script, runs it as ``vufuse run bash script`` (as whoever runs the
suite: root, or the ordinary user vufuse-test, for whom /dev/fuse is not openable), and checks
what the script printed.  Every run is bounded (``RUN_TIMEOUT``; on expiry the whole process
group is killed) and the session itself kills whatever the script left behind, so no mount
and no process survives a test.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LIBFUSE = Path(os.environ.get("VUFUSE_LIBFUSE_EXAMPLES", "/var/tmp/vufuse-externals/libfuse"))
REAL_PYFUSE3 = Path(os.environ.get("VUFUSE_REAL_PYFUSE3", "/var/tmp/vufuse-externals/real-pyfuse3"))
RUN_TIMEOUT = 60.0

#: A pyfuse3 example forced onto the fusermount3 road (the direct mount(2) "refused"), as an
#: unprivileged user takes it on a real kernel.
VIA_FUSERMOUNT = """\
import runpy, sys
sys.path[:0] = [{repo!r}, {examples!r}]
from vufuse.pyfuse3 import _mount
_mount.mount = _mount._mount_with_fusermount
sys.argv = [sys.argv[1], *sys.argv[2:]]
runpy.run_path(sys.argv[0], run_name="__main__")
"""

#: Read-write daemons a workload script starts as ``@START@`` (a real one from libfuse and our
#: in-memory example), mounting $PWD/mnt (passthrough_ll mirrors $PWD/src).
RW_DAEMONS = {
    "passthrough_ll": '"$LIBFUSE/passthrough_ll" -f -o source="$PWD/src" "$PWD/mnt"',
    "memfs.py": '"$PY" "$EXAMPLES/memfs.py" "$PWD/mnt"',
}

#: Shell helpers every script gets: wait until a mount shows in /proc/self/mounts.
PRELUDE = """\
set -u
PY={python}
LIBFUSE={libfuse}
EXAMPLES={examples}
wait_mounted() {{
    for _ in $(seq 200); do
        grep -q " $1 " /proc/self/mounts && return 0
        sleep 0.05
    done
    echo "TIMEOUT waiting for $1 to be mounted"; return 1
}}
wait_unmounted() {{
    for _ in $(seq 200); do
        grep -q " $1 " /proc/self/mounts || return 0
        sleep 0.05
    done
    echo "TIMEOUT waiting for $1 to be unmounted"; return 1
}}
"""


ON_REF_AND_MOUNT = r"""mkdir -p ref src mnt
@START@ 2>daemon.err &
daemon=$!
wait_mounted "$PWD/mnt" || { cat daemon.err; exit 1; }
work "$PWD/ref" > ref.out 2>&1; echo "ref rc=$?"
work "$PWD/mnt" > mnt.out 2>&1; echo "mnt rc=$?"
diff ref.out mnt.out && echo "same output"
"""
"""Script lines that start the daemon `@START@` on mnt (backed by src), run the script's
``work`` function in ref (a real directory) and in mnt, and compare what it printed.  A
test's script holds ``@ON_BOTH@`` for them, and its own ``work``."""


@dataclass
class Run:
    """What a session printed and how it ended."""

    status: int
    output: str

    def lines(self) -> list[str]:
        """Output lines."""
        return self.output.splitlines()


@dataclass
class Sessions:
    """Runs scripts in `vufuse run` sessions from a scratch directory."""

    root: Path

    def run(self, script: str, timeout: float = RUN_TIMEOUT, options: tuple[str, ...] = ()) -> Run:
        """Run bash `script` (after :data:`PRELUDE`) in a session; its cwd is `root`.
        `options` go to `vufuse run` (e.g. ``--stats``)."""
        path = self.root / "script.sh"
        prelude = PRELUDE.format(python=sys.executable, libfuse=LIBFUSE,
                                 examples=REPO / "examples" / "fs")
        path.write_text(prelude + script)
        env = dict(os.environ, PYTHONPATH=str(REPO), PATH="/usr/sbin:/usr/bin:/sbin:/bin")
        process = subprocess.Popen(
            [sys.executable, "-m", "vufuse.cli", "run", *options, "bash", str(path)],
            cwd=self.root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        try:
            output, _ = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            output, _ = process.communicate()
            pytest.fail(f"session timed out after {timeout} s:\n{output.decode(errors='replace')}")
        return Run(process.returncode, output.decode(errors="replace"))

    def via_fusermount(self) -> Path:
        """A launcher that runs a pyfuse3 example through fusermount3."""
        path = self.root / "via_fusermount.py"
        path.write_text(VIA_FUSERMOUNT.format(repo=str(REPO),
                                              examples=str(REPO / "examples" / "fs")))
        return path


def libfuse_example(name: str) -> Path:
    """A libfuse example binary, or skip with the reason."""
    path = LIBFUSE / name
    if not path.exists():
        pytest.skip(f"{path} missing: run tools/fetch-libfuse-examples.sh as root once")
    return path


def on_kernel_fuse(script: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run bash `script` (with ``$LIBFUSE`` set, under ``set -u``) outside any session, on
    the real kernel FUSE: the reference a vufuse test is compared with.  Skips unless root
    with /dev/fuse."""
    if os.geteuid() != 0 or not os.path.exists("/dev/fuse"):
        pytest.skip("needs root and the real /dev/fuse")
    return subprocess.run(["bash", "-c", f"set -u\nLIBFUSE={LIBFUSE}\n" + script], cwd=cwd,
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip


def real_pyfuse3() -> tuple[Path, Path]:
    """The real pyfuse3's venv python and its sdist's examples, or skip with the reason."""
    python, examples = REAL_PYFUSE3 / "venv" / "bin" / "python", REAL_PYFUSE3 / "examples"
    if not (python.exists() and (examples / "hello.py").exists()):
        pytest.skip(f"{REAL_PYFUSE3} missing: run tests/e2e/setup_real_pyfuse3.sh as root")
    return python, examples
