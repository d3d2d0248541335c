"""Particle filtering ("Rollout Roulette", Puri et al., arXiv 2502.01618).

Each active candidate is a particle. Every iteration the N rollouts are drawn by multinomial
resampling with probabilities softmax(logit(PRM score) / T): the same target as REBASE's
softmax, but sampled rather than rounded, so a candidate with a small weight still gets a
rollout now and then, and the resampling noise keeps the population diverse. The paper (and
its_hub) use the logit of the PRM's probability as the log-weight, T = 1. Finished particles
are not resampled: they join the vote as they are (resampling them would revive finished
solutions, its_hub#208).
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

import numpy as np
from pydantic import Field

from ..allocation import Allocation
from ..settings import Settings
from .base import Frontier, Strategy, Width

__all__ = ["ParticleFiltering", "ParticleFilteringSettings", "resample"]

EPS = 1e-7


class ParticleFilteringSettings(Settings):
    """Temperature of the resampling weights."""

    pf_temperature: Annotated[
        float,
        Field(
            gt=0.0,
            description="T of particle filtering's weights softmax(logit(PRM score) / T); "
            "1 is the paper's.",
        ),
    ] = 1.0


def resample(
    scores: list[float], budget: int, temperature: float, rng: np.random.Generator
) -> tuple[list[int], list[float]]:
    """Multinomial resampling: (rollouts per particle, resampling probabilities)."""
    p = np.clip(np.asarray(scores, dtype=float), EPS, 1.0 - EPS)
    logits = np.log(p / (1.0 - p)) / temperature
    weights = np.exp(logits - logits.max())
    probs = weights / weights.sum()
    counts = rng.multinomial(budget, probs) if budget > 0 else np.zeros(len(p), dtype=int)
    return [int(c) for c in counts], [float(x) for x in probs]


class ParticleFiltering(Strategy):
    """N particles, resampled every step in proportion to their PRM weight."""

    name = "particle_filtering"
    kind = "search"
    summary = "N particles resampled every step by PRM weight (multinomial)"
    paper = "arXiv 2502.01618"
    settings = ParticleFilteringSettings
    table_choices: ClassVar[tuple[Width, ...]] = (None,)

    def allocate(self, ctx: Any, frontier: Frontier) -> Allocation:
        # seeded by the run's seed and the particles' ids (unique per iteration): reproducible
        entropy = None if ctx.seed is None else [int(ctx.seed), *frontier.ids]
        rng = np.random.default_rng(entropy)
        budget = self.allocation_budget(ctx, frontier)
        counts, probs = resample(frontier.scores, budget, ctx.pf_temperature, rng)
        return Allocation(counts=counts, weights=probs, gamma=None)
