"""What the benchmarks read of a process, and how they sum up latencies."""

from __future__ import annotations

from pathlib import Path


def rss_mb(pid: int) -> float:
    """Resident memory of a running process; a process that has exited (a zombie has no VmRSS) raises OSError."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise ProcessLookupError(f"no VmRSS for {pid}: it has exited")


def p99(values: list[float]) -> float:
    """The 99th percentile (nearest rank below) of a non-empty list; NaN for an empty one."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[int(len(ordered) * 0.99) - 1]
