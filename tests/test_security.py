"""Security against a real Mosquitto run with the password and ACL files `powerhub mqtt-acl` writes, over TLS with
certificates made here; and the web app's allowlist, trusted proxies and tokens; and secrets kept secret."""

from __future__ import annotations

import datetime
import ipaddress
import json
import logging
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from edge_agent.agent import Agent
from edge_agent.config import AgentConfig
from hub.mqtt_acl import mosquitto_hash, verifies
from hub.stores import open_store
from hub.subscriber import Subscriber
from powerhub_cli import main
from telemetry import SeriesKey
from telemetry.config import ConfigError, MqttConfig, Section
from telemetry.metrics import Metrics
from tests.peers import free_port, secret_file, wait_for, wait_port
from web import create_app
from web.auth import new_token, token_hash
from web.server import WebServer

pytestmark = pytest.mark.peers  # starts real programs of its own: `make test` only

PASSWORDS = {"lab-pi": "lab-pi-secret", "shed-pi": "shed-pi-secret", "hub": "hub-secret"}
NOW = datetime.datetime.now(datetime.UTC)


def _key(path: Path) -> ec.EllipticCurvePrivateKey:
    key = ec.generate_private_key(ec.SECP256R1())
    secret_file(path, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()).decode())
    return key


def _cert(path: Path, subject: str, key: ec.EllipticCurvePrivateKey, issuer: tuple[str, Any] | None = None,
          ca: bool = False, days: tuple[int, int] = (-1, 30)) -> None:
    issuer_name, issuer_key = issuer or (subject, key)
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
               .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_name)]))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(NOW + datetime.timedelta(days=days[0]))
               .not_valid_after(NOW + datetime.timedelta(days=days[1]))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if not ca:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
    path.write_bytes(builder.sign(issuer_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM))


class Pki:
    """A CA, a server certificate for 127.0.0.1, a client certificate, and a second CA nobody trusts."""

    def __init__(self, d: Path) -> None:
        self.d = d
        ca_key = _key(d / "ca.key")
        _cert(d / "ca.pem", "powerhub test CA", ca_key, ca=True)
        _cert(d / "server.pem", "127.0.0.1", _key(d / "server.key"), ("powerhub test CA", ca_key))
        _cert(d / "client.pem", "lab-pi", _key(d / "client.key"), ("powerhub test CA", ca_key))
        other_key = _key(d / "other-ca.key")
        _cert(d / "other-ca.pem", "some other CA", other_key, ca=True)
        _cert(d / "expired.pem", "127.0.0.1", _key(d / "expired.key"), ("powerhub test CA", ca_key),
              days=(-30, -1))


def inventory_doc(d: Path, root: str) -> dict[str, Any]:
    files = {name: str(secret_file(d / f"{name}.pass", pw)) for name, pw in PASSWORDS.items()}
    return {
        "mqtt": {"root": root},
        "inventory": {
            "agents": [{"site": "lab", "name": "pi", "password_file": files["lab-pi"]},
                       {"site": "shed", "name": "pi", "password_file": files["shed-pi"]}],
            "hub": {"username": "hub", "password_file": files["hub"]},
        },
    }


class SecureBroker:
    def __init__(self, d: Path, pki: Pki, acl_dir: Path, cert: str = "server", require_certificate: bool = False):
        self.port = free_port()
        conf = d / f"mosquitto-{cert}.conf"
        conf.write_text(
            f"listener {self.port} 127.0.0.1\nuser root\nallow_anonymous false\n"
            f"password_file {acl_dir}/passwd\nacl_file {acl_dir}/acl\n"
            f"cafile {pki.d}/ca.pem\ncertfile {pki.d}/{cert}.pem\nkeyfile {pki.d}/{cert}.key\n"
            f"require_certificate {'true' if require_certificate else 'false'}\n"
            f"log_dest file {d}/mosquitto-{cert}.log\n")
        self.proc = subprocess.Popen(["mosquitto", "-c", str(conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        wait_port(self.port)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Pki, SecureBroker, dict[str, Any]]]:
    d = tmp_path_factory.mktemp("secure")
    pki = Pki(d)
    doc = inventory_doc(d, "sec")
    config = d / "inventory.toml"
    config.write_text(_toml(doc))
    assert main(["mqtt-acl", "--config", str(config), "--out", str(d / "acl")]) == 0
    broker = SecureBroker(d, pki, d / "acl")
    yield d, pki, broker, doc
    broker.stop()


def _toml(doc: dict[str, Any]) -> str:
    inv = doc["inventory"]
    lines = [f'[mqtt]\nroot = "{doc["mqtt"]["root"]}"\n']
    for a in inv["agents"]:
        lines.append(f'[[inventory.agents]]\nsite = "{a["site"]}"\nname = "{a["name"]}"\n'
                     f'password_file = "{a["password_file"]}"\n')
    lines.append(f'[inventory.hub]\nusername = "hub"\npassword_file = "{inv["hub"]["password_file"]}"\n')
    return "\n".join(lines)


def mqtt(broker: SecureBroker, pki: Pki, user: str, ca: str = "ca.pem", **extra: Any) -> dict[str, Any]:
    return {"url": f"mqtts://127.0.0.1:{broker.port}", "root": "sec", "username": user,
            "password": PASSWORDS.get(user, "wrong"), "ca_file": str(pki.d / ca), **extra}


def test_mqtt_acl_files(secure: tuple[Path, Pki, SecureBroker, dict[str, Any]]) -> None:
    d = secure[0]
    acl = (d / "acl" / "acl").read_text()
    assert "user lab-pi\ntopic write sec/data/lab/#\ntopic write sec/status/lab/pi\ntopic read sec/hub/+\n" in acl
    assert ("user hub\ntopic write sec/hub/+\ntopic write sec/ha/#\ntopic write homeassistant/sensor/#\n"
            "topic write homeassistant/binary_sensor/#\ntopic write sec/alert/#\ntopic write sec/web/#\n"
            "topic read sec/data/#\ntopic read sec/status/#\ntopic read homeassistant/status\n"
            "topic read sec/alert/#\ntopic read sec/web/#\n") in acl
    passwd = (d / "acl" / "passwd").read_text()
    assert [line.split(":")[0] for line in passwd.splitlines()] == ["lab-pi", "shed-pi", "hub"]
    assert "secret" not in passwd and all(line.split(":")[1].startswith("$7$101$") for line in passwd.splitlines())
    assert (d / "acl" / "passwd").stat().st_mode & 0o777 == 0o600
    assert mosquitto_hash("pw", b"0" * 12) == mosquitto_hash("pw", b"0" * 12) != mosquitto_hash("pw", b"1" * 12)


def test_mqtt_acl_rerun_changes_nothing_and_rotation_changes_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = inventory_doc(tmp_path, "sec")
    config = tmp_path / "inventory.toml"
    config.write_text(_toml(doc))
    args = ["mqtt-acl", "--config", str(config), "--out", str(tmp_path / "out")]
    assert main(args) == 0
    assert capsys.readouterr().out.splitlines()[-1] == f"changed: {tmp_path}/out/passwd and {tmp_path}/out/acl"
    before = (tmp_path / "out" / "passwd").read_text()
    assert main(args) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "changed: nothing"
    assert (tmp_path / "out" / "passwd").read_text() == before
    secret_file(tmp_path / "lab-pi.pass", "rotated")
    assert main(args) == 0
    assert capsys.readouterr().out.splitlines()[-1] == f"changed: {tmp_path}/out/passwd"
    old, new = before.splitlines(), (tmp_path / "out" / "passwd").read_text().splitlines()
    assert old[0] != new[0] and old[1:] == new[1:]
    assert verifies(new[0].split(":", 1)[1], "rotated") and not verifies(old[0].split(":", 1)[1], "rotated")


def run_hub(cfg: MqttConfig, tmp_path: Path, client_id: str) -> Subscriber:
    hub = Subscriber(cfg, open_store(f"sqlite:///{tmp_path}/points.sqlite"), Metrics(), client_id,
                     batch_age_s=0.05)
    hub.start()
    wait_for(hub.connected.is_set, what="the hub to connect over TLS")
    return hub


def run_agent(tmp_path: Path, mqtt_doc: dict[str, Any], site: str) -> Agent:
    agent = Agent(AgentConfig.parse({"mqtt": mqtt_doc, "agent": {
        "site": site, "name": "pi", "outbox": str(tmp_path / f"outbox-{site}.sqlite"),
        "readers": [{"kind": "simulated", "device": "house", "mode": "watts", "interval_s": 0.05}]}}))
    agent.start()
    return agent


def test_agents_write_only_their_own_site(secure: tuple[Path, Pki, SecureBroker, dict[str, Any]], tmp_path: Path,
                                          caplog: pytest.LogCaptureFixture) -> None:
    _, pki, broker, _ = secure
    hub = run_hub(MqttConfig.parse(Section(mqtt(broker, pki, "hub"), "mqtt")), tmp_path, "hub-acl")
    honest = run_agent(tmp_path / "a", mqtt(broker, pki, "lab-pi"), "lab")
    # lab's credentials, but configured as site "shed": every publish is refused by the broker's ACL
    forger = run_agent(tmp_path / "b", mqtt(broker, pki, "lab-pi"), "shed")
    try:
        wait_for(lambda: hub.metrics.value("powerhub_points_stored_total") >= 20, what="lab's points stored")
        wait_for(lambda: forger.publisher is not None and forger.publisher.counters["points_refused"] > 0,
                 what="the broker to refuse the forged site's points")
        assert forger.outbox is not None and len(forger.outbox) > 0  # refused points are kept, never dropped
        sites = {info.key.site for info in hub.store.series()}
        assert sites == {"lab"}
        assert any("broker refused" in r.getMessage() for r in caplog.records)
    finally:
        forger.stop()
        honest.stop()
        hub.stop()


def test_wrong_password_is_refused(secure: tuple[Path, Pki, SecureBroker, dict[str, Any]], tmp_path: Path) -> None:
    _, pki, broker, _ = secure
    agent = run_agent(tmp_path, {**mqtt(broker, pki, "lab-pi"), "password": "guess"}, "lab")
    try:
        wait_for(lambda: agent.publisher is not None and agent.publisher.counters["connect_refused"] > 0,
                 what="the broker to refuse the password")
        assert agent.publisher is not None and agent.publisher.counters["points_acked"] == 0
    finally:
        agent.stop()


# paho does not close the socket of a failed TLS handshake (the garbage collector does, with a ResourceWarning):
# its bug, not a leak that grows, since paho retries with backoff and each socket is collected.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize("case", ["untrusted-ca", "expired-server-cert"])
def test_tls_refuses_servers_it_cannot_trust(secure: tuple[Path, Pki, SecureBroker, dict[str, Any]],
                                             tmp_path: Path, case: str) -> None:
    d, pki, broker, _ = secure
    other = SecureBroker(d, pki, d / "acl", cert="expired") if case == "expired-server-cert" else None
    target = other or broker
    try:
        ca = "other-ca.pem" if case == "untrusted-ca" else "ca.pem"
        agent = run_agent(tmp_path, mqtt(target, pki, "lab-pi", ca=ca), "lab")
        try:
            assert agent.publisher is not None
            assert not agent.publisher._connected.wait(3)
            assert agent.publisher.counters["points_acked"] == 0
        finally:
            agent.stop()
    finally:
        if other:
            other.stop()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # as above
def test_client_certificate(secure: tuple[Path, Pki, SecureBroker, dict[str, Any]], tmp_path: Path) -> None:
    d, pki, _, _ = secure
    strict = SecureBroker(d, pki, d / "acl", cert="server", require_certificate=True)
    try:
        without = run_agent(tmp_path / "x", mqtt(strict, pki, "lab-pi"), "lab")
        with_cert = run_agent(tmp_path / "y", mqtt(strict, pki, "lab-pi", cert_file=str(pki.d / "client.pem"),
                                                   key_file=str(pki.d / "client.key")), "lab")
        try:
            assert with_cert.publisher is not None and with_cert.publisher._connected.wait(10)
            assert without.publisher is not None and not without.publisher._connected.is_set()
        finally:
            without.stop()
            with_cert.stop()
    finally:
        strict.stop()


def test_secret_files_must_be_private(tmp_path: Path) -> None:
    path = tmp_path / "pw"
    path.write_text("hunter2\n")
    path.chmod(0o644)
    with pytest.raises(ConfigError, match=r"mqtt.password_file: .* readable by group or others \(mode 644\)"):
        MqttConfig.parse(Section({"password_file": str(path)}, "mqtt"))
    path.chmod(0o600)
    assert MqttConfig.parse(Section({"password_file": str(path)}, "mqtt")).password == "hunter2"
    with pytest.raises(ConfigError, match="cert_file and key_file go together"):
        MqttConfig.parse(Section({"url": "mqtts://h", "cert_file": "c.pem"}, "mqtt"))


def test_print_config_hides_secrets(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "p.toml"
    config.write_text('[mqtt]\nurl = "mqtt://u@127.0.0.1:1883"\npassword = "hunter2"\n'
                      '[store]\nurl = "influxdb://admin:s3cret@127.0.0.1:8086/p"\ntoken = "tok-123"\n'
                      '[[agent.readers]]\nkind = "snmp_pdu"\ncommunity = "private-community"\n'
                      'auth_key_file = "/etc/powerhub/k"\n')
    assert main(["hub", "--config", str(config), "--print-config"]) == 0
    out = capsys.readouterr().out
    for secret in ("hunter2", "s3cret", "tok-123", "private-community"):
        assert secret not in out
    doc = json.loads(out)
    assert doc["store"]["url"] == "influxdb://admin:***@127.0.0.1:8086/p"
    assert doc["agent"]["readers"][0]["auth_key_file"] == "/etc/powerhub/k"


def web(tmp_path: Path, **web_cfg: Any) -> WebServer:
    url = f"sqlite:///{tmp_path}/w.sqlite"
    store = open_store(url)
    from telemetry import Point

    store.write([Point(SeriesKey("lab", "m", "power"), 1_700_000_000_000, 1, {"w": 5.0, "ms": 720000})])
    store.close()
    server = WebServer(create_app({"store": {"url": url}, "web": {"listen": "127.0.0.1:0", "live": False,
                                                                   **web_cfg}}))
    server.start()
    return server


def test_forwarded_for_counts_only_from_trusted_proxies(tmp_path: Path) -> None:
    server = web(tmp_path, allow=["10.0.0.0/8"], trusted_proxies=["127.0.0.1/32"])
    base = f"http://127.0.0.1:{server.port}/api/v1/series"
    try:
        assert requests.get(base, timeout=5).status_code == 403  # the proxy itself is not allowed
        assert requests.get(base, headers={"X-Forwarded-For": "10.1.2.3"}, timeout=5).status_code == 200
        # The client wrote the left part itself; only the hop the proxy added (right-most) counts.
        spoofed = {"X-Forwarded-For": "10.1.2.3, 203.0.113.9"}
        assert requests.get(base, headers=spoofed, timeout=5).status_code == 403
        assert requests.get(base, headers={"X-Forwarded-For": "garbage"}, timeout=5).status_code == 403
    finally:
        server.stop()
    untrusting = web(tmp_path / "u", allow=["10.0.0.0/8"])
    try:  # without trusted_proxies the header is ignored: the socket's address decides
        resp = requests.get(f"http://127.0.0.1:{untrusting.port}/api/v1/series",
                            headers={"X-Forwarded-For": "10.1.2.3"}, timeout=5)
        assert resp.status_code == 403 and resp.json() == {"error": "client address not allowed"}
    finally:
        untrusting.stop()


def test_bearer_tokens(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    token, hashed = new_token()
    assert hashed == token_hash(token) and token not in hashed
    server = web(tmp_path, tokens=[hashed])
    base = f"http://127.0.0.1:{server.port}"
    caplog.set_level(logging.INFO)
    try:
        resp = requests.get(f"{base}/api/v1/series", timeout=5)
        assert resp.status_code == 401 and set(resp.json()) == {"error"}
        bad = requests.get(f"{base}/api/v1/series", headers={"Authorization": "Bearer nope"}, timeout=5)
        assert bad.status_code == 401
        ok = requests.get(f"{base}/api/v1/series", headers={"Authorization": f"Bearer {token}"}, timeout=5)
        assert ok.status_code == 200 and ok.json()[0]["id"] == "lab.m.power"
        assert requests.get(f"{base}/last/lab.m.power?token={token}", timeout=5).status_code == 200
        for open_path in ("/", "/healthz", "/api/v1/openapi.json", "/static/app.js"):
            assert requests.get(base + open_path, timeout=5).status_code == 200, open_path
        page = requests.get(f"{base}/", timeout=5)
        assert "script-src 'self'" in page.headers["Content-Security-Policy"]
        assert page.headers["X-Content-Type-Options"] == "nosniff"
        assert page.headers["Referrer-Policy"] == "same-origin"
    finally:
        server.stop()
    assert token not in caplog.text  # the ?token= request was logged without it
    assert "token=***" in caplog.text


def test_token_config_must_be_a_hash() -> None:
    with pytest.raises(ConfigError, match=r"web.tokens\[0\]: must be sha256:"):
        create_app({"web": {"tokens": ["plain-token"], "live": False}})


def test_the_hub_publishes_alerts_under_its_acl_and_the_web_app_reads_them(
        secure: tuple[Path, Pki, SecureBroker, dict[str, Any]], tmp_path: Path) -> None:
    """The ACL that `powerhub mqtt-acl` writes lets the hub publish its alert topics and Home Assistant's alert
    sensors, and the web app (on the hub's account) read them back."""
    from hub.config import HubConfig
    from hub.run import start_hub
    from web import create_app

    _, pki, broker, _ = secure
    hub_mqtt = mqtt(broker, pki, "hub")
    metrics = Metrics()
    hub = start_hub(HubConfig.parse({
        "mqtt": hub_mqtt, "store": {"url": f"sqlite:///{tmp_path}/points.sqlite"},
        "hub": {"client_id": "hub-acl-alerts", "batch_age_s": 0.05, "home_assistant": {"enabled": True}},
        "alerts": {"state_file": str(tmp_path / "alerts.sqlite"), "stale": {"enabled": False},
                   "rules": [{"name": "house-on", "series": "lab.house.power", "above": 0.0}]}}), metrics)
    agent = run_agent(tmp_path / "a", mqtt(broker, pki, "lab-pi"), "lab")
    app = create_app({"mqtt": hub_mqtt, "store": {"url": f"sqlite:///{tmp_path}/points.sqlite"}})
    try:
        wait_for(lambda: metrics.value("powerhub_alert_notifications_total", notifier="mqtt", outcome="sent"),
                 20, "the hub to publish the alert")
        with app.test_client() as web:
            firing = wait_for(lambda: web.get("/api/v1/alerts").get_json(), what="the alert at the web app")
        assert [(a["rule"], a["subject"]) for a in firing] == [("house-on", "lab.house.power")]
        assert not metrics.value("powerhub_alert_notifications_total", notifier="mqtt", outcome="failed")
    finally:
        app.extensions["powerhub"].alerts.stop()
        agent.stop()
        hub.stop()
        hub.store.close()
