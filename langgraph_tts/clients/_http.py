"""One JSON-over-HTTP core shared by every client: retries, concurrency, error mapping.

Why a shared core: the policy, PRM and embedding servers all speak JSON over HTTP and fail in
the same ways (a server still loading, a 503 burst, a 429 with `Retry-After`, a dead port), so
retrying and error wording live in one place. Each request is retried with tenacity. The
pieces live by concern: `_constants` (settings), `_errors` (what goes wrong on the wire),
`_retry` (should retry, how long to wait), `_transport` (aiohttp, the one transport),
`_loops` (one session per event loop, `run_sync`).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeVar
from urllib.parse import urlsplit

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from langgraph_tts.clients._constants import (
    DEFAULT_BACKOFF_INITIAL_S,
    DEFAULT_BACKOFF_MAX_S,
    DEFAULT_CONNECT_TIMEOUT_S,
    DEFAULT_MAX_CONCURRENCY,
    DEFAULT_MAX_RETRIES,
    DEFAULT_RETRY_AFTER_CAP_S,
    DEFAULT_TIMEOUT_S,
    RETRYABLE_STATUSES,
)
from langgraph_tts.clients._errors import (
    ConnectFailedError,
    DisconnectedError,
    MalformedBodyError,
    ReadTimeoutError,
    RetryableReply,
    RetryableStatusError,
    TransportError,
    describe,
    error_message,
    tries,
)
from langgraph_tts.clients._loops import LoopLocal, run_sync
from langgraph_tts.clients._retry import (
    Backoff,
    exponential_jitter,
    parse_retry_after,
    retry_wait_s,
    should_retry,
)
from langgraph_tts.clients._stream import StreamBroken
from langgraph_tts.clients._transport import LineSink, Reply, Session, Transport
from langgraph_tts.errors import ConfigError, ServerError, ServerUnavailableError

__all__ = [
    "DEFAULT_BACKOFF_INITIAL_S",
    "DEFAULT_BACKOFF_MAX_S",
    "DEFAULT_CONNECT_TIMEOUT_S",
    "DEFAULT_MAX_CONCURRENCY",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_RETRY_AFTER_CAP_S",
    "DEFAULT_TIMEOUT_S",
    "RETRYABLE_STATUSES",
    "Backoff",
    "HTTPClient",
    "LoopLocal",
    "RetryableReply",
    "Role",
    "ServedModel",
    "StreamSink",
    "Transport",
    "error_message",
    "parse_retry_after",
    "retry_wait_s",
    "run_sync",
    "should_retry",
]

logger = logging.getLogger(__name__)

Role = Literal["policy", "prm", "embed"]
Check = Callable[[dict[str, Any]], None]
T = TypeVar("T")


class StreamSink(Protocol):
    """Reads one streamed request (`HTTPClient.stream`); `ChoiceStream` is the one in use."""

    broken: str | None
    """Why a stream kept as read ended early (set by `HTTPClient.stream`), else None."""

    def begin(self) -> None:
        """A new attempt starts: forget what earlier attempts read."""

    def line(self, raw: bytes) -> bool:
        """Read one line of the stream; True closes the response now."""

    def ended(self) -> bool:
        """The stream was read to its end or stopped on purpose."""

    def salvage(self) -> bool:
        """What was read is worth keeping if the stream breaks now (no retry then)."""


@dataclass(slots=True)
class _Pool:
    """One event loop's session and the semaphore that bounds its requests in flight."""

    session: Session
    semaphore: asyncio.Semaphore

    async def send(self, method: str, url: str, body: dict[str, Any] | None) -> Any:
        async with self.semaphore:
            return await self.session.send(method, url, body)

    async def stream(self, url: str, body: dict[str, Any], sink: LineSink) -> Reply | None:
        async with self.semaphore:
            return await self.session.stream(url, body, sink)


async def _close_pool(pool: _Pool) -> None:
    await pool.session.close()


class HTTPClient:
    """JSON over HTTP to one server, with retries, a concurrency bound and typed errors.

    Args:
        root_url: Base URL that request paths are appended to (`http://host:8000/v1` for the
            OpenAI routes, the server root for `/pooling`).
        role: Which server this is; chooses the `vllm serve` hint in connection errors.
        api_key: Sent as `Authorization: Bearer <key>` when set; never logged or shown in repr.
        timeout_s: Read/write timeout of one attempt.
        connect_timeout_s: Connect timeout of one attempt.
        max_retries: Attempts after the first one.
        max_concurrency: Requests in flight per event loop; also the connection limit, so
            queued requests wait on the semaphore rather than inside the connection pool.
        transport: How requests reach the network (`Transport()`, aiohttp); tests pass a
            `Transport(resolver=...)` that points every host name at a loopback server.
        backoff: Wait settings between attempts.
    """

    def __init__(
        self,
        root_url: str,
        *,
        role: Role,
        api_key: str | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
        max_retries: int = DEFAULT_MAX_RETRIES,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        transport: Transport | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        self.root_url = _validate_url(root_url, role)
        self.role: Role = role
        if max_retries < 0:
            raise ConfigError(f"max_retries must be >= 0, got {max_retries}")
        if max_concurrency < 1:
            raise ConfigError(f"max_concurrency must be >= 1, got {max_concurrency}")
        if timeout_s <= 0 or connect_timeout_s <= 0:
            raise ConfigError(
                f"timeouts must be > 0, got timeout_s={timeout_s}, "
                f"connect_timeout_s={connect_timeout_s}"
            )
        self.timeout_s = timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.max_retries = max_retries
        self.max_concurrency = max_concurrency
        self.backoff = backoff or Backoff()
        self._backoff_wait = exponential_jitter(self.backoff)
        self._api_key = api_key
        self._transport = transport or Transport()
        self._pools: LoopLocal[_Pool] = LoopLocal(self._new_pool, _close_pool)

    def __repr__(self) -> str:
        return (
            f"HTTPClient(root_url={self.root_url!r}, role={self.role!r}, "
            f"max_concurrency={self.max_concurrency}, max_retries={self.max_retries})"
        )

    def url(self, path: str) -> str:
        """The absolute URL of `path` on this server."""
        return self.root_url + ("" if path.startswith("/") else "/") + path

    async def post(
        self, path: str, body: dict[str, Any], *, check: Check | None = None
    ) -> dict[str, Any]:
        """POST `body` as JSON and return the decoded JSON object.

        `check(data)` runs on every 2xx body inside the retry loop; a `RetryableReply` it
        raises makes the attempt count as failed and retried.
        """
        return await self._request("POST", path, body, check)

    async def get(self, path: str) -> dict[str, Any]:
        """GET `path` and return the decoded JSON object."""
        return await self._request("GET", path, None, None)

    async def aclose(self) -> None:
        """Close the connection pool of the running loop now.

        Optional under `asyncio.run`, which closes pools left open when it shuts its loop down;
        needed for loops that are never shut down, before dropping the client.
        """
        await self._pools.aclose()

    # -- internals --------------------------------------------------------------------------

    def _new_pool(self) -> _Pool:
        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        session = self._transport.open(
            self.root_url,
            max_connections=self.max_concurrency,
            timeout_s=self.timeout_s,
            connect_timeout_s=self.connect_timeout_s,
            headers=headers,
        )
        return _Pool(session, asyncio.Semaphore(self.max_concurrency))

    async def _sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    def _wait(self, retry_state: RetryCallState) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        backoff_s = float(self._backoff_wait(retry_state))
        return retry_wait_s(exc, backoff_s, self.backoff.retry_after_cap_s)

    def _log_retry(self, retry_state: RetryCallState) -> None:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        wait = retry_state.next_action.sleep if retry_state.next_action else 0.0
        logger.info(
            "%s server: attempt %d/%d failed (%s); retrying in %.2fs",
            self.role,
            retry_state.attempt_number,
            self.max_retries + 1,
            describe(exc),
            wait,
        )

    async def _request(
        self, method: str, path: str, body: dict[str, Any] | None, check: Check | None
    ) -> dict[str, Any]:
        url = self.url(path)

        async def once() -> dict[str, Any]:
            data = await self._send_once(method, url, body)
            if check is not None:
                check(data)
            return data

        return await self._retrying(url, once)

    async def stream(
        self, path: str, body: dict[str, Any], sink: StreamSink, *, check: Check | None = None
    ) -> dict[str, Any] | None:
        """POST `body` (a streamed request) and feed the event stream to `sink`.

        Retried like `post` while nothing worth keeping was read: a stream that breaks (or
        ends early) before `sink.salvage()` holds is sent again, from a `sink.begin()`; one
        that breaks after is kept as read, and `sink.broken` says why it ended. Returns None
        for a stream, or the decoded JSON body (checked with `check`) when the server answered
        without streaming.
        """
        url = self.url(path)

        async def once() -> dict[str, Any] | None:
            return await self._stream_once(url, body, sink, check)

        return await self._retrying(url, once)

    async def _retrying(self, url: str, once: Callable[[], Awaitable[T]]) -> T:
        """Run `once` under the retry policy; map what is left after the last attempt."""
        attempts = 0
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.max_retries + 1),
            retry=retry_if_exception(should_retry),
            wait=self._wait,
            sleep=self._sleep,
            before_sleep=self._log_retry,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    attempts = attempt.retry_state.attempt_number
                    return await once()
        except ConnectFailedError as exc:
            raise ServerUnavailableError(
                url, role=self.role, cause=f"{describe(exc)}; {tries(attempts)}"
            ) from exc
        except ReadTimeoutError as exc:
            msg = (
                f"{self.role} server at {url} timed out ({describe(exc)}, read timeout "
                f"{self.timeout_s:g}s); {tries(attempts)}"
            )
            raise ServerError(msg, url=url) from exc
        except TransportError as exc:
            msg = f"{self.role} server at {url} failed: {describe(exc)}; {tries(attempts)}"
            raise ServerError(msg, url=url) from exc
        except RetryableStatusError as exc:
            msg = (
                f"{self.role} server at {url} returned HTTP {exc.status}: {exc.message} "
                f"({tries(attempts)})"
            )
            raise ServerError(msg, url=url, status=exc.status) from exc
        except RetryableReply as exc:
            msg = f"{self.role} server at {url}: {exc.message} ({tries(attempts)})"
            raise ServerError(msg, url=url, status=200) from exc
        except MalformedBodyError as exc:
            msg = (
                f"{self.role} server at {url} returned a body that is not a JSON object "
                f"({tries(attempts)}): {exc.snippet!r}"
            )
            raise ServerError(msg, url=url, status=exc.status) from exc
        raise AssertionError("unreachable: tenacity either returns or raises")  # pragma: no cover

    async def _stream_once(
        self, url: str, body: dict[str, Any], sink: StreamSink, check: Check | None
    ) -> dict[str, Any] | None:
        pool = await self._pools.get()
        sink.begin()
        try:
            reply = await pool.stream(url, body, sink.line)
        except (TransportError, StreamBroken) as exc:
            if sink.salvage():
                sink.broken = describe(exc)
                return None
            if isinstance(exc, TransportError):
                raise
            raise DisconnectedError(f"stream broken: {exc}") from exc
        if reply is None:
            if sink.ended():
                return None
            if sink.salvage():
                sink.broken = "the stream ended before every choice finished"
                return None
            raise DisconnectedError("the stream ended before any choice finished")
        data = self._decode(reply, url)
        if check is not None:
            check(data)
        return data

    async def _send_once(
        self, method: str, url: str, body: dict[str, Any] | None
    ) -> dict[str, Any]:
        pool = await self._pools.get()
        return self._decode(await pool.send(method, url, body), url)

    def _decode(self, reply: Reply, url: str) -> dict[str, Any]:
        """The JSON object of a reply; retryable statuses and bodies raise for a retry."""
        status = reply.status
        if status in RETRYABLE_STATUSES:
            message = error_message(status, reply.content, reply.reason)
            raise RetryableStatusError(status, message, parse_retry_after(reply.headers))
        if status >= 400:
            message = error_message(status, reply.content, reply.reason)
            raise ServerError(
                f"{self.role} server at {url} returned HTTP {status}: {message}",
                url=url,
                status=status,
            )
        try:
            data = json.loads(reply.content)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            snippet = reply.content.decode("utf-8", "replace")[:200]
            raise MalformedBodyError(status, snippet)
        return data


class ServedModel:
    """Base of the clients of one model on one server: owns the HTTP core and its settings.

    Subclasses set `role` (it picks the `vllm serve` hint of connection errors) and add the
    endpoint's request and response handling.
    """

    role: Role

    def __init__(
        self,
        url: str,
        model: str,
        *,
        api_key: str | None = None,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
        max_retries: int = DEFAULT_MAX_RETRIES,
        transport: Transport | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        self.model = model
        self._http = HTTPClient(
            url,
            role=self.role,
            api_key=api_key,
            timeout_s=timeout_s,
            connect_timeout_s=connect_timeout_s,
            max_retries=max_retries,
            max_concurrency=max_concurrency,
            transport=transport,
            backoff=backoff,
        )

    async def aclose(self) -> None:
        """Close the connection pool of the running event loop."""
        await self._http.aclose()


def _validate_url(url: str, role: str) -> str:
    """Reject URLs the transport would choke on later, with a message naming the URL."""
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises ValueError on a non-numeric port
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"invalid {role} server URL {url!r}: {exc}") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"invalid {role} server URL {url!r}: expected http(s)://host[:port][/path], "
            "for example http://127.0.0.1:8000/v1"
        )
    return url.rstrip("/")
