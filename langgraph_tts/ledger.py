"""The budget ledger: what a run really spent, carried in graph state with an additive reducer.

Nodes return *deltas* (`Ledger` dicts with only the keys they touched); LangGraph merges them
with `merge_ledgers`, so nodes that run in the same super-step (PRM scoring and embedding) can
both report their spend. `wall_s` is the only non-additive key (it keeps the maximum).
"""

from __future__ import annotations

from typing_extensions import TypedDict

__all__ = [
    "Ledger",
    "add_flops",
    "empty_ledger",
    "merge_ledgers",
]


class Ledger(TypedDict, total=False):
    """Spend of one run. All counts come from the servers' `usage` fields, not estimates."""

    policy_requests: int
    """HTTP requests to the policy (chat or completions)."""
    samples: int
    """Sampled continuations (choices) the policy drew: one request with `n=8` counts 8."""
    prompt_tokens: int
    """Policy prompt tokens, as the server reported them."""
    completion_tokens: int
    """Policy completion tokens, as the server reported them."""
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
