"""Difficulty assessment: one System-1 score in [0, 1] per sub-problem, with bounded re-asks.

What the model sees as "work so far" is the one thing the paper and the code disagree on:
the paper conditions on earlier sub-problems and their answers (`sequential`), the code scores
every sub-problem before solving any, from the earlier descriptions only (`upfront`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from ..clients.types import ChatMessage, Policy
from ..ledger import Ledger, merge_ledgers
from ..prompts import DIFFICULTY_SYSTEM_PROMPT, DIFFICULTY_USER_TEMPLATE
from .parsing import DifficultyParseError, parse_difficulty
from .state import ScaleState, SubProblem
from .systems import aux_max_tokens, derive_seed, policy_delta, system_params

__all__ = [
    "FALLBACK_DIFFICULTY",
    "FORCED_LAST_DIFFICULTY",
    "NO_CONTEXT",
    "Assessment",
    "assessment_update",
    "score_difficulty",
    "work_for",
]

logger = logging.getLogger(__name__)

FORCED_LAST_DIFFICULTY = 0.9
"""Score of the final sub-problem under `force_last_hard` (SCALE code): System-2 unless tau >= 0.9."""
FALLBACK_DIFFICULTY = 1.0
"""Score given when no usable difficulty came back: treat the sub-problem as hard."""
NO_CONTEXT = "(nothing yet)"
"""What `Work so far` says before the first sub-problem is solved."""


@dataclass(frozen=True)
class Assessment:
    """The outcome of scoring one sub-problem: None if every reply was unusable."""

    score: float | None
    reply: str
    ledger: Ledger
    attempts: int


def work_for(ctx: Any, state: ScaleState, idx: int) -> str:
    """What the assessor sees as done before sub-problem `idx` (see the module docstring)."""
    if ctx.difficulty_mode == "upfront":
        return " ".join(s["text"] for s in state["subproblems"][:idx])
    return "\n".join(state.get("context", []))


async def score_difficulty(
    policy: Policy, ctx: Any, problem: str, work: str, text: str, idx: int
) -> Assessment:
    """Ask for a score until one parses or `format_retries` re-asks are spent."""
    user = DIFFICULTY_USER_TEMPLATE.format(
        problem=problem, context=work or NO_CONTEXT, subproblem=text
    )
    messages: list[ChatMessage] = [
        {"role": "system", "content": DIFFICULTY_SYSTEM_PROMPT},
        {"role": "user", "content": user},
    ]
    spent: Ledger = {}
    reply = ""
    attempts = 0
    for attempt in range(ctx.format_retries + 1):
        attempts += 1
        params = system_params(
            ctx,
            "system1",
            seed=derive_seed(ctx, problem, 3, idx, attempt),
            max_tokens=aux_max_tokens(ctx),
        )
        gen = await policy.generate(messages, n=1, params=params)
        spent = merge_ledgers(spent, policy_delta(ctx, gen))
        reply = gen.samples[0].text
        try:
            return Assessment(parse_difficulty(reply), reply, spent, attempts)
        except DifficultyParseError as err:
            logger.debug("difficulty of sub-problem %d, attempt %d: %s", idx, attempt, err)
    return Assessment(None, reply, spent, attempts)


def assessment_update(idx: int, outcome: Assessment | None) -> tuple[SubProblem, str | None]:
    """The sub-problem update for an assessment (None: forced last), plus a fallback note."""
    if outcome is None:
        forced = SubProblem(
            index=idx,
            difficulty=FORCED_LAST_DIFFICULTY,
            difficulty_source="forced_last",
            difficulty_reply=None,
            difficulty_ledger={},
        )
        return forced, None
    note = None
    score, source = outcome.score, "model"
    if score is None:
        score, source = FALLBACK_DIFFICULTY, "fallback"
        note = (
            f"difficulty: sub-problem {idx}: no score in [0, 1] after {outcome.attempts} "
            f"replies (last: {outcome.reply.strip()[:60]!r}); treated as hard "
            f"({FALLBACK_DIFFICULTY})"
        )
    update = SubProblem(
        index=idx,
        difficulty=score,
        difficulty_source=source,  # type: ignore[typeddict-item]
        difficulty_reply=outcome.reply,
        difficulty_ledger=outcome.ledger,
    )
    return update, note
