"""The fixtures that start the real peers (the helpers themselves live in tests/peers.py, shared with `make bench`),
and the test tiers: every test that needs a peer is marked `peers`, so `make unit` can leave it out."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hub.stores import Store, open_store
from telemetry.config import MqttConfig, Section
from tests.peers import ARTIFACTS, IPMI_EXT_SOURCE, InfluxDB, Mosquitto, Pty


@pytest.fixture(autouse=True)
def state_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """State files a test does not place itself (the hub's alerts.sqlite, say) go to its own temp dir, as under
    systemd's StateDirectory, never into the checkout nor shared between tests."""
    state = tmp_path / "state"
    monkeypatch.setenv("STATE_DIRECTORY", str(state))
    return state


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    broker = Mosquitto(tmp_path_factory.mktemp("mosquitto"))
    broker.start()
    yield broker
    broker.stop()



@pytest.fixture
def mqtt_root() -> str:
    """A topic root of the test's own, so tests sharing the session's broker never see each other's points."""
    return f"t{uuid.uuid4().hex[:12]}"



@pytest.fixture
def mqtt_doc(mosquitto: Mosquitto, mqtt_root: str) -> dict[str, Any]:
    return {"url": mosquitto.url(), "root": mqtt_root}



@pytest.fixture
def mqtt_cfg(mqtt_doc: dict[str, Any]) -> MqttConfig:
    return MqttConfig.parse(Section(mqtt_doc, "mqtt"))



@pytest.fixture(scope="session")
def influxdb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxDB]:
    server = InfluxDB(tmp_path_factory.mktemp("influxdb"))
    server.start()
    yield server
    server.stop()



@pytest.fixture(params=["sqlite", "influxdb"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty store of each kind: every test using it runs once per store."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/points.sqlite"
    influx: InfluxDB = request.getfixturevalue("influxdb")
    return f"influxdb://127.0.0.1:{influx.port}/t{uuid.uuid4().hex[:12]}"



@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    s = open_store(store_url)
    yield s
    s.close()



@pytest.fixture
def pty(tmp_path: Path) -> Iterator[Pty]:
    p = Pty(tmp_path)
    yield p
    p.unplug()



@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS



@pytest.fixture(scope="session")
def dcmi_extension(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Our DCMI power-reading extension for ipmi_sim, compiled for this machine."""
    out = tmp_path_factory.mktemp("ipmi-ext") / "dcmi_power.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-Wall", "-Werror", "-o", str(out), str(IPMI_EXT_SOURCE)], check=True)
    return out



PEER_FIXTURES = {"mosquitto", "influxdb", "dcmi_extension"}  # fixtures that start a real program



def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that talks to a real peer: through a peer fixture, on the InfluxDB side of `store_url`, or in
    a module that starts its own (`pytestmark = pytest.mark.peers`)."""
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        callspec = getattr(item, "callspec", None)
        on_influx = callspec is not None and callspec.params.get("store_url") == "influxdb"
        if names & PEER_FIXTURES or on_influx:
            item.add_marker(pytest.mark.peers)

