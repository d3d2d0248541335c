"""Typed errors. Every error a user can cause or meet carries a one-line, actionable message."""

from __future__ import annotations

__all__ = [
    "MAX_PROBLEM_CHARS",
    "BudgetExhaustedError",
    "ConfigError",
    "GradingTimeoutError",
    "ServerError",
    "ServerUnavailableError",
    "TTSError",
    "check_problem",
]

MAX_PROBLEM_CHARS = 100_000
"""Longest problem text accepted (about 25k tokens, beyond any competition problem): a longer
one is a file or a field passed by mistake, and would cost a context window per request."""

VLLM_HINTS = {
    "policy": "vllm serve Qwen/Qwen2.5-1.5B-Instruct --port {port}",
    "prm": "vllm serve Qwen/Qwen2.5-Math-PRM-7B --runner pooling --port {port}",
    "embed": "vllm serve BAAI/bge-m3 --runner pooling --port {port}",
}
SIM_HINT = "langgraph-tts sim-server --port {port}"


class TTSError(Exception):
    """Base class of the package's errors; `str(err)` is a complete one-line message.

    Examples:
        >>> from langgraph_tts import SearchContext
        >>> try:
        ...     SearchContext(budget=-1)
        ... except TTSError as err:
        ...     print(type(err).__name__, "-", err)
        ConfigError - invalid setting: budget: Input should be greater than 0
    """


class ConfigError(TTSError, ValueError):
    """A setting is invalid. The message names the field and what is allowed.

    Examples:
        Raised when a graph is built (or a run starts) with a bad setting; also a `ValueError`:

        >>> from langgraph_tts import create_search_graph
        >>> create_search_graph("dora", beam_widht=2)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
            ...
        langgraph_tts.errors.ConfigError: unknown setting 'beam_widht'; did you mean 'beam_width'? ...
        >>> issubclass(ConfigError, ValueError)
        True
    """


class ServerError(TTSError, RuntimeError):
    """A server answered, but not with something usable (4xx, malformed body, retries exhausted).

    Examples:
        >>> url = "http://127.0.0.1:8000/v1/chat/completions"
        >>> err = ServerError("HTTP 400: max_tokens is too large", url=url, status=400)
        >>> err.status, err.url == url, str(err)
        (400, True, 'HTTP 400: max_tokens is too large')
    """

    def __init__(self, message: str, *, url: str, status: int | None = None) -> None:
        super().__init__(message)
        self.url = url
        self.status = status


class ServerUnavailableError(ServerError):
    """A server could not be reached at all. The message names the URL and how to start one.

    Examples:
        >>> err = ServerUnavailableError("http://127.0.0.1:8001/pooling", role="prm")
        >>> print(err)  # doctest: +NORMALIZE_WHITESPACE
        cannot reach the prm server at http://127.0.0.1:8001/pooling. Start one with
        `vllm serve Qwen/Qwen2.5-Math-PRM-7B --runner pooling --port 8001`
        (or the built-in simulator: `langgraph-tts sim-server --port 8001`).
        >>> err.role, err.status, isinstance(err, ServerError)
        ('prm', None, True)
    """

    def __init__(self, url: str, *, role: str = "policy", cause: str = "") -> None:
        self.role = role
        port = _port_of(url)
        hint = VLLM_HINTS.get(role, VLLM_HINTS["policy"]).format(port=port)
        sim = SIM_HINT.format(port=port)
        why = f" ({cause})" if cause else ""
        msg = (
            f"cannot reach the {role} server at {url}{why}. Start one with `{hint}` "
            f"(or the built-in simulator: `{sim}`)."
        )
        super().__init__(msg, url=url)


class BudgetExhaustedError(TTSError, RuntimeError):
    """A hard cap (samples or tokens) left no room for the request."""


class GradingTimeoutError(TTSError, TimeoutError):
    """An answer comparison exceeded its time limit."""


def check_problem(text: str) -> str:
    """`text` stripped; `ConfigError` when it is empty or longer than `MAX_PROBLEM_CHARS`."""
    stripped = text.strip()
    if not stripped:
        raise ConfigError("the problem is empty")
    if len(stripped) > MAX_PROBLEM_CHARS:
        raise ConfigError(
            f"the problem is {len(stripped)} characters long; at most {MAX_PROBLEM_CHARS} are "
            "accepted (a file or a field passed by mistake?)"
        )
    return stripped


def _port_of(url: str) -> int:
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        if parts.port:
            return parts.port
    except ValueError:
        pass
    return 8000
