"""Fit a strategy table from evaluation runs on a validation set (`langgraph-tts calibrate`).

Every run is an ordinary resumable evaluation (`evaluation.run_eval`) in its own directory
under `runs_dir`: `difficulty/` (the k-sample estimate of every problem) and one directory per
candidate θ and budget (`beam-m2-n4/`, ...). Running the same calibration again skips the
problems already answered, then refits the table from all rows.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from pathlib import Path
from statistics import fmean
from typing import Any

from pydantic import JsonValue

from ..clients.types import Embedder, Policy, RewardModel
from ..context import with_overrides
from ..errors import ConfigError, TTSError
from ..evaluation import EvalRow, read_results, run_eval
from ..grading import Grader, default_grader
from ..search.graph import create_search_graph
from ..solve import Solver
from .graph import difficulty_context, measure_difficulty
from .plan import CostMetric, Option, fit_plans, options_for
from .table import (
    DEFAULT_BINS,
    CandidateRun,
    Choice,
    DifficultyKind,
    StrategyTable,
    candidates_for,
    fit_table,
    group_by_bin,
)

__all__ = ["calibrate", "run_name"]

OnRun = Callable[[str, dict[str, Any]], None]
"""Called after each evaluation run with its label and `run_eval` summary."""


def run_name(choice: Choice, budget: int) -> str:
    """Directory name of a candidate's run: `best_of_n-n16`, `beam-m4-n16`, `dvts-m4-n4`."""
    width = choice.width_for(budget)
    return f"{choice.strategy}{'' if width is None else f'-m{width}'}-n{budget}"


def _option(choice: Choice, budget: int, rows: dict[str, EvalRow], metric: str) -> Option:
    """A run's per-problem outcome and cost (`metric` read from each row's ledger)."""
    return Option(
        choice,
        budget,
        {pid: bool(r.get("correct")) for pid, r in rows.items()},
        {pid: float((r.get("ledger") or {}).get(metric, 0)) for pid, r in rows.items()},
    )


def _plans(
    table: StrategyTable,
    scores: dict[str, float],
    est: Option,
    runs: Sequence[Option],
    targets: Sequence[int],
    *,
    metric: CostMetric,
    seed: int,
) -> StrategyTable:
    """`table` with per-bin budget plans for `targets` (those some plan can afford).

    A target N may spend what best-of-N at N costs: N x the mean cost of one estimation sample.
    """
    k = table.difficulty_samples
    unit = fmean(est.cost.values()) / k if est.cost else 0.0
    if unit <= 0:
        return table
    by_bin = group_by_bin(scores, table.thresholds)
    limits = {n: n * unit for n in targets}
    plans = fit_plans(options_for(est, runs, k), by_bin, table.bins, limits, seed=seed)
    return table.model_copy(update={"plans": plans, "cost_metric": metric})


def _rows(out_dir: Path, problems: Sequence[dict[str, str]]) -> dict[str, EvalRow]:
    """Rows of this calibration's problems that finished without an error."""
    rows = read_results(out_dir / "results.jsonl")
    wanted = {p["id"] for p in problems}
    return {pid: r for pid, r in rows.items() if pid in wanted and not r.get("error")}


async def _pass_rates(
    rows: dict[str, EvalRow], problems: Sequence[dict[str, str]], grader: Grader
) -> dict[str, float]:
    """Oracle difficulty: the share of a problem's k samples whose answer is right."""
    truth = {p["id"]: p["answer"] for p in problems}

    async def rate(pid: str, answers: list[str | None]) -> float:
        marks = [await grader.aequivalent(truth[pid], a) for a in answers]
        return fmean(marks) if marks else 0.0

    ids = list(rows)
    rates = await asyncio.gather(*(rate(i, rows[i]["result"]["sample_answers"]) for i in ids))
    return dict(zip(ids, rates, strict=True))


async def calibrate(
    problems: Sequence[dict[str, str]],
    ctx: Any,
    runs_dir: Path,
    *,
    budgets: Sequence[int],
    strategies: Sequence[str],
    bins: int = DEFAULT_BINS,
    difficulty: DifficultyKind = "predicted",
    dataset: str | None = None,
    concurrency: int = 32,
    resume: bool = True,
    seed: int = 0,
    targets: Sequence[int] | None = None,
    cost_metric: CostMetric = "samples",
    policy: Policy | None = None,
    prm: RewardModel | None = None,
    embedder: Embedder | None = None,
    grader: Grader | None = None,
    on_run: OnRun | None = None,
) -> StrategyTable:
    """Estimate every problem's difficulty, evaluate every candidate θ at every budget, fit.

    Args:
        problems: Validation problems (`id`, `problem`, `answer`), e.g. from `load_dataset`.
        ctx: Endpoints and search settings; `difficulty_samples` is k. Strategy and budget are
            replaced per run.
        runs_dir: Where each run's `results.jsonl` and `summary.json` go.
        budgets: Budgets N to fit.
        strategies: Candidate names (`best_of_n`, `beam`, `dvts`, `rebase`, `dora`; see
            `candidates` for the θ each expands to).
        bins: Number of quantile difficulty bins.
        difficulty: Bin on the mean PRM score (`predicted`) or on the pass rate of the k
            samples (`oracle`, for analysis: a graph cannot route on it).
        dataset: Dataset name, recorded in the summaries and the table.
        concurrency: Problems in flight per run.
        resume: Keep the rows of earlier runs in `runs_dir`.
        seed: Seed of the 2-fold cross-validation split.
        targets: Run budgets N to fit per-bin budget plans for (default: `budgets`); a plan
            spends on average what best-of-N at N costs, counted in `cost_metric`.
        cost_metric: `samples` or `completion_tokens` (what the plans' budgets count).
        policy: Policy client (default: from the context).
        prm: Reward model (default: from the context).
        embedder: Embedder for DORA candidates (default: from the context).
        grader: Answer-equivalence grader.
        on_run: Progress callback, called after each run.

    Returns:
        The fitted table (not written; see `write_table`).

    Raises:
        ConfigError: no budget, a budget < 1, or an unknown strategy name — before any request.
    """
    if not budgets or any(n < 1 for n in budgets):
        raise ConfigError(f"budgets must be positive integers, got {list(budgets)}")
    plan = [(n, c) for n in sorted(set(budgets)) for c in candidates_for(strategies, n)]
    grader = grader or default_grader()
    common: dict[str, Any] = {
        "dataset": dataset,
        "concurrency": concurrency,
        "resume": resume,
        "grader": grader,
    }
    search = create_search_graph(
        "best_of_n", policy=policy, prm=prm, embedder=embedder, name="calibrate", grader=grader
    )

    async def estimate(problem: str) -> dict[str, Any]:
        est = await measure_difficulty(search, ctx, problem)
        result = {"difficulty": est.score, "sample_answers": est.answers}
        return {"answer": est.answer, "result": result, "ledger": est.ledger}

    est_dir = runs_dir / "difficulty"
    summary = await run_eval(
        estimate, list(problems), est_dir, settings=difficulty_context(ctx), **common
    )
    if on_run is not None:
        on_run(f"difficulty (k={ctx.difficulty_samples})", summary)
    rows = _rows(est_dir, problems)
    scores = (
        {pid: float(r["result"]["difficulty"]) for pid, r in rows.items()}
        if difficulty == "predicted"
        else await _pass_rates(rows, problems, grader)
    )
    if not scores:
        raise ConfigError("no problem's difficulty could be estimated (see the difficulty run)")
    runs: list[CandidateRun] = []
    options: list[Option] = []
    for budget, choice in plan:
        width = choice.width_for(budget)
        sctx = with_overrides(ctx, strategy=choice.strategy, budget=budget)
        if width is not None:
            sctx = with_overrides(sctx, beam_width=width)
        solver = Solver(sctx, policy=policy, prm=prm, embedder=embedder, grader=grader)
        out_dir = runs_dir / run_name(choice, budget)
        summary = await run_eval(solver, list(problems), out_dir, settings=sctx, **common)
        if on_run is not None:
            on_run(f"{choice.name} @ N={budget}", summary)
        option = _option(choice, budget, _rows(out_dir, problems), cost_metric)
        options.append(option)
        runs.append(CandidateRun(choice, budget, option.correct, cost=float(summary["mean_flops"])))
    source: dict[str, JsonValue] = {
        "dataset": dataset,
        "problems": len(scores),
        "strategies": list(strategies),
        "budgets": [n for n in sorted(set(budgets))],  # typed as JSON values
        "model": ctx.model,
        "prm_model": ctx.prm_model if ctx.prm_url else "generative verifier",
        "cv_seed": seed,
    }
    try:
        table = fit_table(
            scores,
            runs,
            bins=bins,
            difficulty=difficulty,
            difficulty_samples=ctx.difficulty_samples,
            seed=seed,
            source=source,
        )
    except ValueError as err:  # e.g. every candidate failed on every problem of a budget
        raise TTSError(f"cannot fit the strategy table: {err}") from None
    if difficulty == "oracle":
        return table  # not routable, so no plans
    alone = _option(Choice(strategy="best_of_n"), ctx.difficulty_samples, rows, cost_metric)
    wanted = sorted(set(targets or budgets))
    return _plans(table, scores, alone, options, wanted, metric=cost_metric, seed=seed)
