"""What every example filesystem shares: finding vufuse, the command line, and the run loop.

Each example is ``python3 examples/fs/NAME.py [SOURCE] MOUNTPOINT [--debug] [--debug-fuse]``:
it mounts, serves until unmounted (fusermount3 -u, umount) or sent SIGINT/SIGTERM, and then
unmounts and exits 0.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

_REPO_ROOT = Path(__file__).resolve().parents[2]

try:
    import trio
except ImportError:  # a python3 without trio: re-run under the checkout's venv if it has one
    _VENV = _REPO_ROOT / ".venv"
    if (_VENV / "bin" / "python").exists() and Path(sys.prefix).resolve() != _VENV.resolve():
        os.execv(_VENV / "bin" / "python", [str(_VENV / "bin" / "python"), *sys.argv])
    raise

try:
    from vufuse import pyfuse3
except ImportError:  # a checkout that was not pip-installed: use the tree we live in
    sys.path.insert(0, str(_REPO_ROOT))
    from vufuse import pyfuse3

__all__ = ["pyfuse3", "parse_args", "serve"]


def parse_args(description: str, argv: Sequence[str], with_source: bool) -> argparse.Namespace:
    """The examples' common command line; *with_source* adds a SOURCE directory first."""
    parser = argparse.ArgumentParser(description=description)
    if with_source:
        parser.add_argument("source", help="directory to mirror")
    parser.add_argument("mountpoint", help="where to mount the filesystem")
    parser.add_argument("--debug", action="store_true", help="log what the filesystem does")
    parser.add_argument(
        "--debug-fuse", action="store_true", help="log every FUSE request and reply"
    )
    parser.add_argument("-o", dest="options", default="", help="more mount options, a,b,c")
    return parser.parse_args(argv)


def serve(
    operations: pyfuse3.Operations,
    args: argparse.Namespace,
    fsname: str,
    extra_options: Sequence[str] = (),
) -> None:
    """Mount *operations* at args.mountpoint and serve until unmounted or interrupted."""
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s: %(message)s",
    )
    options = set(pyfuse3.default_options)
    options.add(f"fsname={fsname}")
    options.update(extra_options)
    options.update(option for option in args.options.split(",") if option)
    if args.debug_fuse:
        options.add("debug")
    pyfuse3.init(operations, args.mountpoint, options)
    try:
        trio.run(_serve_until_signalled)
    except BaseException:
        pyfuse3.close(unmount=False)
        raise
    pyfuse3.close()


async def _serve_until_signalled() -> None:
    """Run the main loop; SIGINT or SIGTERM end it cleanly, so close() unmounts."""
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_terminate_on_signal)
        await pyfuse3.main()
        nursery.cancel_scope.cancel()


async def _terminate_on_signal() -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for _ in signals:
            pyfuse3.terminate()
            return
