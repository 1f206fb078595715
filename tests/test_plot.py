"""`powerhub plot` writes a PNG of a series, with its machine's CPU load on a second axis; `powerhub export` shows
its progress on a terminal."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from hub.stores import Store
from powerhub_cli import main
from telemetry import Point, SeriesKey
from web import plot
from web.export import with_progress

T0 = 1_700_000_000_000
POWER, LOAD = SeriesKey("lab", "node17", "power"), SeriesKey("lab", "node17", "load1")
OUTLET = SeriesKey("lab", "pdu-a3", "outlet-4")


def seed(store: Store) -> None:
    store.write([Point(POWER, T0 + i * 10_000, i + 1, {"w": 200.0 + i % 50}) for i in range(360)])
    store.write([Point(LOAD, T0 + i * 10_000, 1000 + i, {"value": (i % 50) / 10}) for i in range(360)])
    store.write([Point(OUTLET, T0 + i * 10_000, 2000 + i, {"w": 90.0, "machine": "node17"}) for i in range(360)])


def test_plot_draws_power_and_the_machine_load(store: Store, store_url: str, tmp_path: Path) -> None:
    seed(store)
    for key in (POWER, OUTLET):  # the BMC's own device, and an outlet that names its machine
        out = tmp_path / f"{key.device}.png"
        fig = plot.render(store, key, T0, T0 + 3_600_000, str(out))
        assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000
        assert len(fig.axes) == 2  # power, and CPU load on the second axis
        power_line = fig.axes[0].get_lines()[0]
        assert len(power_line.get_ydata()) == 360 and max(power_line.get_ydata()) == (249.0 if key == POWER else 90.0)


def test_plot_cli_and_long_ranges_use_buckets(store: Store, store_url: str, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    seed(store)
    store.write([Point(SeriesKey("lab", "busy", "power"), T0 + i * 100, i + 1, {"w": 5.0}) for i in range(25_000)])
    t, w = plot.series_xy(store, SeriesKey("lab", "busy", "power"), T0, T0 + 2_500_000)
    assert len(t) <= plot.BUCKETS + 1 and set(w) == {5.0}
    config = tmp_path / "p.toml"
    config.write_text(f'[store]\nurl = "{store_url}"\n')
    out = tmp_path / "cli.png"
    assert main(["plot", "--config", str(config), "--series", POWER.id, "--from", str(T0),
                 "--to", str(T0 + 3_600_000), "-o", str(out)]) == 0
    assert out.exists()
    assert main(["plot", "--config", str(config), "--series", "no-dots", "-o", str(out)]) == 2
    assert "series id" in capsys.readouterr().err


def test_export_progress_line() -> None:
    points = [Point(POWER, T0 + i * 1000, i + 1, {"w": 1.0}) for i in range(10)]
    out = io.StringIO()
    assert list(with_progress(iter(points), T0, T0 + 10_000, out, every_s=0)) == points
    text = out.getvalue()
    assert text.startswith("\r  0.0 %  1 points") and text.endswith("\r100.0 %  10 points\n")

