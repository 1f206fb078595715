"""Store kinds; importing this package registers every built-in kind."""

from hub.stores import influx, sqlite
from hub.stores.base import (
    STORES,
    Bucket,
    SeriesInfo,
    Store,
    StoreRejected,
    StoreUnavailable,
    merge_buckets,
    open_store,
)

__all__ = [
    "STORES", "Bucket", "SeriesInfo", "Store", "StoreRejected", "StoreUnavailable", "influx", "merge_buckets",
    "open_store", "sqlite",
]
