"""systemd's service notifications (`Type=notify`, `WatchdogSec=`), without a library: one datagram per message to
`$NOTIFY_SOCKET`. The service says READY=1 once it serves, then WATCHDOG=1 at half the watchdog period for as long as
its own health check passes; when the check fails (a wedged writer thread, a server that no longer answers) the pings
stop and systemd restarts the service. This replaces PowerGraph's cron "killer" script.

Outside systemd (no `$NOTIFY_SOCKET`) every call is a no-op, so the same code runs in a terminal and in tests.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping

log = logging.getLogger(__name__)


class Notifier:
    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        path = env.get("NOTIFY_SOCKET", "")
        # An address starting with "@" is in Linux's abstract namespace: a leading NUL byte.
        self.address = "\0" + path[1:] if path.startswith("@") else path
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        watched = usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid()))
        self.watchdog_s: float | None = int(usec) / 1e6 if watched else None

    @property
    def enabled(self) -> bool:
        return bool(self.address)

    def send(self, message: str) -> bool:
        if not self.address:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.sendto(message.encode(), self.address)
            return True
        except OSError as exc:
            log.warning("systemd notification %r not sent: %s", message, exc)
            return False


def serve_until(stop: threading.Event, healthy: Callable[[], bool], notifier: Notifier | None = None) -> None:
    """Say READY=1, then ping the watchdog while `healthy()` holds, until `stop` is set; then say STOPPING=1."""
    notifier = notifier or Notifier()
    notifier.send("READY=1")
    if notifier.watchdog_s is None:
        stop.wait()
    else:
        _ping_while_healthy(stop, healthy, notifier, notifier.watchdog_s / 2)
    notifier.send("STOPPING=1")


def _ping_while_healthy(stop: threading.Event, healthy: Callable[[], bool], notifier: Notifier,
                        period_s: float) -> None:
    sick_logged = False
    while not stop.wait(period_s):
        if healthy():
            notifier.send("WATCHDOG=1")
            sick_logged = False
        elif not sick_logged:
            log.error("health check failed: not pinging systemd's watchdog (it restarts the service if this lasts)")
            sick_logged = True


class Heartbeat:
    """A loop's sign of life: `beat()` on each turn; `fresh(max_age_s)` while the loop still turns."""

    def __init__(self) -> None:
        self._at = time.monotonic()

    def beat(self) -> None:
        self._at = time.monotonic()

    def fresh(self, max_age_s: float) -> bool:
        return time.monotonic() - self._at <= max_age_s
