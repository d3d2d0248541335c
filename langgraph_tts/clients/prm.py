"""The process reward model client: vLLM's `POST /pooling` with `task: "token_classify"`.

A step PRM such as Qwen2.5-Math-PRM-7B reads the solution with `<extra_0>` after every step;
vLLM's STEP pooler returns one row `[p_negative, p_positive]` per `<extra_0>`, and the step's
reward is the positive column.

Two request shapes (both documented by vLLM):

- batched: the chat template applied here, client-side, and ONE request whose `input` is the
  list of templated strings, one per candidate. Needs a template we know (`PRM_TEMPLATES`).
- unbatched: one `messages` request per candidate, templated by the server. Works for any
  chat-templated step PRM but costs one request per candidate.

With `batch="auto"` the batched form is used when the model's template is known, and a server
that rejects the form itself with HTTP 400/422 is remembered and sent unbatched requests from
then on; a 400 about one input's length is raised as it is (it says nothing of the form).

Both forms send `add_special_tokens: false` (vLLM's default is true for `input` and false for
`messages`, so only then do both tokenize alike for any PRM), and with `truncate_prompt_tokens`
also `truncation_side: "left"`: vLLM keeps the FIRST tokens by default, while the step rows are
aligned to the LAST steps.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Sequence
from typing import Any, Literal

from langgraph_tts.clients._http import (
    DEFAULT_CONNECT_TIMEOUT_S,
    DEFAULT_MAX_CONCURRENCY,
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT_S,
    Backoff,
    RetryableReply,
    ServedModel,
    Transport,
    run_sync,
)
from langgraph_tts.clients.types import Scores, Usage
from langgraph_tts.errors import ConfigError, ServerError
from langgraph_tts.prompts import PRM_SYSTEM_PROMPT
from langgraph_tts.scores import Aggregation, aggregate

__all__ = [
    "PRM_STEP_TAG",
    "PRM_TEMPLATES",
    "Aggregation",
    "BatchMode",
    "PoolingPRM",
    "aggregate",
    "rejects_batched_form",
    "template_for_model",
]

logger = logging.getLogger(__name__)

PRM_STEP_TAG = "<extra_0>"
"""The token after each step whose pooled output is that step's reward (Qwen2.5-Math-PRM)."""

BatchMode = Literal["auto", "on", "off"]

_REJECTED_BATCH_STATUSES = frozenset({400, 422})
_LENGTH_ERROR = re.compile(
    r"maximum context length|max_model_len|too long|exceeds|truncate_prompt_tokens", re.I
)
"""What a 400 about an input's length says (vLLM: "This model's maximum context length is
4096 tokens. However, your prompt contains ..."); such a 400 is not a rejection of the form."""


def rejects_batched_form(err: ServerError) -> bool:
    """Whether an error of a batched `/pooling` request means the server refuses the form
    (and one request per candidate should be tried), rather than a bad input."""
    return err.status in _REJECTED_BATCH_STATUSES and not _LENGTH_ERROR.search(str(err))


def _qwen25_template(problem: str, steps: list[str]) -> str:
    """Qwen2.5's chat template for system/user/assistant, without a generation prompt."""
    assistant = PRM_STEP_TAG.join(steps) + PRM_STEP_TAG
    return (
        f"<|im_start|>system\n{PRM_SYSTEM_PROMPT}<|im_end|>\n"
        f"<|im_start|>user\n{problem}<|im_end|>\n"
        f"<|im_start|>assistant\n{assistant}<|im_end|>\n"
    )


PRM_TEMPLATES: dict[str, Callable[[str, list[str]], str]] = {"qwen2.5": _qwen25_template}
"""Client-side chat templates of the PRMs we know, by name; each maps (problem, steps) to the
exact prompt string the server's own template would produce."""

_KNOWN_MODELS = {
    "qwen2.5": ("qwen2.5-math-prm-7b", "qwen2.5-math-prm-72b"),
}


def template_for_model(model: str) -> str | None:
    """The `PRM_TEMPLATES` key for a served model name (a path or `org/name` is fine), or `None`
    when the PRM is not one we know."""
    name = model.lower()
    for key, names in _KNOWN_MODELS.items():
        if any(known in name for known in names):
            return key
    return None


class PoolingPRM(ServedModel):
    """A `RewardModel` served by vLLM's pooling runner (`vllm serve <prm> --runner pooling`).

    Args:
        url: The server ROOT (`http://127.0.0.1:8001`), not `/v1`: `/pooling` is not an
            OpenAI route.
        model: The served model name.
        batch: `"on"`: one request for all candidates (needs a known template); `"off"`: one
            request per candidate; `"auto"`: batched when possible, falling back on HTTP 400.
        api_key: vLLM's `--api-key`, if set.
        max_concurrency: Requests in flight at once (per event loop), for unbatched scoring.
        truncate_prompt_tokens: Sent to vLLM with `truncation_side: "left"`, so it keeps only
            the last k prompt tokens; early steps may then lose their rows (see `score`).
        template: A `PRM_TEMPLATES` key overriding the one derived from `model`.
        timeout_s: Read timeout of one attempt.
        connect_timeout_s: Connect timeout of one attempt.
        max_retries: Attempts after the first on connection errors, 408, 429 and 5xx.
        transport: The aiohttp transport; tests pass one that resolves hosts to a loopback server.
        backoff: Wait settings between attempts.

    Examples:
        Qwen2.5-Math-PRM's chat template is known, so one request scores every candidate:

        >>> prm = PoolingPRM("http://127.0.0.1:8001", "Qwen/Qwen2.5-Math-PRM-7B")
        >>> prm.template, prm.batch
        ('qwen2.5', 'auto')
        >>> PoolingPRM("http://127.0.0.1:8001", "my-prm", batch="on")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
            ...
        langgraph_tts.errors.ConfigError: batch='on' needs a client-side chat template, and ...
    """

    role = "prm"

    def __init__(
        self,
        url: str,
        model: str,
        *,
        batch: BatchMode = "auto",
        api_key: str | None = None,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        truncate_prompt_tokens: int | None = None,
        template: str | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
        max_retries: int = DEFAULT_MAX_RETRIES,
        transport: Transport | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        if batch not in ("auto", "on", "off"):
            raise ConfigError(f"batch must be 'auto', 'on' or 'off', got {batch!r}")
        if template is not None and template not in PRM_TEMPLATES:
            raise ConfigError(
                f"unknown PRM template {template!r}; known: {', '.join(sorted(PRM_TEMPLATES))}"
            )
        self.model = model
        self.template = template or template_for_model(model)
        if batch == "on" and self.template is None:
            raise ConfigError(
                f"batch='on' needs a client-side chat template, and none is known for PRM "
                f"{model!r}; pass template= (one of {', '.join(sorted(PRM_TEMPLATES))}) or "
                "batch='auto'/'off'"
            )
        self.batch: BatchMode = batch
        self.truncate_prompt_tokens = truncate_prompt_tokens
        self._batched = batch != "off" and self.template is not None
        self._warned_rows = False
        super().__init__(
            url,
            model,
            api_key=api_key,
            max_concurrency=max_concurrency,
            timeout_s=timeout_s,
            connect_timeout_s=connect_timeout_s,
            max_retries=max_retries,
            transport=transport,
            backoff=backoff,
        )

    def __repr__(self) -> str:
        return (
            f"PoolingPRM(url={self._http.root_url!r}, model={self.model!r}, "
            f"batch={self.batch!r}, batched={self._batched})"
        )

    @property
    def batched(self) -> bool:
        """Whether the next `score` sends one request for all candidates."""
        return self._batched

    async def score(self, problem: str, steps: Sequence[Sequence[str]]) -> Scores:
        """Per-step rewards in [0, 1] for each candidate.

        Args:
            problem: The problem text (the PRM's user message).
            steps: One list of steps per candidate; every candidate needs at least one step.

        Returns:
            `step_scores[i][j]` is the reward of candidate i's step j. If the server returned
            fewer rows than steps (left truncation), the list covers the LAST steps.

        Raises:
            ValueError: A candidate has no steps.
            ServerError: The server failed or returned no step rows (not a STEP-pooling PRM).
        """
        candidates = [_clean_steps(s, i) for i, s in enumerate(steps)]
        if not candidates:
            return Scores(step_scores=[], usage=Usage(), source="prm")
        if self._batched:
            try:
                return await self._score_batched(problem, candidates)
            except ServerError as err:
                if self.batch != "auto" or not rejects_batched_form(err):
                    raise
                self._batched = False
                logger.warning(
                    "PRM server %s rejected the batched /pooling request (%s); "
                    "sending one request per candidate from now on",
                    self._http.root_url,
                    err,
                )
        return await self._score_unbatched(problem, candidates)

    def score_sync(self, problem: str, steps: Sequence[Sequence[str]]) -> Scores:
        """Blocking `score` for scripts without a running loop."""
        return run_sync(self.score(problem, steps))

    # -- internals --------------------------------------------------------------------------

    def _body(self, **fields: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            **fields,
            "task": "token_classify",
            "add_special_tokens": False,
        }
        if self.truncate_prompt_tokens is not None:
            body["truncate_prompt_tokens"] = self.truncate_prompt_tokens
            body["truncation_side"] = "left"
        return body

    async def _score_batched(self, problem: str, candidates: list[list[str]]) -> Scores:
        assert self.template is not None
        render = PRM_TEMPLATES[self.template]
        body = self._body(input=[render(problem, c) for c in candidates])
        parsed: list[list[list[float]]] = []

        def check(data: dict[str, Any]) -> None:
            items = _items_of(data, len(candidates))
            parsed.append(
                [self._rewards(item, len(c)) for item, c in zip(items, candidates, strict=True)]
            )

        data = await self._http.post("/pooling", body, check=check)
        return Scores(step_scores=parsed[-1], usage=_usage_of(data, 1), source="prm")

    async def _score_unbatched(self, problem: str, candidates: list[list[str]]) -> Scores:
        results = await asyncio.gather(*(self._score_one(problem, c) for c in candidates))
        usage = sum((u for _, u in results), Usage())
        return Scores(step_scores=[s for s, _ in results], usage=usage, source="prm")

    async def _score_one(self, problem: str, steps: list[str]) -> tuple[list[float], Usage]:
        messages = [
            {"role": "system", "content": PRM_SYSTEM_PROMPT},
            {"role": "user", "content": problem},
            {"role": "assistant", "content": PRM_STEP_TAG.join(steps) + PRM_STEP_TAG},
        ]
        parsed: list[list[float]] = []

        def check(data: dict[str, Any]) -> None:
            (item,) = _items_of(data, 1)
            parsed.append(self._rewards(item, len(steps)))

        data = await self._http.post("/pooling", self._body(messages=messages), check=check)
        return parsed[-1], _usage_of(data, 1)

    def _rewards(self, item: Any, n_steps: int) -> list[float]:
        """Column 1 (P(positive)) of each step row, aligned to the last steps if rows are short.

        Raises `RetryableReply` (retried like a 503) for more rows than steps, or fewer without
        `truncate_prompt_tokens`: neither can be the answer to this request.
        """
        url = self._http.url("/pooling")
        rows = item.get("data") if isinstance(item, dict) else None
        if (
            not isinstance(rows, list)
            or not rows
            or not all(isinstance(r, list) and r for r in rows)
        ):
            raise ServerError(
                f"PRM server at {url} returned no per-step rows for model {self.model!r}; it "
                "may not be a STEP-pooling PRM (serve a process reward model such as "
                "Qwen/Qwen2.5-Math-PRM-7B with `--runner pooling`)",
                url=url,
                status=200,
            )
        if len(rows) > n_steps or (len(rows) < n_steps and self.truncate_prompt_tokens is None):
            raise RetryableReply(f"returned {len(rows)} step rows for {n_steps} steps")
        if len(rows) != n_steps and not self._warned_rows:
            self._warned_rows = True
            logger.warning(
                "PRM %s returned %d step rows for %d steps (truncated prompt); keeping the "
                "last %d (warned once)",
                self.model,
                len(rows),
                n_steps,
                len(rows),
            )
        try:
            return [float(row[1] if len(row) > 1 else row[0]) for row in rows]
        except (TypeError, ValueError) as err:
            raise RetryableReply(f"returned a step row that is not numbers: {err}") from err


def _clean_steps(steps: Sequence[str], index: int) -> list[str]:
    """Steps as a list, with literal step tags removed so rows and steps stay aligned."""
    if isinstance(steps, str):
        raise ValueError(f"candidate {index}: steps must be a list of strings, not a string")
    if not steps:
        raise ValueError(f"candidate {index} has no steps; the PRM scores at least one step")
    return [s.replace(PRM_STEP_TAG, "") for s in steps]


def _items_of(data: dict[str, Any], expected: int) -> list[Any]:
    items = data.get("data")
    if not isinstance(items, list) or len(items) != expected:
        got = len(items) if isinstance(items, list) else "no"
        raise RetryableReply(f"returned {got} results for {expected} inputs")
    return sorted(items, key=lambda it: int(it.get("index", 0)) if isinstance(it, dict) else 0)


def _usage_of(data: dict[str, Any], requests: int) -> Usage:
    usage = data.get("usage") or {}
    return Usage(requests=requests, prompt_tokens=int(usage.get("prompt_tokens") or 0))
