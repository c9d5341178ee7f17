"""The machine a figure was measured on, named the same way by every benchmark and by the
tests that compare figures recorded on it (docs/regenerate.sh writes the same name)."""

from __future__ import annotations

import platform
from pathlib import Path


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo, its spaces collapsed; elsewhere what `platform`
    knows."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return " ".join(line.partition(":")[2].split())
    return platform.processor() or platform.machine()
