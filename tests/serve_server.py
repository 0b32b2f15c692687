"""The real ``kpiforge serve`` application under uvicorn on 127.0.0.1, on a free port, in a
background thread: started and stopped by a fixture, with bounded waits."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running(project: Any) -> Iterator[str]:
    """The base URL of a server for ``project``; stopped on exit."""
    import uvicorn

    from kpiforge._serve import create_app

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(project), host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while not server.started:  # bounded: a server that never starts fails the tests
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start in 30 s")
        time.sleep(0.05)
    try:
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def get(base: str, path: str, **params: str) -> httpx.Response:
    return httpx.get(base + path, params=params, timeout=60)
