"""Turning fractional shares of a budget into integer rollout counts.

Three rules, all summing exactly to the budget:

- `largest_remainder` (default): floor(N·w), then one extra unit each to the largest
  fractional remainders (ties: larger weight, then lower index). Order-independent.
- `code`: the DORA/REBASE fork's rule: `np.round(N·w)` (half to even), then the list of copies
  in candidate order is cyclically padded or truncated to N. Order-dependent.
- `sequential_ceil` (REBASE only, private here): the original REBASE repo's rule.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import numpy.typing as npt

from ._checks import check_budget, check_rounding, check_weights

__all__ = ["ROUNDINGS", "Rounding", "round_to_budget"]

Rounding = Literal["largest_remainder", "code"]
"""How `round_to_budget` turns N·w into integers: `largest_remainder` (default) or `code`."""

ROUNDINGS: tuple[str, ...] = ("largest_remainder", "code")

_CEIL_TOLERANCE = 1e-9
"""Float noise on an exact integer (2.0000000000000004) must not add a unit in `ceil`."""


def round_to_budget(
    weights: npt.ArrayLike, budget: int, *, rounding: Rounding = "largest_remainder"
) -> list[int]:
    """Split `budget` rollouts in proportion to `weights`, as integers summing exactly to it.

    `largest_remainder` (default) gives each candidate floor(N·w_i), then hands the units
    still missing to the largest fractional remainders; ties go to the larger weight, then to
    the lower index. Each count is floor or ceil of N·w_i and the result does not depend on the
    order of the candidates (except between candidates with identical weights).

    `code` reproduces the DORA code: counts `np.round(N·w)` (half to even: 2.5 -> 2), the
    copies are listed in candidate order, and that list is repeated cyclically and cut to N
    (`(copies * (N // len + 1))[:N]`). Extra units therefore go to the first candidates and
    surplus units are taken from the last ones. If every count rounds to 0 (only possible when
    there are more than 2N candidates), the argmax (lowest index on ties) gets all N, which is
    what cyclic padding of a one-element list gives; the released code would divide by zero.

    Args:
        weights: Non-negative shares, one per candidate; normalised here, so they need not
            sum to 1, but must not all be 0.
        budget: Total rollouts N (>= 0).
        rounding: `"largest_remainder"` or `"code"`.

    Returns:
        Non-negative counts summing to `budget` (`[]` for no candidates).
    """
    w = check_weights(weights)
    n = check_budget(budget)
    mode = check_rounding(rounding, ROUNDINGS)
    if w.size == 0:
        return []
    if n == 0:
        return [0] * w.size
    w = w / math.fsum(w)
    if mode == "code":
        return _code_round(w, n)
    return _largest_remainder(w, n)


def _largest_remainder(w: np.ndarray, n: int) -> list[int]:
    """Hamilton's method on normalised weights."""
    exact = n * w
    counts = np.floor(exact).astype(np.int64)
    missing = n - int(counts.sum())
    if missing > 0:
        frac = exact - counts
        # lexsort keys: last is primary. Descending remainder, descending weight, ascending index.
        order = np.lexsort((np.arange(w.size), -w, -frac))
        counts[order[:missing]] += 1
    return [int(c) for c in counts]


def _code_round(w: np.ndarray, n: int) -> list[int]:
    """`np.round` then cyclic pad/truncate of the copy list, as in the DORA fork."""
    rounded = np.round(n * w).astype(np.int64)
    if rounded.sum() == 0:
        rounded[int(np.argmax(w))] = 1
    copies = np.repeat(np.arange(w.size), rounded)
    return [int(c) for c in np.bincount(np.resize(copies, n), minlength=w.size)]


def sequential_ceil(weights: npt.ArrayLike, budget: int) -> list[int]:
    """The original REBASE rule (thu-wyz/inference_scaling, `select_softmax`).

    Candidates are visited by weight, largest first (ties: lower index), which is the same as
    by score for a softmax. Each takes `ceil(W · w_i / Σ_remaining w)` of the W units still
    unassigned, then W and the remaining total shrink. The last visited candidate with a
    positive weight takes whatever is left, so the counts sum exactly to the budget. The ceil
    tolerates 1e-9 of float noise, and each take is capped at W.

    Args:
        weights: Non-negative shares (exp(score / T) or their normalised form).
        budget: Total rollouts W (>= 0).

    Returns:
        Non-negative counts summing to `budget` (`[]` for no candidates).
    """
    w = check_weights(weights)
    remaining = check_budget(budget)
    counts = [0] * w.size
    if w.size == 0:
        return counts
    order = np.lexsort((np.arange(w.size), -w))
    ordered = w[order]
    # Suffix totals, summed smallest-first for accuracy; suffix[i] = Σ ordered[i:].
    suffix = np.cumsum(ordered[::-1])[::-1]
    for pos, idx in enumerate(order):
        if remaining == 0 or suffix[pos] <= 0:
            break
        share = remaining * ordered[pos] / suffix[pos]
        take = min(remaining, max(0, math.ceil(share - _CEIL_TOLERANCE)))
        if pos == w.size - 1 or suffix[pos] == ordered[pos]:
            take = remaining
        counts[int(idx)] = take
        remaining -= take
    return counts
