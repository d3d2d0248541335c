"""`allocate`: one entry point over the named rules, returning the full `Allocation` record."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

import numpy.typing as npt

from ._checks import check_budget
from .bayes import _bayes_optimal, bayes_optimal
from .rules import (
    Allocation,
    _beam,
    _dora,
    _dvts,
    _rebase,
    _uniform,
    beam_topk,
    dora,
    dvts,
    rebase,
    uniform,
)

__all__ = ["ALLOCATORS", "allocate"]

UNKNOWN_RULE_ERROR = "unknown allocation rule {rule!r}; known rules: {known}"
UNKNOWN_OPTION_ERROR = "rule {rule!r} does not take option(s) {bad}; it takes: {allowed}"
MISSING_DATA_ERROR = "rule {rule!r} needs {name}=... ({why})"
MISSING_OPTION_ERROR = (
    "rule {rule!r} needs option(s) {missing}; pass them as keywords: "
    "allocate({rule!r}, scores, budget, {missing_kw})"
)

ALLOCATORS: dict[str, Callable[..., list[int]]] = {
    "uniform": uniform,
    "beam": beam_topk,
    "dvts": dvts,
    "rebase": rebase,
    "dora": dora,
    "bayes_optimal": bayes_optimal,
}
"""Rule name -> `f(scores, budget, **options) -> counts`. A function added here is usable by
`allocate` too; its `Allocation.weights` are then its counts divided by the budget."""

_DETAILED: dict[Callable[..., list[int]], Callable[..., Allocation]] = {
    uniform: _uniform,
    beam_topk: _beam,
    dvts: _dvts,
    rebase: _rebase,
    dora: _dora,
    bayes_optimal: _bayes_optimal,
}
_NEEDS = {
    "embeddings": "one embedding row per candidate",
    "groups": "one subtree id per candidate",
}


def allocate(
    rule: str,
    scores: npt.ArrayLike,
    budget: int,
    *,
    embeddings: npt.ArrayLike | None = None,
    groups: Sequence[int] | None = None,
    **params: Any,
) -> Allocation:
    """Run the allocation rule named `rule` and return counts, weights and (for DORA) γ.

    Graph nodes call this so that the rule is a run-time setting. `embeddings` and `groups`
    are data, passed only to the rules that use them (DORA, DVTS) and ignored by the others;
    `params` are the rule's own options and are checked against its signature.

    Args:
        rule: A key of `ALLOCATORS`: "uniform", "beam", "dvts", "rebase", "dora" or
            "bayes_optimal".
        scores: One PRM score per candidate.
        budget: Total rollouts N (>= 0).
        embeddings: (k, d) candidate embeddings; required by "dora".
        groups: Subtree id per candidate; required by "dvts".
        **params: Rule options, e.g. `temperature=0.1`, `beam_width=4`, `kappa=1.0`.

    Returns:
        The `Allocation`.

    Examples:
        >>> allocate("rebase", [0.9, 0.5, 0.1], 8).counts
        [8, 0, 0]
    """
    fn = ALLOCATORS.get(rule)
    if fn is None:
        raise ValueError(UNKNOWN_RULE_ERROR.format(rule=rule, known=", ".join(sorted(ALLOCATORS))))
    keyword_only = [
        p for p in inspect.signature(fn).parameters.values() if p.kind is p.KEYWORD_ONLY
    ]
    options = [p.name for p in keyword_only]
    data = {"embeddings": embeddings, "groups": groups}
    for name, value in data.items():
        if name in options:
            if value is None:
                raise ValueError(MISSING_DATA_ERROR.format(rule=rule, name=name, why=_NEEDS[name]))
            params[name] = value
    bad = sorted(set(params) - set(options))
    if bad:
        allowed = ", ".join(o for o in options if o not in data) or "none"
        raise ValueError(
            UNKNOWN_OPTION_ERROR.format(rule=rule, bad=", ".join(bad), allowed=allowed)
        )
    missing = [p.name for p in keyword_only if p.default is p.empty and p.name not in params]
    if missing:
        raise ValueError(
            MISSING_OPTION_ERROR.format(
                rule=rule,
                missing=", ".join(missing),
                missing_kw=", ".join(f"{m}=..." for m in missing),
            )
        )
    detailed = _DETAILED.get(fn)
    if detailed is not None:
        return detailed(scores, budget, **params)
    counts = [int(c) for c in fn(scores, budget, **params)]
    n = check_budget(budget)
    return Allocation(counts=counts, weights=[c / n if n else 0.0 for c in counts], gamma=None)
