"""Value types and protocols shared by the clients, the nodes and the fakes.

A node never sees HTTP: it calls a `Policy`, a `RewardModel` or an `Embedder` and gets these
plain values back, each carrying the exact `usage` the server reported so the node can book it
in the ledger.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypedDict, runtime_checkable

__all__ = [
    "ChatMessage",
    "EarlyStopPolicy",
    "Embedder",
    "Embeddings",
    "Generation",
    "Policy",
    "RewardModel",
    "Sample",
    "SamplingParams",
    "Scores",
    "StopTest",
    "Usage",
]


class ChatMessage(TypedDict):
    """An OpenAI-style chat message."""

    role: Literal["system", "user", "assistant"]
    content: str


@dataclass(frozen=True, slots=True)
class Usage:
    """Token usage exactly as the server reported it for one or more requests."""

    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.requests + other.requests,
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
        )

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True, slots=True)
class SamplingParams:
    """Sampling settings for one policy request (vLLM names; `None` leaves the server default).

    Examples:
        >>> params = SamplingParams(temperature=0.0, max_tokens=256, stop=("\\n\\n",), seed=1)
        >>> params.temperature, params.top_p, params.stop
        (0.0, 1.0, ('\\n\\n',))
        >>> import dataclasses
        >>> dataclasses.replace(params, extra_body={"repetition_penalty": 1.1}).extra_body
        {'repetition_penalty': 1.1}
    """

    temperature: float | None = 0.8
    top_p: float | None = 1.0
    top_k: int | None = None
    min_p: float | None = None
    seed: int | None = None
    max_tokens: int | None = 2048
    stop: tuple[str, ...] | None = None
    include_stop_str_in_output: bool = True
    chat_template_kwargs: dict[str, Any] | None = None
    logprobs: bool = False
    top_logprobs: int | None = None
    extra_body: dict[str, Any] = field(default_factory=dict)
    """Any further vLLM request fields, merged into the JSON body last."""


@dataclass(frozen=True, slots=True)
class Sample:
    """One choice of a chat completion.

    `finish_reason` is vLLM's `"stop"` (EOS, a stop token id or a stop string matched) or
    `"length"` (cut at `max_tokens`); `stop_reason` is the matched stop STRING, the matched
    stop token ID (an `int`: vLLM adds the generation config's EOS ids that are not the
    tokenizer's EOS to `stop_token_ids`, e.g. 151643 `<|endoftext|>` for Qwen2.5), or `None`
    for the tokenizer's EOS and for a cut. Only a stop string (the clients send the step
    delimiter as the only one) ends a step: `finish_reason == "stop"` with a `str`
    `stop_reason`. Any other `"stop"` ends the solution.
    """

    text: str
    finish_reason: str | None
    stop_reason: str | int | None = None
    tokens: int = 0
    """Completion tokens of this choice: exact when the server returns `token_ids`
    (vLLM's `return_token_ids`), otherwise the request's usage split by text length."""
    reasoning: str | None = None
    """`reasoning` (vLLM >= 0.10) / `reasoning_content` of thinking models served with a
    reasoning parser."""
    logprobs: list[dict[str, Any]] | None = None
    """The choice's `logprobs.content` list when logprobs were requested."""

    @property
    def ended_step(self) -> bool:
        """The step stopped at a stop string (more steps may follow)."""
        return self.finish_reason == "stop" and isinstance(self.stop_reason, str)

    @property
    def ended_solution(self) -> bool:
        """The model emitted EOS or a stop token id: the solution is complete."""
        return self.finish_reason == "stop" and not isinstance(self.stop_reason, str)

    @property
    def truncated(self) -> bool:
        """Generation was cut at `max_tokens`."""
        return self.finish_reason == "length"


@dataclass(frozen=True, slots=True)
class Generation:
    """The `n` choices of one request (or of several requests for one prefix) plus usage."""

    samples: list[Sample]
    usage: Usage
    max_tokens_cap: int | None = None
    """The server's `max_model_len` when it was below the requested `max_tokens` and the
    request was sent with `max_tokens` lowered to it; `None` when no cap applied."""
    cancelled: int = 0
    """Choices dropped unfinished because the request was stopped early (a streamed request
    closed once its stopping test decided); they are not in `samples`."""
    cancelled_tokens: int = 0
    """Completion tokens the cancelled choices had generated; already in `usage`."""
    usage_estimated: bool = False
    """Some token counts are estimates (the server streamed no usage and no token ids)."""


@dataclass(frozen=True, slots=True)
class Scores:
    """PRM output for a batch of candidates: one list of per-step rewards per candidate."""

    step_scores: list[list[float]]
    usage: Usage
    source: Literal["prm", "generative_verifier", "fake"] = "prm"


@dataclass(frozen=True, slots=True)
class Embeddings:
    """One vector per input text plus usage (zero usage for local embedders)."""

    vectors: list[list[float]]
    usage: Usage


@runtime_checkable
class Policy(Protocol):
    """A chat policy model. `generate` draws `n` choices of ONE prompt in ONE request."""

    model: str

    async def generate(
        self,
        messages: Sequence[ChatMessage],
        *,
        n: int = 1,
        params: SamplingParams | None = None,
        continue_final_message: bool = False,
    ) -> Generation: ...


StopTest = Callable[[Sequence[Sample]], bool]
"""Called with the finished choices of a request (in the order they finished) each time one
more finishes; True stops the request, dropping the unfinished choices."""


@runtime_checkable
class EarlyStopPolicy(Protocol):
    """A policy that can stop a request for `n` choices once enough of them have finished."""

    model: str

    async def generate_until(
        self,
        messages: Sequence[ChatMessage],
        *,
        n: int,
        stop: StopTest,
        params: SamplingParams | None = None,
        continue_final_message: bool = False,
    ) -> Generation: ...


@runtime_checkable
class RewardModel(Protocol):
    """A process reward model: per-step rewards in [0, 1] for each candidate solution.

    `steps[i]` is candidate i's solution split into steps (no empty steps).
    """

    async def score(self, problem: str, steps: Sequence[Sequence[str]]) -> Scores: ...


@runtime_checkable
class Embedder(Protocol):
    """Dense sentence embeddings for a batch of texts (one request per call)."""

    async def embed(self, texts: Sequence[str]) -> Embeddings: ...
