"""Compute-optimal strategy selection (Snell et al. 2024, arXiv 2408.03314): the pure math.

No I/O and no LangGraph here, so the rules can be tested on synthetic data:

- **difficulty bins** — quantile thresholds fitted on a validation set of per-problem
  difficulty *scores*, where a higher score means an easier problem: Snell's model-predicted
  difficulty (mean last-step PRM score over k samples) or oracle difficulty (pass rate when the
  answers are known). Bin 1 is the easiest, bin `bins` the hardest.
- **the strategy table** — for each (bin, budget N), the candidate θ with the best accuracy on
  the bin's validation problems, with the accuracy of that selection estimated by 2-fold
  cross-validation within the bin (paper §3.2). Ties go to the cheaper, then simpler, θ.
- **JSON** — `StrategyTable` is a pydantic model; `parse_table` turns a bad file into one
  `ConfigError` naming the field.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    ValidationError,
    model_validator,
)

from ..errors import ConfigError
from .choices import CandidateStrategy, Choice, candidates, candidates_for
from .plan import BudgetPlan, CostMetric, PlanEntry, two_folds

__all__ = [
    "DEFAULT_BINS",
    "BudgetPlan",
    "CandidateRun",
    "CandidateStrategy",
    "Cell",
    "Choice",
    "CostMetric",
    "DifficultyKind",
    "PlanEntry",
    "Selection",
    "StrategyTable",
    "assign_bin",
    "candidates",
    "candidates_for",
    "fit_bins",
    "fit_table",
    "format_plans",
    "format_table",
    "group_by_bin",
    "parse_table",
]

DifficultyKind = Literal["predicted", "oracle"]
"""`predicted`: mean last-step PRM score of k samples; `oracle`: their pass rate (needs answers,
so only for analysis — a graph cannot route on it)."""

DEFAULT_BINS = 5
"""Snell et al. bin difficulty into quintiles."""


# --- bins -------------------------------------------------------------------------------------


def fit_bins(scores: Sequence[float], bins: int = DEFAULT_BINS) -> list[float]:
    """Quantile thresholds (ascending, `bins - 1` of them) of validation difficulty scores.

    Raises:
        ValueError: no scores, a non-finite score, or fewer than one bin.
    """
    if bins < 1:
        raise ValueError(f"bins must be at least 1, got {bins}")
    values = np.asarray(scores, dtype=float)
    if values.size == 0:
        raise ValueError("cannot fit difficulty bins on no problems")
    if not np.all(np.isfinite(values)):
        raise ValueError("difficulty scores must be finite")
    quantiles = np.quantile(values, [i / bins for i in range(1, bins)])
    return [float(q) for q in quantiles]


def assign_bin(score: float, thresholds: Sequence[float]) -> int:
    """Bin of a difficulty score: 1 (easiest, score >= every threshold) to len+1 (hardest).

    Higher scores mean easier problems, so the bin never increases with the score.
    """
    return len(thresholds) + 1 - bisect.bisect_right(list(thresholds), score)


def group_by_bin(scores: Mapping[str, float], thresholds: Sequence[float]) -> dict[int, list[str]]:
    """Problem ids by difficulty bin (only bins that have problems)."""
    by_bin: dict[int, list[str]] = {}
    for pid, score in scores.items():
        by_bin.setdefault(assign_bin(score, thresholds), []).append(pid)
    return by_bin


# --- the table --------------------------------------------------------------------------------


class Cell(BaseModel):
    """The θ chosen for one (bin, budget) and the evidence for it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    bin: int = Field(ge=1)
    budget: int = Field(gt=0)
    choice: Choice
    problems: int = Field(ge=0, description="Validation problems in the bin (0: fitted on all).")
    accuracy: float = Field(ge=0.0, le=1.0, description="Accuracy of `choice` on the bin.")
    cv_accuracy: float = Field(
        ge=0.0, le=1.0, description="2-fold CV accuracy of selecting within the bin."
    )
    candidates: dict[str, float] = Field(
        default_factory=dict, description="Accuracy of every candidate θ on the bin, by name."
    )


@dataclass(frozen=True)
class Selection:
    """What the table says for one problem: its bin, the fitted budget used, and θ."""

    bin: int
    budget: int
    """The fitted budget whose cell was used (the largest not above the run's budget)."""
    cell: Cell


class StrategyTable(BaseModel):
    """Per-(difficulty bin, budget) strategy choices, fitted by `fit_table` (JSON-serialisable).

    `langgraph-tts calibrate` writes one (`load_table("table.json")` reads it back); by hand,
    two bins split at a difficulty score of 0.6:

    Examples:
        >>> from langgraph_tts.compute_optimal import Cell, Choice, StrategyTable
        >>> easy, hard = Choice(strategy="best_of_n"), Choice(strategy="dvts", beam_width=4)
        >>> cells = [
        ...     Cell(bin=b, budget=16, choice=c, problems=20, accuracy=0.9, cv_accuracy=0.85)
        ...     for b, c in ((1, easy), (2, hard))
        ... ]
        >>> table = StrategyTable(difficulty_samples=8, thresholds=[0.6], cells=cells)
        >>> table.select(0.9, budget=16).cell.choice.name   # a high score: easy, bin 1
        'best_of_n'
        >>> picked = table.select(0.3, budget=32)   # N=32 uses the cells fitted at 16
        >>> picked.bin, picked.budget, picked.cell.choice.name
        (2, 16, 'dvts(M=4)')
        >>> StrategyTable.model_validate_json(table.model_dump_json()) == table
        True
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1] = 1
    difficulty: DifficultyKind = "predicted"
    difficulty_samples: int = Field(
        gt=0, description="k: samples per problem the difficulty scores were estimated from."
    )
    thresholds: list[float] = Field(
        description="Ascending quantile thresholds of the difficulty score; higher = easier."
    )
    cells: list[Cell]
    source: dict[str, JsonValue] = Field(
        default_factory=dict, description="Provenance: dataset, strategies, models, ..."
    )
    cost_metric: CostMetric = Field(
        default="samples", description="What the plans' budgets count (see `plans`)."
    )
    plans: list[BudgetPlan] = Field(
        default_factory=list,
        description="Per-bin θ and budget for a run budget N (fitted by `fit_plans`); a run "
        "whose budget has no plan uses `cells` (θ at N for every bin).",
    )

    @model_validator(mode="after")
    def _complete_grid(self) -> StrategyTable:
        if any(b < a for a, b in zip(self.thresholds, self.thresholds[1:], strict=False)):
            raise ValueError("thresholds must be in ascending order")
        if not self.cells:
            raise ValueError("cells must not be empty")
        expected = {(b, n) for b in range(1, self.bins + 1) for n in self.budgets}
        keys = [(c.bin, c.budget) for c in self.cells]
        if len(keys) != len(set(keys)) or set(keys) != expected:
            missing = sorted(expected - set(keys))
            msg = (
                f"cells must hold exactly one entry per bin 1..{self.bins} and budget "
                f"{self.budgets}; missing {missing}"
                if missing
                else "cells hold a (bin, budget) twice or a bin beyond the thresholds"
            )
            raise ValueError(msg)
        targets = [p.target for p in self.plans]
        if len(targets) != len(set(targets)):
            raise ValueError("plans hold a target budget twice")
        for plan in self.plans:
            if sorted(e.bin for e in plan.entries) != list(range(1, self.bins + 1)):
                raise ValueError(f"the plan for N={plan.target} needs one entry per bin")
        return self

    @property
    def bins(self) -> int:
        """Number of difficulty bins (one more than the thresholds)."""
        return len(self.thresholds) + 1

    @property
    def budgets(self) -> list[int]:
        """Fitted budgets, ascending."""
        return sorted({c.budget for c in self.cells})

    @property
    def strategies(self) -> set[str]:
        """Strategies any cell picks (to know which servers a run may need)."""
        return {c.choice.strategy for c in self.cells}

    def bin_of(self, score: float) -> int:
        """Difficulty bin of a score (1 = easiest)."""
        return assign_bin(score, self.thresholds)

    def budget_for(self, budget: int) -> int:
        """The fitted budget a run with budget N uses: the largest one not above N.

        A run with N = 32 on a table fitted at 4 and 16 uses the N = 16 choices (with the run's
        own N: beam search's M = √N is recomputed from it).

        Raises:
            ConfigError: N is below every fitted budget.
        """
        fitted = [n for n in self.budgets if n <= budget]
        if not fitted:
            msg = (
                f"budget {budget} is below every budget of the strategy table "
                f"({', '.join(map(str, self.budgets))}); use a larger budget or refit"
            )
            raise ConfigError(msg)
        return fitted[-1]

    def plan_for(self, budget: int) -> BudgetPlan | None:
        """The plan of the largest target not above the run's budget N, if any."""
        fitted = [p for p in self.plans if p.target <= budget]
        return max(fitted, key=lambda p: p.target) if fitted else None

    def cell(self, bin_index: int, budget: int) -> Cell:
        """The cell of a bin and a *fitted* budget."""
        for c in self.cells:
            if c.bin == bin_index and c.budget == budget:
                return c
        raise KeyError((bin_index, budget))

    def select(self, score: float, budget: int) -> Selection:
        """Bin, fitted budget and θ for a problem with difficulty `score` at budget N."""
        b = self.bin_of(score)
        fitted = self.budget_for(budget)
        return Selection(bin=b, budget=fitted, cell=self.cell(b, fitted))


def parse_table(text: str, source: str = "strategy table") -> StrategyTable:
    """A `StrategyTable` from JSON text; a bad file is one `ConfigError` naming the field.

    Raises:
        ConfigError: not JSON, or a field is missing or invalid (`cells.3.choice.strategy: ...`).
    """
    try:
        return StrategyTable.model_validate_json(text)
    except ValidationError as err:
        first = err.errors()[0]
        loc = ".".join(str(x) for x in first.get("loc", ())) or "table"
        detail = str(first.get("msg", "invalid")).removeprefix("Value error, ")
        more = f" (and {err.error_count() - 1} more)" if err.error_count() > 1 else ""
        if first.get("type") == "json_invalid":
            raise ConfigError(f"{source}: not valid JSON ({detail})") from None
        raise ConfigError(f"{source}: invalid strategy table: {loc}: {detail}{more}") from None


# --- fitting ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CandidateRun:
    """One candidate θ evaluated at one budget on the validation problems."""

    choice: Choice
    budget: int
    correct: Mapping[str, float]
    """Problem id -> whether the run's answer was right (1 or 0; problems that failed are left
    out), or the chance that it is (best-of-N read from a pool, see `subsample`)."""
    cost: float = 0.0
    """Mean spend per problem (e.g. FLOPs); lower wins a tie in accuracy."""


def _accuracy(run: CandidateRun, ids: Sequence[str]) -> float:
    return sum(run.correct[i] for i in ids) / len(ids) if ids else 0.0


def _best(runs: Sequence[CandidateRun], ids: Sequence[str]) -> CandidateRun:
    """Most accurate run on `ids`; ties go to the lower cost, then to the earlier (simpler)."""
    order = {id(r): k for k, r in enumerate(runs)}
    return min(runs, key=lambda r: (-_accuracy(r, ids), r.cost, order[id(r)]))


def _two_fold(runs: Sequence[CandidateRun], ids: Sequence[str], key: str) -> float:
    """Select on one half of `ids`, score on the other, swap; pooled held-out accuracy."""
    folds = two_folds(ids, key)
    held_out = 0.0
    for train, test in (folds, folds[::-1]):
        pick = _best(runs, train)
        held_out += sum(pick.correct[i] for i in test)
    return held_out / len(ids) if ids else 0.0


def fit_table(
    scores: Mapping[str, float],
    runs: Sequence[CandidateRun],
    *,
    bins: int = DEFAULT_BINS,
    difficulty: DifficultyKind = "predicted",
    difficulty_samples: int = 8,
    seed: int = 0,
    source: Mapping[str, JsonValue] | None = None,
) -> StrategyTable:
    """Fit difficulty bins and the per-(bin, budget) choice of θ on validation results.

    Args:
        scores: Problem id -> difficulty score (higher = easier).
        runs: Every candidate at every budget; candidates are ranked in this order on ties.
        bins: Number of quantile bins (Snell: 5).
        difficulty: What `scores` are (`predicted` or `oracle`).
        difficulty_samples: k the scores were estimated from (recorded in the table).
        seed: Seed of the 2-fold split.
        source: Free-form provenance written into the table (dataset, strategies, ...).

    Returns:
        A table whose bins are fitted on every problem with a score; each budget's cells use the
        problems every candidate at that budget answered. A bin without such problems gets the
        θ that is best over all of them (`problems: 0`).

    Raises:
        ValueError: no scores, no runs, or no problem answered by every candidate of a budget.
    """
    if not runs:
        raise ValueError("fit_table needs at least one candidate run")
    thresholds = fit_bins(list(scores.values()), bins)
    by_bin = group_by_bin(scores, thresholds)
    cells: list[Cell] = []
    for budget in sorted({r.budget for r in runs}):
        group = [r for r in runs if r.budget == budget]
        usable = set(scores).intersection(*(r.correct.keys() for r in group))
        if not usable:
            raise ValueError(f"no validation problem was answered by every candidate at N={budget}")
        everyone = sorted(usable)
        for b in range(1, bins + 1):
            ids = sorted(usable.intersection(by_bin.get(b, [])))
            pool = ids or everyone
            pick = _best(group, pool)
            cells.append(
                Cell(
                    bin=b,
                    budget=budget,
                    choice=pick.choice,
                    problems=len(ids),
                    accuracy=_accuracy(pick, pool),
                    cv_accuracy=_two_fold(group, pool, f"{seed}:{b}:{budget}"),
                    candidates={r.choice.name: round(_accuracy(r, pool), 4) for r in group},
                )
            )
    return StrategyTable(
        difficulty=difficulty,
        difficulty_samples=difficulty_samples,
        thresholds=thresholds,
        cells=cells,
        source=dict(source or {}),
    )


def format_table(table: StrategyTable) -> str:
    """The table as Markdown: one row per bin, one column per budget (θ, CV accuracy)."""
    header = ["bin", "difficulty score", *(f"N={n}: θ (CV acc.)" for n in table.budgets)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    edges = [-math.inf, *table.thresholds, math.inf]
    for b in range(1, table.bins + 1):
        low, high = edges[table.bins - b], edges[table.bins - b + 1]
        span = f">= {low:.3f}" if b == 1 else f"< {high:.3f}" if b == table.bins else ""
        span = span or f"{low:.3f} – {high:.3f}"
        row = [str(b), span]
        for n in table.budgets:
            c = table.cell(b, n)
            row.append(f"{c.choice.name} ({c.cv_accuracy:.2f}, n={c.problems})")
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def format_plans(table: StrategyTable) -> str:
    """The plans as Markdown: one row per bin, one column per target budget (θ@n)."""
    if not table.plans:
        return ""
    unit = "samples" if table.cost_metric == "samples" else "tokens"
    header = ["bin", *(f"N={p.target}" for p in table.plans)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for b in range(1, table.bins + 1):
        lines.append("| " + " | ".join([str(b), *(p.entry(b).name for p in table.plans)]) + " |")
    for label, get in (
        (f"mean {unit} (CV)", lambda p: f"{p.mean_cost:.1f} ({p.cv_mean_cost:.1f})"),
        (f"limit ({unit})", lambda p: f"{p.limit:.1f}"),
        ("accuracy (CV)", lambda p: f"{p.accuracy:.3f} ({p.cv_accuracy:.3f})"),
    ):
        lines.append("| " + " | ".join([label, *(get(p) for p in table.plans)]) + " |")
    return "\n".join(lines)
