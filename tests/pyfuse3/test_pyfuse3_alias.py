"""``import pyfuse3`` gives vufuse's module only when asked for (alias dir or the run helper)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from kernel_fuse import ALIAS_DIR

PROBE = """\
import subprocess, sys
import pyfuse3, pyfuse3.asyncio
import vufuse.pyfuse3
assert pyfuse3 is vufuse.pyfuse3, "two module objects"
pyfuse3.asyncio.enable()
assert vufuse.pyfuse3.trio is sys.modules["pyfuse3.asyncio"]
pyfuse3.asyncio.disable()
print(pyfuse3.__file__)
print(sys.argv[1:])
child = "import pyfuse3; print(pyfuse3.__file__)"
print(subprocess.run([sys.executable, "-c", child], capture_output=True, text=True).stdout)
maps = open("/proc/self/maps").read()
print("libfuse" in maps)
"""


def _env_without_alias() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    return env


def test_not_shadowing_by_default() -> None:
    result = subprocess.run(
        [sys.executable, "-c", "import pyfuse3"],
        capture_output=True, text=True, env=_env_without_alias(), cwd="/",
    )  # fmt: skip
    assert "ModuleNotFoundError" in result.stderr  # the real pyfuse3 is not installed here


def test_run_helper_aliases_script_and_children(tmp_path: Path) -> None:
    script = tmp_path / "probe.py"
    script.write_text(PROBE)
    result = subprocess.run(
        [sys.executable, "-m", "vufuse.pyfuse3.run", str(script), "a", "b"],
        capture_output=True, text=True, env=_env_without_alias(), cwd="/", check=True,
    )  # fmt: skip
    own, argv, child, libfuse = [line for line in result.stdout.splitlines() if line]
    assert own.endswith(os.path.join("vufuse", "pyfuse3", "__init__.py"))
    assert argv == "['a', 'b']"
    assert child == own
    assert libfuse == "False"


def test_alias_directory_on_pythonpath(tmp_path: Path) -> None:
    script = tmp_path / "probe.py"
    script.write_text(PROBE)
    env = _env_without_alias()
    env["PYTHONPATH"] = str(ALIAS_DIR)
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=env, check=True
    )
    assert "vufuse" in result.stdout.splitlines()[0]
