"""``tagsmith serve``: an HTTP service with dynamic batching (optional extra ``tagsmith[serve]``).

A room above the API: it only uses ``Tagger`` (and the report's item renderer for its
page), so the CLI, the batch job and the service answer with the same code.
"""
from __future__ import annotations

from typing import Any


def run_server(tagger: Any, taxonomy: Any = None, host: str = "127.0.0.1", port: int = 8000, settings: Any = None,
               drain_timeout: float = 30.0, access_log: bool = False) -> None:
    """Serve until SIGINT/SIGTERM; requests in flight are answered before exit."""
    import uvicorn

    from engine.serve.app import Service, create_app

    import signal

    app = create_app(Service(tagger, taxonomy, settings))
    # uvicorn re-raises the signal that stopped it once it has drained, under the handler
    # that was there before it; a no-op one makes a drained SIGTERM a clean exit 0.
    signal.signal(signal.SIGTERM, lambda *_: None)
    uvicorn.run(app, host=host, port=port, log_level="info", access_log=access_log, timeout_graceful_shutdown=drain_timeout)


class ServerThread:
    """A service on a loopback port, in a thread of this process (tests, benchmarks,
    notebooks): ``with ServerThread(app) as url: ...``; leaving drains and stops it."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0) -> None:
        import uvicorn

        self.server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False))
        self.server.install_signal_handlers = lambda: None  # not the main thread: signals stay with the caller
        self._thread: Any = None
        self.url = ""

    def __enter__(self) -> str:
        import threading
        import time

        self._thread = threading.Thread(target=self.server.run, name="tagsmith-server", daemon=True)
        self._thread.start()
        while not self.server.started:
            if not self._thread.is_alive():
                raise RuntimeError("the server did not start")
            time.sleep(0.01)
        host, port = self.server.servers[0].sockets[0].getsockname()[:2]
        self.url = f"http://{host}:{port}"
        return self.url

    def __exit__(self, *exc: Any) -> None:
        self.server.should_exit = True
        self._thread.join()


__all__ = ["ServerThread", "run_server"]
