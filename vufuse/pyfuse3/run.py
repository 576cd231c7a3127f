"""``python -m vufuse.pyfuse3.run SCRIPT|-m MODULE [ARGS…]``: run a pyfuse3 program on ours.

It puts the alias directory first on sys.path and on PYTHONPATH (so child processes, such as
multiprocessing workers or subprocesses, get the same pyfuse3), then runs SCRIPT as __main__.
"""

from __future__ import annotations

import os
import runpy
import sys

ALIAS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_alias")


def pythonpath_with_alias(existing: str | None) -> str:
    """PYTHONPATH with the alias directory (and vufuse itself) first, for child processes."""
    project_root = os.path.dirname(os.path.dirname(os.path.dirname(ALIAS_DIR)))
    parts = [ALIAS_DIR, project_root]
    if existing:
        parts += [part for part in existing.split(os.pathsep) if part not in parts]
    return os.pathsep.join(parts)


def main(argv: list[str]) -> None:
    """Run argv[0] as a script (or ``-m MODULE``) with the rest as its arguments."""
    if not argv:
        sys.exit("usage: python -m vufuse.pyfuse3.run SCRIPT|-m MODULE [ARGS...]")
    os.environ["PYTHONPATH"] = pythonpath_with_alias(os.environ.get("PYTHONPATH"))
    sys.modules.pop("pyfuse3", None)
    if argv[0] == "-m" and len(argv) > 1:
        sys.argv = argv[1:]
        sys.path.insert(0, ALIAS_DIR)
        runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
        return
    sys.argv = list(argv)
    sys.path.insert(0, os.path.dirname(os.path.abspath(argv[0])))
    sys.path.insert(0, ALIAS_DIR)
    runpy.run_path(argv[0], run_name="__main__")


if __name__ == "__main__":
    main(sys.argv[1:])
