"""The hub's own small HTTP endpoint (`hub.listen`): `/metrics` for Prometheus, `/api/v1/agents` for the web app
(agents online or offline, seq gaps and duplicates), `/api/v1/alerts` (what fires now) and
`/api/v1/alerts/history?subject=&limit=` (every firing and resolution, newest first).
Read-only; bind it to loopback or a management network."""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from hub.agents import AgentBook
from hub.alerts import AlertEngine
from telemetry.metrics import Metrics

log = logging.getLogger(__name__)


class HubHttp:
    def __init__(self, host: str, port: int, metrics: Metrics, agents: AgentBook,
                 alerts: AlertEngine | None = None) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlsplit(self.path)
                query = {k: v[-1] for k, v in parse_qs(url.query).items()}
                if url.path == "/metrics":
                    self._send(200, "text/plain; version=0.0.4", metrics.render().encode())
                elif url.path == "/api/v1/agents":
                    self._json(agents.snapshot())
                elif url.path == "/api/v1/alerts":
                    self._json(alerts.firing() if alerts else [])
                elif url.path == "/api/v1/alerts/history":
                    limit = query.get("limit", "1000")
                    if not limit.isdigit() or not 0 < int(limit) <= 100_000:
                        self._send(400, "application/json", b'{"error": "limit must be 1 to 100000"}')
                        return
                    self._json(alerts.history(query.get("subject"), int(limit)) if alerts else [])
                else:
                    self._send(404, "application/json", b'{"error": "not found"}')

            def _json(self, body: object) -> None:
                self._send(200, "application/json", json.dumps(body).encode())

            def _send(self, status: int, content_type: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                log.debug("hub http: " + format, *args)

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, name="hub-http", daemon=True)

    def start(self) -> None:
        self._thread.start()
        log.info("hub metrics and agents on http://%s:%d/", self.server.server_address[0], self.port)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
