"""The HTTP server `powerhub web` runs: werkzeug's, one thread per request, so long-polls and streams wait
without holding up other requests."""

from __future__ import annotations

import logging
import re
import threading
import urllib.error
import urllib.request

from flask import Flask
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from telemetry.sdnotify import serve_until
from web import state

log = logging.getLogger(__name__)


SOCKET_TIMEOUT_S = 30.0
TOKEN_IN_URL = re.compile(r"([?&]token=)[^&\s]+")


class RequestHandler(WSGIRequestHandler):
    # A client that stops reading (a stalled SSE stream) blocks our writes; with a timeout the write fails and the
    # request's thread ends instead of waiting forever. Waiting for a point (long-poll) is not a socket wait.
    timeout = SOCKET_TIMEOUT_S

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # EventSource sends its token as `?token=`: keep it out of the access log.
        path, line = self.path, self.requestline
        self.path = TOKEN_IN_URL.sub(r"\1***", path)
        self.requestline = TOKEN_IN_URL.sub(r"\1***", line)
        try:
            super().log_request(code, size)
        finally:
            self.path, self.requestline = path, line


class WebServer:
    def __init__(self, app: Flask, host: str | None = None, port: int | None = None) -> None:
        cfg = app.extensions["powerhub"].config
        self.app = app
        self.server: BaseWSGIServer = make_server(host or cfg.host, cfg.port if port is None else port, app,
                                                  threaded=True, request_handler=RequestHandler)
        self.server.daemon_threads = True  # type: ignore[attr-defined]
        self.port = self.server.server_port
        self._thread = threading.Thread(target=self.server.serve_forever, name="web", daemon=True)

    @property
    def url(self) -> str:
        prefix = self.app.extensions["powerhub"].config.url_prefix
        host = self.server.server_address[0]
        return f"http://{host!s}:{self.port}{prefix}/"

    def start(self) -> None:
        self._thread.start()
        log.info("web serving on %s", self.url)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        with self.app.app_context():
            state().live.stop()


    def answers(self, timeout_s: float = 5.0) -> bool:
        """For systemd's watchdog: the server still answers HTTP (any status: a store that is down is not ours to fix
        by a restart, a server that no longer accepts is)."""
        host = str(self.server.server_address[0])
        host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
        host = f"[{host}]" if ":" in host else host
        prefix = self.app.extensions["powerhub"].config.url_prefix
        try:
            with urllib.request.urlopen(f"http://{host}:{self.port}{prefix}/healthz", timeout=timeout_s):
                return True
        except urllib.error.HTTPError:
            return True
        except OSError:
            return False


def serve(app: Flask, stop: threading.Event) -> None:
    server = WebServer(app)
    server.start()
    serve_until(stop, server.answers)
    server.stop()
