"""Several server replicas behind one evaluation: problem affinity, least-loaded choice, failover.

Every request of one problem goes to the replica the problem was given (vLLM's prefix cache
only helps on the server that already holds the prefix); a new problem goes to the replica
with the fewest outstanding requests (then the fewest problems in flight); a replica whose
server cannot be reached is taken out for a cool-down that doubles on each failure, and the
problem starts again elsewhere.

Requests are counted by thin wrappers around the clients (`Metered*`), which also time each
request and read cached prompt tokens (`usage.prompt_tokens_details.cached_tokens`) into the
`Meter` of the problem being solved (a context variable, so concurrent problems never mix).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .clients.types import (
    ChatMessage,
    EarlyStopPolicy,
    Embedder,
    Embeddings,
    Generation,
    Policy,
    RewardModel,
    SamplingParams,
    Scores,
    StopTest,
)
from .errors import ConfigError, ServerError, ServerUnavailableError

__all__ = [
    "Meter",
    "MeteredEmbedder",
    "MeteredPolicy",
    "MeteredReward",
    "Replica",
    "ReplicaPool",
    "current_meter",
    "replica_fault",
    "replica_urls",
]

logger = logging.getLogger(__name__)


@dataclass
class Meter:
    """What the requests of one problem cost in time (per request) and cached prompt tokens."""

    latency_ms: list[float] = field(default_factory=list)
    cached_prompt_tokens: int = 0

    def record(self, seconds: float) -> None:
        self.latency_ms.append(round(seconds * 1000.0, 2))


_METER: contextvars.ContextVar[Meter | None] = contextvars.ContextVar("tts_meter", default=None)


def current_meter() -> contextvars.ContextVar[Meter | None]:
    """The context variable holding the running problem's `Meter`."""
    return _METER


@dataclass
class Replica:
    """One set of servers (policy, PRM, embedder) and its load."""

    index: int
    base_url: str
    prm_url: str | None = None
    embed_url: str | None = None
    outstanding: int = 0
    """Requests in flight."""
    problems: int = 0
    """Problems in flight."""
    failures: int = 0
    down_until: float = 0.0
    solver: Any = None
    """The `Solver` bound to this replica's clients (built by the sweep)."""

    @property
    def label(self) -> str:
        return self.base_url


def replica_urls(
    base_urls: Sequence[str], prm_urls: Sequence[str | None], embed_urls: Sequence[str | None]
) -> list[Replica]:
    """Pair repeated `--base-url`/`--prm-url`/`--embed-url` by position; a list of one
    is shared by every replica."""
    lists: dict[str, list[Any]] = {
        "--base-url": list(base_urls),
        "--prm-url": list(prm_urls),
        "--embed-url": list(embed_urls),
    }
    count = max(len(v) for v in lists.values()) or 1
    for flag, values in lists.items():
        if len(values) not in (0, 1, count):
            msg = (
                f"{flag} given {len(values)} times; give it once or {count} times (one per replica)"
            )
            raise ConfigError(msg)

    def pick(values: list[Any], i: int) -> Any:
        if not values:
            return None
        return values[i] if len(values) == count else values[0]

    return [
        Replica(
            index=i,
            base_url=pick(lists["--base-url"], i),
            prm_url=pick(lists["--prm-url"], i),
            embed_url=pick(lists["--embed-url"], i),
        )
        for i in range(count)
    ]


class ReplicaPool:
    """Chooses a replica for each new problem and takes failing ones out for a while."""

    def __init__(
        self, replicas: Sequence[Replica], *, cooldown_s: float = 5.0, max_cooldown_s: float = 120.0
    ) -> None:
        if not replicas:
            raise ConfigError("no server replica given")
        self.replicas = list(replicas)
        self.cooldown_s = cooldown_s
        self.max_cooldown_s = max_cooldown_s

    def _up(self, now: float) -> list[Replica]:
        return [r for r in self.replicas if r.down_until <= now]

    async def acquire(self, avoid: Replica | None = None) -> Replica:
        """The least-loaded replica that is up (waits while every one is cooling down)."""
        while True:
            now = time.monotonic()
            up = self._up(now)
            if avoid is not None and len(up) > 1:
                up = [r for r in up if r is not avoid]
            if up:
                best = min(up, key=lambda r: (r.outstanding, r.problems, r.index))
                best.problems += 1
                return best
            wake = min(r.down_until for r in self.replicas)
            await asyncio.sleep(max(wake - now, 0.01))

    def release(self, replica: Replica, *, ok: bool) -> None:
        replica.problems -= 1
        if ok:
            replica.failures = 0

    def failed(self, replica: Replica, err: BaseException) -> None:
        """Take `replica` out for a cool-down that doubles with each failure in a row."""
        replica.failures += 1
        pause = min(self.cooldown_s * 2 ** (replica.failures - 1), self.max_cooldown_s)
        replica.down_until = time.monotonic() + pause
        logger.warning(
            "replica %s failed (%s); out for %.0f s, its problems continue elsewhere",
            replica.label,
            err,
            pause,
        )


class _Counted:
    def __init__(self, replica: Replica | None) -> None:
        self._replica = replica

    def _start(self) -> float:
        if self._replica is not None:
            self._replica.outstanding += 1
        return time.perf_counter()

    def _stop(self, started: float) -> None:
        if self._replica is not None:
            self._replica.outstanding -= 1
        meter = _METER.get()
        if meter is not None:
            meter.record(time.perf_counter() - started)


class MeteredPolicy(_Counted):
    """A `Policy` that counts, times and reads cached prompt tokens of each request."""

    def __init__(self, inner: Policy, replica: Replica | None = None) -> None:
        super().__init__(replica)
        self.inner = inner
        self.model = inner.model

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def generate(
        self,
        messages: Sequence[ChatMessage],
        *,
        n: int = 1,
        params: SamplingParams | None = None,
        continue_final_message: bool = False,
    ) -> Generation:
        started = self._start()
        try:
            raw = await self._raw(messages, n, params, continue_final_message)
            if raw is not None:
                return raw
            return await self.inner.generate(
                messages, n=n, params=params, continue_final_message=continue_final_message
            )
        finally:
            self._stop(started)

    async def generate_until(
        self,
        messages: Sequence[ChatMessage],
        *,
        n: int,
        stop: StopTest,
        params: SamplingParams | None = None,
        continue_final_message: bool = False,
    ) -> Generation:
        """The inner policy's `generate_until` (a streamed request stopped early), counted
        and timed; a whole `generate` when the inner policy cannot stop a request. Cached
        prompt tokens are not read from streams."""
        started = self._start()
        try:
            if isinstance(self.inner, EarlyStopPolicy):
                return await self.inner.generate_until(
                    messages,
                    n=n,
                    stop=stop,
                    params=params,
                    continue_final_message=continue_final_message,
                )
            return await self.inner.generate(
                messages, n=n, params=params, continue_final_message=continue_final_message
            )
        finally:
            self._stop(started)

    async def _raw(
        self,
        messages: Sequence[ChatMessage],
        n: int,
        params: SamplingParams | None,
        continue_final_message: bool,
    ) -> Generation | None:
        """The same request `ChatPolicy.generate` makes, keeping the raw `usage` to read
        `prompt_tokens_details`; None for other policies (they are timed only)."""
        from .clients.policy import ChatPolicy, build_chat_body, parse_chat_response

        http = getattr(self.inner, "_http", None)
        if type(self.inner) is not ChatPolicy or http is None or not hasattr(http, "post"):
            return None
        body = build_chat_body(
            self.inner.model,
            messages,
            n=n,
            params=params or SamplingParams(),
            continue_final_message=continue_final_message,
        )
        data = await http.post("/chat/completions", body)
        details = (data.get("usage") or {}).get("prompt_tokens_details") or {}
        cached = int(details.get("cached_tokens") or 0) if isinstance(details, dict) else 0
        meter = _METER.get()
        if meter is not None and cached:
            meter.cached_prompt_tokens += cached
        return parse_chat_response(data, n=n, url=http.url("/chat/completions"))


class MeteredReward(_Counted):
    """A `RewardModel` whose requests are counted and timed."""

    def __init__(self, inner: RewardModel, replica: Replica | None = None) -> None:
        super().__init__(replica)
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def score(self, problem: str, steps: Sequence[Sequence[str]]) -> Scores:
        started = self._start()
        try:
            return await self.inner.score(problem, steps)
        finally:
            self._stop(started)


class MeteredEmbedder(_Counted):
    """An `Embedder` whose requests are counted and timed."""

    def __init__(self, inner: Embedder, replica: Replica | None = None) -> None:
        super().__init__(replica)
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def embed(self, texts: Sequence[str]) -> Embeddings:
        started = self._start()
        try:
            return await self.inner.embed(texts)
        finally:
            self._stop(started)


def replica_fault(err: BaseException) -> bool:
    """The error says the replica is unhealthy rather than the request bad: unreachable,
    connection dropped or timed out, 5xx or 429 after the client's retries."""
    if isinstance(err, ServerUnavailableError):
        return True
    if isinstance(err, ServerError):
        return err.status is None or err.status >= 500 or err.status == 429
    return False
