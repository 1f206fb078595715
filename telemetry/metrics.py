"""A small metrics registry rendered in Prometheus' text format (hub and web share one in `powerhub demo`)."""

from __future__ import annotations

import threading
from collections import defaultdict

Labels = tuple[tuple[str, str], ...]


def _fmt(name: str, labels: Labels) -> str:
    if not labels:
        return name
    inner = ",".join(f'{k}="{v}"' for k, v in labels)
    return f"{name}{{{inner}}}"


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counters: dict[str, dict[Labels, float]] = defaultdict(dict)
        self._gauges: dict[str, dict[Labels, float]] = defaultdict(dict)
        self._summaries: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])

    def inc(self, name: str, amount: float = 1, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        with self._lock:
            series = self._counters[name]
            series[key] = series.get(key, 0) + amount

    def set(self, name: str, value: float, **labels: str) -> None:
        with self._lock:
            self._gauges[name][tuple(sorted(labels.items()))] = value

    def observe(self, name: str, seconds: float) -> None:
        with self._lock:
            s = self._summaries[name]
            s[0] += 1
            s[1] += seconds

    def value(self, name: str, **labels: str) -> float:
        with self._lock:
            key = tuple(sorted(labels.items()))
            return self._counters.get(name, {}).get(key, self._gauges.get(name, {}).get(key, 0))

    def render(self) -> str:
        lines: list[str] = []
        with self._lock:
            for kind, table in (("counter", self._counters), ("gauge", self._gauges)):
                for name in sorted(table):
                    lines.append(f"# TYPE {name} {kind}")
                    lines += [f"{_fmt(name, labels)} {v:g}" for labels, v in sorted(table[name].items())]
            for name, (count, total) in sorted(self._summaries.items()):
                lines += [f"# TYPE {name} summary", f"{name}_count {count:g}", f"{name}_sum {total:.6f}"]
        return "\n".join(lines) + "\n"
