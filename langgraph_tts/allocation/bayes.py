"""DORA Prop. 1: the exact Bayes-optimal integer allocation under a Beta model of the PRM.

Not a search strategy of the paper; it is the yardstick REBASE approximates (finite κ) and
the reason DORA works in the low-confidence regime. Useful for ablations and for tests.
"""

from __future__ import annotations

import heapq
import math

import numpy.typing as npt

from ._checks import check_budget, check_kappa
from .rules import DEFAULT_BALANCE_TEMPERATURE, Allocation, _empty_or_zero
from .weights import quality_weights

__all__ = ["bayes_optimal"]


def _bayes_optimal(
    scores: npt.ArrayLike,
    budget: int,
    *,
    kappa: float,
    temperature: float = DEFAULT_BALANCE_TEMPERATURE,
) -> Allocation:
    w = quality_weights(scores, temperature)
    n = check_budget(budget)
    kap = check_kappa(kappa)
    k = w.size
    if k == 0 or n == 0:
        return _empty_or_zero(k, w)
    counts = [0] * k
    # Marginal gain of unit B_i+1 is κ·w_i·[ψ(κ+B_i+1) − ψ(κ+B_i)] = κ·w_i / (κ + B_i). Dividing
    # by κ keeps the order and makes κ = 0 (gain inf at B_i = 0) and κ = inf (gain 0) well
    # defined. Heap keys: larger gain, then larger weight, then lower index.
    heap = [(-_gain(float(w[i]), kap, 0), -float(w[i]), i) for i in range(k)]
    heapq.heapify(heap)
    for _ in range(n):
        _, neg_w, i = heapq.heappop(heap)
        counts[i] += 1
        heapq.heappush(heap, (-_gain(-neg_w, kap, counts[i]), neg_w, i))
    return Allocation(counts=counts, weights=[float(x) for x in w], gamma=None)


def _gain(w: float, kappa: float, b: int) -> float:
    """w / (κ + b): the marginal utility of one more rollout, up to the constant factor κ."""
    denom = kappa + b
    if denom == 0:
        return math.inf
    return w / denom


def bayes_optimal(
    scores: npt.ArrayLike,
    budget: int,
    *,
    kappa: float,
    temperature: float = DEFAULT_BALANCE_TEMPERATURE,
) -> list[int]:
    """The exact Bayes-optimal integer allocation of DORA Prop. 1 for a Beta concentration κ.

    With `p_i ~ Beta(κ·w_i, κ(1 − w_i))` and `w = softmax(R / T_b)`, the expected log-utility
    is `L(B) = Σ κ·w_i·[ψ(κ + B_i) − ψ(κ)]`. It is separable and concave in each B_i, so
    handing out the N units one at a time to the largest marginal gain `κ·w_i / (κ + B_i)`
    (the digamma recurrence; no scipy) is exactly optimal. Regimes: κ -> 0 gives one rollout
    each to the top-min(k, N); κ -> inf gives all N to the argmax; in between
    `B_i ≈ (N + kκ)·w_i − κ` for the candidates that get any. `kappa=0` and `kappa=math.inf`
    return those limits. Ties go to the larger weight, then to the lower index. O(N log k).

    Args:
        scores: One PRM score per candidate.
        budget: Total rollouts N (>= 0).
        kappa: Beta concentration κ >= 0 (confidence in the PRM), `math.inf` allowed.
        temperature: T_b of the prior-mean softmax (0.1).

    Returns:
        Non-negative counts summing to `budget`.
    """
    return _bayes_optimal(scores, budget, kappa=kappa, temperature=temperature).counts
