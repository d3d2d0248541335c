"""Fit a strategy table from evaluation runs on a validation set (`langgraph-tts calibrate`).

Every run is an ordinary resumable evaluation (`evaluation.run_eval`) in its own directory
under `runs_dir`: `difficulty/` (the k-sample estimate of every problem) and one directory per
candidate θ and budget (`beam-m2-n4/`, ...). With `bon_pool=P`, best-of-N is one run of P
samples per problem (`best_of_n-pool-nP/`) and every budget n ≤ P is read from it (see
`subsample`). Running the same calibration again skips the problems already answered, then
refits the table from all rows.
"""

from __future__ import annotations

import asyncio
import random
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
from ..strategies import get_strategy
from .graph import difficulty_context, measure_difficulty
from .plan import CostMetric, Option, fit_plans, options_for
from .subsample import PoolSample, expected_right, pool_grid
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

__all__ = ["calibrate", "grade_pool", "run_name", "run_option"]

OnRun = Callable[[str, dict[str, Any]], None]
"""Called after each evaluation run with its label and `run_eval` summary."""


def run_name(choice: Choice, budget: int) -> str:
    """Directory name of a candidate's run: `best_of_n-n16`, `beam-m4-n16`, `dvts-m4-n4`."""
    width = choice.width_for(budget)
    return f"{choice.strategy}{'' if width is None else f'-m{width}'}-n{budget}"


def run_option(choice: Choice, budget: int, rows: dict[str, EvalRow], metric: str) -> Option:
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


async def _pool(
    search: Any,
    ctx: Any,
    size: int,
    problems: Sequence[dict[str, str]],
    out_dir: Path,
    **common: Any,
) -> tuple[dict[str, tuple[PoolSample, dict[str, float]]], dict[str, Any]]:
    """Best-of-N with `size` samples per problem, kept sample by sample, grouped and graded:
    problem id -> (its pool, its ledger); and the run's summary."""

    async def draw(problem: str) -> dict[str, Any]:
        settings = {"strategy": "best_of_n", "budget": size, "adaptive": False}
        out = await search.ainvoke({"problem": problem, "settings": settings}, context=ctx)
        done = [out["nodes"][i] for i in out.get("completed") or []]
        result = {"answers": [n["answer"] for n in done], "scores": [n["score"] for n in done]}
        return {"answer": out.get("answer"), "result": result, "ledger": out["result"]["ledger"]}

    pool_ctx = with_overrides(ctx, strategy="best_of_n", budget=size)
    summary = await run_eval(draw, list(problems), out_dir, settings=pool_ctx, **common)
    truth = {p["id"]: p["answer"] for p in problems}
    grader: Grader = common["grader"]

    async def graded(pid: str, row: EvalRow) -> tuple[str, tuple[PoolSample, dict[str, float]]]:
        result = row["result"]
        sample = await grade_pool(result["answers"], result["scores"], truth[pid], grader)
        return pid, (sample, {k: float(v) for k, v in (row.get("ledger") or {}).items()})

    rows = _rows(out_dir, problems)
    return dict(await asyncio.gather(*(graded(pid, row) for pid, row in rows.items()))), summary


async def grade_pool(
    answers: Sequence[str | None], scores: Sequence[float | None], truth: str, grader: Grader
) -> PoolSample:
    """One problem's pool, its answers grouped once and each group graded once."""
    groups = await grader.agroup(answers)
    right = [
        g for g in set(groups) - {-1} if await grader.aequivalent(truth, answers[groups.index(g)])
    ]
    return PoolSample(list(answers), list(scores), groups, frozenset(right))


def _pool_options(
    pools: dict[str, tuple[PoolSample, dict[str, float]]],
    budgets: Sequence[int],
    ctx: Any,
    metric: str,
    seed: int,
) -> list[tuple[Option, float]]:
    """Best-of-N at each budget from the pools: per problem the expected correctness and the
    pool's cost scaled to n samples; with the mean FLOPs at n (for the cells' ties)."""
    rule = get_strategy("best_of_n").vote_rule(ctx)
    out = []
    for n in budgets:
        right, cost, flops = {}, {}, []
        for pid, (sample, ledger) in pools.items():
            share = n / max(1, len(sample.answers))
            right[pid] = expected_right(sample, n, rule, random.Random(f"{seed}:{pid}:{n}"))
            cost[pid] = ledger.get(metric, 0.0) * share
            flops.append(ledger.get("flops", 0.0) * share)
        option = Option(Choice(strategy="best_of_n"), n, right, cost)
        out.append((option, sum(flops) / len(flops) if flops else 0.0))
    return out


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
    bon_pool: int | None = None,
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
        bon_pool: Draw best-of-N once, with this many samples per problem, and read every
            budget n up to it from that pool as an expected accuracy (`subsample`); the plans
            may then also choose the budgets between (6, 12, 24, 48, ...). Default: one
            best-of-N run per budget, like every other candidate.
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
    pooled = bon_pool is not None
    if pooled and "best_of_n" not in strategies:
        raise ConfigError("bon_pool draws best-of-N's pool: add best_of_n to the strategies")
    if bon_pool is not None and bon_pool < max(budgets):
        raise ConfigError(
            f"bon_pool must be at least the largest budget ({max(budgets)}), got {bon_pool}"
        )
    plan = [
        (n, c)
        for n in sorted(set(budgets))
        for c in candidates_for(strategies, n)
        if not (pooled and c.strategy == "best_of_n")
    ]
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
        option = run_option(choice, budget, _rows(out_dir, problems), cost_metric)
        options.append(option)
        runs.append(CandidateRun(choice, budget, option.correct, cost=float(summary["mean_flops"])))
    if bon_pool is not None:
        label = f"best_of_n-pool-n{bon_pool}"
        pools, summary = await _pool(search, ctx, bon_pool, problems, runs_dir / label, **common)
        if on_run is not None:
            on_run(f"best_of_n pool of {bon_pool}", summary)
        grid = sorted({*pool_grid(ctx.difficulty_samples, bon_pool), *budgets})
        pooled_runs = []
        for option, flops in _pool_options(pools, grid, ctx, cost_metric, seed):
            options.append(option)
            if option.budget in budgets:
                pooled_runs.append(
                    CandidateRun(option.choice, option.budget, option.correct, flops)
                )
        runs = pooled_runs + runs  # best-of-N first: the simplest candidate wins ties
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
    alone = run_option(Choice(strategy="best_of_n"), ctx.difficulty_samples, rows, cost_metric)
    wanted = sorted(set(targets or budgets))
    return _plans(table, scores, alone, options, wanted, metric=cost_metric, seed=seed)
