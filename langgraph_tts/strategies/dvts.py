"""Diverse verifier tree search (DVTS): N/M independent beams of width M."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from .. import allocation
from ..allocation import Allocation
from .base import Frontier, Strategy, Width
from .beam import BeamWidthSettings

__all__ = ["DVTS"]


class DVTS(Strategy):
    """The first N steps form N/M subtrees; each runs its own beam search of width M."""

    name = "dvts"
    kind = "search"
    summary = "N/M independent subtrees, each a beam search of width M"
    paper = "search-and-learn (Beeching et al. 2024)"
    settings = BeamWidthSettings
    table_choices: ClassVar[tuple[Width, ...]] = (4,)

    def root_group(self, index: int, ctx: Any) -> int:
        return index // int(ctx.beam_width)

    def candidates(
        self, nodes: Sequence[Mapping[str, Any]], new: Sequence[int], active: Sequence[int]
    ) -> list[int]:
        """A subtree lives on iff its best-scored new candidate is still active."""
        best: dict[int, int] = {}
        for nid in new:
            node = nodes[nid]
            if node["finish"] in ("discarded", "budget") or node["score"] is None:
                continue
            g = node["group"]
            if g not in best or (node["score"] or 0.0) > (nodes[best[g]]["score"] or 0.0):
                best[g] = nid
        live = {g for g, nid in best.items() if nodes[nid]["finish"] is None}
        kept = set(active)
        return [nid for nid in new if nid in kept and nodes[nid]["group"] in live]

    def allocation_budget(self, ctx: Any, frontier: Frontier) -> int:
        return int(ctx.beam_width) * len(set(frontier.groups))

    def min_rollouts(self, ctx: Any) -> int:
        return int(ctx.beam_width)

    def allocate(self, ctx: Any, frontier: Frontier) -> Allocation:
        budget = self.allocation_budget(ctx, frontier)
        return allocation.allocate(
            "dvts",
            frontier.scores,
            budget,
            groups=frontier.groups,
            beam_width=ctx.beam_width,
        )
