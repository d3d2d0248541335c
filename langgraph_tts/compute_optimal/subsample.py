"""Best-of-N at every budget from one pool of samples (`calibrate --bon-pool`).

Calibrating best-of-N with one run per budget gives each problem a single right/wrong outcome
per budget, with budgets a factor of two or four apart. A best-of-N curve can instead be read
from one large pool of samples per question (Snell et al. draw 2048 per question): best-of-N
at n is the vote over n of the pool's samples, and its accuracy on a question is the chance
that such a vote is right. This module does that for a pool of P PRM-scored samples per
problem: the expected correctness of
best-of-N at n ≤ P, estimated from random size-n subsets (exact when n = P). Pure: the answers
are grouped and graded before (see `PoolSample`), so no grader runs here.

Per-problem expectations instead of single outcomes remove the run-to-run noise the plans'
knapsack would otherwise fit, and every n of a fine grid (`pool_grid`) becomes an option, so a
plan can give a bin 24 or 48 samples rather than only 16 or 64.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from ..answers import VoteRule, vote

__all__ = ["DRAWS", "PoolSample", "expected_right", "pool_grid"]

DRAWS = 128
"""Random subsets per (problem, n): the expectation's standard error is at most 0.045 per
problem, and averages over a bin's problems."""


@dataclass(frozen=True)
class PoolSample:
    """One problem's pool: per sample its answer, score and answer group; the right groups."""

    answers: Sequence[str | None]
    scores: Sequence[float | None]
    groups: Sequence[int]
    """Equivalence class per sample (`Grader.group` over the whole pool; -1 for no answer)."""
    right: frozenset[int]
    """Groups whose answer is equivalent to the reference answer."""


def pool_grid(low: int, high: int, budgets: Sequence[int] = ()) -> list[int]:
    """Budgets n with low < n <= high: powers of two and 1.5 x powers of two, plus `budgets`.

    >>> pool_grid(4, 64)
    [6, 8, 12, 16, 24, 32, 48, 64]
    >>> pool_grid(8, 20, budgets=[10])
    [10, 12, 16]
    """
    grid = {b for b in budgets if low < b <= high}
    n = 2
    while n <= high:
        grid |= {m for m in (n, 3 * n // 2) if low < m <= high}
        n *= 2
    return sorted(grid)


def expected_right(
    pool: PoolSample, n: int, rule: VoteRule, rng: random.Random, draws: int = DRAWS
) -> float:
    """The chance that best-of-N at n, voting with `rule`, is right: the share of `draws`
    random size-n subsets of the pool whose vote is right (the whole pool once if n >= P).

    A vote over samples with a missing score falls back to majority, as the search's does.

    >>> pool = PoolSample(["1", "2", "2"], [0.9, 0.2, 0.3], [0, 1, 1], frozenset({0}))
    >>> expected_right(pool, 3, "weighted", random.Random(0))  # 0.9 > 0.2 + 0.3
    1.0
    >>> expected_right(pool, 3, "majority", random.Random(0))
    0.0
    >>> round(expected_right(pool, 1, "weighted", random.Random(0), draws=3000), 1)  # 1 in 3
    0.3
    """
    size = len(pool.answers)
    if size == 0:
        return 0.0
    subsets = (
        [list(range(size))]
        if n >= size
        else [sorted(rng.sample(range(size), n)) for _ in range(draws)]
    )
    hits = 0
    for picked in subsets:
        scores = [pool.scores[i] for i in picked]
        scored = rule == "majority" or all(s is not None for s in scores)
        result = vote(
            [pool.answers[i] for i in picked],
            [float(s or 0.0) for s in scores] if scored and rule != "majority" else None,
            [pool.groups[i] for i in picked],
            rule if scored else "majority",
        )
        if result.winner is not None and pool.groups[picked[result.winner]] in pool.right:
            hits += 1
    return hits / len(subsets)
