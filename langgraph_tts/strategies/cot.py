"""Chain-of-thought: one whole solution, no verifier."""

from __future__ import annotations

from typing import Any, ClassVar

from .base import Strategy, VoteRule

__all__ = ["ChainOfThought"]


class ChainOfThought(Strategy):
    """One sample; its extracted answer is the answer (the budget is ignored)."""

    name = "cot"
    kind = "sample"
    summary = "one whole solution (the budget is ignored)"
    needs_prm = False
    default_vote: ClassVar[VoteRule] = "majority"

    def rollouts(self, ctx: Any) -> int:
        return 1
