"""systemd's notify protocol as the units use it (`Type=notify`, `WatchdogSec=`): the test binds the datagram socket
systemd would, runs the real `powerhub` processes with `NOTIFY_SOCKET` and `WATCHDOG_USEC`, and reads what they say."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from telemetry.sdnotify import Notifier, serve_until
from tests.peers import Mosquitto, free_port


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify"))
    sock.settimeout(15.0)
    yield sock
    sock.close()


def messages(sock: socket.socket, n: int) -> list[str]:
    return [sock.recv(4096).decode() for _ in range(n)]


def run_powerhub(tmp_path: Path, sock: socket.socket, command: str, toml: str) -> subprocess.Popen[bytes]:
    config = tmp_path / f"{command}.toml"
    config.write_text(toml)
    env = dict(os.environ, NOTIFY_SOCKET=sock.getsockname(), WATCHDOG_USEC="400000")
    env.pop("WATCHDOG_PID", None)
    return subprocess.Popen([sys.executable, "-m", "powerhub_cli", command, "--config", str(config)], env=env,
                            stderr=subprocess.DEVNULL)


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)


@pytest.mark.parametrize("command", ["hub", "web", "agent"])
def test_service_says_ready_then_pings_the_watchdog_then_stopping(
        command: str, tmp_path: Path, notify_socket: socket.socket, mosquitto: Mosquitto) -> None:
    toml = f"""
[mqtt]
url = "{mosquitto.url()}"
root = "sdnotify"
[store]
url = "sqlite:///{tmp_path}/points.sqlite"
[web]
listen = "127.0.0.1:{free_port()}"
[agent]
site = "lab"
name = "pi"
outbox = "{tmp_path}/outbox.sqlite"
[[agent.readers]]
kind = "simulated"
device = "house"
interval_s = 1
"""
    proc = run_powerhub(tmp_path, notify_socket, command, toml)
    try:
        said = messages(notify_socket, 4)
        assert said == ["READY=1", "WATCHDOG=1", "WATCHDOG=1", "WATCHDOG=1"]
    finally:
        stop(proc)
    assert proc.returncode == 0

    rest = []
    notify_socket.settimeout(1.0)
    try:
        while True:
            rest.append(notify_socket.recv(4096).decode())
    except TimeoutError:
        pass
    assert rest and rest[-1] == "STOPPING=1"


def test_no_watchdog_ping_while_unhealthy(notify_socket: socket.socket) -> None:
    health = {"ok": True}
    notifier = Notifier({"NOTIFY_SOCKET": notify_socket.getsockname(), "WATCHDOG_USEC": "100000"})
    stop_event = threading.Event()
    t = threading.Thread(target=serve_until, args=(stop_event, lambda: health["ok"], notifier))
    t.start()
    try:
        assert messages(notify_socket, 2) == ["READY=1", "WATCHDOG=1"]
        health["ok"] = False
        notify_socket.settimeout(0.3)
        try:  # at most the one ping already on its way
            while True:
                notify_socket.recv(4096)
        except TimeoutError:
            pass
        notify_socket.settimeout(0.5)
        with pytest.raises(TimeoutError):
            notify_socket.recv(4096)  # five watchdog periods of silence: systemd would restart us
        health["ok"] = True
        notify_socket.settimeout(5.0)
        assert notify_socket.recv(4096) == b"WATCHDOG=1"
    finally:
        stop_event.set()
        t.join(5)
    assert not t.is_alive()


def test_watchdog_pid_of_another_process_and_no_socket_are_ignored(tmp_path: Path) -> None:
    assert Notifier({"NOTIFY_SOCKET": str(tmp_path / "x"), "WATCHDOG_USEC": "1000000",
                     "WATCHDOG_PID": str(os.getpid() + 1)}).watchdog_s is None
    quiet = Notifier({})
    assert not quiet.enabled and quiet.send("READY=1") is False
    assert Notifier({"NOTIFY_SOCKET": "@abstract"}).address == "\0abstract"
