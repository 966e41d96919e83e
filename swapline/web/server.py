"""Running the browser app: uvicorn on a socket bound here (so the port is known before the first
request, and port 0 picks a free one), in the foreground for `swapline serve` or on a thread for
tests and the benchmark."""

from __future__ import annotations

import socket
import threading
import time

from swapline.errors import SwaplineError
from swapline.web.app import WebServer


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        raise SwaplineError(f"cannot listen on {host}:{port} ({exc.strerror or exc})") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def _uvicorn(web: WebServer):
    import uvicorn

    s = web.settings
    config = uvicorn.Config(
        web.app,
        ssl_certfile=str(s.cert) if s.cert else None,
        ssl_keyfile=str(s.key) if s.key else None,
        log_level="warning",
        lifespan="on",
        access_log=False,
        timeout_graceful_shutdown=3,
    )
    return uvicorn.Server(config)


class RunningServer:
    """A WebServer listening on a thread; `url` is where the page is. Use as a context manager."""

    def __init__(self, web: WebServer):
        self.web = web
        self._sock = bind(web.settings.host, web.settings.port)
        self.port = self._sock.getsockname()[1]
        self.url = web.settings.url(self.port)
        self._server = _uvicorn(web)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True)

    def start(self, timeout_s: float = 10.0) -> RunningServer:
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise SwaplineError("the web server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(10.0)
        self._sock.close()

    def __enter__(self) -> RunningServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def serve_forever(web: WebServer, on_ready=None) -> None:
    """Serve in the foreground until Ctrl-C or SIGTERM; on_ready(url) once it listens."""
    sock = bind(web.settings.host, web.settings.port)
    try:
        server = _uvicorn(web)
        if on_ready is not None:
            on_ready(web.settings.url(sock.getsockname()[1]))
        server.run(sockets=[sock])
    finally:
        sock.close()
