"""`/history?tz=`: buckets on the viewer's clock, days from local midnight to local midnight across DST changes."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from flask.testing import FlaskClient

from hub.stores import open_store
from telemetry import Point, SeriesKey
from web import create_app

KEY = SeriesKey("lab", "node17", "power")
CPH = ZoneInfo("Europe/Copenhagen")
HOUR = 3_600_000


def ms(*args: int, tz: ZoneInfo = CPH) -> int:
    return int(datetime(*args, tzinfo=tz).timestamp() * 1000)  # type: ignore[misc]


@pytest.fixture
def client(store_url: str, tmp_path: Path) -> FlaskClient:
    store = open_store(store_url)
    start = ms(2023, 10, 28)  # Copenhagen leaves summer time on 2023-10-29 at 03:00 (a 25-hour day)
    store.write([Point(KEY, start + i * HOUR + 60_000, i + 1, {"w": 100.0}) for i in range(24 + 25 + 24)])
    store.close()
    return create_app({"store": {"url": store_url}, "web": {"live": False}}).test_client()


def test_daily_buckets_follow_local_midnights(client: FlaskClient) -> None:
    body = client.get(f"/api/v1/series/{KEY.id}/history?from={ms(2023, 10, 28)}&to={ms(2023, 10, 31)}"
                      f"&step=86400000&tz=Europe/Copenhagen").get_json()
    assert [b["ts"] for b in body] == [ms(2023, 10, 28), ms(2023, 10, 29), ms(2023, 10, 30)]
    assert [b["count"] for b in body] == [24, 25, 24]
    assert [round(b["wh"]) for b in body] == [2400, 2500, 2400]  # 100 W for 24, 25, 24 hours


def test_without_tz_days_are_utc(client: FlaskClient) -> None:
    body = client.get(f"/api/v1/series/{KEY.id}/history?from={ms(2023, 10, 28)}&to={ms(2023, 10, 31)}"
                      f"&step=86400000").get_json()
    assert all(b["ts"] % 86_400_000 == 0 for b in body)


def test_hours_align_to_a_half_hour_zone(client: FlaskClient) -> None:
    kolkata = ZoneInfo("Asia/Kolkata")  # UTC+5:30: local hours start at :30 UTC
    body = client.get(f"/api/v1/series/{KEY.id}/history?from={ms(2023, 10, 28)}&to={ms(2023, 10, 29)}"
                      f"&step=3600000&tz=Asia/Kolkata").get_json()
    assert body and all(datetime.fromtimestamp(b["ts"] / 1000, kolkata).minute == 0 for b in body)


@pytest.mark.parametrize("tz", ["Mars/Olympus", "../../etc/passwd", "x" * 300])
def test_unknown_zone_is_400(client: FlaskClient, tz: str) -> None:
    resp = client.get(f"/api/v1/series/{KEY.id}/history?step=3600000&tz={tz}")
    assert resp.status_code == 400 and "IANA time zone" in resp.get_json()["error"]
