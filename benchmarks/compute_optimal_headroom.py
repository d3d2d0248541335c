"""How much can per-bin allocation win on a simulated world? Upper bounds for compute-optimal.

`benchmarks/compute_optimal.py --runs DIR` fits plans the way `calibrate` does: one run per
candidate and budget, each problem's outcome a single right/wrong, budgets a factor of two
apart, bins from a k-sample PRM estimate. When its plans do not beat the best single strategy,
is that the method's limit or the estimate's? This script removes the estimate's handicaps one
at a time, on the same validation and held-out problems:

- **pool**: best-of-N's accuracy at every n of a fine grid (4, 6, 8, 12, ..., 64) as an
  *expectation*, from one pool of `--pool` samples per problem (the vote over random size-n
  subsets of the pool, Snell's way of drawing best-of-N curves): no per-run noise, no budget
  gaps. Step-level runs are the measured ones.
- **oracle bins**: as *pool*, with bins by each problem's pass rate over its pool (Snell's oracle
  difficulty, which needs the answer: a bound, not a method).

Each plan is fitted on the validation problems (the package's own `fit_plans`: exact knapsack,
shrinkage chosen by 2-fold CV) and scored on the held-out ones by expected accuracy, next to
best-of-N at the same mean samples.

    python benchmarks/compute_optimal.py --world mixed --problems 1000 --validation 600 \\
        --difficulty-samples 4 --budgets 4 8 16 32 64 --targets 8 16 32 64 128 \\
        --strategies best_of_n dvts rebase dora --reference-budgets 128 --runs runs/co-mixed
    python benchmarks/compute_optimal_headroom.py --world mixed --problems 1000 --validation 600 \\
        --difficulty-samples 4 --runs runs/co-mixed
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
from pathlib import Path
from statistics import fmean
from typing import Any

from _sim import world_problems  # benchmarks/_sim.py
from compute_optimal import _clients  # benchmarks/compute_optimal.py

from langgraph_tts import create_search_graph
from langgraph_tts.compute_optimal.calibrate import grade_pool, run_name, run_option
from langgraph_tts.compute_optimal.plan import BudgetPlan, Option, fit_plans, options_for
from langgraph_tts.compute_optimal.subsample import PoolSample, expected_right, pool_grid
from langgraph_tts.compute_optimal.table import (
    Choice,
    assign_bin,
    candidates_for,
    fit_bins,
    group_by_bin,
)
from langgraph_tts.evaluation import read_results
from langgraph_tts.grading import default_grader
from langgraph_tts.strategies import get_strategy


async def draw_pools(args: argparse.Namespace, path: Path) -> dict[str, PoolSample]:
    """`--pool` PRM-scored samples per problem (best-of-N at that N), graded once per answer
    group; cached in `path`."""
    if not path.exists():
        sim = world_problems(args.world, args.problems, args.seed)
        graph = create_search_graph("best_of_n", **_clients(args.world, args.seed, sim))
        grader, gate = default_grader(), asyncio.Semaphore(args.concurrency)

        async def pool(problem: Any) -> tuple[str, dict[str, Any]]:
            async with gate:
                ctx = {"budget": args.pool, "seed": args.seed + 7}
                out = await graph.ainvoke({"problem": problem.text}, context=ctx)
            done = [out["nodes"][i] for i in out["completed"]]
            answers, scores = [n["answer"] for n in done], [n["score"] for n in done]
            graded = await grade_pool(answers, scores, problem.answer, grader)
            return problem.id, {**vars(graded), "right": sorted(graded.right)}

        path.write_text(json.dumps(dict(await asyncio.gather(*(pool(p) for _, p in sim)))))
    saved = json.loads(path.read_text())
    return {pid: PoolSample(**{**d, "right": frozenset(d["right"])}) for pid, d in saved.items()}


def _rows(path: Path) -> dict[str, Any]:
    return {p: r for p, r in read_results(path / "results.jsonl").items() if not r.get("error")}


def options(split: Path, pools: dict[str, PoolSample], args: argparse.Namespace) -> list[Option]:
    """The estimate alone, best-of-N at every grid n from the pools, every step-level run."""
    k, bon = args.difficulty_samples, Choice(strategy="best_of_n")
    estimate = run_option(bon, k, _rows(split / "difficulty"), "samples")
    ids = sorted(estimate.correct)
    rule = get_strategy("best_of_n").default_vote
    runs = []
    for n in pool_grid(k, args.pool):
        rng = random.Random(f"{split.name}:{n}")
        right = {p: expected_right(pools[p], n, rule, rng) for p in ids}
        runs.append(Option(bon, n, right, dict.fromkeys(ids, float(n))))
    steps = [s for s in args.strategies if s != "best_of_n"]
    for budget in args.budgets:
        for choice in candidates_for(steps, budget):
            runs.append(
                run_option(choice, budget, _rows(split / run_name(choice, budget)), "samples")
            )
    return options_for(estimate, runs, k)


def score(plan: BudgetPlan, bins: dict[str, int], held: list[Option]) -> tuple[float, float]:
    """Expected accuracy and mean samples of a plan on the held-out problems."""
    by_name = {o.name: o for o in held}
    right = cost = 0.0
    for pid, b in bins.items():
        option = by_name[plan.entry(b).name]
        right, cost = right + option.correct[pid], cost + option.cost[pid]
    return right / len(bins), cost / len(bins)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--world", default="default")
    parser.add_argument("--problems", type=int, default=400)
    parser.add_argument("--validation", type=int, help="as compute_optimal.py (default: half)")
    parser.add_argument("--budgets", type=int, nargs="+", default=[4, 8, 16, 32, 64])
    parser.add_argument("--targets", type=int, nargs="+", default=[8, 16, 32, 64])
    parser.add_argument("--strategies", nargs="+", default=["best_of_n", "dvts", "rebase", "dora"])
    parser.add_argument("--difficulty-samples", type=int, default=4)
    parser.add_argument("--pool", type=int, default=64, help="best-of-N samples per problem")
    parser.add_argument("--bins", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--runs", type=Path, required=True, help="compute_optimal.py's --runs")
    args = parser.parse_args()
    os.environ.setdefault("LANGSMITH_TRACING", "false")
    pools = asyncio.run(draw_pools(args, args.runs / f"pool-n{args.pool}.json"))
    val, held = (
        options(args.runs / "validation", pools, args),
        options(args.runs / "held_out", pools, args),
    )
    est = {split: _rows(args.runs / split / "difficulty") for split in ("validation", "held_out")}
    predicted = {
        s: {p: float(r["result"]["difficulty"]) for p, r in rows.items()} for s, rows in est.items()
    }
    oracle = {
        s: {p: fmean(g in pools[p].right for g in pools[p].groups) for p in rows}
        for s, rows in est.items()
    }
    bon = {o.budget: fmean(o.correct.values()) for o in held if o.choice.strategy == "best_of_n"}
    print(
        "| bins | N | plan (bin 1 = easiest) | held-out expected accuracy | samples | best-of-N@N |"
    )
    print("|---|---|---|---|---|---|")
    for label, scores in (
        ("predicted (k-sample PRM)", predicted),
        ("oracle (pool pass rate)", oracle),
    ):
        thresholds = fit_bins(list(scores["validation"].values()), args.bins)
        groups = group_by_bin(scores["validation"], thresholds)
        plans = fit_plans(
            val, groups, args.bins, {n: float(n) for n in args.targets}, seed=args.seed
        )
        bins = {p: assign_bin(s, thresholds) for p, s in scores["held_out"].items()}
        for plan in plans:
            acc, cost = score(plan, bins, held)
            names = " / ".join(e.name for e in plan.entries)
            print(
                f"| {label} | {plan.target} | {names} | {acc:.3f} | {cost:.1f} | {bon.get(plan.target, float('nan')):.3f} |"
            )


if __name__ == "__main__":
    main()
