"""Pure allocation math for test-time scaling: PRM scores of k candidates -> rollout counts.

Every rule maps the last-step PRM scores of the k active candidates (and, for DORA, their
embeddings; for DVTS, their subtree ids) to non-negative integer counts, which a search loop
turns into copies to expand next. No I/O; numpy only. See `docs/allocation.md`.

Rules: `uniform` (temperature sampling), `beam_topk`, `dvts`, `rebase`, `dora`,
`bayes_optimal` (DORA Prop. 1). Building blocks: `quality_weights`, `semantic_uniqueness`,
`round_to_budget`, `diversity`. Dispatcher: `allocate(rule, ...)` over `ALLOCATORS`.
"""

from __future__ import annotations

from .bayes import bayes_optimal
from .dispatch import ALLOCATORS, allocate
from .rounding import Rounding, round_to_budget
from .rules import (
    DEFAULT_BALANCE_TEMPERATURE,
    DEFAULT_BEAM_WIDTH,
    DEFAULT_SIMILARITY_TEMPERATURE,
    Allocation,
    beam_topk,
    dora,
    dvts,
    rebase,
    uniform,
)
from .weights import DIVERSITY_TEMPERATURE, diversity, quality_weights, semantic_uniqueness

__all__ = [
    "ALLOCATORS",
    "DEFAULT_BALANCE_TEMPERATURE",
    "DEFAULT_BEAM_WIDTH",
    "DEFAULT_SIMILARITY_TEMPERATURE",
    "DIVERSITY_TEMPERATURE",
    "Allocation",
    "Rounding",
    "allocate",
    "bayes_optimal",
    "beam_topk",
    "diversity",
    "dora",
    "dvts",
    "quality_weights",
    "rebase",
    "round_to_budget",
    "semantic_uniqueness",
    "uniform",
]
