"""What the numbers were measured on: recorded in every results document.

Ratios only hold for the machine and placement they were taken on; these facts let a reader of
``docs/performance.md`` tell whether their machine is comparable.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def _cpuinfo_field(name: str) -> str | None:
    for line in _read("/proc/cpuinfo").splitlines():
        key, _, value = line.partition(":")
        if key.strip() == name:
            return value.strip()
    return None


def _memory_total_mib() -> int | None:
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    return None


def _os_name() -> str | None:
    for line in _read("/etc/os-release").splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip().strip('"')
    return None


def filesystem_type(path: Path) -> str | None:
    """The type of the filesystem holding ``path`` (longest mount-point prefix in /proc/mounts)."""
    resolved = str(path.resolve())
    best: tuple[int, str] | None = None
    for line in _read("/proc/self/mounts").splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        mount_point = fields[1].replace("\\040", " ")
        inside = resolved == mount_point or resolved.startswith(mount_point.rstrip("/") + "/")
        if inside and (best is None or len(mount_point) > best[0]):
            best = (len(mount_point), fields[2])
    return best[1] if best else None


def describe_machine() -> dict[str, object]:
    """CPU, memory, kernel and load: enough to judge whether two documents are comparable."""
    flags = (_cpuinfo_field("flags") or "").split()
    return {
        "cpu_model": _cpuinfo_field("model name"),
        "cpus": os.cpu_count(),
        "virtual_machine": "hypervisor" in flags,
        "memory_mib": _memory_total_mib(),
        "kernel": platform.release(),
        "os": _os_name(),
        "harness_python": platform.python_version(),
        "load_average_at_start": list(os.getloadavg()),
    }
