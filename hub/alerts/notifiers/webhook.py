"""A JSON POST per batch to `alerts.webhook_url`: `{"alerts": [...]}`, each as `GET /api/v1/alerts` shows one, with
`state` "firing" or "resolved". Retried with back-off until the receiver answers 2xx."""

from __future__ import annotations

import requests

from hub.alerts.notifiers.http import post_json


class Webhook:
    name = "webhook"

    def __init__(self, url: str) -> None:
        self.url = url
        self.session = requests.Session()

    def deliver(self, alerts: list[dict[str, object]]) -> None:
        post_json(self.session, self.url, {"alerts": alerts})

    def refresh(self, firing: list[dict[str, object]]) -> None:
        """Each change is sent once: nothing to repeat."""
