"""One JSON-over-HTTP core shared by every client: timeouts, retries, concurrency, error mapping.

Why a shared core: the policy, PRM and embedding servers all speak JSON over HTTP and fail in
the same ways (a server still loading, a 503 burst, a 429 with `Retry-After`, a dead port), so
retrying and error wording live in one place. Each request is retried with tenacity; "should
retry" (`should_retry`) and "how long to wait" (`retry_wait_s`) are separate small functions.

The `httpx.AsyncClient` and the `asyncio.Semaphore` are created lazily, once per running event
loop, because a client object outlives loops: the CLI runs one `asyncio.run` per call, the sync
wrappers run their own loop, and `langgraph dev` has its own.
"""

from __future__ import annotations

import asyncio
import email.utils
import functools
import inspect
import json
import logging
import ssl
import threading
import time
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar
from urllib.parse import urlsplit

import httpx
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

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
    "error_message",
    "parse_retry_after",
    "retry_wait_s",
    "run_sync",
    "should_retry",
]

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 600.0
"""Read/write timeout: long generations (thousands of tokens at n=64) take minutes."""
DEFAULT_CONNECT_TIMEOUT_S = 5.0
DEFAULT_MAX_RETRIES = 5
DEFAULT_MAX_CONCURRENCY = 64
POOL_SHARD_SIZE = 8
"""Connections per httpx client; a client's pool is split into shards of this size."""
DEFAULT_BACKOFF_INITIAL_S = 0.25
DEFAULT_BACKOFF_MAX_S = 8.0
DEFAULT_RETRY_AFTER_CAP_S = 60.0
"""Longest `Retry-After` we obey; a server asking for more is waited on for this long."""

RETRYABLE_STATUSES = frozenset({408, 429} | set(range(500, 600)))
_JSON_HEADERS = {"Content-Type": "application/json"}

Role = Literal["policy", "prm", "embed"]
Check = Callable[[dict[str, Any]], None]
T = TypeVar("T")
V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class Backoff:
    """How long to wait between attempts.

    Exponential backoff with jitter (`initial_s`, doubling, at most `max_s`) unless the server
    sent `Retry-After`, which is obeyed up to `retry_after_cap_s`. Tests pass tiny values.
    """

    initial_s: float = DEFAULT_BACKOFF_INITIAL_S
    max_s: float = DEFAULT_BACKOFF_MAX_S
    retry_after_cap_s: float = DEFAULT_RETRY_AFTER_CAP_S


class _RetryableStatus(Exception):
    """A response whose status says "try again" (408, 429, 5xx)."""

    def __init__(self, status: int, message: str, retry_after: float | None) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message
        self.retry_after = retry_after


class _MalformedBody(Exception):
    """A 2xx response whose body is not a JSON object (a proxy page, a truncated body)."""

    def __init__(self, status: int, snippet: str) -> None:
        super().__init__(f"HTTP {status} with a body that is not a JSON object: {snippet!r}")
        self.status = status
        self.snippet = snippet


class RetryableReply(Exception):
    """A 2xx body that says the server gave up on the request (vLLM's `finish_reason: "abort"`
    after a preemption or a restart); raised by a response check, retried like a 503."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


_RETRYABLE_TRANSPORT = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)
_CONNECT_FAILURES = (httpx.ConnectError, httpx.ConnectTimeout)


def should_retry(exc: BaseException) -> bool:
    """Whether a failed attempt is worth repeating.

    Connection errors, timeouts, 408/429/5xx and unparsable 2xx bodies are transient on a
    loading or overloaded server; other 4xx mean the request itself is wrong.
    """
    return isinstance(
        exc, (_RetryableStatus, _MalformedBody, RetryableReply, *_RETRYABLE_TRANSPORT)
    )


def parse_retry_after(headers: httpx.Headers, *, now: float | None = None) -> float | None:
    """Seconds the server asked us to wait, from `Retry-After` (seconds or HTTP date) or
    `retry-after-ms`; `None` when absent or unparsable."""
    raw_ms = headers.get("retry-after-ms")
    if raw_ms is not None:
        try:
            return max(0.0, float(raw_ms) / 1000.0)
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    now = time.time() if now is None else now
    return max(0.0, when.timestamp() - now)


def retry_wait_s(exc: BaseException | None, backoff_s: float, retry_after_cap_s: float) -> float:
    """Seconds to sleep before the next attempt: the server's `Retry-After` (capped) when it
    sent one, else `backoff_s` (exponential backoff with jitter)."""
    if isinstance(exc, _RetryableStatus) and exc.retry_after is not None:
        return min(exc.retry_after, retry_after_cap_s)
    return backoff_s


def error_message(response: httpx.Response) -> str:
    """The server's own error text: vLLM sends `{"error": {"message": ...}}` (newer) or
    `{"message": ...}` (older); FastAPI sends `{"detail": ...}`."""
    try:
        data = response.json()
    except ValueError:
        text = response.text.strip()
        return text[:500] if text else response.reason_phrase
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])
        if isinstance(err, str) and err:
            return err
        for key in ("message", "detail"):
            if data.get(key):
                value = data[key]
                return value if isinstance(value, str) else json.dumps(value)[:500]
    return json.dumps(data)[:500]


@dataclass(slots=True, eq=False)
class _Entry(Generic[V]):
    """One loop's value, a weak reference to that loop, and the generator that closes it."""

    loop_ref: Callable[[], asyncio.AbstractEventLoop | None]
    value: V
    closer: AsyncGenerator[None, None] | None = None


def _loop_ref(loop: asyncio.AbstractEventLoop) -> Callable[[], asyncio.AbstractEventLoop | None]:
    """A weak reference to `loop` (a strong one for loop types that refuse weak references)."""
    try:
        return weakref.ref(loop)
    except TypeError:
        return lambda: loop


class LoopLocal(Generic[V]):
    """One value per running event loop (an httpx pool, a semaphore), made on first use.

    Why: connection pools and semaphores are bound to the loop they were first used in, while
    a client object outlives loops (one `asyncio.run` per CLI call, the sync wrappers,
    `langgraph dev`'s loop). Values are keyed by a weak reference to their loop.

    Each value is closed inside its own loop: a suspended async generator is started in the
    loop, and loops finalise live async generators when they shut down (`asyncio.run` awaits
    `loop.shutdown_asyncgens()`), so its `finally` runs `close(value)` before the loop closes
    instead of leaking sockets. `aclose()` does the same on demand.

    Args:
        factory: Makes the value; called inside the running loop.
        close: Releases a value; awaited in the value's loop.
    """

    def __init__(
        self, factory: Callable[[], V], close: Callable[[V], Awaitable[None]] | None = None
    ) -> None:
        self._factory = factory
        self._close = close
        self._entries: dict[int, _Entry[V]] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    async def get(self) -> V:
        """The running loop's value."""
        loop = asyncio.get_running_loop()
        with self._lock:
            entry = self._entries.get(id(loop))
            if entry is not None and entry.loop_ref() is loop:
                return entry.value
            self._prune_locked()
            entry = _Entry(loop_ref=_loop_ref(loop), value=self._factory())
            self._entries[id(loop)] = entry
        # Starting the generator registers it for the loop's shutdown; it does not suspend.
        entry.closer = self._close_at_shutdown(entry)
        await entry.closer.__anext__()
        return entry.value

    async def aclose(self) -> None:
        """Close the running loop's value now (a new one is made if it is used again)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            entry = self._entries.get(id(loop))
            if entry is None or entry.loop_ref() is not loop:
                return
        if entry.closer is not None:
            await entry.closer.aclose()  # its `finally` forgets the entry and closes the value
        else:
            self._forget(entry)
            if self._close is not None:
                await self._close(entry.value)

    async def _close_at_shutdown(self, entry: _Entry[V]) -> AsyncGenerator[None, None]:
        """Parks until the loop shuts down (or `aclose`), then closes `entry`'s value."""
        try:
            yield
        finally:
            self._forget(entry)
            if self._close is not None:
                await self._close(entry.value)

    def _forget(self, entry: _Entry[V]) -> None:
        with self._lock:
            for key, known in list(self._entries.items()):
                if known is entry:
                    del self._entries[key]

    def _prune_locked(self) -> None:
        """Forget values whose loop is gone or closed; they can no longer be awaited."""
        for key, entry in list(self._entries.items()):
            loop = entry.loop_ref()
            if loop is None or loop.is_closed():
                del self._entries[key]


class _Shard:
    """One httpx client and the semaphore that keeps its in-flight requests within its size."""

    def __init__(self, client: httpx.AsyncClient, size: int) -> None:
        self.client = client
        self.semaphore = asyncio.Semaphore(size)
        self.free = size


class _Pool:
    """One event loop's connections: an aiohttp session (the network path) or httpx shards.

    aiohttp spends a fraction of httpx's CPU per request, which decides the client's share of
    an iteration at N=64 (benchmarks/throughput.py). httpx serves injected transports
    (`httpx.MockTransport` in tests); its pool is split into shards of `POOL_SHARD_SIZE`
    because httpcore re-scans every queued request against every connection on each event.
    Both paths return a `_Reply` and raise httpx's exception types, so retries and error
    messages are the same whichever path served the request.
    """

    def __init__(
        self,
        *,
        session: Any = None,
        proxy: tuple[Any, Any] = (None, None),
        semaphore: asyncio.Semaphore | None = None,
        shards: list[_Shard] | None = None,
    ) -> None:
        self.session = session
        self.proxy = proxy
        self.semaphore = semaphore
        self.shards = shards or []

    def pick(self) -> _Shard:
        return max(self.shards, key=lambda shard: shard.free)

    async def send(self, method: str, url: str, body: dict[str, Any] | None) -> _Reply:
        if self.session is None:
            shard = self.pick()
            async with shard.semaphore:
                shard.free -= 1
                try:
                    response = await shard.client.request(method, url, json=body)
                finally:
                    shard.free += 1
            return _Reply(response.status_code, response.content, response=response)
        assert self.semaphore is not None
        async with self.semaphore:
            return await _aiohttp_request(self.session, self.proxy, method, url, body)


class _Reply:
    """Status and body of a response; the `httpx.Response` is built only when an error
    message or `Retry-After` needs it (building one costs ~0.1 ms, ~40 times per iteration)."""

    __slots__ = ("_headers", "_response", "content", "method", "status", "url")

    def __init__(
        self,
        status: int,
        content: bytes,
        *,
        response: httpx.Response | None = None,
        headers: Any = None,
        method: str = "",
        url: str = "",
    ) -> None:
        self.status = status
        self.content = content
        self._response = response
        self._headers = headers
        self.method = method
        self.url = url

    def response(self) -> httpx.Response:
        if self._response is None:
            self._response = httpx.Response(
                self.status,
                headers=list(self._headers or []),
                content=self.content,
                request=httpx.Request(self.method, self.url),
            )
        return self._response


async def _aiohttp_request(
    session: Any, proxy: tuple[Any, Any], method: str, url: str, body: dict[str, Any] | None
) -> _Reply:
    """One request through aiohttp, failing exactly like httpx would."""
    import aiohttp

    data = None if body is None else json.dumps(body).encode()
    headers = None if body is None else _JSON_HEADERS
    try:
        async with session.request(
            method, url, data=data, headers=headers, proxy=proxy[0], proxy_auth=proxy[1]
        ) as reply:
            content = await reply.read()
            return _Reply(reply.status, content, headers=reply.raw_headers, method=method, url=url)
    except aiohttp.ConnectionTimeoutError as err:
        request = httpx.Request(method, url)
        raise httpx.ConnectTimeout(str(err) or "connect timeout", request=request) from err
    except aiohttp.ClientConnectorError as err:
        raise httpx.ConnectError(str(err), request=httpx.Request(method, url)) from err
    except (TimeoutError, aiohttp.ServerTimeoutError) as err:
        request = httpx.Request(method, url)
        raise httpx.ReadTimeout(str(err) or "read timeout", request=request) from err
    except aiohttp.ServerDisconnectedError as err:
        raise httpx.RemoteProtocolError(str(err), request=httpx.Request(method, url)) from err
    except aiohttp.ClientError as err:
        request = httpx.Request(method, url)
        raise httpx.ReadError(f"{type(err).__name__}: {err}", request=request) from err


def _env_proxy(url: str) -> tuple[Any, Any]:
    """The proxy and its credentials that the environment (`HTTP(S)_PROXY`, `NO_PROXY`) sets
    for `url`, or `(None, None)`.

    Looked up once per connection pool: aiohttp's `trust_env` would look it up in a worker
    thread on every request.
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
    return httpx.create_ssl_context()


async def _close_pool(pool: _Pool) -> None:
    if pool.session is not None:
        await pool.session.close()
    for shard in pool.shards:
        await shard.client.aclose()


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
        max_concurrency: Requests in flight per event loop; also the httpx pool size, so queued
            requests wait on the semaphore rather than inside httpcore's pool.
        transport: An httpx transport to use instead of the network (`httpx.MockTransport`).
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
        transport: httpx.AsyncBaseTransport | None = None,
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
        self._backoff_wait = _exponential_jitter(self.backoff)
        self._api_key = api_key
        self._transport = transport
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
        if self._transport is None:
            return _Pool(
                session=self._new_session(),
                proxy=_env_proxy(self.root_url),
                semaphore=asyncio.Semaphore(self.max_concurrency),
            )
        sizes = [POOL_SHARD_SIZE] * (self.max_concurrency // POOL_SHARD_SIZE)
        if self.max_concurrency % POOL_SHARD_SIZE:
            sizes.append(self.max_concurrency % POOL_SHARD_SIZE)
        return _Pool(shards=[_Shard(self._new_client(size), size) for size in sizes])

    def _headers(self) -> dict[str, str]:
        headers = {"User-Agent": "langgraph-tts"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        return headers

    def _new_session(self) -> Any:
        import aiohttp

        connector = aiohttp.TCPConnector(
            limit=self.max_concurrency, limit_per_host=self.max_concurrency, ssl=_ssl_context()
        )
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=self.connect_timeout_s, sock_read=self.timeout_s
        )
        return aiohttp.ClientSession(connector=connector, timeout=timeout, headers=self._headers())

    def _new_client(self, size: int) -> httpx.AsyncClient:
        headers = self._headers()
        limits = httpx.Limits(max_connections=size, max_keepalive_connections=size)
        timeout = httpx.Timeout(self.timeout_s, connect=self.connect_timeout_s)
        return httpx.AsyncClient(
            headers=headers,
            limits=limits,
            timeout=timeout,
            transport=self._transport,
            verify=_ssl_context(),
        )

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
            _describe(exc),
            wait,
        )

    async def _request(
        self, method: str, path: str, body: dict[str, Any] | None, check: Check | None
    ) -> dict[str, Any]:
        url = self.url(path)
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
                    data = await self._send_once(method, url, body)
                    if check is not None:
                        check(data)
                    return data
        except _CONNECT_FAILURES as exc:
            raise ServerUnavailableError(
                url, role=self.role, cause=f"{_describe(exc)}; {_tries(attempts)}"
            ) from exc
        except httpx.TimeoutException as exc:
            msg = (
                f"{self.role} server at {url} timed out ({_describe(exc)}, read timeout "
                f"{self.timeout_s:g}s); {_tries(attempts)}"
            )
            raise ServerError(msg, url=url) from exc
        except httpx.TransportError as exc:
            msg = f"{self.role} server at {url} failed: {_describe(exc)}; {_tries(attempts)}"
            raise ServerError(msg, url=url) from exc
        except _RetryableStatus as exc:
            msg = (
                f"{self.role} server at {url} returned HTTP {exc.status}: {exc.message} "
                f"({_tries(attempts)})"
            )
            raise ServerError(msg, url=url, status=exc.status) from exc
        except RetryableReply as exc:
            msg = f"{self.role} server at {url}: {exc.message} ({_tries(attempts)})"
            raise ServerError(msg, url=url, status=200) from exc
        except _MalformedBody as exc:
            msg = (
                f"{self.role} server at {url} returned a body that is not a JSON object "
                f"({_tries(attempts)}): {exc.snippet!r}"
            )
            raise ServerError(msg, url=url, status=exc.status) from exc
        raise AssertionError("unreachable: tenacity either returns or raises")  # pragma: no cover

    async def _send_once(
        self, method: str, url: str, body: dict[str, Any] | None
    ) -> dict[str, Any]:
        pool = await self._pools.get()
        reply = await pool.send(method, url, body)
        status = reply.status
        if status in RETRYABLE_STATUSES:
            response = reply.response()
            raise _RetryableStatus(
                status, error_message(response), parse_retry_after(response.headers)
            )
        if status >= 400:
            message = error_message(reply.response())
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
            raise _MalformedBody(status, reply.response().text[:200])
        return data


def _exponential_jitter(backoff: Backoff) -> wait_exponential_jitter:
    """tenacity's exponential backoff with jitter (`initial_s` became `multiplier` in 9.x)."""
    first = (
        "multiplier"
        if "multiplier" in inspect.signature(wait_exponential_jitter).parameters
        else "initial"
    )
    kwargs: dict[str, float] = {first: backoff.initial_s}
    return wait_exponential_jitter(max=backoff.max_s, jitter=backoff.initial_s, **kwargs)


def _tries(attempts: int) -> str:
    return f"gave up after {attempts} attempt{'s' if attempts != 1 else ''}"


def _describe(exc: BaseException | None) -> str:
    if exc is None:
        return "unknown error"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


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
        transport: httpx.AsyncBaseTransport | None = None,
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
    """Reject URLs httpx would choke on later, with a message naming the URL."""
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


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` to completion from synchronous code, in a fresh event loop.

    The sync wrappers use this; it refuses to run inside a running event loop (where blocking
    would deadlock it) and tells the caller to await the async method instead. Pools opened
    in the fresh loop are closed when `asyncio.run` shuts it down.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    coro.close()
    raise RuntimeError(
        "a *_sync method was called from inside a running event loop; "
        "await the async method (generate/score/embed) instead"
    )
