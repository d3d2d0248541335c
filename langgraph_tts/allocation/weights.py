"""Weights the score-based rules share: quality softmax, semantic uniqueness γ, diversity.

All softmaxes subtract the row maximum before `exp`, so no temperature or score range can
overflow, and normalising sums use `math.fsum`, so a candidate's weight does not depend on the
order the candidates come in.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from ._checks import check_embeddings, check_scores, check_temperature

__all__ = [
    "DIVERSITY_TEMPERATURE",
    "diversity",
    "quality_weights",
    "semantic_uniqueness",
]

DIVERSITY_TEMPERATURE = 0.1
"""Temperature of DORA's logged diversity diagnostic (fixed at 0.1 in the released code)."""


def quality_weights(scores: npt.ArrayLike, temperature: float) -> np.ndarray:
    """REBASE's quality weights `w = softmax(R / T_b)`.

    Lower temperatures concentrate the budget on the best-scored candidates; `math.inf`
    gives uniform weights.

    Args:
        scores: One PRM score per candidate (any finite reals; PRM scores lie in [0, 1]).
        temperature: The balance temperature T_b (> 0; DORA and REBASE use 0.1).

    Returns:
        A float64 vector of non-negative weights summing to 1 (empty for no candidates).
    """
    r = check_scores(scores)
    t = check_temperature(temperature)
    if r.size == 0:
        return r
    # Shift before dividing: (R - max R) / T <= 0, so the worst case is -inf, whose exp is 0.
    with np.errstate(over="ignore"):
        e = np.exp((r - r.max()) / t)
    return e / math.fsum(e)


def _cosine_similarity(embeddings: np.ndarray) -> np.ndarray:
    """Cosine matrix of already-validated rows, clipped to [-1, 1] with an exact unit diagonal."""
    # Scale by the largest entry first so squaring cannot overflow or underflow.
    scaled = embeddings / np.abs(embeddings).max(axis=1, keepdims=True)
    unit = scaled / np.linalg.norm(scaled, axis=1, keepdims=True)
    sim = np.clip(unit @ unit.T, -1.0, 1.0)
    np.fill_diagonal(sim, 1.0)
    return sim


def _uniqueness_from_similarity(sim: np.ndarray, temperature: float) -> np.ndarray:
    """Diagonal of the row-softmax of `sim / T`, computed without forming the full matrix."""
    with np.errstate(over="ignore"):  # -inf at worst, as in quality_weights
        shifted = (sim - sim.max(axis=1, keepdims=True)) / temperature
    # Sorting each row makes the row total independent of the candidates' order.
    totals = np.sort(np.exp(shifted), axis=1).sum(axis=1)
    return np.exp(np.diagonal(shifted)) / totals


def semantic_uniqueness(embeddings: npt.ArrayLike, temperature: float = 0.01) -> np.ndarray:
    """DORA's semantic uniqueness `γ_i = diag(row-softmax(cos(E) / T_s))_i` (paper Eq. 11–12).

    γ_i is a soft estimate of 1 / (number of candidates sharing τ_i's reasoning direction):
    k exact duplicates of one direction each get 1/k when the other directions are far away.
    There is no clustering and no threshold; T_s controls how close counts as "the same".

    Args:
        embeddings: A (k, d) array, one embedding per candidate; rows need not be unit-norm.
        temperature: The similarity temperature T_s (> 0; DORA uses 0.01 with BGE-M3).
            `math.inf` gives γ = 1/k for everyone.

    Returns:
        A float64 vector of k values in (0, 1].
    """
    e = check_embeddings(embeddings)
    t = check_temperature(temperature, "similarity temperature")
    if e.shape[0] == 0:
        return np.zeros(0)
    return _uniqueness_from_similarity(_cosine_similarity(e), t)


def diversity(embeddings: npt.ArrayLike, temperature: float = DIVERSITY_TEMPERATURE) -> float:
    """DORA's logged diversity diagnostic, `(tr(P)/k − 1/k) / (1 − 1/k)` with `P = rowsoftmax(S/T)`.

    It rescales the mean uniqueness so that k identical candidates give 0 and k mutually
    orthogonal ones give (nearly) 1. It is a diagnostic only and never changes an allocation.

    Args:
        embeddings: A (k, d) array, one embedding per candidate.
        temperature: Softmax temperature (0.1 in the released code).

    Returns:
        The diversity in [0, 1]; 0.0 when there are fewer than two candidates.
    """
    e = check_embeddings(embeddings)
    t = check_temperature(temperature)
    k = e.shape[0]
    if k < 2:
        return 0.0
    mean_gamma = math.fsum(_uniqueness_from_similarity(_cosine_similarity(e), t)) / k
    value = (mean_gamma - 1.0 / k) / (1.0 - 1.0 / k)
    return float(min(1.0, max(0.0, value)))
