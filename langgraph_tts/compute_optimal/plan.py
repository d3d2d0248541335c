"""Per-bin budgets (Snell et al. 2024, §3.2): choose θ *and* N for every difficulty bin.

Snell's compute-optimal scaling picks, for a given test-time budget, the hyper-parameters that
do best on each difficulty bin; the budget a bin receives is one of them. Here the run's budget
N stands for what best-of-N at N would cost on average (N samples, or N × the mean tokens of
one sample), and a **plan** spends that average unevenly: every bin gets one option — a
candidate θ at a calibrated budget, or just the k difficulty-estimation samples — so that the
validation problems' total accuracy is the highest whose mean cost stays within the average.

The estimation samples count toward the answer: best-of-N at n reuses the k samples and draws
n − k more (the k are independent samples of the same prompt, so the calibrated best-of-N run at
n measures what the reuse gives); "best_of_n at n = k" is the estimate's own vote, for nothing
more. A step-level θ costs the k estimation samples plus its own search.

The choice is an exact multiple-choice knapsack over the bins (a frontier of (cost, value)
pairs, pruned to the points no other point beats on both), fitted on the validation problems
with per-bin accuracies shrunk towards each option's overall accuracy (the prior strength chosen
by 2-fold cross-validation within each bin, which also estimates the plan out of sample).
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from .choices import Choice

__all__ = [
    "SHRINKAGE_GRID",
    "BudgetPlan",
    "CostMetric",
    "Option",
    "PlanEntry",
    "best_plan",
    "bin_values",
    "fit_plans",
    "options_for",
    "two_folds",
]

CostMetric = Literal["samples", "completion_tokens"]
"""What a plan's budget counts: ledger samples (every chat choice, step-level rollouts
included) or policy completion tokens (closer to FLOPs when strategies differ in step length)."""


class PlanEntry(BaseModel):
    """What one difficulty bin runs under a plan."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    bin: int = Field(ge=1)
    choice: Choice
    budget: int = Field(
        gt=0,
        description="N that θ runs at; for best_of_n the total samples, the k reused included.",
    )
    problems: int = Field(ge=0, description="Validation problems in the bin.")
    accuracy: float = Field(ge=0.0, le=1.0)
    mean_cost: float = Field(ge=0.0, description="Per problem, the estimate included.")

    @property
    def name(self) -> str:
        """`best_of_n@32`, `dvts(M=4)@16`, ..."""
        return f"{self.choice.name}@{self.budget}"


class BudgetPlan(BaseModel):
    """Per-bin θ and budget for runs whose budget is `target` (fitted by `fit_plans`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    target: int = Field(gt=0, description="The run budget N this plan serves.")
    limit: float = Field(
        gt=0.0, description="Mean cost per problem allowed: what best-of-N at N costs."
    )
    accuracy: float = Field(ge=0.0, le=1.0, description="On the validation problems.")
    mean_cost: float = Field(ge=0.0, description="On the validation problems, per problem.")
    cv_accuracy: float = Field(ge=0.0, le=1.0, description="2-fold cross-validated accuracy.")
    cv_mean_cost: float = Field(ge=0.0, description="2-fold cross-validated mean cost.")
    shrinkage: float = Field(
        default=0.0, ge=0.0, description="Prior strength m that CV chose (see `bin_values`)."
    )
    entries: list[PlanEntry]

    def entry(self, bin_index: int) -> PlanEntry:
        """The entry of one bin."""
        for e in self.entries:
            if e.bin == bin_index:
                return e
        raise KeyError(bin_index)


@dataclass(frozen=True)
class Option:
    """One thing a bin can run, with its per-problem outcome and total cost (k included)."""

    choice: Choice
    budget: int
    correct: Mapping[str, float]
    """Per problem: right (1) or wrong (0), or the chance of being right (`subsample`)."""
    cost: Mapping[str, float]

    @property
    def name(self) -> str:
        return f"{self.choice.name}@{self.budget}"


def options_for(estimate: Option, runs: Sequence[Option], samples: int) -> list[Option]:
    """What a plan may choose from: the estimate alone, and every run on top of it.

    Args:
        estimate: Best-of-N at n = k (the estimation's vote); its cost is the estimate's.
        runs: Calibrated candidate runs; `cost` is the run's own (without the estimate).
        samples: k.

    Best-of-N at n > k reuses the k samples: it costs the estimate plus (n − k)/n of the run.
    Best-of-N at n ≤ k is left out (the estimate's vote is as good, for nothing more).
    """
    out = [estimate]
    for run in runs:
        bon = run.choice.strategy == "best_of_n"
        if bon and run.budget <= samples:
            continue
        share = (run.budget - samples) / run.budget if bon else 1.0
        common = estimate.cost.keys() & run.cost.keys() & run.correct.keys()
        cost = {p: estimate.cost[p] + share * run.cost[p] for p in common}
        out.append(Option(run.choice, run.budget, {p: run.correct[p] for p in common}, cost))
    return out


def two_folds(ids: Sequence[str], key: str) -> tuple[list[str], list[str]]:
    """A seeded split of `ids` into two halves (every other id of a keyed shuffle)."""
    shuffled = sorted(ids)
    random.Random(key).shuffle(shuffled)
    return shuffled[0::2], shuffled[1::2]


_Point = tuple[float, float, tuple[int, ...]]
"""(total cost, expected problems right, option index per bin so far)."""

SHRINKAGE_GRID = (0.0, 5.0, 20.0, 80.0, 1e6)
"""Prior strengths m tried by cross-validation: 0 trusts every bin's own counts; 1e6 ignores
them (every bin ranks the options by their overall accuracy, so the plan differs from one
strategy everywhere only by what the budget affords per bin). Cross-validation keeps per-bin
choices only where they hold up on unseen problems."""


def bin_values(
    options: Sequence[Option], bins: Sequence[Sequence[str]], shrinkage: float = 0.0
) -> tuple[list[list[float]], list[list[float]]]:
    """(expected problems right, total cost) of every option on every bin.

    With `shrinkage` m > 0 a bin's accuracy is pulled towards the option's accuracy over all
    bins, as a Beta prior of strength m would: (right_b + m × overall) / (n_b + m). Per-bin
    counts of 20-40 problems are noisy, and the plan maximises over many options, so the raw
    counts reward luck; m is chosen by cross-validation (`fit_plans`).
    """
    every = [p for ids in bins for p in ids]
    overall = [sum(o.correct[p] for p in every) / len(every) if every else 0.0 for o in options]
    values, costs = [], []
    for ids in bins:
        n = len(ids)
        right = [sum(o.correct[p] for p in ids) for o in options]
        values.append(
            [
                n * (r + shrinkage * a) / (n + shrinkage) if n else 0.0
                for r, a in zip(right, overall, strict=True)
            ]
        )
        costs.append([sum(o.cost[p] for p in ids) for o in options])
    return values, costs


def best_plan(
    values: Sequence[Sequence[float]], costs: Sequence[Sequence[float]], limit: float
) -> tuple[int, ...] | None:
    """The option per bin with the most expected problems right within a total cost.

    Args:
        values: Per bin, per option: expected problems right (see `bin_values`).
        costs: Per bin, per option: total cost.
        limit: Total cost allowed.

    Exact: after each bin only the (cost, value) points that no cheaper point matches are
    kept. Ties go to the cheaper plan, then to the earlier options.

    Returns:
        The option index for every bin, or None if even the cheapest plan costs more.
    """
    frontier: list[_Point] = [(0.0, 0.0, ())]
    ceiling = limit * (1 + 1e-9) + 1e-9  # float sums of per-problem costs
    for row_values, row_costs in zip(values, costs, strict=True):
        grown = [
            (cost + c, right + v, (*picks, k))
            for cost, right, picks in frontier
            for k, (v, c) in enumerate(zip(row_values, row_costs, strict=True))
            if cost + c <= ceiling
        ]
        grown.sort(key=lambda x: (x[0], -x[1]))
        frontier = []
        for point in grown:
            if not frontier or point[1] > frontier[-1][1] + 1e-9:
                frontier.append(point)
        if not frontier:
            return None
    return max(frontier, key=lambda x: (x[1], -x[0]))[2]


def _plan(
    options: Sequence[Option], bins: Sequence[Sequence[str]], per_problem: float, m: float
) -> tuple[int, ...] | None:
    values, costs = bin_values(options, bins, m)
    return best_plan(values, costs, per_problem * sum(map(len, bins)))


def _score(
    options: Sequence[Option], picks: Sequence[int], bins: Sequence[Sequence[str]]
) -> tuple[float, float]:
    """(Expected) problems right and total cost of a plan on `bins`."""
    right, cost = 0.0, 0.0
    for k, ids in zip(picks, bins, strict=True):
        right += sum(options[k].correct[p] for p in ids)
        cost += sum(options[k].cost[p] for p in ids)
    return right, cost


def _cross_validate(
    options: Sequence[Option], bins: Sequence[Sequence[str]], per_problem: float, m: float, key: str
) -> tuple[float, float] | None:
    """Fit on one half of every bin, score on the other, swap: pooled (accuracy, mean cost)."""
    halves = [two_folds(ids, f"{key}:{b}") for b, ids in enumerate(bins, start=1)]
    right, cost, n = 0.0, 0.0, 0
    for train_side in (0, 1):
        train = [h[train_side] for h in halves]
        test = [h[1 - train_side] for h in halves]
        picks = _plan(options, train, per_problem, m)
        if picks is None:
            return None
        r, c = _score(options, picks, test)
        right, cost, n = right + r, cost + c, n + sum(map(len, test))
    return (right / n, cost / n) if n else None


def fit_plans(
    options: Sequence[Option],
    by_bin: Mapping[int, Sequence[str]],
    bins: int,
    targets: Mapping[int, float],
    *,
    seed: int = 0,
    shrinkage: Sequence[float] = SHRINKAGE_GRID,
) -> list[BudgetPlan]:
    """One plan per target budget whose mean-cost limit some plan can meet.

    Args:
        options: From `options_for`; the problems every option answered are used.
        by_bin: Problem ids of each bin (1 = easiest).
        bins: Number of bins.
        targets: Run budget N -> mean cost per problem allowed (N x the cost of one sample).
        seed: Seed of the cross-validation split.
        shrinkage: Prior strengths m to choose from by 2-fold CV (ties: the larger m); the
            plan is then fitted on every problem with that m.
    """
    usable = set.intersection(*(set(o.correct) for o in options)) if options else set()
    groups = [sorted(usable.intersection(by_bin.get(b, []))) for b in range(1, bins + 1)]
    n = sum(map(len, groups))
    plans: list[BudgetPlan] = []
    for target, per_problem in sorted(targets.items()):
        tried = [
            (cv, m)
            for m in sorted(shrinkage)
            if (cv := _cross_validate(options, groups, per_problem, m, f"{seed}:{target}"))
        ]
        if not n or not tried:
            continue
        (cv_acc, cv_cost), m = max(tried, key=lambda t: (t[0][0], t[1]))
        picks = _plan(options, groups, per_problem, m)
        if picks is None:
            continue
        right, cost = _score(options, picks, groups)
        entries = [
            _entry(b, options[k], ids)
            for b, (k, ids) in enumerate(zip(picks, groups, strict=True), start=1)
        ]
        plans.append(
            BudgetPlan(
                target=target,
                limit=round(per_problem, 3),
                accuracy=round(right / n, 4),
                mean_cost=round(cost / n, 3),
                cv_accuracy=round(cv_acc, 4),
                cv_mean_cost=round(cv_cost, 3),
                shrinkage=m,
                entries=entries,
            )
        )
    return plans


def _entry(bin_index: int, option: Option, ids: Sequence[str]) -> PlanEntry:
    n = len(ids)
    return PlanEntry(
        bin=bin_index,
        choice=option.choice,
        budget=option.budget,
        problems=n,
        accuracy=round(sum(option.correct[p] for p in ids) / n, 4) if n else 0.0,
        mean_cost=round(sum(option.cost[p] for p in ids) / n, 3) if n else 0.0,
    )
