"""What can go wrong on the wire, before it becomes one of the package's `ServerError`s.

Transport errors (no HTTP answer) and the retried kinds of answer are plain exceptions here;
`HTTPClient` maps whatever is left after the last attempt to `ServerError` or
`ServerUnavailableError`, with the URL and the server's own message.
"""

from __future__ import annotations

import json

__all__ = [
    "ConnectFailedError",
    "ConnectTimeoutError",
    "DisconnectedError",
    "MalformedBodyError",
    "ReadTimeoutError",
    "RetryableReply",
    "RetryableStatusError",
    "TransportError",
    "describe",
    "error_message",
    "tries",
]


class TransportError(Exception):
    """A request that got no HTTP answer."""


class ConnectFailedError(TransportError):
    """No connection: refused, unknown host, unreachable."""


class ConnectTimeoutError(ConnectFailedError):
    """No connection within the connect timeout."""


class ReadTimeoutError(TransportError):
    """Connected, but no (complete) answer within the read timeout."""


class DisconnectedError(TransportError):
    """The server closed the connection or broke the protocol mid-request."""


class RetryableStatusError(Exception):
    """A response whose status says "try again" (408, 429, 5xx)."""

    def __init__(self, status: int, message: str, retry_after: float | None) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message
        self.retry_after = retry_after


class MalformedBodyError(Exception):
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


def error_message(status: int, content: bytes, reason: str = "") -> str:
    """The server's own error text: vLLM sends `{"error": {"message": ...}}` (newer) or
    `{"message": ...}` (older); FastAPI sends `{"detail": ...}`."""
    try:
        data = json.loads(content)
    except ValueError:
        text = content.decode("utf-8", "replace").strip()
        return text[:500] if text else (reason or f"HTTP {status}")
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


def tries(attempts: int) -> str:
    return f"gave up after {attempts} attempt{'s' if attempts != 1 else ''}"


def describe(exc: BaseException | None) -> str:
    if exc is None:
        return "unknown error"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
