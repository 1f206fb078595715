"""The command line's one error path: one line on stderr and a documented exit status for every user error, never a
traceback; read-only commands create nothing; a closed pipe ends quietly."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from hub.stores import open_store
from telemetry import Point, SeriesKey
from telemetry.errors import EXIT_STATUSES
from tests.peers import free_port
from tests.test_agent import run_cli

KEY = SeriesKey("lab", "house", "power")
T0 = 1_700_000_000_000


@pytest.fixture
def stored(tmp_path: Path) -> Path:
    """A config whose SQLite store holds 10,000 points of KEY."""
    url = f"sqlite:///{tmp_path}/p.sqlite"
    store = open_store(url)
    store.write([Point(KEY, T0 + i * 1000, i + 1, {"w": 100.0}) for i in range(10_000)])
    store.close()
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[store]\nurl = "{url}"\n')
    return cfg


def one_line_error(result: subprocess.CompletedProcess[str], status: int, fragment: str) -> None:
    assert result.returncode == status, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0], result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("command", ["export", "plot", "inventory", "formula"])
def test_the_store_down_is_one_line_and_status_3(tmp_path: Path, command: str) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[store]\nurl = "influxdb://127.0.0.1:{free_port()}/nothing"\n')
    args = {"export": ["--series", KEY.id], "plot": ["--series", KEY.id, "-o", str(tmp_path / "x.png")],
            "inventory": [], "formula": ["rollup"]}[command]
    one_line_error(run_cli(command, "--config", str(cfg), *args), 3, "unavailable")
    assert EXIT_STATUSES[3] == "the store is unavailable"


def test_read_only_commands_create_no_store(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[store]\nurl = "sqlite:///{tmp_path}/none/p.sqlite"\n')
    one_line_error(run_cli("export", "--config", str(cfg), "--series", KEY.id), 3, "no such file")
    one_line_error(run_cli("inventory", "--config", str(cfg)), 3, "no such file")
    assert not (tmp_path / "none").exists()


def test_unknown_series_and_bad_ranges_are_errors(stored: Path) -> None:
    one_line_error(run_cli("export", "--config", str(stored), "--series", "lab.nothing.power"), 2, "unknown series")
    one_line_error(run_cli("export", "--config", str(stored), "--series", KEY.id, "--from", "200", "--to", "100"),
                   2, "--from (200) must be before --to (100)")
    one_line_error(run_cli("export", "--config", str(stored), "--series", KEY.id, "--date", "2023-02-30"),
                   2, "date must be YYYY-MM-DD")
    one_line_error(run_cli("formula", "nope", "--config", str(stored)), 2, "known: energy")


def test_a_closed_pipe_ends_quietly(stored: Path) -> None:
    export = subprocess.Popen([sys.executable, "-m", "powerhub_cli", "export", "--config", str(stored), "--series",
                               KEY.id, "--from", str(T0), "--to", str(T0 + 10_000_000)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert export.stdout is not None and export.stderr is not None
    first = export.stdout.readline()
    export.stdout.close()  # what `| head -1` does
    assert export.wait(20) == 0
    assert first == b"timestamp,consumption\n"
    err = export.stderr.read()
    assert b"Traceback" not in err and b"BrokenPipe" not in err
    export.stderr.close()


def test_version_and_debug(stored: Path) -> None:
    version = run_cli("--version")
    assert version.returncode == 0 and version.stdout.startswith("powerhub ")
    debug = run_cli("--debug", "export", "--config", str(stored), "--series", "lab.nothing.power")
    assert debug.returncode == 2 and "Traceback" in debug.stderr  # --debug shows what happened


@pytest.mark.parametrize("command", ["agent", "hub", "web", "export", "formula", "plot", "inventory", "mqtt-acl",
                                     "demo"])
def test_every_command_refuses_a_misspelt_section(tmp_path: Path, command: str) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[web]\nlisten = "127.0.0.1:0"\n[formula]\nenabled = ["energy"]\n')
    extra = {"export": ["--series", KEY.id], "plot": ["--series", KEY.id, "-o", "x.png"], "formula": ["rollup"],
             "mqtt-acl": ["--out", str(tmp_path / "acl")]}.get(command, [])
    one_line_error(run_cli(command, "--config", str(cfg), *extra), 2,
                   "config error: formula: unknown section (did you mean formulas?)")


def test_demo_on_a_taken_port_says_what_to_do(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("demo", "--port", str(port), "--var", str(tmp_path / "var"))
    one_line_error(result, 2, f"port {port} on 127.0.0.1 is taken")
    assert "make demo PORT=" in result.stderr
    assert not (tmp_path / "var").exists()  # nothing started, nothing written


def test_demo_print_config_shows_what_the_demo_runs() -> None:
    import json

    result = run_cli("demo", "--print-config", "--port", "8123")
    assert result.returncode == 0, result.stderr
    cfg = json.loads(result.stdout)
    assert cfg["web"]["listen"] == "127.0.0.1:8123" and cfg["store"]["url"].startswith("sqlite:///")
    assert "rollup" in cfg["formulas"]["enabled"] and cfg["agent"]["readers"]
