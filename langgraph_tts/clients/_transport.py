"""The one way requests leave the process: aiohttp, one session per event loop.

aiohttp spends a fraction of httpx's CPU per request, which decides the client's share of an
iteration at N=64 (benchmarks/throughput.py). Tests use this same path: they inject a
resolver that sends every host name to a loopback test server (`Transport(resolver=...)`),
so everything from the session to the error mapping is what production runs.
"""

from __future__ import annotations

import functools
import json
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver

from langgraph_tts.clients._constants import USER_AGENT
from langgraph_tts.clients._errors import (
    ConnectFailedError,
    ConnectTimeoutError,
    DisconnectedError,
    ReadTimeoutError,
    TransportError,
)

__all__ = ["LineSink", "Reply", "Session", "Transport"]

LineSink = Callable[[bytes], bool]
"""Takes one line of a streamed body; True closes the response (the rest is not read)."""

_JSON_HEADERS = {"Content-Type": "application/json"}


@dataclass(frozen=True, slots=True)
class Reply:
    """Status, headers (looked up without regard to case) and body of one response."""

    status: int
    headers: Mapping[str, str]
    content: bytes
    reason: str = ""


class Session:
    """One event loop's aiohttp session and the proxy the environment sets for its server."""

    def __init__(self, client: aiohttp.ClientSession, proxy: tuple[Any, Any]) -> None:
        self.client = client
        self.proxy = proxy

    async def send(self, method: str, url: str, body: dict[str, Any] | None) -> Reply:
        """One request; failures without an HTTP answer raise a `TransportError`."""
        data = None if body is None else json.dumps(body).encode()
        headers = None if body is None else _JSON_HEADERS
        try:
            async with self.client.request(
                method,
                url,
                data=data,
                headers=headers,
                proxy=self.proxy[0],
                proxy_auth=self.proxy[1],
            ) as reply:
                content = await reply.read()
                return Reply(reply.status, reply.headers, content, reply.reason or "")
        except aiohttp.ClientError as err:
            raise _transport_error(err) from err
        except TimeoutError as err:
            raise ReadTimeoutError(str(err) or "read timeout") from err

    async def stream(self, url: str, body: dict[str, Any], sink: LineSink) -> Reply | None:
        """POST `body` and hand an event-stream answer to `sink` line by line.

        Returns None once the stream was read to its end or `sink` asked to stop; then the
        response is closed, which drops the connection (vLLM aborts a request whose client
        disconnected). An answer that is not `text/event-stream` (an error status, a server
        that ignored `stream`) is read whole and returned. Failures without an HTTP answer,
        also mid-stream, raise a `TransportError`.
        """
        data = json.dumps(body).encode()
        try:
            async with self.client.post(
                url,
                data=data,
                headers=_JSON_HEADERS,
                proxy=self.proxy[0],
                proxy_auth=self.proxy[1],
            ) as reply:
                kind = reply.headers.get("Content-Type", "")
                if reply.status != 200 or not kind.startswith("text/event-stream"):
                    content = await reply.read()
                    return Reply(reply.status, reply.headers, content, reply.reason or "")
                async for line in reply.content:
                    if sink(line):
                        reply.close()
                        break
                return None
        except aiohttp.ClientError as err:
            raise _transport_error(err) from err
        except TimeoutError as err:
            raise ReadTimeoutError(str(err) or "read timeout") from err

    async def close(self) -> None:
        await self.client.close()


def _transport_error(err: aiohttp.ClientError) -> TransportError:
    """Our error type for an aiohttp failure (order matters: subclasses first)."""
    if isinstance(err, aiohttp.ConnectionTimeoutError):
        return ConnectTimeoutError(str(err) or "connect timeout")
    if isinstance(err, aiohttp.ClientConnectorError):
        return ConnectFailedError(str(err))
    if isinstance(err, aiohttp.ServerTimeoutError):
        return ReadTimeoutError(str(err) or "read timeout")
    if isinstance(err, aiohttp.ServerDisconnectedError):
        return DisconnectedError(str(err) or "server disconnected")
    return DisconnectedError(f"{type(err).__name__}: {err}")


class Transport:
    """Opens the aiohttp session of each event loop.

    Args:
        resolver: Makes the resolver of each session's connector. Tests pass one that resolves
            every host to a loopback server; `None` uses aiohttp's resolver and the proxy the
            environment (`HTTP(S)_PROXY`, `NO_PROXY`) sets for the server.
    """

    def __init__(self, resolver: Callable[[], AbstractResolver] | None = None) -> None:
        self._resolver = resolver

    def open(
        self,
        root_url: str,
        *,
        max_connections: int,
        timeout_s: float,
        connect_timeout_s: float,
        headers: dict[str, str],
    ) -> Session:
        """A session for one server, made inside the event loop that will use it."""
        connector = aiohttp.TCPConnector(
            limit=max_connections,
            limit_per_host=max_connections,
            ssl=_ssl_context(),
            resolver=self._resolver() if self._resolver else None,
        )
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=connect_timeout_s, sock_read=timeout_s
        )
        client = aiohttp.ClientSession(
            connector=connector, timeout=timeout, headers={"User-Agent": USER_AGENT, **headers}
        )
        proxy = (None, None) if self._resolver else _env_proxy(root_url)
        return Session(client, proxy)


def _env_proxy(url: str) -> tuple[Any, Any]:
    """The proxy and its credentials that the environment sets for `url`, or `(None, None)`.

    Looked up once per session: aiohttp's `trust_env` would look it up in a worker thread on
    every request.
    """
    import aiohttp.helpers
    from yarl import URL

    try:
        return aiohttp.helpers.get_env_proxy_for_url(URL(url))
    except LookupError:
        return None, None


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """One CA bundle for every client: loading it costs ~50 ms per client otherwise."""
    try:
        import certifi
    except ImportError:  # pragma: no cover - certifi comes with aiohttp's usual installs
        return ssl.create_default_context()
    return ssl.create_default_context(cafile=certifi.where())
