"""Series on a common time grid: the mean of each `step_ms` bucket, so series sampled at different moments can be
added and subtracted bucket by bucket."""

from __future__ import annotations

from hub.stores import Store
from telemetry import SeriesKey


def grid_means(store: Store, key: SeriesKey, start_ms: int, end_ms: int, step_ms: int) -> dict[int, float]:
    return {b.start_ms: b.mean for b in store.buckets(key, start_ms, end_ms, step_ms) if b.count}


def parse_source(site: str, source: str) -> SeriesKey:
    device, _, channel = source.partition(".")
    return SeriesKey(site, device, channel)
