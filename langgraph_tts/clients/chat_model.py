"""A `Policy` on top of any LangChain chat model (`ChatOpenAI` against vLLM, or a fake in tests).

Why it exists: users who already configure LangChain models (callbacks, tracing, custom
clients) can plug them in unchanged. Two LangChain facts shape it:

- `invoke` returns only the first of `n` choices, so this calls `agenerate([[messages]], n=...)`,
  which returns all of them from one request.
- langchain-openai drops vLLM's per-choice `stop_reason` and `token_ids`. With
  `include_stop_str_in_output` (the default in `SamplingParams`) a choice that stopped at a stop
  string ends with it, which gives `stop_reason` back; per-choice tokens are the request's
  completion tokens split by text length. `ChatPolicy` reads both fields exactly.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from langgraph_tts.clients._http import DEFAULT_MAX_CONCURRENCY, LoopLocal
from langgraph_tts.clients.policy import RETRIED_FINISH_REASONS, check_messages, split_tokens
from langgraph_tts.clients.types import ChatMessage, Generation, Sample, SamplingParams, Usage
from langgraph_tts.errors import ServerError
from langgraph_tts.serving import cap_max_tokens

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel
    from langchain_core.messages import BaseMessage
    from langchain_core.outputs import ChatGeneration, LLMResult

__all__ = ["ABORT_ATTEMPTS", "ChatModelPolicy"]

ABORT_ATTEMPTS = 3
"""Requests sent for one `generate` while vLLM answers with `finish_reason: "abort"`/`"error"`
(the HTTP retries of ChatOpenAI itself only cover failed statuses)."""


@dataclass(frozen=True, slots=True)
class _LoopModel:
    """The chat model one event loop uses, its concurrency bound, and what to close after."""

    chat_model: BaseChatModel
    semaphore: asyncio.Semaphore
    close: Callable[[], Awaitable[None]] | None = None


async def _close_loop_model(entry: _LoopModel) -> None:
    if entry.close is not None:
        await entry.close()


class ChatModelPolicy:
    """Adapts a LangChain `BaseChatModel` to the `Policy` protocol.

    Args:
        model: Any chat model whose `agenerate` honours `n` (ChatOpenAI does).
        name: The model name recorded as `self.model`; defaults to the chat model's
            `model_name`/`model` attribute.
        max_concurrency: Requests in flight at once (per event loop).
        max_model_len: The server's context window; every `max_tokens` is capped to it (vLLM
            answers 400 to a larger one). Not read from the server here: `ChatPolicy` does.

    A model passed in directly is used as is; if its async HTTP client binds to the first event
    loop (ChatOpenAI's default client does), use it from one loop only. `from_openai` builds a
    ChatOpenAI per event loop instead, so it also works across successive `asyncio.run` calls.

    Examples:
        Any chat model works, here LangChain's fake one (for vLLM or the simulator:
        `ChatModelPolicy.from_openai("http://127.0.0.1:8000/v1", "Qwen/Qwen2.5-1.5B-Instruct")`):

        >>> import asyncio
        >>> from langchain_core.language_models.fake_chat_models import FakeListChatModel
        >>> chat = FakeListChatModel(responses=["1 + 1 = 2.\\n\\nThe answer is $\\\\boxed{2}$."])
        >>> policy = ChatModelPolicy(chat, name="fake")
        >>> policy
        ChatModelPolicy(model='fake', chat_model=FakeListChatModel)
        >>> gen = asyncio.run(policy.generate([{"role": "user", "content": "1+1?"}]))
        >>> print(gen.samples[0].text)
        1 + 1 = 2.
        <BLANKLINE>
        The answer is $\\boxed{2}$.
    """

    def __init__(
        self,
        model: BaseChatModel,
        *,
        name: str | None = None,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        max_model_len: int | None = None,
    ) -> None:
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be >= 1, got {max_concurrency}")
        self.chat_model = model
        self.model: str = name or _model_name(model)
        self.max_concurrency = max_concurrency
        self.max_model_len = max_model_len
        self._loop_factory: Callable[[], _LoopModel] = self._shared_model
        self._per_loop: LoopLocal[_LoopModel] = LoopLocal(
            lambda: self._loop_factory(), _close_loop_model
        )

    @classmethod
    def from_openai(
        cls,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        max_model_len: int | None = None,
        **kwargs: Any,
    ) -> ChatModelPolicy:
        """A `ChatOpenAI` pointed at an OpenAI-compatible server (vLLM, the simulator).

        ChatOpenAI's default async HTTP client is shared process-wide and keeps connections
        bound to the first event loop, which breaks the next `asyncio.run`. So, unless
        `http_async_client` is given, each event loop gets its own ChatOpenAI with its own
        async client, closed when that loop shuts down. ChatOpenAI keeps its own retries.

        Args:
            base_url: The `/v1` base URL.
            model: The served model name.
            api_key: The server's API key; vLLM without `--api-key` accepts any, so "EMPTY".
            max_concurrency: Requests in flight at once (per event loop).
            max_model_len: The server's context window, to cap `max_tokens` (see the class).
            **kwargs: Further `ChatOpenAI` settings (`timeout`, `max_retries`, `http_client`...).
        """
        from langchain_openai import ChatOpenAI  # lazy: keeps `import langgraph_tts` fast
        from pydantic import SecretStr

        settings: dict[str, Any] = {
            "base_url": base_url,
            "model": model,
            "api_key": SecretStr(api_key or "EMPTY"),
            **kwargs,
        }
        policy = cls(
            ChatOpenAI(**settings),
            name=model,
            max_concurrency=max_concurrency,
            max_model_len=max_model_len,
        )
        if "http_async_client" not in kwargs:

            def per_loop() -> _LoopModel:
                import openai

                client = openai.DefaultAsyncHttpxClient()
                chat = ChatOpenAI(**settings, http_async_client=client)
                semaphore = asyncio.Semaphore(policy.max_concurrency)
                return _LoopModel(chat, semaphore, client.aclose)

            policy._loop_factory = per_loop
        return policy

    def __repr__(self) -> str:
        return f"ChatModelPolicy(model={self.model!r}, chat_model={type(self.chat_model).__name__})"

    async def generate(
        self,
        messages: Sequence[ChatMessage],
        *,
        n: int = 1,
        params: SamplingParams | None = None,
        continue_final_message: bool = False,
    ) -> Generation:
        """Draw `n` choices of one prompt with one `agenerate` call (one HTTP request)."""
        params = params or SamplingParams()
        lc_messages, kwargs = self._prepare(messages, n, params, continue_final_message)
        entry = await self._per_loop.get()
        for _ in range(ABORT_ATTEMPTS):
            async with entry.semaphore:
                result = await entry.chat_model.agenerate([lc_messages], **kwargs)
            if not _dropped(result):
                return self._parse(result, n, params)
        raise ServerError(
            f"chat model {self.model!r} aborted the request {ABORT_ATTEMPTS} times "
            f"(finish_reason {', '.join(sorted(_dropped(result)))})",
            url=str(getattr(self.chat_model, "openai_api_base", None) or self.model),
        )

    def generate_sync(
        self,
        messages: Sequence[ChatMessage],
        *,
        n: int = 1,
        params: SamplingParams | None = None,
        continue_final_message: bool = False,
    ) -> Generation:
        """Blocking `generate` through the chat model's own sync path (no event loop needed)."""
        params = params or SamplingParams()
        lc_messages, kwargs = self._prepare(messages, n, params, continue_final_message)
        for _ in range(ABORT_ATTEMPTS):
            result = self.chat_model.generate([lc_messages], **kwargs)
            if not _dropped(result):
                return self._parse(result, n, params)
        raise ServerError(
            f"chat model {self.model!r} aborted the request {ABORT_ATTEMPTS} times",
            url=str(getattr(self.chat_model, "openai_api_base", None) or self.model),
        )

    async def aclose(self) -> None:
        """Close the running loop's HTTP client, if this policy made one (`from_openai`)."""
        await self._per_loop.aclose()

    # -- internals --------------------------------------------------------------------------

    def _shared_model(self) -> _LoopModel:
        return _LoopModel(self.chat_model, asyncio.Semaphore(self.max_concurrency))

    def _prepare(
        self,
        messages: Sequence[ChatMessage],
        n: int,
        params: SamplingParams,
        continue_final_message: bool,
    ) -> tuple[list[BaseMessage], dict[str, Any]]:
        """LangChain messages and the `agenerate` keyword arguments for one request."""
        check_messages(messages, n, continue_final_message)
        kwargs: dict[str, Any] = {"n": n}
        for key in ("temperature", "top_p"):
            value = getattr(params, key)
            if value is not None:
                kwargs[key] = value
        max_tokens = cap_max_tokens(params.max_tokens, self.max_model_len)
        if max_tokens is not None:
            kwargs["max_tokens"] = max_tokens
        if params.stop:
            kwargs["stop"] = list(params.stop)
        if params.logprobs:
            kwargs["logprobs"] = True
            if params.top_logprobs is not None:
                kwargs["top_logprobs"] = params.top_logprobs
        kwargs["extra_body"] = self._extra_body(params, continue_final_message)
        return _to_langchain(messages), kwargs

    def _extra_body(self, params: SamplingParams, continue_final_message: bool) -> dict[str, Any]:
        """vLLM-only fields, which ChatOpenAI merges into the top level of the JSON body."""
        extra: dict[str, Any] = dict(getattr(self.chat_model, "extra_body", None) or {})
        extra["include_stop_str_in_output"] = params.include_stop_str_in_output
        extra["return_token_ids"] = True
        for key in ("top_k", "min_p", "seed", "chat_template_kwargs"):
            value = getattr(params, key)
            if value is not None:
                extra[key] = value
        if continue_final_message:
            extra["continue_final_message"] = True
            extra["add_generation_prompt"] = False
        extra.update(params.extra_body)
        return extra

    def _parse(self, result: LLMResult, n: int, params: SamplingParams) -> Generation:
        generations = cast(
            "list[ChatGeneration]", result.generations[0] if result.generations else []
        )
        if len(generations) != n:
            where = (
                getattr(self.chat_model, "openai_api_base", None) or type(self.chat_model).__name__
            )
            raise ServerError(
                f"chat model {self.model!r} returned {len(generations)} choices for n={n}; "
                "it must honour `n` in agenerate (ChatOpenAI does)",
                url=str(where),
            )
        texts = [_text_of(g) for g in generations]
        reasonings = [_reasoning_of(g) for g in generations]
        prompt_tokens, completion_tokens = _usage_of(result, generations)
        weights = [len(t) + len(r or "") for t, r in zip(texts, reasonings, strict=True)]
        tokens = split_tokens(completion_tokens, weights)
        samples = []
        for gen, text, reasoning, k in zip(generations, texts, reasonings, tokens, strict=True):
            info = gen.generation_info or {}
            finish_reason = info.get("finish_reason") or gen.message.response_metadata.get(
                "finish_reason"
            )
            logprobs = info.get("logprobs")
            samples.append(
                Sample(
                    text=text,
                    finish_reason=finish_reason,
                    stop_reason=infer_stop_reason(text, finish_reason, params),
                    tokens=k,
                    reasoning=reasoning,
                    logprobs=logprobs.get("content") if isinstance(logprobs, dict) else None,
                )
            )
        usage = Usage(requests=1, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens)
        return Generation(samples=samples, usage=usage)


def _dropped(result: LLMResult) -> set[str]:
    """The retried finish reasons (`"abort"`, `"error"`) among the result's choices."""
    reasons = set()
    for gen in result.generations[0] if result.generations else []:
        info = gen.generation_info or {}
        reasons.add(str(info.get("finish_reason")))
    return reasons & RETRIED_FINISH_REASONS


def infer_stop_reason(text: str, finish_reason: str | None, params: SamplingParams) -> str | None:
    """The stop string a choice ended at, recovered from its text (langchain drops vLLM's
    `stop_reason`); `None` for EOS, a length cut, or when stop strings are not kept in output."""
    if finish_reason != "stop" or not params.stop or not params.include_stop_str_in_output:
        return None
    matches = [s for s in params.stop if s and text.endswith(s)]
    return max(matches, key=len) if matches else None


def _to_langchain(messages: Sequence[ChatMessage]) -> list[BaseMessage]:
    from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

    kinds = {"system": SystemMessage, "user": HumanMessage, "assistant": AIMessage}
    out: list[BaseMessage] = []
    for m in messages:
        kind = kinds.get(m["role"])
        if kind is None:
            raise ValueError(f"unsupported chat role {m['role']!r}; use system, user or assistant")
        out.append(kind(content=m["content"]))
    return out


def _text_of(gen: ChatGeneration) -> str:
    content = gen.message.content
    if isinstance(content, str):
        return content
    parts = [
        p if isinstance(p, str) else str(p.get("text", ""))
        for p in content
        if isinstance(p, str) or (isinstance(p, dict) and p.get("type") == "text")
    ]
    return "".join(parts)


def _reasoning_of(gen: ChatGeneration) -> str | None:
    extra = gen.message.additional_kwargs
    value = extra.get("reasoning_content") or extra.get("reasoning")
    return str(value) if value else None


def _usage_of(result: LLMResult, generations: Sequence[ChatGeneration]) -> tuple[int, int]:
    """(prompt, completion) tokens of the request. langchain-openai copies the request's usage
    onto every choice's `usage_metadata`, so only the first is read."""
    token_usage = (result.llm_output or {}).get("token_usage") or {}
    if token_usage:
        return int(token_usage.get("prompt_tokens") or 0), int(
            token_usage.get("completion_tokens") or 0
        )
    meta = getattr(generations[0].message, "usage_metadata", None) if generations else None
    if meta:
        return int(meta.get("input_tokens") or 0), int(meta.get("output_tokens") or 0)
    return 0, 0


def _model_name(model: BaseChatModel) -> str:
    for attr in ("model_name", "model"):
        value = getattr(model, attr, None)
        if isinstance(value, str) and value:
            return value
    return type(model).__name__
