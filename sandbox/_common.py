"""Small helpers shared by the sandbox emulators."""

from __future__ import annotations

import asyncio
import json
import os
import random
import socket
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web

T = TypeVar("T")

dumps = partial(json.dumps, ensure_ascii=False, separators=(",", ":"))


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None):
    return web.json_response(data, status=status, dumps=dumps, headers=headers)


class Notifier:
    """A broadcast "something changed" signal for long-polling waiters.

    Everything runs on one event loop, so grabbing the current event before checking the
    condition and waiting on it afterwards cannot miss a change.
    """

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait_until(
        self, check: Callable[[], T | None], within: float, *, closing: Callable[[], bool]
    ) -> T | None:
        """Return ``check()`` as soon as it is truthy, or None after ``within`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(0.0, within)
        while True:
            event = self._event
            result = check()
            if result or closing():
                return result
            remaining = deadline - loop.time()
            if remaining <= 0:
                return None
            try:
                await asyncio.wait_for(event.wait(), remaining)
            except TimeoutError:
                pass


_FIRST_PORT = 10000  # below it live the well-known and registered services' ports
_CLAIMS = Path(tempfile.gettempdir()) / "medialab-ports"
_CLAIM_SECONDS = 600.0
_given: set[int] = set()
_random = random.SystemRandom()  # not `random`: test runners seed it alike in every worker


def _ephemeral_low() -> int:
    """Where the kernel's ephemeral range starts (outgoing connections take ports from it)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _claim(port: int) -> bool:
    """Claim ``port`` for this machine's next ``_CLAIM_SECONDS`` (a file made with O_EXCL), so
    two processes that pick at the same moment never both take it."""
    _CLAIMS.mkdir(exist_ok=True)
    path = _CLAIMS / str(port)
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
        return True
    except FileExistsError:
        try:
            if time.time() - path.stat().st_mtime < _CLAIM_SECONDS:
                return False
            os.utime(path)  # an old claim: its server has long since bound or gone
            return True
        except OSError:
            return False
    except OSError:
        return True  # no place for claims: the bind check below still holds


def port_is_free(host: str, port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on, for a server that another process starts a moment later.

    Taken below the kernel's ephemeral range: a port from ``bind(port 0)`` is free only until
    an outgoing connection of any process is given it, which on a busy test machine happened
    between picking a port and the web server binding it ("address already in use"). Ports
    handed out here are claimed for ten minutes, so the processes of one test run (and
    restarts of one server on its port) do not pick each other's.
    """
    top = min(_ephemeral_low(), 65536)
    if top - _FIRST_PORT >= 1000:
        for _ in range(200):
            port = _random.randrange(_FIRST_PORT, top)
            if port in _given or not port_is_free(host, port) or not _claim(port):
                continue
            _given.add(port)
            return port
    with socket.socket() as sock:  # no room below the ephemeral range: the kernel's pick
        sock.bind((host, 0))
        return sock.getsockname()[1]


def drop_connection(request: web.Request) -> None:
    """Abort the TCP connection under ``request`` without sending a response."""
    transport = request.transport
    if transport is not None:
        transport.abort()


class ServerHandle:
    """An aiohttp app started on a TCP port (for tests, runners and load scripts)."""

    def __init__(self, app: web.Application, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> ServerHandle:
        self._runner = web.AppRunner(self.app, shutdown_timeout=2.0, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        if self.port == 0:
            server = site._server  # noqa: SLF001 - aiohttp exposes no public accessor
            assert server is not None and server.sockets  # type: ignore[union-attr]
            self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    @property
    def connections(self) -> int:
        """Client connections the server holds open now (0 when it is not running)."""
        server = self._runner.server if self._runner is not None else None
        return len(server.connections) if server is not None else 0

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> ServerHandle:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
