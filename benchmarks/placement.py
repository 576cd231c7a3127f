"""CPU placements a benchmark command can run under.

On the 2-vCPU VMs vufuse is developed on, a wake-up across CPUs costs 45-80 µs, which dwarfs the
5 µs trap the design budgets for. Whether the tracee and its supervisor share a CPU therefore
decides the numbers more than anything else, so every measurement records its placement and
ratios are only ever taken between backends of the same placement in the same run.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass


@dataclass(frozen=True)
class Placement:
    """How the whole backend command (wrapper, supervisor and tracees) is placed on CPUs."""

    name: str
    description: str
    prefix: tuple[str, ...]
    """Prepended to the backend's command line; ``taskset`` pins the supervisor and, by
    inheritance, every tracee and thread it starts."""

    def wrap(self, argv: list[str]) -> list[str]:
        """Return ``argv`` run under this placement."""
        return [*self.prefix, *argv]

    def unavailable_reason(self) -> str | None:
        """Why this placement cannot be used here, or None when it can."""
        if self.prefix and shutil.which(self.prefix[0]) is None:
            return f"{self.prefix[0]} not found"
        return None


PLACEMENTS: dict[str, Placement] = {
    placement.name: placement
    for placement in (
        Placement(
            name="pinned",
            description="everything on CPU 0 (`taskset -c 0`): supervisor and tracee share a CPU",
            prefix=("taskset", "-c", "0"),
        ),
        Placement(
            name="unpinned",
            description="no affinity set: the scheduler places supervisor and tracees",
            prefix=(),
        ),
    )
}
