"""The agent: reader threads stamp readings into points, which go to the outbox and on to MQTT (or to stdout)."""

from __future__ import annotations

import ctypes
import json
import logging
import sys
import threading
import time
from collections import Counter
from typing import TextIO

from edge_agent.clock import Clock
from edge_agent.config import AgentConfig
from edge_agent.outbox import Outbox, OutboxFull
from edge_agent.publisher import Publisher
from edge_agent.readers import Reader, ReaderContext
from edge_agent.readers.base import Fields
from telemetry import NameError_, Point, SeriesKey, data_topic, encode_points
from telemetry.sdnotify import serve_until

log = logging.getLogger(__name__)

VERSION = "0.1.0"
READER_RESTART_S = 5.0


class Stamper:
    """Validates names and keeps `ts` strictly increasing per series, also across restarts (`last_ts`)."""

    def __init__(self, site: str, last_ts: dict[str, int], machines: dict[str, str] | None = None,
                 configured: list[str] | None = None) -> None:
        self.site = site
        self.last_ts = last_ts
        self.machines = machines or {}
        self.lock = threading.Lock()
        self._devices = {sid.split(".")[1] for sid in last_ts} | set(configured or ())

    def devices(self) -> list[str]:
        """The devices the readers' config names, and every device this agent has stamped a point for (kept across
        restarts through `last_ts`)."""
        with self.lock:
            return sorted(self._devices)

    def is_new_device(self, device: str) -> bool:
        with self.lock:
            if device in self._devices:
                return False
            self._devices.add(device)
            return True

    def point(self, device: str, channel: str, fields: Fields, ts_ms: int) -> Point:
        key = SeriesKey(self.site, device, channel)
        machine = self.machines.get(f"{device}.{channel}")
        if machine is not None:
            fields = {**fields, "machine": machine}  # the inventory says which machine hangs on this source
        with self.lock:
            last = self.last_ts.get(key.id)
            if last is not None and ts_ms <= last:
                ts_ms = last + 1  # two readings in one ms, or a clock that went back before a restart
            self.last_ts[key.id] = ts_ms
        return Point(key, ts_ms, 0, fields)


class Agent:
    def __init__(self, cfg: AgentConfig, stdout: TextIO | None = None, stop: threading.Event | None = None) -> None:
        self.cfg = cfg
        self.clock = Clock()
        self.stop_event = stop or threading.Event()
        self.counters: Counter[str] = Counter()
        self._stdout = stdout
        self._seq = 0
        self.outbox: Outbox | None = None
        self.publisher: Publisher | None = None
        if stdout is None:
            self.outbox = Outbox(cfg.outbox, cfg.outbox_max_mb)
        self.stamper = Stamper(cfg.site, dict(self.outbox.last_ts) if self.outbox else {}, cfg.machines,
                               [d for r in cfg.readers for d in r.devices])
        if self.outbox is not None:
            self.publisher = Publisher(cfg.mqtt, cfg.site, cfg.name, self.outbox, VERSION, self.clock.now_ms,
                                       self.stamper.devices, cfg.wait_for_hub)
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._full_since: float | None = None
        self._full_logged = 0.0

    def emit(self, device: str, channel: str, fields: Fields, ts_ms: int | None = None) -> None:
        try:
            point = self.stamper.point(device, channel, fields, self.clock.now_ms() if ts_ms is None else ts_ms)
        except NameError_ as exc:
            log.error("reading dropped: %s", exc)
            self.counters["bad_names"] += 1
            return
        if self.outbox is not None and self.publisher is not None:
            if self.stamper.is_new_device(point.key.device):
                self.publisher.announce()  # before its first point, so the hub knows whose seq it carries
            try:
                self.outbox.put(point)
            except OutboxFull as exc:
                self._refused(point, exc)
                return
            except ValueError as exc:  # NaN or infinity: JSON cannot carry it, and SPEC's values are finite
                log.error("reading of %s dropped: %s", point.key.id, exc)
                self.counters["bad_values"] += 1
                return
            if self._full_since is not None:
                log.warning("outbox takes points again; %d refused while it was full", self.counters["outbox_refused"])
                self._full_since = None
            self.publisher.wake()
            return
        with self._lock:
            self._seq += 1
            point = Point(point.key, point.ts_ms, self._seq, point.fields)
            assert self._stdout is not None
            try:
                self._stdout.write(f"{data_topic(self.cfg.mqtt.root, point.key)} {encode_points([point]).decode()}\n")
                self._stdout.flush()
            except BrokenPipeError:
                self.stop_event.set()  # the reader of our output went away (`| head`): stop quietly

    def _refused(self, point: Point, exc: OutboxFull) -> None:
        """Loud, but not a line per point: once when it starts, then once a minute while it lasts."""
        self.counters["outbox_refused"] += 1
        now = time.monotonic()
        if self._full_since is None or now - self._full_logged >= 60:
            log.error("OUTBOX FULL (%s): refusing new points, %s and later are lost (%d so far); the points it "
                      "holds are kept and sent; raise agent.outbox_max_mb or free disk space",
                      exc, point.key.id, self.counters["outbox_refused"])
            self._full_logged = now
            if self._full_since is None:
                self._full_since = now

    def _supervise(self, reader: Reader) -> None:
        """Run a reader; an unexpected crash is logged and the reader restarted, never the agent taken down."""
        ctx = ReaderContext(self.cfg.site, self.emit, self.clock.now_ms, self.stop_event, self.counters)
        while not self.stop_event.is_set():
            try:
                reader.run(ctx)
            except Exception:
                log.exception("reader %s crashed; restarting in %.0f s", reader.name, READER_RESTART_S)
                self.counters["reader_crashes"] += 1
                self.stop_event.wait(READER_RESTART_S)

    def start(self) -> None:
        if self.publisher is not None:
            self.publisher.start()
        for reader in self.cfg.readers:
            t = threading.Thread(target=self._supervise, args=(reader,), name=f"reader-{reader.name}", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self) -> None:
        self.stop_event.set()
        for t in self._threads:
            t.join(5.0)
        if self.publisher is not None:
            self.publisher.stop()
        if self.outbox is not None:
            self.outbox.close()

    def healthy(self) -> bool:
        """For systemd's watchdog: every reader's thread and the publisher's loop still run."""
        publishing = self.publisher is None or self.publisher.healthy()
        return publishing and all(t.is_alive() for t in self._threads)

    def metrics(self) -> dict[str, int]:
        out = dict(self.counters)
        if self.publisher is not None:
            out.update(self.publisher.counters)
        return out


M_ARENA_MAX = -8  # glibc's mallopt parameter


def one_malloc_arena() -> bool:
    """glibc gives threads that allocate at once malloc arenas of their own, and the agent's reader threads would
    each keep one (about 3 MB in all, `make bench`'s agent_rss_mb). The GIL serializes them anyway, so one arena
    costs no speed. False where the C library has no such option (musl)."""
    try:
        return bool(ctypes.CDLL(None).mallopt(M_ARENA_MAX, 1))
    except (OSError, AttributeError):
        return False


def run(cfg: AgentConfig, stdout: bool, stop: threading.Event) -> None:
    one_malloc_arena()  # before any reader thread starts
    # The agent sets `stop` itself when its output is gone (`--stdout | head`).
    agent = Agent(cfg, sys.stdout if stdout else None, stop)
    agent.start()
    log.info("agent %s.%s running %d readers", cfg.site, cfg.name, len(cfg.readers))
    serve_until(stop, agent.healthy)
    agent.stop()
    log.info("agent stopped: %s", json.dumps(agent.metrics()))
