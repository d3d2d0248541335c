"""Compute-optimal selection (Snell et al., arXiv 2408.03314): a strategy per difficulty bin.

Runs in the compute-optimal graph: k PRM-scored samples estimate the problem's difficulty,
a fitted table (`langgraph-tts calibrate`) picks θ for its bin and budget, and the search
graph runs θ.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, field_validator

from ..settings import Settings
from .base import Strategy

__all__ = ["ComputeOptimal", "ComputeOptimalSettings"]


class ComputeOptimalSettings(Settings):
    """The strategy table and the size of the difficulty estimate."""

    table: Annotated[
        Any,
        Field(
            description="Strategy table of compute_optimal: a JSON file written by "
            "`langgraph-tts calibrate`, or the table itself (docs/compute_optimal.md)."
        ),
    ] = None
    difficulty_samples: Annotated[
        int,
        Field(
            gt=0,
            le=256,
            description="k: whole samples (one request, n=k) whose mean last-step PRM score "
            "estimates a problem's difficulty for compute_optimal; charged to the ledger.",
        ),
    ] = 8
    bin_budgets: Annotated[
        bool,
        Field(
            description="compute_optimal: if the table has a plan for the run's budget, give "
            "each difficulty bin the plan's θ and budget (the mean stays within what best-of-N "
            "at N costs); off: θ at N for every bin.",
        ),
    ] = True

    @field_validator("table")
    @classmethod
    def _table(cls, value: Any) -> Any:
        if value is None or isinstance(value, str):
            return value or None
        from ..compute_optimal.table import StrategyTable

        if isinstance(value, StrategyTable):
            return value
        if isinstance(value, dict):
            return StrategyTable.model_validate(value)
        raise ValueError("table must be a file path or a StrategyTable")


class ComputeOptimal(Strategy):
    """Estimate difficulty, look θ up in the table, run θ at the budget."""

    name = "compute_optimal"
    kind = "graph"
    summary = "per-difficulty choice of strategy from a fitted table (needs --table)"
    paper = "arXiv 2408.03314"
    settings = ComputeOptimalSettings
