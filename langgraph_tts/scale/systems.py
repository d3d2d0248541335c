"""System-1 and System-2: which client, which sampling settings, and the search context.

SCALE's two systems may be two modes of one model (Qwen3 with `enable_thinking` off/on) or two
models on two servers. Precedence for each system's client: the object given to the graph for
that system, then that system's URL/model in the context, then the graph's default `policy`,
then the context's `base_url`/`model`.
"""

from __future__ import annotations

import logging
from typing import Any

from ..clients.types import Generation, Policy, SamplingParams
from ..ledger import Ledger, add_flops
from ..resources import HttpOptions, chat_policy
from ..seeds import request_seed
from .state import Mode

__all__ = [
    "AUX_MAX_TOKENS",
    "aux_max_tokens",
    "derive_seed",
    "params_b",
    "policy_delta",
    "resolve_system",
    "system_params",
]

logger = logging.getLogger(__name__)

AUX_MAX_TOKENS = 64
"""Token cap of the selection and difficulty replies (SCALE code: 64), unless System-1 thinks."""


def resolve_system(
    ctx: Any,
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
    return chat_policy(url or ctx.base_url, model or ctx.model, HttpOptions.of(ctx))


def _thinking_kwargs(thinking: bool | None) -> dict[str, Any] | None:
    return None if thinking is None else {"enable_thinking": thinking}


def system_params(
    ctx: Any,
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


def aux_max_tokens(ctx: Any) -> int:
    """Cap of short System-1 replies: 64 tokens, or the full cap if System-1 is set to think."""
    return ctx.system1_max_tokens if ctx.system1_thinking else AUX_MAX_TOKENS


def derive_seed(ctx: Any, problem: str, *parts: int) -> int | None:
    """A distinct, reproducible seed per request and problem when the run has a seed."""
    return request_seed(ctx.seed, problem, "scale", *parts)


def params_b(ctx: Any, mode: str = "system1") -> float | None:
    """Parameter count for FLOPs of a System-1 (also decompose and difficulty) or System-2 call."""
    own = ctx.system2_params_b if mode == "system2" else ctx.system1_params_b
    return own if own is not None else ctx.policy_params_b


def policy_delta(ctx: Any, gen: Generation, mode: str = "system1") -> Ledger:
    """Ledger delta of one policy call, from the usage the server reported."""
    usage = gen.usage
    delta = Ledger(
        policy_requests=usage.requests,
        samples=len(gen.samples),
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
    )
    return add_flops(delta, params_b(ctx, mode), usage.prompt_tokens + usage.completion_tokens)
