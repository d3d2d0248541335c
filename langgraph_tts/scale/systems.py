"""System-1 and System-2: which client, which sampling settings, and the search context.

SCALE's two systems may be two modes of one model (Qwen3 with `enable_thinking` off/on) or two
models on two servers. Precedence for each system's client: the object given to the graph for
that system, then that system's URL/model in the context, then the graph's default `policy`,
then the context's `base_url`/`model`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import fields, replace
from typing import Any

from ..clients.types import ChatMessage, Generation, Policy, SamplingParams
from ..context import STEP_STRATEGIES, ScaleContext, SearchContext
from ..ledger import Ledger, add_flops
from ..resources import chat_policy
from ..seeds import request_seed
from .state import Mode

__all__ = [
    "AUX_MAX_TOKENS",
    "ThinkingPolicy",
    "aux_max_tokens",
    "derive_seed",
    "policy_delta",
    "resolve_system",
    "search_context",
    "search_thinking",
    "system_params",
]

logger = logging.getLogger(__name__)

AUX_MAX_TOKENS = 64
"""Token cap of the selection and difficulty replies (SCALE code: 64), unless System-1 thinks."""


def resolve_system(
    ctx: ScaleContext,
    mode: Mode,
    *,
    bound: Policy | None,
    default: Policy | None,
) -> Policy:
    """The client of one system (see the module docstring for the precedence)."""
    if bound is not None:
        return bound
    url = ctx.system1_base_url if mode == "system1" else ctx.system2_base_url
    model = ctx.system1_model if mode == "system1" else ctx.system2_model
    if default is not None and url is None and model is None:
        return default
    return chat_policy(url or ctx.base_url, model or ctx.model, ctx.api_key, ctx.max_concurrency)


def _thinking_kwargs(thinking: bool | None) -> dict[str, Any] | None:
    return None if thinking is None else {"enable_thinking": thinking}


def system_params(
    ctx: ScaleContext,
    mode: Mode,
    *,
    seed: int | None = None,
    max_tokens: int | None = None,
) -> SamplingParams:
    """Sampling settings of one system (SCALE: T 0.7/top-p 0.8 fast, T 0.6/top-p 0.95 slow)."""
    if mode == "system1":
        return SamplingParams(
            temperature=ctx.system1_temperature,
            top_p=ctx.system1_top_p,
            top_k=ctx.system1_top_k,
            seed=seed,
            max_tokens=max_tokens or ctx.system1_max_tokens,
            chat_template_kwargs=_thinking_kwargs(ctx.system1_thinking),
        )
    return SamplingParams(
        temperature=ctx.system2_temperature,
        top_p=ctx.system2_top_p,
        top_k=ctx.system2_top_k,
        seed=seed,
        max_tokens=max_tokens or ctx.system2_max_tokens,
        chat_template_kwargs=_thinking_kwargs(ctx.system2_thinking),
    )


def aux_max_tokens(ctx: ScaleContext) -> int:
    """Cap of short System-1 replies: 64 tokens, or the full cap if System-1 is set to think."""
    return ctx.system1_max_tokens if ctx.system1_thinking else AUX_MAX_TOKENS


def derive_seed(ctx: ScaleContext, problem: str, *parts: int) -> int | None:
    """A distinct, reproducible seed per request and problem when the run has a seed."""
    return request_seed(ctx.seed, problem, "scale", *parts)


def params_b(ctx: ScaleContext, mode: str = "system1") -> float | None:
    """Parameter count for FLOPs of a System-1 (also decompose and difficulty) or System-2 call."""
    own = ctx.system2_params_b if mode == "system2" else ctx.system1_params_b
    return own if own is not None else ctx.policy_params_b


def policy_delta(ctx: ScaleContext, gen: Generation, mode: str = "system1") -> Ledger:
    """Ledger delta of one policy call, from the usage the server reported."""
    usage = gen.usage
    delta = Ledger(
        policy_requests=usage.requests,
        samples=len(gen.samples),
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
    )
    return add_flops(delta, params_b(ctx, mode), usage.prompt_tokens + usage.completion_tokens)


def search_context(ctx: ScaleContext) -> SearchContext:
    """The search settings of a System-2 sub-problem: the run's search settings, with
    strategy/budget from `system2_strategy`/`system2_budget` and System-2's model and sampling.
    """
    shared = {f.name: getattr(ctx, f.name) for f in fields(SearchContext)}
    shared.update(
        strategy=ctx.system2_strategy,
        budget=ctx.system2_budget,
        base_url=ctx.system2_base_url or ctx.base_url,
        model=ctx.system2_model or ctx.model,
        temperature=ctx.system2_temperature,
        top_p=ctx.system2_top_p,
        top_k=ctx.system2_top_k,
        max_total_tokens=ctx.system2_max_tokens,
        max_step_tokens=min(ctx.max_step_tokens, ctx.system2_max_tokens),
        policy_params_b=params_b(ctx, "system2"),
    )
    return SearchContext(**shared)


def search_thinking(ctx: ScaleContext) -> bool | None:
    """`enable_thinking` for a System-2 search.

    Whole-solution strategies think like single System-2 calls. Step-level strategies
    (beam, DVTS, REBASE, DORA) cut the answer at blank lines and continue it, which a
    reasoning parser cannot do inside a thinking block, so thinking is turned off for them.
    """
    if ctx.system2_strategy in STEP_STRATEGIES and ctx.system2_thinking:
        return False
    return ctx.system2_thinking


class ThinkingPolicy:
    """Wraps a policy so every request carries System-2's `chat_template_kwargs`.

    The search graph samples with its own `SamplingParams`, which know nothing of thinking
    modes; this adds `enable_thinking` to requests that do not set it themselves.
    """

    def __init__(self, policy: Policy, thinking: bool | None) -> None:
        self.inner = policy
        self.model = policy.model
        self.thinking = thinking

    def __repr__(self) -> str:
        return f"ThinkingPolicy({self.inner!r}, thinking={self.thinking})"

    async def generate(
        self,
        messages: Sequence[ChatMessage],
        *,
        n: int = 1,
        params: SamplingParams | None = None,
        continue_final_message: bool = False,
    ) -> Generation:
        """Forward to the wrapped policy with `enable_thinking` added."""
        params = params or SamplingParams()
        if params.chat_template_kwargs is None and self.thinking is not None:
            params = replace(params, chat_template_kwargs={"enable_thinking": self.thinking})
        return await self.inner.generate(
            messages, n=n, params=params, continue_final_message=continue_final_message
        )
