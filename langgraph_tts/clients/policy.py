"""The policy client: vLLM's OpenAI-compatible `/v1/chat/completions`, `n` choices per request.

Why not the OpenAI SDK: vLLM's per-choice `stop_reason` (the matched stop string, or `None` for
EOS) is what tells "a step ended" from "the solution ended", and `token_ids` gives exact
per-choice token counts; both are vLLM extras that this client reads straight from the JSON.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Sequence
from typing import Any

from langgraph_tts.clients._http import (
    LoopLocal,
    RetryableReply,
    ServedModel,
    run_sync,
)
from langgraph_tts.clients._stream import STREAM_OPTIONS, ChoiceStream
from langgraph_tts.clients.types import (
    ChatMessage,
    Generation,
    Sample,
    SamplingParams,
    StopTest,
    Usage,
)
from langgraph_tts.errors import ServerError, ServerUnavailableError
from langgraph_tts.serving import cap_max_tokens

__all__ = [
    "RETRIED_FINISH_REASONS",
    "ChatPolicy",
    "build_chat_body",
    "check_choices",
    "check_finish_reasons",
    "check_messages",
    "model_len_of",
    "parse_chat_response",
    "split_tokens",
]

RETRIED_FINISH_REASONS = frozenset({"abort", "error"})
"""vLLM finish reasons that mean the server dropped the request (preempted, aborted, an engine
error): the choice's text is not a step, so the whole request is sent again."""

logger = logging.getLogger(__name__)

_warned_no_usage = False


class ChatPolicy(ServedModel):
    """A `Policy` over vLLM's chat completions API: one request per call with `n` choices.

    Args:
        url: The OpenAI-style base URL, ending in `/v1` (`http://127.0.0.1:8000/v1`).
        model: The served model name (`vllm serve <model>` or `--served-model-name`).
        api_key: vLLM's `--api-key`, if the server was started with one.
        max_concurrency: Requests in flight at once (per event loop).
        timeout_s: Read timeout of one attempt; long generations need minutes.
        connect_timeout_s: Connect timeout of one attempt.
        max_retries: Attempts after the first on connection errors, 408, 429 and 5xx.
        transport: The aiohttp transport; tests pass one that resolves hosts to a loopback server.
        backoff: Wait settings between attempts.
        max_model_len: The server's context window; read from `GET /v1/models` (vLLM's
            `max_model_len`) on first use when omitted. Every request's `max_tokens` is
            capped to it (vLLM rejects a larger one with HTTP 400), with a warning and
            `Generation.max_tokens_cap` set when a cap applied.

    Examples:
        Constructing sends nothing; `generate` does (with no server, after `max_retries`):

        >>> import asyncio
        >>> policy = ChatPolicy("http://127.0.0.1:9/v1", "Qwen/Qwen2.5-1.5B-Instruct", max_retries=0)
        >>> policy
        ChatPolicy(base_url='http://127.0.0.1:9/v1', model='Qwen/Qwen2.5-1.5B-Instruct')
        >>> messages = [{"role": "user", "content": "What is 2+2?"}]
        >>> asyncio.run(policy.generate(messages, n=4))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
            ...
        langgraph_tts.errors.ServerUnavailableError: cannot reach the policy server at ...
    """

    role = "policy"

    def __init__(self, url: str, model: str, *, max_model_len: int | None = None, **kw: Any):
        super().__init__(url, model, **kw)
        self._model_len = max_model_len
        self._model_len_known = max_model_len is not None
        self._model_len_lock: LoopLocal[asyncio.Lock] = LoopLocal(asyncio.Lock)
        self._warned_cap = False
        self._warned_stream = False

    @property
    def base_url(self) -> str:
        """The `/v1` base URL requests go to."""
        return self._http.root_url

    def __repr__(self) -> str:
        return f"ChatPolicy(base_url={self.base_url!r}, model={self.model!r})"

    async def generate(
        self,
        messages: Sequence[ChatMessage],
        *,
        n: int = 1,
        params: SamplingParams | None = None,
        continue_final_message: bool = False,
    ) -> Generation:
        """Draw `n` choices for one prompt in one request.

        Args:
            messages: The chat so far. With `continue_final_message`, the last message must be
                the partial assistant message to continue (step-wise search).
            n: Number of choices; vLLM shares the prompt's KV cache between them.
            params: Sampling settings; `SamplingParams()` when omitted.
            continue_final_message: Continue the final assistant message instead of starting
                a new one (sends `add_generation_prompt: false`).

        Returns:
            The `n` samples, ordered by choice index, and the request's usage.

        Raises:
            ServerError: The server failed, or returned a different number of choices.
            ServerUnavailableError: The server could not be reached.
        """
        body, cap = await self._body(messages, n, params, continue_final_message)
        data = await self._http.post("/chat/completions", body, check=lambda d: check_choices(d, n))
        gen = parse_chat_response(data, n=n, url=self._http.url("/chat/completions"))
        return gen if cap is None else dataclasses.replace(gen, max_tokens_cap=cap)

    async def generate_until(
        self,
        messages: Sequence[ChatMessage],
        *,
        n: int,
        stop: StopTest,
        params: SamplingParams | None = None,
        continue_final_message: bool = False,
    ) -> Generation:
        """Draw up to `n` choices in one streamed request, closing it once `stop` decides.

        The request is `generate`'s with `stream: true` and `stream_options:
        {"include_usage": true, "continuous_usage_stats": true}`. Each time a choice
        finishes, `stop` runs on the finished ones (in the order they finished); once it
        returns True the response is closed, vLLM aborts the remaining sequences, and they
        are dropped (`Generation.cancelled`) with their partial tokens booked in `usage`.

        A stream that breaks before any choice finished is retried like any request; one
        that breaks after keeps its finished choices (the rest count as cancelled). A server
        that ignores `stream` and answers with one JSON body is read as `generate` reads it
        (all `n` choices, nothing cancelled; a warning is logged once).

        Args:
            messages: The chat so far (see `generate`).
            n: Number of choices asked for.
            stop: The stopping test on the finished choices.
            params: Sampling settings; `SamplingParams()` when omitted.
            continue_final_message: Continue the final assistant message.

        Returns:
            The finished choices ordered by index, and usage including cancelled choices.

        Raises:
            ServerError: The server failed, or answered with another number of choices.
            ServerUnavailableError: The server could not be reached.
        """
        body, cap = await self._body(messages, n, params, continue_final_message)
        body.update(stream=True, stream_options=dict(STREAM_OPTIONS))
        sink = ChoiceStream(n, stop)
        url = self._http.url("/chat/completions")
        data = await self._http.stream(
            "/chat/completions", body, sink, check=lambda d: check_choices(d, n)
        )
        if data is not None:
            self._warn_not_streamed()
            gen = parse_chat_response(data, n=n, url=url)
        else:
            if sink.broken:
                logger.warning(
                    "policy stream from %s broke after %d of %d choices finished (%s); "
                    "keeping them",
                    url,
                    len(sink.finished),
                    n,
                    sink.broken,
                )
            gen = sink.generation()
        return gen if cap is None else dataclasses.replace(gen, max_tokens_cap=cap)

    def generate_until_sync(
        self,
        messages: Sequence[ChatMessage],
        *,
        n: int,
        stop: StopTest,
        params: SamplingParams | None = None,
        continue_final_message: bool = False,
    ) -> Generation:
        """Blocking `generate_until` for scripts and notebooks without a running loop."""
        coro = self.generate_until(
            messages, n=n, stop=stop, params=params, continue_final_message=continue_final_message
        )
        return run_sync(coro)

    async def _body(
        self,
        messages: Sequence[ChatMessage],
        n: int,
        params: SamplingParams | None,
        continue_final_message: bool,
    ) -> tuple[dict[str, Any], int | None]:
        """The request body, `max_tokens` capped to the context window, and the window when
        that cap lowered `max_tokens` (else None)."""
        params = params or SamplingParams()
        limit = await self.max_model_len()
        capped = cap_max_tokens(params.max_tokens, limit)
        if capped != params.max_tokens:
            self._warn_cap(params.max_tokens, capped)
        body = build_chat_body(
            self.model,
            messages,
            n=n,
            params=dataclasses.replace(params, max_tokens=capped),
            continue_final_message=continue_final_message,
        )
        return body, (None if capped == params.max_tokens else limit)

    def _warn_not_streamed(self) -> None:
        if not self._warned_stream:
            self._warned_stream = True
            logger.warning(
                "policy server at %s ignored stream=true and answered with one JSON body: "
                "every choice is generated, none can be cancelled (warned once)",
                self.base_url,
            )

    def generate_sync(
        self,
        messages: Sequence[ChatMessage],
        *,
        n: int = 1,
        params: SamplingParams | None = None,
        continue_final_message: bool = False,
    ) -> Generation:
        """Blocking `generate` for scripts and notebooks without a running loop."""
        coro = self.generate(
            messages, n=n, params=params, continue_final_message=continue_final_message
        )
        return run_sync(coro)

    async def max_model_len(self) -> int | None:
        """The served model's context window (`max_model_len` of its `/v1/models` card), read
        once; `None` when the server does not say (not vLLM, or an older one)."""
        if self._model_len_known:
            return self._model_len
        async with await self._model_len_lock.get():
            if not self._model_len_known:
                self._model_len = await self._read_model_len()
                self._model_len_known = True
        return self._model_len

    async def _read_model_len(self) -> int | None:
        try:
            data = await self._http.get("/models")
        except ServerUnavailableError:
            raise
        except ServerError as err:
            logger.info("could not read max_model_len from %s/models: %s", self.base_url, err)
            return None
        return model_len_of(data, self.model)

    def _warn_cap(self, requested: int | None, capped: int | None) -> None:
        if not self._warned_cap:
            self._warned_cap = True
            logger.warning(
                "policy server at %s serves %s with max_model_len=%s: max_tokens=%s capped to "
                "%s (warned once; raise --max-model-len or lower the token settings)",
                self.base_url,
                self.model,
                capped,
                requested,
                capped,
            )

    async def list_models(self) -> list[str]:
        """The model names the server serves (`GET /v1/models`), to check `model` early."""
        data = await self._http.get("/models")
        return [str(m["id"]) for m in data.get("data", []) if isinstance(m, dict) and "id" in m]


def model_len_of(data: dict[str, Any], model: str) -> int | None:
    """`max_model_len` of `model`'s card in a `/v1/models` response (vLLM's `ModelCard`)."""
    cards = data.get("data")
    for card in cards if isinstance(cards, list) else []:
        if isinstance(card, dict) and card.get("id") == model:
            value = card.get("max_model_len")
            return value if isinstance(value, int) and value > 0 else None
    return None


def check_messages(messages: Sequence[ChatMessage], n: int, continue_final_message: bool) -> None:
    """Reject requests vLLM would reject later with a less helpful message."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if not messages:
        raise ValueError("messages must not be empty")
    if continue_final_message and messages[-1]["role"] != "assistant":
        raise ValueError(
            "continue_final_message=True needs the last message to be the partial assistant "
            f"message to continue, got role {messages[-1]['role']!r}"
        )


def build_chat_body(
    model: str,
    messages: Sequence[ChatMessage],
    *,
    n: int,
    params: SamplingParams,
    continue_final_message: bool = False,
) -> dict[str, Any]:
    """The JSON body of one chat completion request; `params.extra_body` is merged last."""
    check_messages(messages, n, continue_final_message)
    body: dict[str, Any] = {
        "model": model,
        "messages": [{"role": m["role"], "content": m["content"]} for m in messages],
        "n": n,
    }
    for key in ("temperature", "top_p", "max_tokens"):
        value = getattr(params, key)
        if value is not None:
            body[key] = value
    if params.stop:
        body["stop"] = list(params.stop)
    body["include_stop_str_in_output"] = params.include_stop_str_in_output
    body["return_token_ids"] = True
    for key in ("top_k", "min_p", "seed", "chat_template_kwargs"):
        value = getattr(params, key)
        if value is not None:
            body[key] = value
    if params.logprobs:
        body["logprobs"] = True
        if params.top_logprobs is not None:
            body["top_logprobs"] = params.top_logprobs
    if continue_final_message:
        body["continue_final_message"] = True
        body["add_generation_prompt"] = False
    body.update(params.extra_body)
    return body


def check_finish_reasons(data: dict[str, Any]) -> None:
    """Raise `RetryableReply` when a choice finished with `"abort"` or `"error"`."""
    choices = data.get("choices")
    for choice in choices if isinstance(choices, list) else []:
        reason = choice.get("finish_reason") if isinstance(choice, dict) else None
        if reason in RETRIED_FINISH_REASONS:
            index = choice.get("index", "?")
            raise RetryableReply(f"choice {index} finished with finish_reason={reason!r}")


def check_choices(data: dict[str, Any], n: int) -> None:
    """Raise `RetryableReply` for a reply that cannot be the answer to a request for `n`
    choices (another count, a choice that is not an object) or that the server gave up on."""
    choices = data.get("choices")
    if not isinstance(choices, list) or len(choices) != n:
        got = len(choices) if isinstance(choices, list) else "no"
        raise RetryableReply(f"returned {got} choices for n={n}")
    if not all(isinstance(c, dict) for c in choices):
        raise RetryableReply("returned a choice that is not a JSON object")
    check_finish_reasons(data)


def parse_chat_response(data: dict[str, Any], *, n: int, url: str) -> Generation:
    """Turn a chat completion response into samples ordered by choice index, plus usage."""
    choices = data.get("choices")
    if not isinstance(choices, list) or len(choices) != n:
        got = len(choices) if isinstance(choices, list) else "no"
        raise ServerError(
            f"policy server at {url} returned {got} choices for n={n}", url=url, status=200
        )
    choices = sorted(choices, key=lambda c: int(c.get("index", 0)))
    usage = data.get("usage") or {}
    token_ids = [c.get("token_ids") for c in choices]
    if all(isinstance(t, list) for t in token_ids):
        tokens = [len(t) for t in token_ids if isinstance(t, list)]
    else:
        weights = []
        for c in choices:
            message = c.get("message") or {}
            reasoning = _reasoning_of(message) or ""
            weights.append(len(message.get("content") or "") + len(reasoning))
        tokens = split_tokens(int(usage.get("completion_tokens") or 0), weights)
    samples = [_sample_of(c, t) for c, t in zip(choices, tokens, strict=True)]
    return Generation(samples=samples, usage=_usage_of(usage, sum(tokens)))


def _sample_of(choice: dict[str, Any], tokens: int) -> Sample:
    message = choice.get("message") or {}
    logprobs = choice.get("logprobs")
    return Sample(
        text=message.get("content") or "",
        finish_reason=choice.get("finish_reason"),
        stop_reason=choice.get("stop_reason"),
        tokens=tokens,
        reasoning=_reasoning_of(message),
        logprobs=logprobs.get("content") if isinstance(logprobs, dict) else None,
    )


def _reasoning_of(message: dict[str, Any]) -> str | None:
    """vLLM's reasoning parsers put thinking text in `reasoning_content` (older) or
    `reasoning` (newer)."""
    value = message.get("reasoning_content") or message.get("reasoning")
    return str(value) if value else None


def _usage_of(usage: dict[str, Any], fallback_completion: int) -> Usage:
    """Usage from the response; without a `usage` object, count what the choices say."""
    global _warned_no_usage
    if not usage and not _warned_no_usage:
        _warned_no_usage = True
        logger.warning("policy server sent no `usage`; prompt tokens will be counted as 0")
    completion = usage.get("completion_tokens")
    return Usage(
        requests=1,
        prompt_tokens=int(usage.get("prompt_tokens") or 0),
        completion_tokens=int(completion) if completion is not None else fallback_completion,
    )


def split_tokens(total: int, weights: Sequence[int | float]) -> list[int]:
    """Split `total` tokens across choices in proportion to `weights` (text lengths) so the
    parts are integers that add up to `total` exactly (largest-remainder rounding)."""
    if not weights:
        return []
    total = max(0, total)
    weight_sum = float(sum(weights))
    if weight_sum <= 0:
        shares = [total / len(weights)] * len(weights)
    else:
        shares = [total * w / weight_sum for w in weights]
    parts = [int(s) for s in shares]
    left = total - sum(parts)
    by_remainder = sorted(range(len(shares)), key=lambda i: (parts[i] - shares[i], i))
    for i in by_remainder[:left]:
        parts[i] += 1
    return parts
