"""The HTTP servers of the web app.

`powerhub web` runs gevent's WSGI server, with the process monkey-patched before anything else is imported
(`powerhub_cli.main`): every request, long-poll and SSE stream is a greenlet, so a thousand live dashboards cost a
thousand greenlets, not a thousand threads fighting for the GIL (bench/sse.py: werkzeug's threaded server delivered
events 13 s late at 1,000 clients). Tests and the demo, which share their process with other threads, run werkzeug's
threaded server (`WebServer`); both serve the same app.
"""

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


class Server:
    """What both servers share: where they listen, the watchdog's probe, and stopping the live feed."""

    app: Flask
    host: str
    port: int

    @property
    def url(self) -> str:
        prefix = self.app.extensions["powerhub"].config.url_prefix
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{prefix}/"

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        with self.app.app_context():
            state().live.stop()
            state().alerts.stop()

    def answers(self, timeout_s: float = 5.0) -> bool:
        """For systemd's watchdog: the server still answers HTTP (any status: a store that is down is not ours to fix
        by a restart, a server that no longer accepts is)."""
        host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(self.host, self.host)
        host = f"[{host}]" if ":" in host else host
        prefix = self.app.extensions["powerhub"].config.url_prefix
        try:
            with urllib.request.urlopen(f"http://{host}:{self.port}{prefix}/healthz", timeout=timeout_s):
                return True
        except urllib.error.HTTPError:
            return True
        except OSError:
            return False


class WebServer(Server):
    """werkzeug's threaded server: a thread per request."""

    def __init__(self, app: Flask, host: str | None = None, port: int | None = None) -> None:
        cfg = app.extensions["powerhub"].config
        self.app = app
        self.server: BaseWSGIServer = make_server(host or cfg.host, cfg.port if port is None else port, app,
                                                  threaded=True, request_handler=RequestHandler)
        self.server.daemon_threads = True  # type: ignore[attr-defined]
        self.host, self.port = str(self.server.server_address[0]), self.server.server_port
        self._thread = threading.Thread(target=self.server.serve_forever, name="web", daemon=True)

    def start(self) -> None:
        self._thread.start()
        log.info("web serving on %s", self.url)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        super().stop()


def serve(app: Flask, stop: threading.Event) -> None:
    """`powerhub web`: gevent's server when the process was patched for it, else werkzeug's."""
    from gevent import monkey

    server: Server = GeventServer(app) if monkey.is_module_patched("socket") else WebServer(app)
    server.start()
    serve_until(stop, server.answers)
    server.stop()


class GeventServer(Server):
    """gevent's WSGI server: a greenlet per request; only in a process monkey-patched before its imports."""

    def __init__(self, app: Flask, host: str | None = None, port: int | None = None) -> None:
        from gevent.pywsgi import WSGIHandler, WSGIServer

        class Handler(WSGIHandler):
            def handle(self) -> None:
                self.socket.settimeout(SOCKET_TIMEOUT_S)  # as RequestHandler.timeout: a stalled reader is dropped
                super().handle()

            def format_request(self) -> str:
                return str(TOKEN_IN_URL.sub(r"\1***", super().format_request()))

        cfg = app.extensions["powerhub"].config
        self.app = app
        self.server = WSGIServer((host or cfg.host, cfg.port if port is None else port), app, handler_class=Handler,
                                 log=_AccessLog(), backlog=1024)
        self.server.init_socket()
        self.host, self.port = str(self.server.address[0]), int(self.server.address[1])

    def start(self) -> None:
        self.server.start()
        log.info("web serving on %s (gevent)", self.url)

    def stop(self) -> None:
        self.server.stop(timeout=5)
        super().stop()


class _AccessLog:
    """gevent writes access lines to a file-like object: ours goes to logging, like werkzeug's."""

    def write(self, line: str) -> None:
        logging.getLogger("web.access").info("%s", line.rstrip())
