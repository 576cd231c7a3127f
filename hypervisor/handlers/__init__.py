"""Syscall handlers, one module per family of kernel objects (files, stat, directories...)."""

from __future__ import annotations

from ..dispatch import Dispatcher


def register_all(dispatcher: Dispatcher) -> None:
    """Route every syscall the hypervisor virtualizes to its handler."""
    from . import (
        descriptors,
        directories,
        execution,
        fdtable,
        files,
        mapping,
        metadata,
        mounting,
        passing,
        polling,
        sockets,
        splicing,
        write_side,
        writes,
    )

    for module in (files, descriptors, metadata, directories, write_side, writes, mounting,
                   fdtable, execution, mapping, sockets, splicing, passing, polling):
        module.register(dispatcher)
