"""REBASE (Wu et al. 2024): rollouts in proportion to a softmax of PRM scores."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field

from .. import allocation
from ..allocation import Allocation
from ..settings import Settings
from .base import Frontier, Strategy, Width

__all__ = ["REBASE", "SoftmaxSettings"]


class SoftmaxSettings(Settings):
    """The softmax over PRM scores that REBASE and DORA share, and its integer rounding."""

    rebase_temperature: Annotated[
        float, Field(gt=0.0, description="T_b: softmax temperature of PRM scores (REBASE, DORA).")
    ] = 0.1
    rounding: Annotated[
        Literal["largest_remainder", "code", "sequential_ceil"],
        Field(
            description="Integer rounding of rollout shares: largest remainder (sums to N, "
            "order-free), the DORA code's round-then-cyclic-pad, or original REBASE's "
            "sequential ceil (REBASE only)."
        ),
    ] = "largest_remainder"


class REBASE(Strategy):
    """Each candidate gets N · softmax(score / T_b) rollouts."""

    name = "rebase"
    kind = "search"
    summary = "rollouts in proportion to softmax(PRM score / T_b) per candidate"
    paper = "arXiv 2408.00724"
    settings = SoftmaxSettings
    table_choices: ClassVar[tuple[Width, ...]] = (None,)
    allows_sequential_ceil = True

    def allocate(self, ctx: Any, frontier: Frontier) -> Allocation:
        return allocation.allocate(
            "rebase",
            frontier.scores,
            self.allocation_budget(ctx, frontier),
            temperature=ctx.rebase_temperature,
            rounding=ctx.rounding,
        )
