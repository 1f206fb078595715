"""`powerhub plot`: a series' power over a range as a PNG (matplotlib), with the machine's CPU load on a second axis
where one is stored (PowerMon's plot). Long ranges are drawn from buckets, as the dashboard does."""

from __future__ import annotations

import datetime as dt
from typing import Any

from hub.stores import Store
from telemetry import SeriesKey
from web.export import range_points

MAX_RAW_POINTS = 20_000
BUCKETS = 2000


def series_xy(store: Store, key: SeriesKey, from_ms: int, to_ms: int) -> tuple[list[float], list[float]]:
    """`(times in s, values)`: raw points for short ranges, bucket means (2000 across the range) for long ones."""
    raw = store.points(key, from_ms, to_ms, MAX_RAW_POINTS + 1)
    if len(raw) <= MAX_RAW_POINTS:
        pts = [(p.ts_ms, p.number) for p in range_points(store, key, from_ms, to_ms)]
    else:
        step = max(1, (to_ms - from_ms) // BUCKETS)
        pts = [(b.start_ms, b.mean) for b in store.buckets(key, from_ms, to_ms, step, origin_ms=from_ms)]
    kept = [(t, v) for t, v in pts if v is not None]
    return [t / 1000 for t, _ in kept], [float(v) for _, v in kept]


def load_key(store: Store, key: SeriesKey) -> SeriesKey | None:
    """The CPU load to plot beside `key`: `load1` of the same device, else of the machine the points name."""
    known = {info.key: info for info in store.series()}
    same = SeriesKey(key.site, key.device, "load1")
    if same in known:
        return same
    last = known[key].last if key in known else None
    machine = last.fields.get("machine") if last else None
    if isinstance(machine, str):
        by_machine = SeriesKey(key.site, machine, "load1")
        if by_machine in known:
            return by_machine
    return None


def render(store: Store, key: SeriesKey, from_ms: int, to_ms: int, out_path: str,
           load: SeriesKey | None = None) -> Any:
    """Write the PNG and return the matplotlib figure (its axes: power, and load where there is one)."""
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(12, 4.5), dpi=100)
    t, w = series_xy(store, key, from_ms, to_ms)
    ax.step(mdates.date2num([_dt(x) for x in t]), w, where="pre", color="#d9480f", linewidth=1, label=f"{key.id} (W)")
    ax.set_ylabel("power (W)")
    ax.set_xlabel("UTC")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y-%m-%d %H:%M"))
    fig.autofmt_xdate()
    load = load or load_key(store, key)
    if load is not None:
        lt, lv = series_xy(store, load, from_ms, to_ms)
        ax2 = ax.twinx()
        ax2.plot(mdates.date2num([_dt(x) for x in lt]), lv, color="#1864ab", linewidth=1, alpha=0.8, label=f"{load.id}")
        ax2.set_ylabel("CPU load")
        ax2.set_ylim(bottom=0)
    ax.set_title(key.id)
    fig.legend(loc="upper right")
    fig.tight_layout()
    fig.savefig(out_path)
    plt.close(fig)
    return fig


def _dt(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, dt.UTC)
