"""Input validation shared by the allocation rules. Messages say what was wrong and what is allowed."""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

BUDGET_ERROR = "budget must be a non-negative integer (rollouts per iteration), got {value!r}"
SCORES_SHAPE_ERROR = (
    "scores must be a flat sequence of numbers (one per candidate), got shape {shape}"
)
SCORES_FINITE_ERROR = "scores must be finite numbers; candidate {index} has score {value!r}"
WEIGHTS_SHAPE_ERROR = "weights must be a flat sequence of numbers, got shape {shape}"
WEIGHTS_VALUE_ERROR = "weights must be finite and >= 0; index {index} has weight {value!r}"
WEIGHTS_ZERO_ERROR = "weights must not all be zero (nothing to share the budget by)"
EMBED_SHAPE_ERROR = (
    "embeddings must be a 2-D array with one row per candidate: expected {rows} row(s), "
    "got shape {shape}"
)
EMBED_FINITE_ERROR = "embeddings must be finite; row {index} contains NaN or inf"
EMBED_ZERO_ERROR = (
    "embedding row {index} has zero norm, so its cosine similarity is undefined; "
    "embed a non-empty text or drop the candidate"
)
GROUPS_LENGTH_ERROR = (
    "groups must give one integer group id per candidate: {k} score(s) but {n} group id(s)"
)
GROUPS_TYPE_ERROR = "group ids must be integers; position {index} is {value!r}"
TEMPERATURE_ERROR = "{name} must be > 0 (math.inf allowed), got {value!r}"
POSITIVE_INT_ERROR = "{name} must be a positive integer, got {value!r}"
KAPPA_ERROR = "kappa must be >= 0 (0 and math.inf give the limiting regimes), got {value!r}"
ROUNDING_ERROR = "unknown rounding {value!r}; expected one of: {known}"


def check_budget(budget: Any) -> int:
    """A budget is a count of rollouts: reject bools, floats and negatives early."""
    if isinstance(budget, bool):
        raise ValueError(BUDGET_ERROR.format(value=budget))
    try:
        value = operator.index(budget)
    except TypeError:
        raise ValueError(BUDGET_ERROR.format(value=budget)) from None
    if value < 0:
        raise ValueError(BUDGET_ERROR.format(value=budget))
    return value


def check_scores(scores: npt.ArrayLike) -> np.ndarray:
    """Scores as a finite float64 vector; NaN would silently poison every softmax."""
    arr = np.asarray(scores, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(SCORES_SHAPE_ERROR.format(shape=arr.shape))
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        i = int(bad[0])
        raise ValueError(SCORES_FINITE_ERROR.format(index=i, value=float(arr[i])))
    return arr


def check_weights(weights: npt.ArrayLike) -> np.ndarray:
    """Weights as a finite, non-negative float64 vector with a positive total (if non-empty)."""
    arr = np.asarray(weights, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(WEIGHTS_SHAPE_ERROR.format(shape=arr.shape))
    bad = np.flatnonzero(~np.isfinite(arr) | (arr < 0))
    if bad.size:
        i = int(bad[0])
        raise ValueError(WEIGHTS_VALUE_ERROR.format(index=i, value=float(arr[i])))
    if arr.size and not np.any(arr > 0):
        raise ValueError(WEIGHTS_ZERO_ERROR)
    return arr


def check_embeddings(embeddings: npt.ArrayLike, rows: int | None = None) -> np.ndarray:
    """Embeddings as a finite (k, d) float64 matrix with non-zero rows."""
    arr = np.asarray(embeddings, dtype=np.float64)
    if arr.size == 0 and arr.ndim <= 2 and rows in (None, 0):
        return np.zeros((0, 1))
    expected = "k" if rows is None else rows
    if arr.ndim != 2 or (rows is not None and arr.shape[0] != rows) or arr.shape[1] == 0:
        raise ValueError(EMBED_SHAPE_ERROR.format(rows=expected, shape=arr.shape))
    finite = np.isfinite(arr).all(axis=1)
    if not finite.all():
        raise ValueError(EMBED_FINITE_ERROR.format(index=int(np.flatnonzero(~finite)[0])))
    zero = ~np.any(arr != 0, axis=1)
    if zero.any():
        raise ValueError(EMBED_ZERO_ERROR.format(index=int(np.flatnonzero(zero)[0])))
    return arr


def check_groups(groups: Sequence[int], k: int) -> list[int]:
    """Group ids as Python ints, one per candidate."""
    ids: list[Any] = list(groups)
    if len(ids) != k:
        raise ValueError(GROUPS_LENGTH_ERROR.format(k=k, n=len(ids)))
    out: list[int] = []
    for i, g in enumerate(ids):
        if isinstance(g, bool):
            raise ValueError(GROUPS_TYPE_ERROR.format(index=i, value=g))
        try:
            out.append(operator.index(g))
        except TypeError:
            raise ValueError(GROUPS_TYPE_ERROR.format(index=i, value=g)) from None
    return out


def check_temperature(value: float, name: str = "temperature") -> float:
    """Temperatures divide logits, so they must be strictly positive (inf means uniform)."""
    try:
        t = float(value)
    except (TypeError, ValueError):
        raise ValueError(TEMPERATURE_ERROR.format(name=name, value=value)) from None
    if math.isnan(t) or t <= 0:
        raise ValueError(TEMPERATURE_ERROR.format(name=name, value=value))
    return t


def check_positive_int(value: Any, name: str) -> int:
    """Widths are counts: a positive integer, not a bool or float."""
    if isinstance(value, bool):
        raise ValueError(POSITIVE_INT_ERROR.format(name=name, value=value))
    try:
        n = operator.index(value)
    except TypeError:
        raise ValueError(POSITIVE_INT_ERROR.format(name=name, value=value)) from None
    if n < 1:
        raise ValueError(POSITIVE_INT_ERROR.format(name=name, value=value))
    return n


def check_kappa(value: float) -> float:
    """The Beta concentration κ: 0 and inf are accepted as the limiting regimes of Prop. 1."""
    try:
        kappa = float(value)
    except (TypeError, ValueError):
        raise ValueError(KAPPA_ERROR.format(value=value)) from None
    if math.isnan(kappa) or kappa < 0:
        raise ValueError(KAPPA_ERROR.format(value=value))
    return kappa


def check_rounding(value: str, known: Sequence[str]) -> str:
    """Reject unknown rounding modes with the list of known ones."""
    if value not in known:
        raise ValueError(ROUNDING_ERROR.format(value=value, known=", ".join(known)))
    return value
