"""The strategy interface: what a test-time scaling strategy tells the graphs that run it.

A strategy is one module with one `Strategy` subclass: its name and kind, its own settings
model, which models it needs, and (for step-level search) its allocation rule. The search
graph asks it instead of branching on names, so a new strategy is a new module plus one
line in the registry (`langgraph_tts.strategies.register`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from ..allocation import Allocation
from ..errors import ConfigError
from ..settings import Settings

__all__ = ["Frontier", "Kind", "NoSettings", "Strategy", "VoteRule", "Width"]

Kind = Literal["sample", "search", "graph"]
"""`sample`: whole solutions, one round; `search`: step-level search under a PRM with an
allocation rule; `graph`: runs in a graph of its own (SCALE, compute-optimal)."""
VoteRule = Literal["weighted", "majority", "best"]
Width = int | Literal["sqrt"] | None
"""A compute-optimal candidate's beam width: a number, √N, or None (no width)."""


class NoSettings(Settings):
    """A strategy without settings of its own."""


@dataclass(frozen=True)
class Frontier:
    """The active candidates of one iteration, as an allocation rule sees them."""

    ids: list[int]
    scores: list[float]
    groups: list[int]
    embeddings: dict[str, list[float]]
    """Embeddings keyed by node id (as str), for rules that use them (DORA)."""

    def vectors(self) -> list[list[float]]:
        """The candidates' embeddings in `ids` order ([[1.0]] for a single candidate)."""
        if len(self.ids) < 2:
            return [[1.0]]
        return [self.embeddings[str(i)] for i in self.ids]


class Strategy:
    """Base of every strategy; subclasses set the class attributes and override hooks.

    Examples:
        The hooks of a built-in strategy, as the search graph calls them:

        >>> from langgraph_tts import SearchContext, get_strategy
        >>> beam = get_strategy("beam")
        >>> isinstance(beam, Strategy), beam.kind, beam.settings.__name__
        (True, 'search', 'BeamWidthSettings')
        >>> ctx = SearchContext(strategy="beam", budget=8, beam_width=4)
        >>> beam.rollouts(ctx), beam.vote_rule(ctx)
        (8, 'weighted')
        >>> frontier = Frontier(ids=[1, 2, 3, 4], scores=[0.9, 0.2, 0.8, 0.1],
        ...                     groups=[1, 2, 3, 4], embeddings={})
        >>> beam.allocate(ctx, frontier).counts
        [4, 0, 4, 0]

        `register_strategy` shows a subclass; `docs/composition.md` writes one from scratch.
    """

    name: ClassVar[str]
    kind: ClassVar[Kind]
    summary: ClassVar[str]
    """One line for the CLI help and the docs' table."""
    paper: ClassVar[str] = ""
    settings: ClassVar[type[Settings]] = NoSettings
    """The strategy's own settings (fields shared with another strategy share one class)."""
    needs_prm: ClassVar[bool] = True
    needs_embeddings: ClassVar[bool] = False
    default_vote: ClassVar[VoteRule] = "weighted"
    table_choices: ClassVar[tuple[Width, ...]] = ()
    """Compute-optimal candidates θ this strategy contributes (its beam widths, or (None,))."""
    allows_sequential_ceil: ClassVar[bool] = False

    def rollouts(self, ctx: Any) -> int:
        """N: rollouts of the first iteration and voters of the final answer."""
        return int(ctx.budget)

    def min_rollouts(self, ctx: Any) -> int:
        """Least width a round of adaptive compute may have (beam search and DVTS: M)."""
        return 1

    def validate(self, ctx: Any) -> None:
        """Cross-field rules checked when a graph is built and when a run starts."""
        if getattr(ctx, "rounding", None) == "sequential_ceil" and not self.allows_sequential_ceil:
            msg = (
                "rounding='sequential_ceil' is original REBASE's rule; use it with strategy "
                f"rebase, not {self.name}"
            )
            raise ConfigError(msg)

    def vote_rule(self, ctx: Any) -> VoteRule:
        """The vote in force: the `vote` setting, or this strategy's default."""
        rule: VoteRule | Literal["default"] = getattr(ctx, "vote", "default")
        return self.default_vote if rule == "default" else rule

    # --- step-level search (kind "search") ----------------------------------------------------

    def root_group(self, index: int, ctx: Any) -> int:
        """Subtree id of the `index`-th first step (DVTS groups them; others keep one each)."""
        return index

    def candidates(
        self, nodes: Sequence[Mapping[str, Any]], new: Sequence[int], active: Sequence[int]
    ) -> list[int]:
        """The active candidates the rule allocates over (DVTS drops finished subtrees)."""
        return list(active)

    def allocation_budget(self, ctx: Any, frontier: Frontier) -> int:
        """Rollouts to share among `frontier` this iteration."""
        return self.rollouts(ctx)

    def allocate(self, ctx: Any, frontier: Frontier) -> Allocation:
        """Rollouts per candidate (step-level search only)."""
        msg = f"strategy {self.name!r} samples whole solutions; it has no allocation rule"
        raise NotImplementedError(msg)

    def __repr__(self) -> str:
        return f"<strategy {self.name}>"
