"""The README's 60-second tour, run as written: its commands are read from README.md, so the
test fails when the tour stops working.  And `make demo`'s main job (python -m vufuse.demo)."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from producthelp import ROOT, TIMEOUT

pytestmark = pytest.mark.e2e
OUTSIDE, INSIDE = "$ ", "(vufuse) $ "


def tour_commands() -> tuple[str, list[str]]:
    """The tour's session command (`$ ...`) and the commands typed inside it."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## A 60-second tour", 1)[1]
    block = re.search(r"```console\n(.*?)```", section, re.S)
    assert block, "the tour's ```console block"
    lines = block.group(1).splitlines()
    assert lines[0].startswith(OUTSIDE), lines[0]
    inside = [line[len(INSIDE):] for line in lines[1:]]
    assert all(line.startswith(INSIDE) for line in lines[1:]), lines
    return lines[0][len(OUTSIDE):], inside


def test_the_tour_reads_as_expected() -> None:
    start, inside = tour_commands()
    assert shlex.split(start, comments=True) == [".venv/bin/vufuse", "shell"]
    assert inside[-1].split()[0] == "exit" and any("vufuse mount" in c for c in inside)


def test_readme_tour(tmp_path: Path) -> None:
    """Every command of the tour, in order, in one `vufuse shell`, as a new user would."""
    for tool in ("squashfuse", "mksquashfs", "fusermount3", "findmnt"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (make test installs it)")
    start, inside = tour_commands()
    # Stop at the first command that fails, and say which.
    script = "set -e -o pipefail\ntrap 'echo \"tour failed at: $BASH_COMMAND\" >&2' ERR\n"
    script += "".join(f"echo '>>> {i}'\n{command}\n" for i, command in enumerate(inside))
    home = tmp_path / "home"
    home.mkdir()
    env = {"HOME": str(home), "SHELL": "/bin/bash", "LANG": "C.UTF-8",
           "PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "USER": "tourist"}  # fmt: skip
    done = subprocess.run(shlex.split(start, comments=True), input=script, cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=TIMEOUT)  # fmt: skip
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert f">>> {len(inside) - 1}" in out  # every command ran
    assert "(vufuse) " in done.stderr  # the interactive prompt says where we are
    assert "/vufuse-" in out.split(">>> 1")[0]  # $VUFUSE_SESSION
    assert "Welcome to the vufuse demo filesystem!" in out
    assert "vufuse-demo" in out  # findmnt, df
    assert " live\n" in out and "protocol  7." in out  # vufuse mounts
    squashfs = next(i for i, command in enumerate(inside) if command.startswith("squashfuse"))
    assert "decisions.md" in out.split(f">>> {squashfs}")[1]  # the image's listing
    assert not (home / "mnt").exists() or os.listdir(home / "mnt") == []


def test_make_demo_main_job() -> None:
    done = subprocess.run([sys.executable, "-m", "vufuse.demo"], cwd=ROOT, capture_output=True,
                          text=True, timeout=TIMEOUT)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Welcome to the vufuse demo filesystem!" in done.stdout
    assert "vufuse-demo" in done.stdout
