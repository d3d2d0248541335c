"""How per-step PRM rewards become one score for a solution (search-and-learn's aggregations)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

__all__ = ["Aggregation", "aggregate"]

Aggregation = Literal["last", "min", "prod", "mean"]


def aggregate(step_scores: Sequence[float], how: Aggregation = "last") -> float:
    """One score for a solution from its step scores.

    Raises:
        ValueError: `step_scores` is empty (a solution has at least one step; 0.0 would rank
            it as a confidently wrong answer) or `how` is unknown.
    """
    if not step_scores:
        raise ValueError("cannot aggregate an empty list of step scores")
    if how == "last":
        return float(step_scores[-1])
    if how == "min":
        return float(min(step_scores))
    if how == "prod":
        return float(math.prod(step_scores))
    if how == "mean":
        return float(sum(step_scores) / len(step_scores))
    raise ValueError(f"unknown aggregation {how!r}; use one of last, min, prod, mean")
