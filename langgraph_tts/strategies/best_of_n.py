"""Best-of-N: N whole solutions scored by the PRM, PRM-weighted vote (Snell et al. §4)."""

from __future__ import annotations

from typing import ClassVar

from .base import Strategy, Width

__all__ = ["BestOfN"]


class BestOfN(Strategy):
    """N samples in one request; the vote weighs each answer by its solution's PRM score."""

    name = "best_of_n"
    kind = "sample"
    summary = "N whole solutions, PRM-weighted vote"
    paper = "arXiv 2408.03314"
    table_choices: ClassVar[tuple[Width, ...]] = (None,)
