"""Self-consistency (Wang et al. 2022): N whole solutions, majority vote, no verifier."""

from __future__ import annotations

from typing import ClassVar

from .base import Strategy, VoteRule

__all__ = ["SelfConsistency"]


class SelfConsistency(Strategy):
    """N samples of one prefix in one request; the most common answer wins."""

    name = "self_consistency"
    kind = "sample"
    summary = "N whole solutions, majority vote"
    paper = "arXiv 2203.11171"
    needs_prm = False
    default_vote: ClassVar[VoteRule] = "majority"
