"""``python -m vufuse.opsdaemon --class MODULE:QUALNAME [--file PATH] MOUNTPOINT``: serve a
pyfuse3 Operations class as a FUSE daemon.

How :meth:`vufuse.Session.mount` and the pytest fixture mount a class: the class is found again
in this fresh process (by module name, else by the file that defines it), instantiated, and
served with the pyfuse3 it subclasses -- ours (:mod:`vufuse.pyfuse3`) or the real pyfuse3 -- as
any pyfuse3 program would: ``init``, ``main`` until unmounted (or SIGINT/SIGTERM), ``close``.
Inside a session that mount is served by vufuse; on a real kernel it is a kernel mount.

Only the standard library and trio are imported here, so that another interpreter (a venv with
the real pyfuse3) can run it with just this checkout on its PYTHONPATH.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import pickle
import signal
import sys
from types import ModuleType
from typing import Any

PYFUSE3_MODULES = ("vufuse.pyfuse3", "pyfuse3")


def load_class(reference: str, file: str | None) -> type:
    """The class named MODULE:QUALNAME, imported by module name, else loaded from `file`."""
    module_name, _, qualname = reference.partition(":")
    if not qualname:
        raise SystemExit(f"opsdaemon: --class wants MODULE:QUALNAME, not {reference!r}")
    module: ModuleType | None = None
    if module_name != "__main__":
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            if file is None:
                raise
    if module is None:
        if file is None:
            raise SystemExit(f"opsdaemon: {reference} is in __main__: give its --file")
        module = _load_file(file, module_name)
    found: Any = module
    for part in qualname.split("."):
        found = getattr(found, part)
    if not isinstance(found, type):
        raise SystemExit(f"opsdaemon: {reference} is not a class")
    return found


def _load_file(path: str, module_name: str) -> ModuleType:
    name = module_name if module_name != "__main__" else "_vufuse_operations"
    sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"opsdaemon: cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def pyfuse3_of(cls: type) -> ModuleType:
    """The pyfuse3 whose Operations `cls` subclasses (ours or the real one)."""
    for name in PYFUSE3_MODULES:
        module = sys.modules.get(name)
        if module is not None and issubclass(cls, getattr(module, "Operations", ())):
            return module
    raise SystemExit(f"opsdaemon: {cls.__qualname__} subclasses no pyfuse3.Operations")


def serve(cls: type, mountpoint: str, options: set[str], arguments: tuple[Any, Any]) -> None:
    """Instantiate `cls` and serve it at `mountpoint` until unmounted or signalled."""
    import trio

    pyfuse3 = pyfuse3_of(cls)
    args, kwargs = arguments
    operations = cls(*args, **kwargs)
    all_options = set(pyfuse3.default_options) | options
    if not any(option.startswith("fsname=") for option in options):
        all_options.add(f"fsname={cls.__name__}")

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_terminate_on_signal, pyfuse3)
            await pyfuse3.main()
            nursery.cancel_scope.cancel()

    pyfuse3.init(operations, mountpoint, all_options)
    try:
        trio.run(main)
    except BaseException:
        pyfuse3.close(unmount=False)
        raise
    pyfuse3.close()


async def _terminate_on_signal(pyfuse3: ModuleType) -> None:
    import trio

    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for _ in signals:
            pyfuse3.terminate()
            return


def main(argv: list[str]) -> None:
    """The command line above."""
    parser = argparse.ArgumentParser(prog="python -m vufuse.opsdaemon",
                                     description="Serve a pyfuse3 Operations class.")  # fmt: skip
    parser.add_argument("--class", dest="reference", required=True, metavar="MODULE:QUALNAME")
    parser.add_argument("--file", help="the file defining the class, if not importable")
    parser.add_argument("--init-args", metavar="PICKLE", help="pickled (args, kwargs) for it")
    parser.add_argument("-o", dest="options", default="", help="more mount options, a,b,c")
    parser.add_argument("mountpoint")
    options = parser.parse_args(argv)
    cls = load_class(options.reference, options.file)
    arguments: tuple[Any, Any] = ((), {})
    if options.init_args:
        with open(options.init_args, "rb") as file:
            arguments = pickle.load(file)
    serve(cls, options.mountpoint, {o for o in options.options.split(",") if o}, arguments)


if __name__ == "__main__":
    main(sys.argv[1:])
