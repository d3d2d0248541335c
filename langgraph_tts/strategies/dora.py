"""DORA (arXiv 2506.15707): direction-oriented rollout allocation.

REBASE's softmax weights are multiplied by each candidate's semantic uniqueness γ (the
diagonal of the row-softmaxed cosine similarity of the candidates' embeddings), so a crowd of
look-alike candidates shares the rollouts one direction deserves (Eq. 12-13).
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import Field

from .. import allocation
from ..allocation import Allocation
from .base import Frontier, Strategy, Width
from .rebase import SoftmaxSettings

__all__ = ["DORA", "DoraSettings"]


class DoraSettings(SoftmaxSettings):
    """REBASE's softmax plus the similarity temperature of semantic uniqueness."""

    similarity_temperature: Annotated[
        float,
        Field(gt=0.0, description="T_s: row-softmax temperature of cosine similarity (DORA)."),
    ] = 0.01
    dora_prefilter: Annotated[
        bool,
        Field(
            description="Released DORA code's variant: drop candidates REBASE gives 0 rollouts "
            "before applying semantic uniqueness. Off = the paper's Eq. 12-13."
        ),
    ] = False


class DORA(Strategy):
    """REBASE weights × semantic uniqueness γ, one embedding request per iteration."""

    name = "dora"
    kind = "search"
    summary = "REBASE weights times semantic uniqueness of each direction (embeddings)"
    paper = "arXiv 2506.15707"
    settings = DoraSettings
    needs_embeddings = True
    table_choices: ClassVar[tuple[Width, ...]] = (None,)

    def allocate(self, ctx: Any, frontier: Frontier) -> Allocation:
        return allocation.allocate(
            "dora",
            frontier.scores,
            self.allocation_budget(ctx, frontier),
            embeddings=frontier.vectors(),
            temperature=ctx.rebase_temperature,
            similarity_temperature=ctx.similarity_temperature,
            prefilter=ctx.dora_prefilter,
            rounding=ctx.rounding,
        )
