"""Decomposition: sample outline versions concurrently, then choose one.

Each version is one System-1 request, re-asked up to `format_retries` times when the reply is
not a valid outline. The choice is the model's (`llm`, as in the SCALE code, which its paper
calls majority voting), a consistency vote on the number of sub-problems, or the first valid
version.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ..clients.types import ChatMessage, Policy
from ..ledger import Ledger, merge_ledgers
from ..prompts import (
    DECOMPOSE_SYSTEM_PROMPT,
    SELECT_OUTLINE_SYSTEM_PROMPT,
    SELECT_OUTLINE_USER_TEMPLATE,
)
from .parsing import OutlineParseError, VersionParseError, parse_outline, parse_version_choice
from .state import OutlineVersion
from .systems import aux_max_tokens, derive_seed, policy_delta, system_params

__all__ = ["Selection", "sample_outline", "sample_outlines", "select_outline", "vote_outline"]

logger = logging.getLogger(__name__)


async def sample_outline(
    policy: Policy, ctx: Any, problem: str, version: int
) -> tuple[OutlineVersion, Ledger]:
    """One outline version, re-asked until it parses or the retries run out."""
    messages: list[ChatMessage] = [
        {"role": "system", "content": DECOMPOSE_SYSTEM_PROMPT},
        {"role": "user", "content": problem},
    ]
    ledger: Ledger = {}
    error: str | None = None
    attempts = 0
    for attempt in range(ctx.format_retries + 1):
        attempts += 1
        params = system_params(ctx, "system1", seed=derive_seed(ctx, problem, 1, version, attempt))
        gen = await policy.generate(messages, n=1, params=params)
        ledger = merge_ledgers(ledger, policy_delta(ctx, gen))
        try:
            steps = parse_outline(gen.samples[0].text)
        except OutlineParseError as err:
            error = str(err)
            logger.debug("outline version %d attempt %d rejected: %s", version, attempt, err)
            continue
        return OutlineVersion(version=version, steps=steps, attempts=attempts, error=None), ledger
    return OutlineVersion(version=version, steps=None, attempts=attempts, error=error), ledger


async def sample_outlines(
    policy: Policy, ctx: Any, problem: str
) -> tuple[list[OutlineVersion], Ledger]:
    """`outline_versions` versions, sampled concurrently (the client's semaphore bounds them)."""
    results = await asyncio.gather(
        *(sample_outline(policy, ctx, problem, v) for v in range(1, ctx.outline_versions + 1))
    )
    ledger: Ledger = {}
    for _, spent in results:
        ledger = merge_ledgers(ledger, spent)
    return [version for version, _ in results], ledger


def vote_outline(valid: list[OutlineVersion]) -> OutlineVersion:
    """Consistency vote: the most common number of sub-problems wins; the first such version
    is taken (ties between counts go to the count seen first)."""
    if not valid:
        raise ValueError("vote_outline needs at least one valid version")
    counts = Counter(len(v["steps"] or []) for v in valid)
    best = max(counts.values())
    for version in valid:
        if counts[len(version["steps"] or [])] == best:
            return version
    raise AssertionError("unreachable")  # pragma: no cover


@dataclass
class Selection:
    """The chosen version, how it was chosen, its cost and any fallback notes."""

    version: OutlineVersion | None
    method: str
    ledger: Ledger = field(default_factory=dict)  # type: ignore[assignment]
    fallbacks: list[str] = field(default_factory=list)


def _selection_prompt(problem: str, valid: list[OutlineVersion]) -> str:
    lines = [
        f"version{i}: {json.dumps({f'step{j}': s for j, s in enumerate(v['steps'] or [], 1)})}"
        for i, v in enumerate(valid, 1)
    ]
    return SELECT_OUTLINE_USER_TEMPLATE.format(problem=problem, versions="\n".join(lines))


async def select_outline(
    policy: Policy, ctx: Any, problem: str, versions: list[OutlineVersion]
) -> Selection:
    """Choose one valid version with `outline_selection`; the model's choice falls back to the
    vote after `format_retries` unusable replies."""
    valid = [v for v in versions if v["steps"]]
    if not valid:
        return Selection(None, "none")
    if len(valid) == 1:
        return Selection(valid[0], "only")
    if ctx.outline_selection == "first":
        return Selection(valid[0], "first")
    if ctx.outline_selection == "vote":
        return Selection(vote_outline(valid), "vote")
    messages: list[ChatMessage] = [
        {"role": "system", "content": SELECT_OUTLINE_SYSTEM_PROMPT},
        {"role": "user", "content": _selection_prompt(problem, valid)},
    ]
    ledger: Ledger = {}
    reply = ""
    for attempt in range(ctx.format_retries + 1):
        params = system_params(
            ctx,
            "system1",
            seed=derive_seed(ctx, problem, 2, attempt),
            max_tokens=aux_max_tokens(ctx),
        )
        gen = await policy.generate(messages, n=1, params=params)
        ledger = merge_ledgers(ledger, policy_delta(ctx, gen))
        reply = gen.samples[0].text
        try:
            choice = parse_version_choice(reply, len(valid))
        except VersionParseError as err:
            logger.debug("outline selection attempt %d rejected: %s", attempt, err)
            continue
        return Selection(valid[choice - 1], "llm", ledger)
    note = (
        f"select: no valid version id in {ctx.format_retries + 1} replies "
        f"(last: {reply.strip()[:60]!r}); chose by vote on the number of sub-problems"
    )
    return Selection(vote_outline(valid), "vote", ledger, [note])
