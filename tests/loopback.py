"""The clients' own aiohttp transport, pointed at a loopback test server (no other network).

`LoopbackServer(handler).transport` is a `Transport` whose resolver sends every host name to
an aiohttp test server on 127.0.0.1, started in each event loop on first use. Client URLs keep
their names (`http://policy.test:8000/v1`), and the server sees them in the Host header.
Handlers take an `httpx.Request` (method, url, headers, content: plain data here) and return
an `httpx.Response`, or an awaitable of one.
"""

from __future__ import annotations

import asyncio
import inspect
import socket
from collections.abc import Callable
from typing import Any

import httpx
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.test_utils import RawTestServer

from langgraph_tts.clients import Transport

Handler = Callable[[httpx.Request], Any]
_HOP_HEADERS = {"content-length", "transfer-encoding", "content-encoding", "connection"}


class _Resolver(AbstractResolver):
    """Resolves every host name to 127.0.0.1 and the port `port()` gives."""

    def __init__(self, port: Callable[[], Any]) -> None:
        self._port = port

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        real = await self._port()
        return [
            ResolveResult(
                hostname=host,
                host="127.0.0.1",
                port=real,
                family=socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
        ]

    async def close(self) -> None:
        return None


class LoopbackServer:
    """An aiohttp test server per event loop that answers with `handler`."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self._servers: dict[int, tuple[asyncio.AbstractEventLoop, RawTestServer]] = {}

    @property
    def transport(self) -> Transport:
        return Transport(resolver=lambda: _Resolver(self.port))

    async def port(self) -> int:
        loop = asyncio.get_running_loop()
        entry = self._servers.get(id(loop))
        if entry is None or entry[0] is not loop:
            server = RawTestServer(self._serve, host="127.0.0.1")
            await server.start_server()
            entry = (loop, server)
            self._servers[id(loop)] = entry
        port = entry[1].port
        assert port is not None
        return port

    async def _serve(self, request: web.BaseRequest) -> web.StreamResponse:
        content = await request.read()
        headers = [(k, v) for k, v in request.headers.items() if k.lower() != "host"]
        url = f"http://{request.host}{request.path_qs}"
        result = self.handler(httpx.Request(request.method, url, headers=headers, content=content))
        if inspect.isawaitable(result):
            result = await result
        out_headers = {k: v for k, v in result.headers.items() if k.lower() not in _HOP_HEADERS}
        return web.Response(status=result.status_code, body=result.content, headers=out_headers)


def refusing_transport() -> Transport:
    """A transport whose every connection is refused (a port nothing listens on)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    async def closed_port() -> int:
        return port

    return Transport(resolver=lambda: _Resolver(closed_port))
