"""A notifier sends a batch of alert states somewhere; a courier feeds it from the alerts' outbox.

Each notifier has its own courier thread, so a slow or dead webhook delays neither Alertmanager nor ingest. A batch
that fails stays in the outbox (`hub.alerts.db`) and is tried again with back-off, also after a restart."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

from hub.alerts.db import AlertDb
from telemetry.metrics import Metrics

log = logging.getLogger(__name__)

BATCH = 100  # alerts per delivery: a whole PDU going dark is one request (and one Alertmanager group), not 48
RETRY_MIN_S = 0.5
REFRESH_S = 60.0  # how often a notifier is shown what fires (Alertmanager forgets alerts it is not re-sent)


class NotifyError(Exception):
    """The notifier could not deliver now; the batch is tried again."""


class Notifier(Protocol):
    name: str

    def deliver(self, alerts: list[dict[str, object]]) -> None:
        """Send these alert states (`Alert.to_json()`), oldest first; raise NotifyError to have them retried."""

    def refresh(self, firing: list[dict[str, object]]) -> None:
        """Called now and then with every alert firing now (Alertmanager forgets alerts not re-sent)."""


class Courier:
    def __init__(self, notifier: Notifier, db: AlertDb, metrics: Metrics, retry_max_s: float, queue_max: int,
                 firing: Callable[[], list[dict[str, object]]]) -> None:
        self.notifier, self.db, self.metrics, self.firing = notifier, db, metrics, firing
        self.retry_max_s, self.queue_max = retry_max_s, queue_max
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"alerts-{notifier.name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(10)

    def wake(self) -> None:
        dropped = self.db.trim_outbox(self.notifier.name, self.queue_max)
        if dropped:
            log.error("alerts: %d notifications for %s dropped, the oldest, past alerts.queue_max = %d",
                      dropped, self.notifier.name, self.queue_max)
            self.metrics.inc("powerhub_alert_notifications_dropped_total", dropped, notifier=self.notifier.name)
        self._wake.set()

    def _loop(self) -> None:
        delay_s, failing, refreshed = RETRY_MIN_S, False, -REFRESH_S
        while not self._stop.is_set():
            batch = self.db.pending_notifications(self.notifier.name, BATCH)
            if not batch:
                if time.monotonic() - refreshed >= REFRESH_S:
                    refreshed = time.monotonic()
                    self._refresh()
                self._wake.wait(5.0)
                self._wake.clear()
                continue
            try:
                self.notifier.deliver([body for _, body in batch])
            except NotifyError as exc:
                self.metrics.inc("powerhub_alert_notifications_total", len(batch), notifier=self.notifier.name,
                                 outcome="failed")
                if not failing:
                    log.error("alerts: %s does not take notifications (%s); %d kept, retrying", self.notifier.name,
                              exc, len(batch))
                    failing = True
                self._stop.wait(delay_s)
                delay_s = min(self.retry_max_s, delay_s * 2)
                continue
            self.db.delivered([i for i, _ in batch])
            self.metrics.inc("powerhub_alert_notifications_total", len(batch), notifier=self.notifier.name,
                             outcome="sent")
            if failing:
                log.info("alerts: %s takes notifications again", self.notifier.name)
            delay_s, failing = RETRY_MIN_S, False

    def _refresh(self) -> None:
        try:
            self.notifier.refresh(self.firing())
        except NotifyError as exc:  # tried again at the next refresh; changes themselves wait in the outbox
            log.warning("alerts: refreshing %s failed: %s", self.notifier.name, exc)
