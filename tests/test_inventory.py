"""`powerhub inventory` against a real store: PDUs and outlets from the stored series, machines from the config."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from hub.stores import Store
from powerhub_cli import main
from telemetry import Point, SeriesKey

CONFIG = """
[store]
url = "{url}"

[[inventory.machines]]
name = "web-01"
site = "lab"
sources = ["pdu-a3.outlet-1", "pdu-b3.outlet-1"]

[[inventory.machines]]
name = "node17"
site = "lab"
sources = ["node17.power"]        # its BMC never reported

[[inventory.machines]]
name = "spare"
site = "lab"
"""


def write_pdus(store: Store) -> None:
    now = time.time_ns() // 1_000_000
    points = [
        Point(SeriesKey("lab", "pdu-a3", "outlet-1"), now, 1, {"w": 143.0, "name": "web-01 psu1"}),
        Point(SeriesKey("lab", "pdu-a3", "outlet-2"), now, 2, {"w": 118.0, "name": "db-01"}),
        Point(SeriesKey("lab", "pdu-a3", "outlet-10"), now, 3, {"w": 0.0}),
        Point(SeriesKey("lab", "pdu-a3", "total"), now, 4, {"w": 261.0}),
        Point(SeriesKey("lab", "mainmeter", "power"), now, 5, {"w": 500.0, "ms": 7200}),
    ]
    store.write(points)


def run(tmp_path: Path, url: str, *args: str) -> int:
    config = tmp_path / "powerhub.toml"
    config.write_text(CONFIG.format(url=url))
    return main(["inventory", "--config", str(config), *args])


def test_lists_pdus_and_flags_what_is_unmapped(store: Store, store_url: str, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    write_pdus(store)
    assert run(tmp_path, store_url) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == "PDUs:"
    assert lines[1].split() == ["lab.pdu-a3", "total", "261.0", "W"]  # the main meter is no PDU
    outlets = [line.split()[0] for line in lines[2:5]]
    assert outlets == ["outlet-1", "outlet-2", "outlet-10"]  # numeric order
    assert "web-01 psu1" in lines[2] and lines[2].rstrip().endswith("web-01")
    assert "db-01" in lines[3] and lines[3].endswith("<- draws power, no machine")
    assert "<-" not in lines[4]  # 0 W: idle, not flagged
    assert "lab.web-01  pdu-a3.outlet-1 143.0 W, pdu-b3.outlet-1 no data" in out
    assert "lab.node17  node17.power no data  <- no source" in out
    assert "lab.spare  (no sources listed)  <- no source" in out
    assert "lab.web-01  <- fed by pdu-a3 and pdu-b3, no pair in [[inventory.pdus]]: no redundancy check" in out
    assert lines[-2:] == ["1 outlet(s) drawing >= 1 W with no machine; 2 machine(s) with no source",
                          "0 phase(s) or bank(s) with no rating; 1 dual-fed machine(s) on PDUs that are no pair; "
                          "0 rated PDU(s) not in the store"]


RATED = """
[[inventory.pdus]]
site = "lab"
device = "pdu-a3"
rating_a = 16.0
banks_a = { "1" = 10.0 }
pair = "pdu-b3"

[[inventory.pdus]]
site = "lab"
device = "pdu-b3"

[[inventory.pdus]]
site = "lab"
device = "pdu-c9"                 # a typo, or a PDU not yet read
"""


def test_phases_and_banks_show_their_rating_and_what_the_alerts_cannot_judge_is_flagged(
        store: Store, store_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_pdus(store)
    now = time.time_ns() // 1_000_000
    store.write([
        Point(SeriesKey("lab", "pdu-a3", "phase-1"), now, 6, {"a": 6.5, "limit_a": 12.0}),
        Point(SeriesKey("lab", "pdu-a3", "bank-1"), now, 7, {"a": 3.8}),
        Point(SeriesKey("lab", "pdu-a3", "bank-2"), now, 8, {"a": 2.4, "limit_a": 8.0}),
        Point(SeriesKey("lab", "pdu-b3", "phase-1"), now, 9, {"a": 1.0}),  # no limit_a, no rating_a
    ])
    config = tmp_path / "powerhub.toml"
    config.write_text(CONFIG.format(url=store_url) + RATED)
    assert main(["inventory", "--config", str(config), "--check"]) == 1
    out = capsys.readouterr().out
    rows = [line.split("  <-")[0].split() for line in out.splitlines()]
    assert ["phase-1", "6.5", "A", "of", "16", "A", "(41%)"] in rows  # rating_a wins over the PDU's own 12 A
    assert ["bank-1", "3.8", "A", "of", "10", "A", "(38%)"] in rows  # banks_a
    assert ["bank-2", "2.4", "A", "of", "8", "A", "(30%)"] in rows  # the PDU's own limit_a
    b3 = out.split("lab.pdu-b3", 1)[1].splitlines()
    assert b3[1].split() == ["phase-1", "1.0", "A", "<-", "no", "rating:", "set", "rating_a", "(banks_a)", "in",
                             "[[inventory.pdus]]"]
    assert "  lab.pdu-c9  <- in [[inventory.pdus]], no series in the store" in out
    assert "no redundancy check" not in out  # web-01's two PDUs are a pair now
    assert out.splitlines()[-1] == ("1 phase(s) or bank(s) with no rating; 0 dual-fed machine(s) on PDUs that are no "
                                    "pair; 1 rated PDU(s) not in the store")


def test_check_exits_1_when_anything_is_flagged(store: Store, store_url: str, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    write_pdus(store)
    assert run(tmp_path, store_url, "--check") == 1
    captured = capsys.readouterr()
    assert captured.out.startswith("PDUs:")
    assert captured.err == "powerhub inventory: something is flagged (above)\n"


def test_bad_source_is_a_config_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "powerhub.toml"
    config.write_text('[[inventory.machines]]\nname = "x"\nsite = "lab"\nsources = ["pdu-a3"]\n')
    assert main(["inventory", "--config", str(config)]) == 2
    assert "inventory.machines[0].sources[0]: must be device.channel" in capsys.readouterr().err


def test_unreachable_store_is_one_clear_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.peers import free_port

    assert run(tmp_path, f"influxdb://127.0.0.1:{free_port()}/powerhub") == 3
    err = capsys.readouterr().err
    assert err.startswith("powerhub inventory: store unavailable:") and err.count("\n") == 1
