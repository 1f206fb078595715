"""What the HTTP notifiers share: one POST of JSON, any failure a NotifyError."""

from __future__ import annotations

import requests

from hub.alerts.notifiers.base import NotifyError

TIMEOUT_S = 10.0


def post_json(session: requests.Session, url: str, body: object) -> None:
    try:
        resp = session.post(url, json=body, timeout=TIMEOUT_S)
    except requests.RequestException as exc:
        raise NotifyError(str(exc)) from None
    if resp.status_code >= 300:
        raise NotifyError(f"{url} answered {resp.status_code}: {resp.text[:200]}")
