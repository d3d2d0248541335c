"""Adaptive compute within one problem: the stopping test and the round-width rule (pure).

With `adaptive=true` the budget N of a search-graph run becomes an *average*. The run is a
sequence of rounds; round r is the strategy's ordinary search (or one batch of whole
solutions) at width w_r, and every round's finished solutions join one vote:

- round 0 has width w_0 = `adaptive_start` (default max(min(N, 4), N // 4), at least the
  strategy's own minimum, e.g. the beam width M);
- after each round the PRM-weighted vote of all finished solutions is tested (`decision`):
  with W_1 >= W_2 the vote weights of the two leading answers, the posterior probability
  P(p > 1/2) under Beta(1 + W_1, 1 + W_2) that the leader is the more likely of the two;
  the run stops ("decided") once it reaches `adaptive_confidence` (0.95);
- otherwise the next round is `adaptive_growth` (2) times wider, at most `adaptive_cap` (4) x N
  per iteration, and only if its estimated cost fits the run's allowance ("budget" otherwise);
- the allowance is the run's *reference* (what fixed N would have drawn: round 0's samples x
  N / w_0) plus a credit: `adaptive_credit` samples (what a cross-problem pool grants, see
  `langgraph_tts.strategies.pool`), else (cap - 1) x the reference.

Answers are grouped by their exact normalised text for the test (equivalent answers written
differently count as different answers, which only makes the test more cautious); the final
vote uses the grader as always. Votes are weighted as the strategy's vote is: PRM scores for
the weighted (and best) vote, counts for majority.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "ADAPTIVE_STOPS",
    "Decision",
    "beta_leader_probability",
    "decision",
    "next_width",
    "start_width",
    "wanted_width",
]

ADAPTIVE_STOPS = ("decided", "budget", "hard_cap")
"""Why an adaptive run stopped: the vote was decided, the allowance could not pay for another
round, or a hard cap (`max_samples`, `max_tokens_cap`) was reached."""

_GRID = np.linspace(0.0, 1.0, 4001)


def beta_leader_probability(w1: float, w2: float) -> float:
    """P(p > 1/2) for p ~ Beta(1 + w1, 1 + w2): the leader's posterior edge over the runner-up.

    Computed on a 4001-point grid (log density, trapezoid rule), accurate to ~1e-6 for the
    weights a vote produces (a few hundred at most).
    """
    a, b = 1.0 + max(w1, 0.0), 1.0 + max(w2, 0.0)
    x = _GRID[1:-1]
    logp = (a - 1.0) * np.log(x) + (b - 1.0) * np.log1p(-x)
    dens = np.exp(logp - logp.max())
    dens = np.concatenate(([0.0 if a > 1 else dens[0]], dens, [0.0 if b > 1 else dens[-1]]))
    cells = (dens[:-1] + dens[1:]) / 2.0  # trapezoid rule on an even grid
    half = (len(_GRID) - 1) // 2
    upper = float(cells[half:].sum()) / float(cells.sum())
    return min(max(upper, 0.0), 1.0)


@dataclass(frozen=True)
class Decision:
    """The stopping test on the finished solutions' vote."""

    leader: str | None
    """Normalised text of the leading answer (None if no solution has an answer)."""
    weights: tuple[float, float]
    """Vote weights of the leader and of the runner-up."""
    confidence: float
    """P(leader more likely than the runner-up) under the Beta posterior."""
    decided: bool


def _normalise(answer: str) -> str:
    return " ".join(answer.split()).strip().rstrip(".").lower()


def decision(
    answers: Sequence[str | None],
    scores: Sequence[float] | None,
    *,
    confidence: float,
) -> Decision:
    """Test whether the vote of `answers` (weighted by `scores`, or counts if None) is decided.

    Solutions without an answer do not vote. Scores are clipped to [0, 1].
    """
    totals: dict[str, float] = {}
    for i, answer in enumerate(answers):
        if answer is None or not answer.strip():
            continue
        w = 1.0 if scores is None else min(max(float(scores[i]), 0.0), 1.0)
        key = _normalise(answer)
        totals[key] = totals.get(key, 0.0) + w
    if not totals:
        return Decision(leader=None, weights=(0.0, 0.0), confidence=0.5, decided=False)
    ranked = sorted(totals.items(), key=lambda kv: -kv[1])
    w1 = ranked[0][1]
    w2 = ranked[1][1] if len(ranked) > 1 else 0.0
    p = beta_leader_probability(w1, w2)
    return Decision(leader=ranked[0][0], weights=(w1, w2), confidence=p, decided=p >= confidence)


def start_width(ctx: Any, minimum: int = 1) -> int:
    """w_0: `adaptive_start`, else max(min(N, 4), N // 4); at least `minimum`, at most the cap.

    Never narrower than 4 by default (unless N is): a step-level search of width 2 keeps too
    few directions alive, which cost REBASE 12 points at N = 4 on popular_worse
    (docs/adaptive.md).
    """
    n = int(ctx.budget)
    start = ctx.adaptive_start if ctx.adaptive_start is not None else max(min(n, 4), n // 4)
    return max(1, minimum, min(int(start), cap_width(ctx)))


def cap_width(ctx: Any) -> int:
    """Most rollouts of one iteration: `adaptive_cap` x N."""
    return max(1, math.floor(float(ctx.adaptive_cap) * int(ctx.budget)))


def wanted_width(ctx: Any, width: int) -> int:
    """`adaptive_growth` x `width` (at least one more), at most `adaptive_cap` x N."""
    return min(max(math.ceil(width * float(ctx.adaptive_growth)), width + 1), cap_width(ctx))


def next_width(
    ctx: Any,
    *,
    width: int,
    spent: float,
    allowance: float,
    cost_per_width: float,
    minimum: int = 1,
) -> int:
    """Width of the next round, or 0 if the allowance cannot pay for a useful one.

    The wanted width is `adaptive_growth` x the current one, capped at `adaptive_cap` x N; it
    shrinks to what `allowance - spent` pays for at `cost_per_width` samples per unit of
    width (what round 0 cost), and is dropped below `minimum` (the strategy's least width).
    """
    want = wanted_width(ctx, width)
    room = allowance - spent
    if cost_per_width > 0:
        want = min(want, math.floor(room / cost_per_width))
    elif room <= 0:
        want = 0
    return want if want >= max(1, minimum) else 0
