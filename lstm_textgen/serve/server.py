"""Running `serve`: the runs loaded and named, the listening socket bound, uvicorn started, and a clean stop on
Ctrl-C or SIGTERM (requests in flight get GRACE_SECONDS to finish, then end with an error event)."""
from __future__ import annotations

import asyncio
import contextlib
import errno
import signal
import socket
import threading
from pathlib import Path
from typing import Callable

import uvicorn

from lstm_textgen.errors import TextgenError
from lstm_textgen.run.report import damage_error, run_info
from lstm_textgen.run.files import MODEL
from lstm_textgen.run.rundir import load_run
from lstm_textgen.serve.app import Served, build_app
from lstm_textgen.serve.protocol import DEFAULT_MAX_TOKENS_CAP
from lstm_textgen.serve.scheduler import Batcher
from lstm_textgen.config.values import shown

GRACE_SECONDS = 5.0
PATH_KEYS = ("corpus", "val_corpus", "embedding_path", "origin")  # run_info's values that hold paths


def load_served(run_dirs: list[str], max_rows: int = 128) -> dict[str, Served]:
    """Each run by its folder name (the API's model); two runs of one name are refused."""
    served: dict[str, Served] = {}
    for run_dir in run_dirs:
        path = Path(run_dir)
        name = path.resolve().name
        if name in served:
            raise TextgenError(f"two runs are named {shown(name)} ({served[name].run.run_dir} and {path}); the "
                               "API names a run by its folder, so copy one to a folder of another name")
        run = load_run(path)
        info = run_info(path)
        if info["damaged"]:
            raise damage_error(path, info["damaged"])
        info = {key: _no_paths(value) if key in PATH_KEYS else value for key, value in info.items()
                if key not in ("run", "damaged")}
        served[name] = Served(name, run, Batcher(run.tokenizer, run.weights, max_rows, name), info,
                              int((path / MODEL).stat().st_mtime))
    return served


def _no_paths(value):
    """An info value with every path cut to its file name (corpus, val_corpus, embedding_path, a fine-tuned run's
    origin): /v1/models shows no folder of the server's machine."""
    if isinstance(value, dict):
        return {key: _no_paths(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_no_paths(item) for item in value]
    if isinstance(value, str) and ("/" in value or "\\" in value):
        return value.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    return value


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, or one line saying why not (a port in use, a host that is not this machine's)."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        sock = socket.socket(family, socket.SOCK_STREAM)
    except (OSError, UnicodeError) as e:
        raise TextgenError(f"cannot listen on --host {shown(host)}: {getattr(e, 'strerror', None) or e}") from None
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Every connection accepted inherits TCP_NODELAY. uvicorn given a socket does not set it, and without it a
    # kept-alive connection waited for the client's delayed ACK, 40 ms, before each answer and each streamed event.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        hint = "; choose another with --port" if e.errno == errno.EADDRINUSE else ""
        raise TextgenError(f"cannot listen on {host}:{port}: {e.strerror}{hint}") from None
    return sock


class Server(uvicorn.Server):
    """uvicorn's server over the app: it says when it listens, and a signal stops it without being raised again
    afterwards (uvicorn re-raises it, which would end `serve` as if killed rather than stopped)."""

    def __init__(self, served: dict[str, Served], api_key: str | None = None,
                 max_tokens_cap: int = DEFAULT_MAX_TOKENS_CAP, on_ready: Callable[[str], None] | None = None,
                 cors_origins: list[str] = (), log_format: str = "text", log_stream=None):
        app = build_app(served, api_key, max_tokens_cap, cors_origins, log_format, log_stream)
        # uvicorn's own grace is longer than ours: it would cancel the requests' tasks, which it logs as errors.
        # Its access log is off: the app's (operations.AccessLog) writes the one line per request.
        super().__init__(uvicorn.Config(app, log_level="warning", access_log=False,
                                        timeout_graceful_shutdown=GRACE_SECONDS + 5, lifespan="on"))
        self.asgi_app = app
        self.served, self.on_ready, self.url, self.failed = served, on_ready, None, False

    def serve_on(self, sock: socket.socket) -> None:
        """Serve until stop(), Ctrl-C or SIGTERM."""
        from threadpoolctl import threadpool_limits

        host, port = sock.getsockname()[:2]
        self.url = f"http://{f'[{host}]' if ':' in host else host}:{port}"
        # One BLAS thread: a step's products are small, and the event loop needs the other core for the pieces.
        with threadpool_limits(limits=1, user_api="blas"), contextlib.closing(sock):
            self.run(sockets=[sock])
        if self.failed:
            raise TextgenError("the server could not start; run again with --debug for the reason")

    def stop(self) -> None:
        self.should_exit = True

    async def startup(self, sockets=None) -> None:
        await super().startup(sockets)
        if self.should_exit:  # the app's start-up failed
            self.failed = True
        elif self.on_ready:
            self.on_ready(self.url)

    async def shutdown(self, sockets=None) -> None:
        """Requests in flight get GRACE_SECONDS to finish; then their batches close, which ends each of them
        with an error saying the server is stopping (a stream's last event)."""
        self.asgi_app.state.phase = "stopping"  # GET /health answers 503 from now on
        loop = asyncio.get_running_loop()
        close = loop.call_later(GRACE_SECONDS, lambda: loop.run_in_executor(None, self._close_batches))
        try:
            await super().shutdown(sockets)
        finally:
            close.cancel()

    def _close_batches(self) -> None:
        for target in self.served.values():
            target.batcher.close()

    @contextlib.contextmanager
    def capture_signals(self):
        if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
            yield
            return
        original = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)
