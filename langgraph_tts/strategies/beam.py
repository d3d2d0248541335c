"""Beam search under a PRM: keep the top N/M candidates, give each M rollouts."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import Field

from .. import allocation
from ..allocation import Allocation
from ..settings import Settings
from .base import Frontier, Strategy, Width

__all__ = ["BeamSearch", "BeamWidthSettings"]


class BeamWidthSettings(Settings):
    """Beam width M of beam search and DVTS."""

    beam_width: Annotated[
        int, Field(gt=0, description="Beam width M for beam search and DVTS (N/M kept).")
    ] = 4


class BeamSearch(Strategy):
    """Every iteration keeps the N/M best-scored candidates and expands each M times."""

    name = "beam"
    kind = "search"
    summary = "step-level beam search: top N/M candidates, M rollouts each"
    paper = "arXiv 2408.03314"
    settings = BeamWidthSettings
    table_choices: ClassVar[tuple[Width, ...]] = ("sqrt", 4)

    def min_rollouts(self, ctx: Any) -> int:
        return int(ctx.beam_width)

    def allocate(self, ctx: Any, frontier: Frontier) -> Allocation:
        budget = self.allocation_budget(ctx, frontier)
        return allocation.allocate("beam", frontier.scores, budget, beam_width=ctx.beam_width)
