"""``--metrics-port``: the metrics on a port of their own, bound to this machine only.

``GET /metrics`` on the service's own port asks for an admin token. A Prometheus
agent (or node exporter's textfile collector, a sidecar) on the same machine is
easier to run without one, and it should not need the API's port either. This
port serves the same exposition to anyone who can connect, which is why it only
ever listens on the loopback interface: reaching it means being on the machine.

A deliberately small HTTP/1.1 server: one request per connection, ``GET /metrics``
(or ``/``) only, a bounded request head read under a timeout, so a client that
connects and says nothing costs a socket for at most ``HEAD_TIMEOUT_S``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import structlog

from registry.metrics import CONTENT_TYPE

log = structlog.get_logger(__name__)

LOOPBACK = "127.0.0.1"
HEAD_TIMEOUT_S = 5.0
MAX_HEAD_BYTES = 8192

Scrape = Callable[[], Awaitable[bytes]]


def _answer(status: str, body: bytes, content_type: str = "text/plain; charset=utf-8") -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


class MetricsPort:
    """Serves ``scrape()`` at ``http://127.0.0.1:<port>/metrics`` while started."""

    def __init__(self, port: int, scrape: Scrape, *, host: str = LOOPBACK) -> None:
        self._port = port
        self._host = host
        self._scrape = scrape
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        """The port listened on (the one asked for, or the one the system gave for 0)."""
        if self._server is None:
            return self._port
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._handle, self._host, self._port, limit=MAX_HEAD_BYTES
        )
        log.info("metrics_port_listening", url=f"http://{self._host}:{self.port}/metrics")

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            await server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            answer = await self._respond(reader)
            writer.write(answer)
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client went away; nothing to tell it
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _respond(self, reader: asyncio.StreamReader) -> bytes:
        try:
            async with asyncio.timeout(HEAD_TIMEOUT_S):
                head = await reader.readuntil(b"\r\n\r\n")
        except TimeoutError:
            return _answer("408 Request Timeout", b"request head not received in time\n")
        except asyncio.LimitOverrunError:
            return _answer("431 Request Header Fields Too Large", b"request head too large\n")
        method, _, rest = head.split(b"\r\n", 1)[0].partition(b" ")
        target = rest.partition(b" ")[0].split(b"?", 1)[0]
        if target not in (b"/metrics", b"/"):
            return _answer("404 Not Found", b"only /metrics is served here\n")
        if method != b"GET":
            return _answer("405 Method Not Allowed", b"use GET\n")
        try:
            body = await self._scrape()
        except Exception as error:  # a scrape that fails says so; the server keeps serving
            log.warning("metrics_scrape_failed", error=f"{type(error).__name__}: {error}")
            return _answer("503 Service Unavailable", b"metrics could not be read\n")
        return _answer("200 OK", body, CONTENT_TYPE)
