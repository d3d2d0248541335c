"""When to try a request again and how long to wait: two small functions and their settings.

"Should retry" (`should_retry`) and "how long to wait" (`retry_wait_s`) are kept apart, as in
the OpenAI SDK; tenacity runs the loop (`HTTPClient`).
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass

from tenacity import RetryCallState

from langgraph_tts.clients._constants import (
    DEFAULT_BACKOFF_INITIAL_S,
    DEFAULT_BACKOFF_MAX_S,
    DEFAULT_RETRY_AFTER_CAP_S,
)
from langgraph_tts.clients._errors import (
    MalformedBodyError,
    RetryableReply,
    RetryableStatusError,
    TransportError,
)

__all__ = ["Backoff", "exponential_jitter", "parse_retry_after", "retry_wait_s", "should_retry"]


@dataclass(frozen=True, slots=True)
class Backoff:
    """How long to wait between attempts.

    Exponential backoff with jitter (`initial_s`, doubling, at most `max_s`) unless the server
    sent `Retry-After`, which is obeyed up to `retry_after_cap_s`. Tests pass tiny values.
    """

    initial_s: float = DEFAULT_BACKOFF_INITIAL_S
    max_s: float = DEFAULT_BACKOFF_MAX_S
    retry_after_cap_s: float = DEFAULT_RETRY_AFTER_CAP_S


def should_retry(exc: BaseException) -> bool:
    """Whether a failed attempt is worth repeating.

    Connection errors, timeouts, 408/429/5xx, unparsable 2xx bodies and aborted replies are
    transient on a loading or overloaded server; other 4xx mean the request itself is wrong.
    """
    return isinstance(
        exc, (RetryableStatusError, MalformedBodyError, RetryableReply, TransportError)
    )


def parse_retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds the server asked us to wait, from `Retry-After` (seconds or HTTP date) or
    `retry-after-ms`; `None` when absent or unparsable. `headers` must look names up without
    regard to case (aiohttp's and httpx's headers do)."""
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
    if isinstance(exc, RetryableStatusError) and exc.retry_after is not None:
        return min(exc.retry_after, retry_after_cap_s)
    return backoff_s


class exponential_jitter:
    """Exponential backoff with "equal jitter": attempt k waits a uniform draw from
    [c/2, c], c = min(max_s, initial_s * 2**(k-1)).

    tenacity's `wait_exponential_jitter` adds its jitter before the cap, so every client that
    reaches `max_s` retries in lockstep (at a restarted server, all at once); here the
    capped waits are spread too.
    """

    def __init__(self, backoff: Backoff, rng: random.Random | None = None) -> None:
        self.initial_s = backoff.initial_s
        self.max_s = backoff.max_s
        self._rng = rng or random.Random()

    def __call__(self, retry_state: RetryCallState) -> float:
        exponent = min(max(retry_state.attempt_number - 1, 0), 60)
        ceiling = min(self.max_s, self.initial_s * 2.0**exponent)
        return ceiling * self._rng.uniform(0.5, 1.0)
