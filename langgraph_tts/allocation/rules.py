"""The allocation rules: scores of the k active candidates -> integer rollout counts.

Each public rule returns `list[int]`; a private `_<rule>` twin returns the full `Allocation`
(counts, the normalised weights behind them, and γ for DORA) for `allocate` and for logging.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from ._checks import (
    check_budget,
    check_embeddings,
    check_groups,
    check_positive_int,
    check_rounding,
    check_scores,
    check_temperature,
)
from .rounding import ROUNDINGS, Rounding, round_to_budget, sequential_ceil
from .weights import _cosine_similarity, _uniqueness_from_similarity, quality_weights

__all__ = [
    "DEFAULT_BALANCE_TEMPERATURE",
    "DEFAULT_BEAM_WIDTH",
    "DEFAULT_SIMILARITY_TEMPERATURE",
    "Allocation",
    "beam_topk",
    "dora",
    "dvts",
    "rebase",
    "uniform",
]

DEFAULT_BEAM_WIDTH = 4
"""M, the rollouts per kept beam in beam search and DVTS (DORA paper App. D.1)."""
DEFAULT_BALANCE_TEMPERATURE = 0.1
"""T_b of REBASE and DORA (DORA paper; the original REBASE yaml uses 0.2)."""
DEFAULT_SIMILARITY_TEMPERATURE = 0.01
"""T_s of DORA, tuned for BGE-M3 cosine similarities; re-tune it for another embedder."""

_REBASE_ROUNDINGS: tuple[str, ...] = (*ROUNDINGS, "sequential_ceil")


@dataclass(frozen=True)
class Allocation:
    """One allocation decision, with what produced it (for state, logs and plots)."""

    counts: list[int]
    """Rollouts per candidate, in candidate order."""
    weights: list[float]
    """The final normalised weights the counts were rounded from (sum 1, or empty)."""
    gamma: list[float] | None
    """DORA's semantic uniqueness γ per candidate (0.0 for pre-filtered ones); None otherwise."""


def _empty_or_zero(k: int, weights: np.ndarray | None = None) -> Allocation:
    """No candidates, or budget 0 with the rule's weights kept for the record."""
    w = [] if weights is None else [float(x) for x in weights]
    return Allocation(counts=[0] * k, weights=w, gamma=None)


def _rank(scores: np.ndarray) -> np.ndarray:
    """Candidate indices by score, best first; equal scores keep index order."""
    return np.lexsort((np.arange(scores.size), -scores))


def _spread(n: int, slots: int) -> list[int]:
    """n units over `slots` slots as evenly as possible, the first slots taking the extras."""
    base, extra = divmod(n, slots)
    return [base + (1 if i < extra else 0) for i in range(slots)]


# --- uniform ----------------------------------------------------------------------------------


def _uniform(scores: npt.ArrayLike, budget: int) -> Allocation:
    k = check_scores(scores).size
    n = check_budget(budget)
    if k == 0:
        return _empty_or_zero(0)
    return Allocation(counts=_spread(n, k), weights=[1.0 / k] * k, gamma=None)


def uniform(scores: npt.ArrayLike, budget: int) -> list[int]:
    """Temperature sampling: every candidate gets the same share, whatever its score.

    The paper's O_i = 1 when k = N. Otherwise each gets N // k and the first N mod k
    candidates (by index) get one more, so the counts sum exactly to N.

    Args:
        scores: One score per candidate (only their number is used; they are still validated).
        budget: Total rollouts N (>= 0).

    Returns:
        Non-negative counts summing to `budget`.
    """
    return _uniform(scores, budget).counts


# --- beam search ------------------------------------------------------------------------------


def _beam(
    scores: npt.ArrayLike, budget: int, *, beam_width: int = DEFAULT_BEAM_WIDTH
) -> Allocation:
    r = check_scores(scores)
    n = check_budget(budget)
    m = check_positive_int(beam_width, "beam_width")
    k = r.size
    if k == 0:
        return _empty_or_zero(0)
    keep = min(k, max(1, n // m))
    kept = _rank(r)[:keep]
    counts = [0] * k
    weights = [0.0] * k
    for idx, c in zip(kept, _spread(n, keep), strict=True):
        counts[int(idx)] = c
        weights[int(idx)] = 1.0 / keep
    return Allocation(counts=counts, weights=weights, gamma=None)


def beam_topk(
    scores: npt.ArrayLike, budget: int, *, beam_width: int = DEFAULT_BEAM_WIDTH
) -> list[int]:
    """Beam search: keep the top K = N // M candidates and give each M rollouts.

    K is capped at k and is at least 1 (N < M keeps the single best). The budget is spread
    evenly over the K kept candidates, and any remainder (N not a multiple of K) goes to the
    best-ranked ones, as the code's cyclic replication of the score-sorted beams does. Ties in
    score keep the lower index.

    Args:
        scores: One PRM score per candidate.
        budget: Total rollouts N (>= 0).
        beam_width: M, the rollouts per kept beam (4 in the paper).

    Returns:
        Non-negative counts summing to `budget`; exactly K are non-zero.
    """
    return _beam(scores, budget, beam_width=beam_width).counts


# --- DVTS -------------------------------------------------------------------------------------


def _dvts(
    scores: npt.ArrayLike,
    budget: int,
    *,
    groups: Sequence[int],
    beam_width: int = DEFAULT_BEAM_WIDTH,
) -> Allocation:
    r = check_scores(scores)
    n = check_budget(budget)
    m = check_positive_int(beam_width, "beam_width")
    ids = check_groups(groups, r.size)
    k = r.size
    if k == 0:
        return _empty_or_zero(0)
    best: dict[int, int] = {}
    for idx in _rank(r):  # best first, so the first hit per group is its argmax
        best.setdefault(ids[int(idx)], int(idx))
    # Groups ranked by their argmax score, then by group id (a label, not a position).
    ranked = sorted(best, key=lambda g: (-r[best[g]], g))
    shares = _spread(n, max(max(1, n // m), len(ranked)))
    counts = [0] * k
    weights = [0.0] * k
    for g, share in zip(ranked, shares, strict=False):
        counts[best[g]] = share
        weights[best[g]] = 1.0 / len(ranked)
    return Allocation(counts=counts, weights=weights, gamma=None)


def dvts(
    scores: npt.ArrayLike,
    budget: int,
    *,
    groups: Sequence[int],
    beam_width: int = DEFAULT_BEAM_WIDTH,
) -> list[int]:
    """DVTS: each independent subtree keeps only its best candidate (greedy per subtree).

    The budget is cut into S = max(N // M, G) equal shares (as evenly as possible), where G is
    the number of distinct group ids present; each present group's argmax takes one share, the
    larger shares going to groups with higher argmax scores (then lower group id). With the
    usual G = N // M subtrees each argmax gets exactly M and the counts sum to N. When
    subtrees have finished (G < N // M) their shares are not redistributed, as in DVTS, so the
    counts sum to G·N/S < N. More groups than N // M share all N among themselves.

    Args:
        scores: One PRM score per candidate.
        budget: Total rollouts N (>= 0).
        groups: One integer subtree id per candidate.
        beam_width: M, the rollouts per subtree (4 in the paper).

    Returns:
        Non-negative counts, non-zero only at per-group argmaxes (lowest index on ties).
    """
    return _dvts(scores, budget, groups=groups, beam_width=beam_width).counts


# --- REBASE -----------------------------------------------------------------------------------


def _rebase(
    scores: npt.ArrayLike,
    budget: int,
    *,
    temperature: float = DEFAULT_BALANCE_TEMPERATURE,
    rounding: Rounding | Literal["sequential_ceil"] = "largest_remainder",
) -> Allocation:
    w = quality_weights(scores, temperature)
    n = check_budget(budget)
    mode = check_rounding(rounding, _REBASE_ROUNDINGS)
    if w.size == 0 or n == 0:
        return _empty_or_zero(w.size, w)
    if mode == "sequential_ceil":
        counts = sequential_ceil(w, n)
    else:
        counts = round_to_budget(w, n, rounding=rounding)  # type: ignore[arg-type]
    return Allocation(counts=counts, weights=[float(x) for x in w], gamma=None)


def rebase(
    scores: npt.ArrayLike,
    budget: int,
    *,
    temperature: float = DEFAULT_BALANCE_TEMPERATURE,
    rounding: Rounding | Literal["sequential_ceil"] = "largest_remainder",
) -> list[int]:
    """REBASE: rollouts in proportion to `w = softmax(R / T_b)`, i.e. `B_i = round(N·w_i)`.

    This is the solution-level optimum when candidates are independent; with duplicated
    reasoning directions it over-funds the crowded ones (DORA Prop. 2), which `dora` fixes.

    Args:
        scores: One PRM score per candidate.
        budget: Total rollouts N (>= 0).
        temperature: T_b (0.1 as in DORA; the original REBASE yaml has 0.2).
        rounding: `"largest_remainder"` (default), `"code"` (the DORA fork's rounding) or
            `"sequential_ceil"` (the original REBASE repo's rule); see `round_to_budget`.

    Returns:
        Non-negative counts summing to `budget`.
    """
    return _rebase(scores, budget, temperature=temperature, rounding=rounding).counts


# --- DORA -------------------------------------------------------------------------------------


def _dora(
    scores: npt.ArrayLike,
    budget: int,
    *,
    embeddings: npt.ArrayLike,
    temperature: float = DEFAULT_BALANCE_TEMPERATURE,
    similarity_temperature: float = DEFAULT_SIMILARITY_TEMPERATURE,
    prefilter: bool = False,
    rounding: Rounding = "largest_remainder",
) -> Allocation:
    r = check_scores(scores)
    n = check_budget(budget)
    t_b = check_temperature(temperature)
    t_s = check_temperature(similarity_temperature, "similarity_temperature")
    check_rounding(rounding, ROUNDINGS)
    e = check_embeddings(embeddings, rows=r.size)
    k = r.size
    if k == 0:
        return _empty_or_zero(0)
    keep = np.arange(k)
    if prefilter and n > 0:
        # The released code: drop candidates REBASE would give 0 copies (np.round, half to even).
        survives = np.round(n * quality_weights(r, t_b)) > 0
        keep = np.flatnonzero(survives if survives.any() else r == r.max())
    w = quality_weights(r[keep], t_b)
    gamma = _uniqueness_from_similarity(_cosine_similarity(e[keep]), t_s)
    product = w * gamma
    full_w = np.zeros(k)
    full_w[keep] = product / math.fsum(product)
    full_gamma = np.zeros(k)
    full_gamma[keep] = gamma
    counts = [0] * k
    if n > 0:
        # Pass the unnormalised product: round_to_budget normalises it the same way REBASE's
        # weights are, so γ ≡ 1 reproduces REBASE bit for bit.
        for idx, c in zip(keep, round_to_budget(product, n, rounding=rounding), strict=True):
            counts[int(idx)] = c
    return Allocation(
        counts=counts,
        weights=[float(x) for x in full_w],
        gamma=[float(x) for x in full_gamma],
    )


def dora(
    scores: npt.ArrayLike,
    budget: int,
    *,
    embeddings: npt.ArrayLike,
    temperature: float = DEFAULT_BALANCE_TEMPERATURE,
    similarity_temperature: float = DEFAULT_SIMILARITY_TEMPERATURE,
    prefilter: bool = False,
    rounding: Rounding = "largest_remainder",
) -> list[int]:
    """DORA (paper Eq. 10–13): REBASE weights divided among candidates of the same direction.

    `w = softmax(R / T_b)`, `γ = diag(row-softmax(cos(E) / T_s))`, `w' ∝ w·γ`, and the counts
    are `round_to_budget(w', N)`. k exact duplicates of one direction share that direction's
    weight (Theorem 1) instead of each claiming it in full as under REBASE.

    `prefilter=True` follows the released code instead of the paper: candidates for which
    REBASE's `np.round(N·w_i)` is 0 are dropped first (they get 0), and w and γ are recomputed
    over the survivors, so a poor but unique candidate cannot be lifted by its γ. If nothing
    survives (only possible with more than 2N candidates), the candidates with the top score
    are kept. With a budget of 0 there is nothing to filter and the paper's weights are reported.

    Args:
        scores: One PRM score per candidate.
        budget: Total rollouts N (>= 0).
        embeddings: A (k, d) array of candidate embeddings (DORA embeds the partial solution
            without the question, with BGE-M3).
        temperature: T_b of the quality softmax (0.1).
        similarity_temperature: T_s of the similarity softmax (0.01 for BGE-M3).
        prefilter: Apply the released code's REBASE pre-filter (default False, as the paper).
        rounding: `"largest_remainder"` (default) or `"code"`; see `round_to_budget`.

    Returns:
        Non-negative counts summing to `budget`.
    """
    return _dora(
        scores,
        budget,
        embeddings=embeddings,
        temperature=temperature,
        similarity_temperature=similarity_temperature,
        prefilter=prefilter,
        rounding=rounding,
    ).counts
