"""Settings of the HTTP core: timeouts, retries, concurrency and which statuses are retried."""

from __future__ import annotations

__all__ = [
    "DEFAULT_BACKOFF_INITIAL_S",
    "DEFAULT_BACKOFF_MAX_S",
    "DEFAULT_CONNECT_TIMEOUT_S",
    "DEFAULT_MAX_CONCURRENCY",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_RETRY_AFTER_CAP_S",
    "DEFAULT_TIMEOUT_S",
    "RETRYABLE_STATUSES",
    "USER_AGENT",
]

DEFAULT_TIMEOUT_S = 600.0
"""Read/write timeout: long generations (thousands of tokens at n=64) take minutes."""
DEFAULT_CONNECT_TIMEOUT_S = 5.0
DEFAULT_MAX_RETRIES = 5
DEFAULT_MAX_CONCURRENCY = 64
DEFAULT_BACKOFF_INITIAL_S = 0.25
DEFAULT_BACKOFF_MAX_S = 8.0
DEFAULT_RETRY_AFTER_CAP_S = 60.0
"""Longest `Retry-After` we obey; a server asking for more is waited on for this long."""

RETRYABLE_STATUSES = frozenset({408, 429} | set(range(500, 600)))
USER_AGENT = "langgraph-tts"
