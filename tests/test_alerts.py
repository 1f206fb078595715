"""Alerts against real peers: a hub on the real Mosquitto judges what it stores, a real Alertmanager receives each
firing and each resolution (and pages once, through its webhook receiver), the webhook and the MQTT alert topics
carry the same, and the web app's `/api/v1/alerts` shows what fires, also across a restart of the hub."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
import requests

from hub.config import HubConfig
from hub.run import start_hub
from hub.subscriber import Subscriber
from telemetry import Point, SeriesKey
from telemetry.config import MqttConfig
from telemetry.metrics import Metrics
from telemetry.mqtt import close, connect_async, make_client, status_payload
from telemetry.timeunits import now_ms
from telemetry.topics import alert_filter, alert_topic, status_topic
from tests.peers import Alertmanager, Publisher, Receiver, wait_for
from web import create_app

pytestmark = pytest.mark.peers

OUTLET = SeriesKey("lab", "pdu-a", "outlet-3")
RULE = {"name": "outlet-hot", "series": "lab.pdu-*.outlet-*", "above": 500.0, "severity": "critical"}


@dataclass
class Site:
    doc: dict[str, Any]
    mqtt: MqttConfig
    am: Alertmanager
    pager: Receiver  # what Alertmanager pages
    webhook: Receiver  # what the hub's own webhook gets
    publisher: Publisher
    hub: Subscriber | None = None
    metrics: Metrics | None = None

    def start_hub(self) -> Subscriber:
        self.metrics = Metrics()
        self.hub = start_hub(HubConfig.parse(self.doc), self.metrics)
        wait_for(self.hub.marked.is_set, what="the hub to subscribe")
        return self.hub

    def stop_hub(self) -> None:
        if self.hub is not None:
            self.hub.stop()
            self.hub.store.close()
            self.hub = None

    def send(self, watts: float, ts_ms: int | None = None, key: SeriesKey = OUTLET) -> None:
        ts = ts_ms if ts_ms is not None else now_ms()
        self.publisher.send_points(key, [Point(key, ts, ts, {"w": watts})])

    def paged(self, status: str) -> list[dict[str, Any]]:
        """The alerts Alertmanager's receiver was sent with this status, one entry per notification."""
        return [a for n in self.pager.received for a in n["alerts"] if a["status"] == status]


@pytest.fixture
def site(mqtt_doc: dict[str, Any], mqtt_cfg: MqttConfig, mqtt_root: str, tmp_path: Path) -> Iterator[Site]:
    pager, webhook = Receiver(), Receiver()
    am = Alertmanager(tmp_path, pager.url)
    am.start()
    doc = {
        "mqtt": mqtt_doc,
        "hub": {"client_id": f"hub-{mqtt_root}", "batch_age_s": 0.02},
        "store": {"url": f"sqlite:///{tmp_path}/points.sqlite"},
        "alerts": {"alertmanager_url": am.url, "webhook_url": webhook.url, "state_file": str(tmp_path / "a.sqlite"),
                   "rules": [RULE], "stale": {"min_s": 1.0, "intervals": 3.0}, "offline": {"for_s": 0}},
    }
    s = Site(doc, mqtt_cfg, am, pager, webhook, Publisher(mqtt_cfg))
    yield s
    s.stop_hub()
    s.publisher.close()
    am.stop()
    pager.stop()
    webhook.stop()


class AlertTopics:
    """A real MQTT subscriber of `{root}/alert/#`, as Home Assistant or Node-RED would be: the retained messages."""

    def __init__(self, cfg: MqttConfig) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self.client = make_client(cfg, f"alert-reader-{id(self)}")
        self.client.on_connect = lambda c, *_: c.subscribe(alert_filter(cfg.root), 1)
        self.client.on_message = lambda _c, _u, m: self.messages.append((m.topic, bytes(m.payload), bool(m.retain)))
        connect_async(self.client, cfg)
        wait_for(self.client.is_connected, what="the alert reader to connect")

    def close(self) -> None:
        close(self.client)


def am_alerts(site: Site, name: str) -> list[dict[str, Any]]:
    return [a for a in site.am.alerts() if a["labels"]["alertname"] == name]


def test_a_threshold_fires_and_resolves_at_alertmanager_the_webhook_mqtt_and_the_api(site: Site) -> None:
    site.start_hub()
    reader = AlertTopics(site.mqtt)
    app = create_app(site.doc)
    try:
        site.send(400.0)
        site.send(612.5)
        held = wait_for(lambda: am_alerts(site, "outlet-hot"), what="the alert at Alertmanager")[0]
        assert held["labels"] == {"alertname": "outlet-hot", "site": "lab", "subject": "lab.pdu-a.outlet-3",
                                  "severity": "critical"}
        assert held["annotations"] == {"summary": "lab.pdu-a.outlet-3: w 612.5 W is above 500 (outlet-hot)",
                                       "value": "612.5", "limit": "500"}
        topic = alert_topic(site.mqtt.root, "lab", "outlet-hot", "lab.pdu-a.outlet-3")
        wait_for(lambda: reader.messages, what="the alert on MQTT")
        got_topic, payload, _ = reader.messages[0]
        body = orjson.loads(payload)
        assert got_topic == topic and body["state"] == "firing" and body["value"] == 612.5 and body["limit"] == 500
        with app.test_client() as web:
            firing = web.get("/api/v1/alerts").get_json()
        assert firing == [{"rule": "outlet-hot", "site": "lab", "subject": "lab.pdu-a.outlet-3", "state": "firing",
                           "since": body["since"], "severity": "critical", "summary": held["annotations"]["summary"],
                           "value": 612.5, "limit": 500.0}]
        wait_for(lambda: site.paged("firing"), what="Alertmanager to page")

        site.send(480.0)  # inside the hysteresis band (clear_at 475): still firing
        site.send(470.0)
        wait_for(lambda: not am_alerts(site, "outlet-hot"), what="the alert to resolve at Alertmanager")
        wait_for(lambda: site.paged("resolved"), what="Alertmanager to page the resolution")
        hook = wait_for(lambda: [a for n in site.webhook.received for a in n["alerts"]]
                        if len(site.webhook.received) >= 2 else None, what="the webhook's two notifications")
        assert [(a["rule"], a["state"], a["value"]) for a in hook] == [("outlet-hot", "firing", 612.5),
                                                                        ("outlet-hot", "resolved", 470.0)]
        wait_for(lambda: len(reader.messages) >= 3, what="the resolution and the cleared topic on MQTT")
        assert [(orjson.loads(p)["state"] if p else "") for _, p, _ in reader.messages] == ["firing", "resolved", ""]
        later = AlertTopics(site.mqtt)  # a subscriber that comes now finds nothing retained
        time.sleep(0.5)
        assert later.messages == []
        later.close()
        with app.test_client() as web:
            assert web.get("/api/v1/alerts").get_json() == []
        assert len(site.paged("firing")) == 1 and len(site.paged("resolved")) == 1
        assert site.metrics is not None
        assert site.metrics.value("powerhub_alerts_total", rule="outlet-hot", state="firing") == 1
        assert site.metrics.value("powerhub_alerts_total", rule="outlet-hot", state="resolved") == 1
    finally:
        reader.close()
        app.extensions["powerhub"].alerts.stop()


def test_a_restart_mid_alert_pages_once_and_still_sends_a_resolution_that_came_while_it_was_down(site: Site) -> None:
    site.start_hub()
    site.send(900.0)
    wait_for(lambda: site.paged("firing"), what="Alertmanager to page")
    site.stop_hub()
    site.start_hub()  # re-posts what fires to Alertmanager at start: the same alert, no second page
    assert site.hub is not None and site.hub.alerts is not None
    assert [a["rule"] for a in site.hub.alerts.firing()] == ["outlet-hot"]
    time.sleep(3)  # three of Alertmanager's group intervals
    assert len(site.paged("firing")) == 1
    site.stop_hub()
    site.send(100.0)  # resolved while the hub is down: the broker keeps it for the hub's session
    site.start_hub()
    wait_for(lambda: site.paged("resolved"), what="the resolution to reach Alertmanager's receiver")
    assert not am_alerts(site, "outlet-hot")
    assert len(site.paged("firing")) == 1 and len(site.paged("resolved")) == 1


def test_an_old_overload_from_a_backlog_is_in_the_history_and_pages_nobody(site: Site) -> None:
    hub = site.start_hub()
    hour_ago = now_ms() - 3_600_000
    site.send(800.0, hour_ago)
    site.send(100.0, hour_ago + 1000)
    assert hub.alerts is not None
    wait_for(lambda: len(hub.alerts.history("lab.pdu-a.outlet-3")) == 2, what="the resolution in the history")
    history = hub.alerts.history("lab.pdu-a.outlet-3")
    assert [(h["state"], h["since"]) for h in history] == [("resolved", hour_ago), ("firing", hour_ago)]
    time.sleep(2)
    # (The series itself is stale now: its newest point is an hour old. That alert is about the present.)
    assert not [a for a in site.paged("firing") if a["labels"]["alertname"] == "outlet-hot"]
    assert not [a for n in site.webhook.received for a in n["alerts"] if a["rule"] == "outlet-hot"]
    assert not am_alerts(site, "outlet-hot")


def test_a_series_that_goes_quiet_is_stale_until_it_reports_again(site: Site) -> None:
    hub = site.start_hub()
    quiet = SeriesKey("lab", "meter", "power")
    start = now_ms()
    for i in range(6):
        site.send(100.0, start + 100 * i, key=quiet)
    got = wait_for(lambda: am_alerts(site, "stale"), 10, "the stale alert at Alertmanager")[0]
    assert got["labels"]["subject"] == "lab.meter.power" and got["labels"]["severity"] == "warning"
    assert "has not reported for" in got["annotations"]["summary"]
    assert now_ms() - start >= 1000  # min_s: never before a second of silence
    site.send(100.0, key=quiet)
    wait_for(lambda: not am_alerts(site, "stale"), 10, "the stale alert to resolve")
    assert hub.alerts is not None and not [a for a in hub.alerts.firing() if a["rule"] == "stale"]


def test_an_agent_whose_status_says_offline_is_an_alert_until_it_is_online(site: Site) -> None:
    site.start_hub()
    status = status_topic(site.mqtt.root, "lab", "rack-pi")
    client = site.publisher.client

    def say(state: str) -> None:
        client.publish(status, status_payload(state, now_ms(), "test"), qos=1, retain=True).wait_for_publish(5)

    say("online")
    say("offline")
    got = wait_for(lambda: am_alerts(site, "offline"), what="the offline alert at Alertmanager")[0]
    assert got["labels"] == {"alertname": "offline", "site": "lab", "subject": "rack-pi", "severity": "critical"}
    say("online")
    wait_for(lambda: not am_alerts(site, "offline"), what="the offline alert to resolve")
    client.publish(status, b"", qos=1, retain=True).wait_for_publish(5)


def test_a_sigkilled_agent_is_offline_at_alertmanager_through_its_last_will(site: Site, tmp_path: Path) -> None:
    hub = site.start_hub()
    root, url = site.doc["mqtt"]["root"], site.doc["mqtt"]["url"]
    cfg = tmp_path / "agent.toml"
    cfg.write_text(f'[mqtt]\nurl = "{url}"\nroot = "{root}"\n'
                   f'[agent]\nsite = "lab"\nname = "rack-pi"\noutbox = "{tmp_path}/outbox.sqlite"\n'
                   '[[agent.readers]]\nkind = "simulated"\ndevice = "house"\nmode = "watts"\ninterval_s = 0.1\n')
    agent = subprocess.Popen([sys.executable, "-m", "powerhub_cli", "agent", "--config", str(cfg)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: hub.agents.agent_of("lab", "house") == "rack-pi", 20, "the agent online at the hub")
        assert not am_alerts(site, "offline")
        agent.send_signal(signal.SIGKILL)  # no goodbye: only the broker's last will says it is gone
        agent.wait(10)
        got = wait_for(lambda: am_alerts(site, "offline"), 20, "the offline alert at Alertmanager")[0]
        assert got["labels"]["subject"] == "rack-pi" and got["labels"]["severity"] == "critical"
        assert got["annotations"]["summary"].startswith("agent lab/rack-pi is offline since ")
        wait_for(lambda: site.paged("firing"), what="Alertmanager to page it")
        agent = subprocess.Popen([sys.executable, "-m", "powerhub_cli", "agent", "--config", str(cfg)],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: not am_alerts(site, "offline"), 20, "the agent back, the alert resolved")
        wait_for(lambda: site.paged("resolved"), what="Alertmanager to page the resolution")
    finally:
        agent.terminate()
        agent.wait(10)
        site.publisher.client.publish(status_topic(root, "lab", "rack-pi"), b"", qos=1,
                                      retain=True).wait_for_publish(5)


def test_a_whole_pdu_over_its_limit_is_one_page_with_alertmanager_grouping_as_the_readme_says(
        site: Site, tmp_path: Path) -> None:
    (tmp_path / "grouped").mkdir()
    pager = Receiver()
    grouped = Alertmanager(tmp_path / "grouped", pager.url, group_by=("alertname", "site"))  # the README's route
    grouped.start()
    site.doc["alerts"]["alertmanager_url"] = grouped.url
    try:
        site.start_hub()
        now = now_ms()
        outlets = [SeriesKey("lab", "pdu-a", f"outlet-{n}") for n in range(1, 25)]
        for key in outlets:  # a whole PDU at once: 24 alerts
            site.publisher.send_points(key, [Point(key, now, now, {"w": 800.0})])
        wait_for(lambda: len([a for a in grouped.alerts() if a["labels"]["alertname"] == "outlet-hot"]) == 24,
                 what="24 alerts at Alertmanager")
        wait_for(lambda: [n for n in pager.received if n["status"] == "firing"], what="the page")
        time.sleep(2)  # past group_wait and group_interval: a second page would have come by now
        pages = [n for n in pager.received if n["status"] == "firing"]
        assert len(pages) == 1 and len(pages[0]["alerts"]) == 24
        assert pages[0]["groupLabels"] == {"alertname": "outlet-hot", "site": "lab"}
    finally:
        grouped.stop()
        pager.stop()


def test_points_an_agent_lost_for_good_are_a_gaps_alert_and_late_ones_resolve_it(site: Site) -> None:
    site.doc["alerts"]["gaps"] = {"for_s": 1.0, "clear_after_s": 3.0}
    site.doc["alerts"]["stale"] = {"enabled": False}
    hub = site.start_hub()
    status = status_topic(site.mqtt.root, "lab", "rack-pi")
    client = site.publisher.client
    client.publish(status, status_payload("online", now_ms(), "test", ["pdu-a"]), qos=1,
                   retain=True).wait_for_publish(5)
    wait_for(lambda: hub.agents.agent_of("lab", "pdu-a") == "rack-pi", what="the hub to read the status")

    def send(*seqs: int) -> None:
        t0 = now_ms()
        site.publisher.send_points(OUTLET, [Point(OUTLET, t0 + i, seq, {"w": 100.0}) for i, seq in enumerate(seqs)])

    try:
        send(1, 2, 5)  # 3 and 4 are missing, for longer than for_s: lost
        got = wait_for(lambda: am_alerts(site, "gaps"), what="the gaps alert at Alertmanager")[0]
        assert got["labels"] == {"alertname": "gaps", "site": "lab", "subject": "rack-pi", "severity": "warning"}
        assert got["annotations"]["summary"] == "agent lab/rack-pi lost 2 points (seq gaps)"
        send(3, 4)  # they were late after all (an outbox draining): the holes are filled
        wait_for(lambda: not am_alerts(site, "gaps"), what="the filled gaps to resolve")
        send(6, 9)  # two more lost, and no new hole after them: resolved after clear_after_s
        wait_for(lambda: am_alerts(site, "gaps"), what="the second gaps alert")
        assert am_alerts(site, "gaps")[0]["annotations"]["summary"] == "agent lab/rack-pi lost 2 points (seq gaps)"
        wait_for(lambda: not am_alerts(site, "gaps"), 15, "the gaps alert to resolve once no new hole opens")
        assert [h["state"] for h in hub.alerts.history("rack-pi") if h["rule"] == "gaps"] == [  # type: ignore[union-attr]
            "resolved", "firing", "resolved", "firing"]
    finally:
        client.publish(status, b"", qos=1, retain=True).wait_for_publish(5)


def test_alertmanager_or_the_webhook_down_loses_no_notification(site: Site) -> None:
    site.am.stop()
    site.webhook.fail = True
    site.start_hub()
    site.send(700.0)

    def failed(notifier: str) -> bool:
        return bool(site.metrics) and site.metrics.value(  # type: ignore[union-attr]
            "powerhub_alert_notifications_total", notifier=notifier, outcome="failed") >= 1

    wait_for(lambda: failed("alertmanager") and failed("webhook"), what="failed deliveries to be counted")
    site.am.start()  # same port, empty state: the held firing arrives and pages
    wait_for(lambda: site.paged("firing"), 20, "the held firing to reach Alertmanager")
    site.send(100.0)
    wait_for(lambda: site.paged("resolved"), 20, "the resolution to reach Alertmanager")
    assert site.webhook.received == []
    site.webhook.fail = False  # both wait for it, in order
    wait_for(lambda: len([a for n in site.webhook.received for a in n["alerts"] if a["rule"] == "outlet-hot"]) == 2,
             20, "both notifications at the webhook")
    hook = [(a["state"], a["value"]) for n in site.webhook.received for a in n["alerts"] if a["rule"] == "outlet-hot"]
    assert hook == [("firing", 700.0), ("resolved", 100.0)]


def test_the_hub_serves_what_fires_and_the_history_over_http(site: Site) -> None:
    site.doc["hub"]["listen"] = "127.0.0.1:0"
    from hub.http import HubHttp

    hub = site.start_hub()
    http = HubHttp("127.0.0.1", 0, Metrics(), hub.agents, hub.alerts)
    http.start()
    try:
        site.send(650.0)
        base = f"http://127.0.0.1:{http.port}/api/v1/alerts"
        wait_for(lambda: requests.get(base, timeout=5).json(), what="the alert on the hub's HTTP")
        assert requests.get(base, timeout=5).json()[0]["summary"].startswith("lab.pdu-a.outlet-3: w 650 W")
        history = requests.get(f"{base}/history", params={"subject": "lab.pdu-a.outlet-3"}, timeout=5).json()
        assert [h["state"] for h in history] == ["firing"]
        bad = requests.get(f"{base}/history", params={"limit": "lots"}, timeout=5)
        assert bad.status_code == 400 and "limit" in bad.json()["error"]

        # The web app serves the same history from the hub it is told of (web.hub_url), for the dashboard.
        web_doc = {**site.doc, "web": {"hub_url": f"http://127.0.0.1:{http.port}"}}
        app = create_app(web_doc)
        try:
            with app.test_client() as web:
                got = web.get("/api/v1/alerts/history?subject=lab.pdu-a.outlet-3&limit=5")
                assert got.status_code == 200 and got.get_json() == history
                assert web.get("/api/v1/alerts/history?subject=lab.nothing.here").get_json() == []
                too_many = web.get("/api/v1/alerts/history?limit=5000")
                assert too_many.status_code == 400 and too_many.get_json() == {
                    "error": "limit must be 1 to 1000, not 5000"}
        finally:
            app.extensions["powerhub"].alerts.stop()
    finally:
        http.stop()
    with create_app(web_doc).test_client() as web:  # the hub gone: 503 in the one error shape
        gone = web.get("/api/v1/alerts/history")
        assert gone.status_code == 503 and gone.get_json()["error"].startswith(
            f"alerts history unavailable: the hub at http://127.0.0.1:{http.port} does not answer")
    with create_app({"store": site.doc["store"]}).test_client() as web:  # no web.hub_url: nobody to ask
        assert web.get("/api/v1/alerts/history").get_json() == {
            "error": "alerts history unavailable: set web.hub_url to the hub's endpoint (hub.listen)"}


def test_the_web_app_answers_503_when_the_broker_does_not(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import web.alerts
    from tests.peers import free_port

    monkeypatch.setattr(web.alerts, "SYNC_TIMEOUT_S", 0.5)
    doc = {"mqtt": {"url": f"mqtt://127.0.0.1:{free_port()}"}, "store": {"url": f"sqlite:///{tmp_path}/p.sqlite"}}
    app = create_app(doc)
    try:
        with app.test_client() as client:
            resp = client.get("/api/v1/alerts")
        assert resp.status_code == 503 and resp.get_json() == {"error": "alerts unavailable: the MQTT broker did "
                                                                        "not answer"}
    finally:
        app.extensions["powerhub"].alerts.stop()



RPDU2 = "1.3.6.1.4.1.318.1.1.26"
# An AP8641's phase and bank tables, written for this test from PowerNet-MIB, their currents moving (snmpsim's numeric
# variation): the phase between 5 and 15 A against the PDU's own thresholds, near-overload 10 A and overload 12 A;
# bank 1 between 2.5 and 7.5 A, rated 6 A in the test's [[inventory.pdus]].
MOVING_PHASE = f"""1.3.6.1.2.1.1.1.0|4|AP8641 phase moving over its thresholds (hand-written for powerhub's tests)
{RPDU2}.6.1.1.6.1|2|10
{RPDU2}.6.1.1.7.1|2|12
{RPDU2}.6.3.1.5.1|2:numeric|function=sin%<time>,rate=1.5,scale=50,offset=100
{RPDU2}.8.3.1.5.1|2:numeric|function=sin%<time>,rate=1.2,scale=25,offset=50
"""


def test_capacity_and_overload_follow_phase_and_bank_currents_over_their_ratings_and_back(site: Site,
                                                                                          tmp_path: Path) -> None:
    from edge_agent.agent import Agent
    from edge_agent.config import AgentConfig
    from tests.peers import SnmpSim

    sim = SnmpSim({"moving": MOVING_PHASE})
    site.doc["alerts"]["capacity"] = {"for_s": 0}
    site.doc["inventory"] = {"pdus": [{"site": "lab", "device": "pdu-a", "banks_a": {"1": 6.0}}]}
    site.doc["agent"] = {"site": "lab", "name": "rack-pi", "outbox": str(tmp_path / "outbox.sqlite"),
                         "readers": [{"kind": "snmp_pdu", "device": "pdu-a", "host": "127.0.0.1", "port": sim.port,
                                      "community": "moving", "profile": "apc", "interval_s": 0.25}]}
    site.start_hub()
    agent = Agent(AgentConfig.parse(site.doc))
    agent.start()
    try:
        def paged(rule: str, status: str, subject: str = "lab.pdu-a.phase-1") -> list[dict[str, Any]]:
            return [a for a in site.paged(status) if a["labels"]["alertname"] == rule
                    and a["labels"]["subject"] == subject]

        for rule in ("capacity", "overload"):
            for subject in ("lab.pdu-a.phase-1", "lab.pdu-a.bank-1"):
                wait_for(lambda r=rule, s=subject: paged(r, "firing", s) and paged(r, "resolved", s),  # type: ignore[misc]
                         30, f"{rule} of {subject} to fire and resolve")
        capacity = paged("capacity", "firing")[0]
        overload = paged("overload", "firing")[0]
        assert capacity["labels"] == {"alertname": "capacity", "site": "lab", "subject": "lab.pdu-a.phase-1",
                                      "severity": "warning"}
        assert overload["labels"]["severity"] == "critical"
        # Its rating is the PDU's own overload threshold, 12 A; capacity warns past 80 % of it (9.6 A).
        assert overload["annotations"]["limit"] == "12" and capacity["annotations"]["limit"] == "9.6"
        assert float(overload["annotations"]["value"]) > 12
        assert "of its 12 A rating" in overload["annotations"]["summary"]
        # The bank's rating is the inventory's (banks_a), not the PDU's: 6 A, warned at 4.8 A.
        bank_over = paged("overload", "firing", "lab.pdu-a.bank-1")[0]
        assert bank_over["annotations"]["limit"] == "6" and float(bank_over["annotations"]["value"]) > 6
        assert paged("capacity", "firing", "lab.pdu-a.bank-1")[0]["annotations"]["limit"] == "4.8"
    finally:
        agent.stop()
        sim.stop()


def test_redundancy_fires_when_a_feed_could_not_carry_its_twins_share(site: Site) -> None:
    site.doc["inventory"] = {
        "pdus": [{"site": "lab", "device": "pdu-a", "rating_a": 10.0, "pair": "pdu-b"},
                 {"site": "lab", "device": "pdu-b", "rating_a": 10.0}],
        "machines": [{"name": "node1", "site": "lab", "sources": ["pdu-a.outlet-1", "pdu-b.outlet-1"]}],
    }
    site.doc["alerts"]["redundancy"] = {"for_s": 0}
    site.start_hub()

    def feed(device: str, channel: str, amps: float) -> None:
        key = SeriesKey("lab", device, channel)
        ts = now_ms()
        site.publisher.send_points(key, [Point(key, ts, ts, {"a": amps, "w": amps * 230})])

    # pdu-a carries 6 A (its phase), 3 A of it node1's; pdu-b carries node1's other 5 A: without pdu-b, pdu-a
    # would carry 6 + 5 = 11 A, past its 10 A.
    feed("pdu-a", "phase-1", 6.0)
    feed("pdu-a", "outlet-1", 3.0)
    feed("pdu-b", "phase-1", 5.0)
    feed("pdu-b", "outlet-1", 5.0)
    got = wait_for(lambda: am_alerts(site, "redundancy"), what="the redundancy alert")
    assert [a["labels"]["subject"] for a in got] == ["pdu-a"]  # pdu-b would carry 5 + 3 = 8 A: fine
    assert got[0]["annotations"]["summary"] == "pdu-a would carry 11.0 A if pdu-b failed, above its 10 A rating " \
                                               "(redundancy)"
    feed("pdu-b", "outlet-1", 3.0)  # 6 + 3 = 9 A: back inside the hysteresis band's edge (9.5 A)
    wait_for(lambda: not am_alerts(site, "redundancy"), what="the redundancy alert to resolve")


def test_the_site_limit_and_its_soft_limit(site: Site) -> None:
    site.doc["inventory"] = {"sites": [{"name": "lab", "main": "mainmeter.power", "limit_kw": 20.0}]}
    site.doc["alerts"]["site_limit"] = {"for_s": 0}
    site.start_hub()
    main = SeriesKey("lab", "mainmeter", "power")
    site.send(18_500.0, key=main)  # past the soft limit, 90 % of 20 kW
    soft = wait_for(lambda: am_alerts(site, "site-soft-limit"), what="the soft limit")[0]
    assert soft["labels"]["severity"] == "warning" and soft["annotations"]["limit"] == "18000"
    assert not am_alerts(site, "site-limit")
    site.send(21_000.0, key=main)
    hard = wait_for(lambda: am_alerts(site, "site-limit"), what="the hard limit")[0]
    assert hard["annotations"]["summary"] == "site lab: 21000 W is 105% of its 20000 W limit (site-limit)"
    site.send(10_000.0, key=main)
    wait_for(lambda: not am_alerts(site, "site-limit") and not am_alerts(site, "site-soft-limit"), what="both to end")
