"""The budget ledger: what a run really spent, carried in graph state with an additive reducer.

Nodes return *deltas* (`Ledger` dicts with only the keys they touched); LangGraph merges them
with `merge_ledgers`, so nodes that run in the same super-step (PRM scoring and embedding) can
both report their spend. `wall_s` is the only non-additive key (it keeps the maximum).
"""

from __future__ import annotations

import dataclasses
import logging

from typing_extensions import TypedDict

from .clients.types import Generation, Usage

__all__ = [
    "Ledger",
    "add_flops",
    "bounded_generation",
    "empty_ledger",
    "merge_ledgers",
]

logger = logging.getLogger(__name__)


class Ledger(TypedDict, total=False):
    """Spend of one run. All counts come from the servers' `usage` fields, not estimates.

    Examples:
        Every run returns one (`out["ledger"]`); parts of a run merge by summing, except the
        wall time:

        >>> from langgraph_tts.ledger import merge_ledgers
        >>> first = Ledger(policy_requests=1, samples=4, completion_tokens=300, wall_s=0.5)
        >>> second = Ledger(policy_requests=2, samples=8, completion_tokens=500, wall_s=0.8)
        >>> merge_ledgers(first, second)
        {'policy_requests': 3, 'samples': 12, 'completion_tokens': 800, 'wall_s': 0.8}
    """

    policy_requests: int
    """HTTP requests to the policy (chat or completions)."""
    samples: int
    """Sampled continuations (choices) the policy drew: one request with `n=8` counts 8."""
    prompt_tokens: int
    """Policy prompt tokens, as the server reported them."""
    completion_tokens: int
    """Policy completion tokens, as the server reported them (a stopped stream's included:
    the partial tokens of its cancelled choices count)."""
    cancelled: int
    """Choices of streamed requests dropped unfinished when the stopping test decided (early-
    stopping self-consistency); not in `samples`."""
    cancelled_tokens: int
    """Completion tokens those cancelled choices had generated (part of `completion_tokens`)."""
    saved_tokens_est: int
    """ESTIMATE of the completion tokens cancelling saved: per cancelled choice, the mean
    length of its request's finished choices minus what it had generated (at least 0)."""
    prm_requests: int
    """HTTP requests to the PRM server (`/pooling`)."""
    prm_scored: int
    """Candidate solutions the PRM scored."""
    prm_tokens: int
    """Tokens the PRM read."""
    verifier_requests: int
    """Requests to the generative verifier (the policy judging a solution) when no PRM is set."""
    verifier_tokens: int
    """Prompt + completion tokens of the generative verifier."""
    embed_requests: int
    """Requests to the embedding server (or calls of a local embedder)."""
    embed_tokens: int
    """Tokens the embedder read (0 for local embedders that do not report usage)."""
    budget_samples: int
    """Adaptive compute: the samples the run was allowed (its fixed-N reference plus credit)."""
    flops: float
    """Estimated inference FLOPs: 2 x parameters x tokens, per model (Snell et al.)."""
    wall_s: float
    """Wall time of the run in seconds (max-merged, not summed)."""


_MAX_KEYS = frozenset({"wall_s"})
_FLOAT_KEYS = frozenset({"wall_s", "flops"})


def empty_ledger() -> Ledger:
    """A ledger with every counter at zero."""
    return Ledger(
        policy_requests=0,
        samples=0,
        prompt_tokens=0,
        completion_tokens=0,
        prm_requests=0,
        prm_scored=0,
        prm_tokens=0,
        verifier_requests=0,
        verifier_tokens=0,
        embed_requests=0,
        embed_tokens=0,
        flops=0.0,
        wall_s=0.0,
    )


def merge_ledgers(left: Ledger | None, right: Ledger | None) -> Ledger:
    """Reducer: add counters key by key (max for `wall_s`). Never mutates its inputs."""
    out: dict[str, float] = {k: float(v) for k, v in (left or {}).items()}  # type: ignore[arg-type]
    for key, raw in (right or {}).items():
        value = float(raw)  # type: ignore[arg-type]
        if key in _MAX_KEYS:
            out[key] = max(out.get(key, 0.0), value)
        else:
            out[key] = out.get(key, 0) + value
    return {k: (int(v) if k not in _FLOAT_KEYS else v) for k, v in out.items()}  # type: ignore[return-value]


def add_flops(delta: Ledger, params_b: float | None, tokens: int) -> Ledger:
    """Add 2 x params x tokens FLOPs to `delta` (params in billions; None or 0 adds nothing)."""
    if params_b:
        delta["flops"] = delta.get("flops", 0.0) + 2.0 * params_b * 1e9 * tokens
    return delta


def bounded_generation(gen: Generation, *, n: int, max_tokens: int | None) -> Generation:
    """What one policy reply may count for: the `n` choices that were asked for, each at most
    `max_tokens` completion tokens, with usage clamped to match.

    A correct server never returns more, so this changes nothing for one; a broken or hostile
    one (extra choices, absurd `usage`) can then neither add candidates nor push the ledger past
    a hard cap that the request itself respected. When the server reports no (or a negative)
    completion-token count for non-empty choices, each choice is booked at an upper estimate:
    `max_tokens` if it was cut at the limit, else its length in characters (a token is at least
    one character), at most `max_tokens`. So a token cap still binds on a server without
    `usage`. Prompt tokens are only clamped at zero (no cap is defined on them).

    Args:
        gen: The policy's reply to one request.
        n: The `n` of that request.
        max_tokens: The request's `max_tokens` (``None``: no per-choice bound).

    Returns:
        `gen` itself when it is within bounds, else a clamped copy (a warning is logged when
        the reply had extra choices or out-of-range usage).
    """
    kept = gen.samples[: max(n, 0)]
    top = None if max_tokens is None else max(max_tokens, 0)

    def clamp(tokens: int) -> int:
        tokens = max(int(tokens), 0)
        return tokens if top is None else min(tokens, top)

    reported = int(gen.usage.completion_tokens)
    unreported = reported <= 0 and any(s.text or s.reasoning for s in kept)
    if unreported:
        tokens = [
            clamp(top if s.truncated and top is not None else len(s.text) + len(s.reasoning or ""))
            for s in kept
        ]
    else:
        tokens = [clamp(s.tokens) for s in kept]
    samples = [
        s if t == s.tokens else dataclasses.replace(s, tokens=t)
        for s, t in zip(kept, tokens, strict=True)
    ]
    completion = sum(tokens) if unreported else max(reported, 0)
    if top is not None:  # cancelled choices generated tokens too, at most `top` each
        completion = min(completion, top * (len(samples) + max(gen.cancelled, 0)))
    usage = Usage(
        requests=max(int(gen.usage.requests), 0),
        prompt_tokens=max(int(gen.usage.prompt_tokens), 0),
        completion_tokens=completion,
    )
    if len(gen.samples) == len(samples) and usage == gen.usage:
        if tokens == [s.tokens for s in gen.samples]:
            return gen
        # only the client's split of usage over choices (by text length) overshot: quietly fix
        return dataclasses.replace(gen, samples=samples, usage=usage, max_tokens_cap=None)
    logger.warning(
        "policy reply out of bounds (%d choices for n=%d, %d completion tokens reported for "
        "max_tokens=%s per choice); booking %d choices and %d tokens",
        len(gen.samples),
        n,
        reported,
        max_tokens,
        len(samples),
        completion,
    )
    return dataclasses.replace(gen, samples=samples, usage=usage, max_tokens_cap=None)
